"""Baseline model families. Importing this package registers them; each module is
one family, its equations and source in its docstring."""

from baselines import antisymmetric, rnn  # noqa: F401  (registration side effect)
