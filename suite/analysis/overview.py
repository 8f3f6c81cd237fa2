"""The one figure to look at first: per task, each model's final test metric against
the task's trivial baseline, beside its hidden-state gradient ratio.

    rnnsuite report --runs results/demo --out results/demo     (writes results/demo/overview.png)

Left panel: the test metric (mean over seeds, the range of the seeds as a bar) with the
trivial baseline as a dashed line: for the adding problem the MSE of always predicting 1
(0.167), for the copy task the memoryless cross-entropy, for MNIST chance. A model drawn
in colour beat the baseline clearly (its error below half the baseline's, or for an
accuracy, more than half-way from chance to perfect); grey ones did not learn the task.
Right panel: log10(‖∂L/∂h_1‖ / ‖∂L/∂h_T‖) at initialization and at the end of training,
how many decades the gradient reaching the first step has lost (negative) or gained
(positive) on its way back through the sequence; 0 is a gradient that neither vanishes
nor explodes. The numbers are those of :func:`suite.analysis.report.summarize`, computed there.
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


def overview_figure(summary: pd.DataFrame, runs: pd.DataFrame, path: Path) -> Path:
    plt = plotting.pyplot()

    groups = list(summary.groupby(["task", "variant"], sort=False))
    rows = max(len(g) for _, g in groups)
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, (0.35 * rows + 1.3) * len(groups)),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 2]})
    for (task, variant), (ax_metric, ax_ratio) in zip([k for k, _ in groups], axes):
        g = summary[(summary.task == task) & (summary.variant == variant)]
        higher = g.metric.iloc[0].endswith("↑")
        g = g.sort_values("test_mean", ascending=not higher, na_position="last")
        seeds = runs[(runs.task == task) & (runs.variant == variant) & (runs.status == "ok")]
        lo = [seeds[seeds.model == m].test.min() for m in g.model]
        hi = [seeds[seeds.model == m].test.max() for m in g.model]
        y = range(len(g))
        baseline = g.baseline.iloc[0]
        colours = ["tab:blue" if learned(t, baseline, higher) else "0.65" for t in g.test_mean]
        for i, (mean, a, b, colour) in enumerate(zip(g.test_mean, lo, hi, colours)):
            if not math.isnan(mean):  # a dot and the seeds' range: bars mislead on a log axis
                ax_metric.plot([a, b], [i, i], color=colour, linewidth=2)
                ax_metric.plot([mean], [i], "o", color=colour, markersize=8)
        if baseline is not None and not math.isnan(baseline):
            ax_metric.axvline(baseline, color="tab:red", linestyle="--", label=f"trivial baseline {baseline:.3g}")
            ax_metric.legend(loc="best", fontsize=8)
        if not higher and (g.test_mean > 0).all():
            ax_metric.set_xscale("log")
        ax_metric.set_yticks(list(y), [f"{m}  (diverged {d})" if d else m for m, d in zip(g.model, g.diverged)])
        ax_metric.set_ylim(len(g) - 0.5, -0.5)
        ax_metric.grid(axis="x", alpha=0.3)
        ax_metric.set_xlabel(f"test {g.metric.iloc[0]} ({'higher' if higher else 'lower'} is better; "
                             f"mean over seeds, line: their range)")
        ax_metric.set_title(f"{task} {variant}: blue = learned, grey = not better than the baseline", fontsize=10)
        ax_ratio.barh([i - 0.2 for i in y], g.ratio_init, height=0.4, color="0.75", label="at initialization")
        ax_ratio.barh([i + 0.2 for i in y], g.ratio_end, height=0.4, color="tab:purple", label="after training")
        ax_ratio.axvline(0, color="black", linewidth=0.8)
        ax_ratio.set_yticks(list(y), [""] * len(g))
        ax_ratio.set_ylim(len(g) - 0.5, -0.5)
        ax_ratio.set_xlabel("log10 ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ (0: no vanishing; < 0: vanishing)")
        ax_ratio.set_title("hidden-state gradient over the sequence", fontsize=10)
        ax_ratio.legend(loc="best", fontsize=8)
    fig.tight_layout()
    try:
        return plotting.save(fig, path)
    finally:
        plt.close(fig)
