"""The command line ``rnnsuite``, on top of everything: :mod:`suite.cli.main` holds the
parser and the run/sweep/report/list commands, one module per other subcommand, and
:mod:`suite.cli.launch` the local and SLURM launcher. Nothing outside this package imports it."""
