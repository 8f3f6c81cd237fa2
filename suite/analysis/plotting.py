"""The one place figures are made and saved: every figure of the suite goes through
:func:`pyplot` (matplotlib's non-interactive backend, so that no command needs a
display) and :func:`save` (written atomically: a killed report leaves the old figure or
none, never half of one).

The rules a newcomer's reading depends on live here too: a legend goes outside the data
(:func:`legend_outside`); an axis whose values span two decades or more is logarithmic
(:func:`log_if_spans_decades`); a task's trivial baseline is drawn and named
(:func:`baseline_line`); a model keeps one colour and one line style in every figure
(:func:`model_style`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

from suite.core import records


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported on first use (matplotlib is slow to
    import, and most commands draw nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Colours with one meaning each, across panels and figures.
LEARNED = "tab:blue"  # a model that learned the task (the rule: suite.analysis.overview.learned)
NOT_LEARNED = "0.6"  # grey: a model that did not
AT_INIT = "tab:orange"  # a gradient ratio at initialization
AFTER_TRAINING = "tab:purple"  # ... and after training
BASELINE = "tab:red"  # the task's trivial baseline, always dashed
# a model's colours: neither the baseline's red nor the grey of "did not learn"
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan",
           "black", "goldenrod")
DASHES = ("-", "--", "-.", ":")


def model_style(models: Iterable[str]) -> dict[str, dict]:
    """Per model (in sorted order, so a model keeps its style between figures): a colour and
    a line style, both varying, so lines of the same colour family or lying on each other
    stay told apart."""
    return {m: {"color": PALETTE[i % len(PALETTE)], "linestyle": DASHES[(i // 2) % len(DASHES)]}
            for i, m in enumerate(sorted(set(models)))}


def spans_decades(values: Iterable[float], decades: float = 2.0) -> bool:
    """True when the positive finite ``values`` cover at least ``decades`` powers of ten
    and none is zero or negative (a log axis could not show it)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite or min(finite) <= 0:
        return False
    return math.log10(max(finite) / min(finite)) >= decades


def log_if_spans_decades(ax, values: Iterable[float], axis: str = "y") -> bool:
    """Make ``axis`` logarithmic when ``values`` span decades; returns whether it did."""
    if spans_decades(values):
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        return True
    return False


def baseline_line(ax, value: float | None, axis: str = "y", what: str = "trivial baseline"):
    """The task's trivial baseline as a dashed red line named in the legend; None when
    the task has none."""
    if value is None or not math.isfinite(value):
        return None
    draw = ax.axhline if axis == "y" else ax.axvline
    return draw(value, color=BASELINE, linestyle="--", linewidth=1.2, label=f"{what} {value:.3g}", zorder=1)


def legend_outside(fig, handles, labels, *, where: str = "right", ncol: int = 1):
    """One legend for the whole figure, beside the axes (``right``) or under them
    (``below``), never over the data; the axes make room for it when the figure is saved."""
    if where == "right":
        return fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
                          frameon=False, ncol=ncol)
    return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
                      frameon=False, ncol=ncol)


def save(fig, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.png'}")
    try:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")  # "tight": a legend outside the axes is kept
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise records.write_error("the figure", path, exc) from None
    return path
