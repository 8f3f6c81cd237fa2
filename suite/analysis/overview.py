"""The one figure to look at first: per task, each model's final test metric against
the task's trivial baseline, beside its hidden-state gradient ratio.

    rnnsuite report --runs results/demo --out results/demo     (writes results/demo/overview.png)

Left panel: the test metric (mean over seeds, and where there are several seeds their
range as a line) with the trivial baseline as a dashed red line: for the adding problem
the MSE of always predicting 1 (0.167), for the copy task the memoryless cross-entropy,
for MNIST chance; logarithmic where the values span decades. A model is blue when it
learned the task by the rule :func:`learned` applies — an error below half the
baseline's, or for an accuracy more than half-way from chance to perfect — and grey when
it did not; the title and the legend state that rule. Right panel: log10(‖∂L/∂h_1‖ /
‖∂L/∂h_T‖) at initialization (orange) and after training (purple), how many decades the
gradient reaching the first step has lost (negative) or gained (positive) on its way
back through the sequence; every value has a marker, so a ratio of 0 (a gradient that
neither vanishes nor explodes) is a dot on the zero line, not a missing bar. The numbers
are those of :func:`suite.analysis.report.summarize`, computed there.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from suite.analysis import plotting


def learned(test: float, baseline: float | None, higher: bool) -> bool:
    if baseline is None or math.isnan(baseline) or math.isnan(test):
        return False
    return test > baseline + (1 - baseline) / 2 if higher else test < baseline / 2


def rule(higher: bool) -> str:
    """The words for :func:`learned`, for the title and the legend."""
    return "more than half-way from the baseline to perfect" if higher else "below half the trivial baseline"


def _metric_panel(ax, g: pd.DataFrame, seeds: pd.DataFrame, higher: bool) -> list:
    baseline = g.baseline.iloc[0]
    several = False
    for i, (model, mean) in enumerate(zip(g.model, g.test_mean)):
        if math.isnan(mean):
            continue
        colour = plotting.LEARNED if learned(mean, baseline, higher) else plotting.NOT_LEARNED
        values = seeds[seeds.model == model].test
        if len(values) > 1:  # a range only where there are seeds to make one
            several = True
            ax.plot([values.min(), values.max()], [i, i], color=colour, linewidth=2, solid_capstyle="butt")
        ax.plot([mean], [i], "o", color=colour, markersize=8, zorder=3)
    plotting.baseline_line(ax, baseline, axis="x")
    if not higher:
        plotting.log_if_spans_decades(ax, [*g.test_mean, *seeds.test, baseline], axis="x")
    ax.set_yticks(range(len(g)), [f"{m}  (diverged {d})" if d else m for m, d in zip(g.model, g.diverged)])
    ax.set_ylim(len(g) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    spread = "; line: range over the seeds" if several else ""
    ax.set_xlabel(f"test {g.metric.iloc[0]} ({'higher' if higher else 'lower'} is better; "
                  f"mean over seeds{spread})")
    plt = plotting.pyplot()
    return [plt.Line2D([], [], marker="o", linestyle="", color=plotting.LEARNED, label=f"learned: {rule(higher)}"),
            plt.Line2D([], [], marker="o", linestyle="", color=plotting.NOT_LEARNED, label="did not learn")]


def _ratio_panel(ax, g: pd.DataFrame) -> None:
    for offset, column, colour, label in ((-0.2, "ratio_init", plotting.AT_INIT, "gradient ratio at initialization"),
                                          (0.2, "ratio_end", plotting.AFTER_TRAINING, "gradient ratio after training")):
        y = [i + offset for i in range(len(g))]
        values = list(g[column])
        ax.barh(y, values, height=0.4, color=colour, alpha=0.5)
        ax.plot(values, y, "o", color=colour, markersize=4, label=label)  # a dot also where the value is 0
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(g)), [""] * len(g))
    ax.set_ylim(len(g) - 0.5, -0.5)
    ax.xaxis.set_major_locator(plotting.pyplot().MaxNLocator(5))
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("log10 ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖\n(0: no vanishing; < 0: vanishing)")
    ax.set_title("hidden-state gradient over the sequence", fontsize=10)


def draw(summary: pd.DataFrame, runs: pd.DataFrame):
    """The overview as a matplotlib figure (saved by :func:`overview_figure`)."""
    plt = plotting.pyplot()
    groups = list(summary.groupby(["task", "variant"], sort=False))
    rows = max(len(g) for _, g in groups)
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, (0.35 * rows + 1.6) * len(groups)),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 2]})
    handles: dict[str, object] = {}
    for (task, variant), (ax_metric, ax_ratio) in zip([k for k, _ in groups], axes):
        g = summary[(summary.task == task) & (summary.variant == variant)]
        higher = g.metric.iloc[0].endswith("↑")
        g = g.sort_values("test_mean", ascending=not higher, na_position="last")
        seeds = runs[(runs.task == task) & (runs.variant == variant) & (runs.status == "ok")]
        for handle in _metric_panel(ax_metric, g, seeds, higher):
            handles.setdefault(handle.get_label(), handle)
        ax_metric.set_title(f"{task} {variant}: blue = learned ({rule(higher)}), grey = did not", fontsize=10)
        _ratio_panel(ax_ratio, g)
        for axis in (ax_metric, ax_ratio):
            for handle, label in zip(*axis.get_legend_handles_labels()):
                handles.setdefault(label, handle)
    fig.tight_layout()
    plotting.legend_outside(fig, list(handles.values()), list(handles), where="below", ncol=3)
    return fig


def overview_figure(summary: pd.DataFrame, runs: pd.DataFrame, path: Path) -> Path:
    plt = plotting.pyplot()
    fig = draw(summary, runs)
    try:
        return plotting.save(fig, path)
    finally:
        plt.close(fig)
