"""Baseline model families. Importing this package registers them; each module is
one family, its equations and source in its docstring."""

from baselines import antisymmetric, cornn, exprnn, indrnn, lem, lipschitz, rnn, unicornn  # noqa: F401  (registration side effect)
