"""The statistics every table uses, in one place: a metric's mean and spread over seeds,
the standard error of a difference of means, the direction of a metric, and the rule by
which one configuration beats, ties or loses to another.

Conventions, stated once:
- the spread is the sample standard deviation (``ddof = 1``); with a single seed it is
  unknown, ``nan``, shown as "—", never 0;
- a configuration with no finished seed has mean ``nan``;
- ``gain``, ``reaches`` and ``best_index`` read the metric's direction from the task (``higher_is_better``),
  so no caller writes the comparison itself;
- two configurations **tie** when their means differ by at most ``TIE_SE`` standard
  errors of the difference, √(s₁²/n₁ + s₂²/n₂); below ``MIN_SEEDS`` seeds on either side
  there is no verdict;
- one run of theirs (a published log) against n runs of ours is placed by rank: were it a
  draw from our distribution, it would come before all n of ours with probability
  1/(n + 1), so "outside" needs that below ``RANK_P`` (:func:`one_run_among`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

TIE_SE = 2.0
MIN_SEEDS = 3
RANK_P = 0.05


def finite(values: Iterable) -> list[float]:
    """The values that are numbers and finite (``None`` and ``nan`` left out)."""
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def mean_std(values: Iterable) -> tuple[float, float]:
    """``(mean, standard deviation)`` over the finite values; ``nan`` where undefined."""
    vals = finite(values)
    mean = statistics.fmean(vals) if vals else math.nan
    std = statistics.stdev(vals) if len(vals) > 1 else math.nan
    return mean, std


def standard_error(std_a: float, n_a: int, std_b: float, n_b: int) -> float:
    """Standard error of the difference of two means from their seed spreads."""
    return math.sqrt(std_a**2 / n_a + std_b**2 / n_b)


def gain(a: float, b: float, higher_is_better: bool) -> float:
    """How much better ``a`` is than ``b`` in the metric's direction (negative: worse)."""
    return (a - b) if higher_is_better else (b - a)


def reaches(value: float, target: float, higher_is_better: bool) -> bool:
    """Whether ``value`` is at the target or beyond it, in the metric's direction."""
    return gain(value, target, higher_is_better) >= 0


def best_index(values: Iterable[float], higher_is_better: bool) -> int:
    """Index of the best value in the metric's direction (``nan`` never wins)."""
    vals = [v if math.isfinite(v) else (-math.inf if higher_is_better else math.inf) for v in values]
    pick = max if higher_is_better else min
    return vals.index(pick(vals))


def verdict(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int,
            higher_is_better: bool) -> str | None:
    """``a`` against ``b``: "beats", "ties", "loses to", or ``None`` below ``MIN_SEEDS`` seeds."""
    if n_a < MIN_SEEDS or n_b < MIN_SEEDS:
        return None
    d = gain(mean_a, mean_b, higher_is_better)
    if abs(d) <= TIE_SE * standard_error(std_a, n_a, std_b, n_b):
        return "ties"
    return "beats" if d > 0 else "loses to"


def plus_minus(mean: float, std: float, digits: str = ".4g", spread: str = ".2g") -> str:
    """``mean ± std`` for a table; "—" for what is unknown."""
    if math.isnan(mean):
        return "—"
    return f"{mean:{digits}} ± {'—' if math.isnan(std) else format(std, spread)}"


def first_below(points: Iterable, values: Iterable, below: float) -> float | None:
    """The first point whose value is below ``below`` (None: never)."""
    return next((float(p) for p, v in zip(points, values) if v < below), None)


def one_run_among(theirs: float, ours: list[tuple[float, bool]]) -> str:
    """Where one run's event time ``theirs`` falls among ours: ``(time, True)`` for a run of
    ours with the event at ``time``, ``(time, False)`` for one that ran to ``time`` without it
    (censored). Only "earlier than all of ours" can be a failure, at probability 1/(n + 1)."""
    if not ours:
        return "not decided (none of our runs has finished)"
    if any(not hit and t < theirs for t, hit in ours):
        return "not decided (a run of ours stopped before their event)"
    n = len(ours)
    earlier = sum(hit and t < theirs for t, hit in ours)
    if earlier:
        return f"within our distribution: {earlier} of our {n} runs earlier"
    p = 1 / (n + 1)
    needed = math.floor(1 / RANK_P)  # the fewest runs at which 1/(n + 1) falls below RANK_P
    return (f"{'FAIL' if p < RANK_P else 'not decided'}: theirs before all {n} of ours, which a run drawn "
            f"from our distribution is with probability 1/{n + 1} = {p:.2f}"
            + ("" if p < RANK_P else f"; below {RANK_P:g} only from {needed} runs of ours on"))
