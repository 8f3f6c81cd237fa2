import sys

from suite.cli.main import main

sys.exit(main())
