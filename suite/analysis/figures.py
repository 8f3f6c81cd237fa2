"""The report's figures per (task, variant), from the records (``rnnsuite report --out``):

- ``gradients_<task>_<variant>.png``: the hidden-state gradient ‖∂L/∂h_t‖ against t, at
  initialization and after training, one line per model on a log axis;
- ``curves_<task>_<variant>.png``: the validation metric against the training step, one
  line per model, with the task's trivial baseline drawn and named, on a log axis where
  the values span decades.

A line is the mean over a model's seeds; where a model has several seeds a band shows
their range, and the legend says so. Each model keeps its colour and line style in both
figures (:func:`suite.analysis.plotting.model_style`), and the one legend sits beside the
axes, never over the lines.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pandas as pd

from suite.analysis import plotting
from suite.core import records

NORM = "‖∂L/∂h_t‖"


def _warn(message: str) -> None:
    print(f"rnnsuite: warning: {message}", file=sys.stderr)


def figure_rows(row) -> tuple[list[dict], list[dict]]:
    """One run's gradient profiles (init and end) and validation curve, as figure rows."""
    grads = records.load_record(Path(row.path))["gradients"]
    profiles = []
    for when, step in (("init", "0"), ("end", str(grads["end_step"]))):
        for t, v in enumerate(grads["hidden_profile"][step], start=1):
            if v and v > 0:
                profiles.append({"model": row.model, "seed": row.seed, "t": t, NORM: v, "when": when})
    curves = pd.read_csv(Path(row.path) / records.CURVES)
    val = curves[curves.split == "val"]
    return profiles, [{"model": row.model, "seed": row.seed, "step": s, "value": m}
                      for s, m in zip(val.step, val.metric)]


def _lines(ax, df: pd.DataFrame, x: str, y: str, styles: dict) -> bool:
    """Per model, the mean over seeds against ``x``, and the seeds' range as a band where
    there are several; returns whether any band was drawn."""
    banded = False
    for model, g in df.groupby("model", sort=True):
        by_x = g.groupby(x)[y]
        mean = by_x.mean()
        ax.plot(mean.index, mean.values, label=model, linewidth=1.6, **styles[model])
        if g.seed.nunique() > 1:
            banded = True
            ax.fill_between(mean.index, by_x.min().values, by_x.max().values, color=styles[model]["color"],
                            alpha=0.15, linewidth=0)
    return banded


def _band_handle(df: pd.DataFrame):
    plt = plotting.pyplot()
    seeds = df.groupby("model").seed.nunique().max()
    return plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.3, label=f"band: range over the seeds (up to {seeds})")


def draw_gradients(df: pd.DataFrame, title: str):
    plt = plotting.pyplot()
    styles = plotting.model_style(df.model)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    banded = False
    for axis, when, label in zip(axes, ("init", "end"), ("at initialization", "after training")):
        sub = df[df.when == when]
        if not sub.empty:
            banded |= _lines(axis, sub, "t", NORM, styles)
        axis.set_yscale("log")  # the norms fall over decades along the sequence
        axis.set_xlabel("t (step of the sequence)")
        axis.set_title(f"{title}: {label}", fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"{NORM} (log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    known = dict(zip(labels, handles))
    for handle, label in zip(*axes[1].get_legend_handles_labels()):
        known.setdefault(label, handle)
    if banded:
        known["band"] = _band_handle(df)
    fig.tight_layout()
    plotting.legend_outside(fig, list(known.values()), [h.get_label() for h in known.values()])
    return fig


def draw_curves(df: pd.DataFrame, metric: str, baseline: float | None, title: str):
    plt = plotting.pyplot()
    styles = plotting.model_style(df.model)
    fig, axis = plt.subplots(figsize=(7, 4))
    banded = _lines(axis, df, "step", "value", styles)
    plotting.baseline_line(axis, baseline)
    plotting.log_if_spans_decades(axis, [*df.value, baseline if baseline is not None else math.nan])
    axis.set_xlabel("training step")
    axis.set_ylabel(f"validation {metric}")
    axis.set_title(f"{title}: validation {metric}", fontsize=10)
    axis.grid(alpha=0.3)
    handles, _ = axis.get_legend_handles_labels()
    if banded:
        handles.append(_band_handle(df))
    fig.tight_layout()
    plotting.legend_outside(fig, handles, [h.get_label() for h in handles])
    return fig


def figures(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per (task, variant): the gradient-profile and validation-curve figures; the paths written."""
    plt = plotting.pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (task, variant), g in runs.groupby(["task", "variant"]):
        name = f"{task}_{variant}".replace(" ", "_").replace("=", "")
        profile_rows, curve_rows = [], []
        for _, row in g.iterrows():
            try:
                profiles, curves = figure_rows(row)
            except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:  # ValueError: pandas' too
                _warn(f"{row.path}: left out of the figures ({records.cause(exc)})")
                continue
            profile_rows += profiles
            curve_rows += curves
        title = f"{task} {variant}"
        try:
            if profile_rows:
                fig = draw_gradients(pd.DataFrame(profile_rows), title)
                written.append(plotting.save(fig, out_dir / f"gradients_{name}.png"))
            if curve_rows:
                baseline = g.baseline.dropna().iloc[0] if g.baseline.notna().any() else None
                fig = draw_curves(pd.DataFrame(curve_rows), g.metric.iloc[0], baseline, title)
                written.append(plotting.save(fig, out_dir / f"curves_{name}.png"))
        finally:
            plt.close("all")
    return written


def draw_run(record: dict, curves: pd.DataFrame):
    """One run's page figure: training loss and validation metric against the step (with
    the trivial baseline), and the hidden-state gradient profile at initialization and
    after training; logarithmic axes where the values span decades."""
    plt = plotting.pyplot()
    info, grads = record["task_info"], record["gradients"]
    fig, (ax_loss, ax_val, ax_grad) = plt.subplots(1, 3, figsize=(13, 3.4))
    train, val = curves[curves.split == "train"], curves[curves.split == "val"]
    ax_loss.plot(train.step, train.loss, color="0.3", linewidth=1)
    plotting.log_if_spans_decades(ax_loss, train.loss)
    ax_loss.set(xlabel="training step", ylabel="training loss", title="training loss")
    ax_val.plot(val.step, val.metric, "o-", color=plotting.LEARNED, markersize=3, label=f"validation {info['metric']}")
    baseline = (info.get("trivial_baseline") or {}).get("value")
    plotting.baseline_line(ax_val, baseline)
    plotting.log_if_spans_decades(ax_val, [*val.metric, baseline if baseline is not None else math.nan])
    ax_val.set(xlabel="training step", ylabel=info["metric"], title=f"validation {info['metric']}")
    for step, colour, label in (("0", plotting.AT_INIT, "at initialization"),
                                (str(grads["end_step"]), plotting.AFTER_TRAINING, "after training")):
        profile = grads["hidden_profile"].get(step) or []
        points = [(t, v) for t, v in enumerate(profile, start=1) if v and v > 0]
        if points:
            ax_grad.plot(*zip(*points), color=colour, label=f"{NORM} {label}")
    ax_grad.set_yscale("log")
    ax_grad.set(xlabel="t (step of the sequence)", ylabel=f"{NORM} (log scale)", title="hidden-state gradient")
    for axis in (ax_loss, ax_val, ax_grad):
        axis.grid(alpha=0.3)
    handles = [h for axis in (ax_val, ax_grad) for h in axis.get_legend_handles_labels()[0]]
    fig.tight_layout()
    plotting.legend_outside(fig, handles, [h.get_label() for h in handles], where="below", ncol=4)
    return fig
