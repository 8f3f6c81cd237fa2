"""Hamiltonian recurrent networks, the subject of the study (not baselines).
Importing this package registers them."""

from suite.hamiltonian import hrnn  # noqa: F401  (registration side effect)
