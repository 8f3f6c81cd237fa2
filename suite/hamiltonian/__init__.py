"""Hamiltonian recurrent networks, the subject of the study (not baselines).
Importing this package registers them: ``hrnn`` (paper (a), reconstructed) and the
H-DNN cells ``hdnn-*`` (paper (b)); docs/hamiltonian.md has the equations."""

from suite.hamiltonian import hdnn, hrnn  # noqa: F401  (registration side effect)
