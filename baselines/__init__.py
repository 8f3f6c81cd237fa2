"""Baseline model families. Importing this package registers them; each module is
one family, its equations and source in its docstring."""

from baselines import (  # noqa: F401  (registration side effect)
    antisymmetric,
    cornn,
    exprnn,
    indrnn,
    lem,
    linoss,
    lipschitz,
    lru,
    mingru,
    rnn,
    s4d,
    unicornn,
)
