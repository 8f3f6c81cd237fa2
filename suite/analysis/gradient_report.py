"""The outputs of ``rnnsuite gradients`` (:mod:`suite.studies.gradients`), built from its
table of settings and its profiles: ``profiles.jsonl``, ``heuristic.json``,
``table.md`` / ``table.csv``, ``bands.csv`` and the figures (heatmaps Δt × t,
deviation against Δt, profiles at Δt*).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd

from suite.analysis import plotting
from suite.core import records
from suite.hamiltonian.heuristic import STABLE_DECADES

HEATMAP_COLUMNS = 200  # t is averaged (in log10) into at most this many columns


def fmt_dt(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _or_none(v) -> str:
    return "none" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt_dt(v)


def fmt_dev(v) -> str:
    if v is None or math.isnan(v):
        return "—"
    if math.isinf(v):
        return "+inf" if v > 0 else "−inf"
    return f"{v:+.2f}"


def write_outputs(settings: str, out: Path, table: pd.DataFrame, bands: pd.DataFrame, profiles: list[dict],
                  heuristics: dict, evidence_line: str = "") -> list[Path]:
    """Every file but the figures; ``evidence_line`` (suite.analysis.evidence) heads ``table.md``."""
    lines = [json.dumps(records.sanitize(p), allow_nan=False) for p in profiles]
    records.write_text_atomic(out / "profiles.jsonl", "\n".join(lines) + "\n")
    records.write_json_atomic(out / "heuristic.json", heuristics)
    csv_table = table.drop(columns=["record"])
    records.write_text_atomic(out / "table.csv", csv_table.to_csv(index=False))
    records.write_text_atomic(out / "bands.csv", bands.to_csv(index=False))

    shown_bands = pd.DataFrame({
        "task": bands.task, "T": bands["T"], "model": bands.model, "step size": bands.knob,
        "swept (points)": bands.swept, "stable band, init": bands.band_init,
        "stable band, trained": bands.band_trained, "Δt* (heuristic)": bands.dt_star.map(fmt_dt),
        "Δt* init": bands.class_star_init.fillna("—"), "Δt* trained": bands.class_star_trained.fillna("—"),
        "Δt* in band": bands.star_in_band.map(lambda v: "—" if v is None else ("yes" if v else "no")),
        "first unstable Δt > Δt* (init / trained)": [
            "—" if not isinstance(k, str) else f"{_or_none(a)} / {_or_none(b)}"
            for k, a, b in zip(bands.knob.where(bands.knob != "—"), bands.next_unstable_init,
                               bands.next_unstable_trained)],
    })
    shown = pd.DataFrame({
        "task": table.task, "T": table["T"], "model": table.model,
        "Δt": [(f"{k}={fmt_dt(d)}" if isinstance(k, str) else "—") + (" ★" if s else "")
               for k, d, s in zip(table.knob, table["dt"], table.heuristic)],
        "ratio init": table.ratio_init.map(lambda v: fmt_dev(math.nan if v is None else v)),
        "D init": table.D_init.map(fmt_dev), "class init": table.class_init,
        "ratio trained": table.ratio_trained.map(lambda v: fmt_dev(math.nan if v is None else v)),
        "D trained": table.D_trained.map(fmt_dev), "class trained": table.class_trained,
    })
    header = [
        "# Gradient-control study",
        "",
        *([evidence_line, ""] if evidence_line else []),
        f"Settings: {settings}. "
        "ratio = log10(‖∂L/∂h_1‖/‖∂L/∂h_T‖) (the suite's endpoint ratio); D = log10(‖∂L/∂h_t‖/‖∂L/∂h_T‖) "
        f"of largest magnitude over t = 1..T. Classes: stable |D| ≤ {STABLE_DECADES:g}, exploding "
        f"D > {STABLE_DECADES:g}, vanishing D < −{STABLE_DECADES:g} (±inf: overflow / underflow in float64); "
        "'diverged': training hit a non-finite loss. ★ = the heuristic's Δt* (rule hamiltonian-dt-v1). "
        "Bands are the stable runs of the swept grid (Δt* not included), clipped to the swept range.",
        "",
        "## Stable bands and the heuristic",
        "",
        shown_bands.to_markdown(index=False),
        "",
        "## Every setting",
        "",
        shown.to_markdown(index=False, disable_numparse=True),  # keep the signs of +0.82
        "",
    ]
    records.write_text_atomic(out / "table.md", "\n".join(header))
    return [out / n for n in ("table.md", "table.csv", "bands.csv", "profiles.jsonl", "heuristic.json")]


def _log10(v: float) -> float:
    return math.log10(v) if v > 0 and math.isfinite(v) else math.nan


def _binned(logs: list[float], columns: int) -> tuple[list[float], list[int]]:
    """Mean of log10 norms over at most ``columns`` contiguous bins of t; bin start t's."""
    T = len(logs)
    edges = [round(i * T / min(columns, T)) for i in range(min(columns, T) + 1)]
    values = []
    for a, b in zip(edges, edges[1:]):
        chunk = [v for v in logs[a:b] if not math.isnan(v)]
        values.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return values, [a + 1 for a in edges[:-1]]


def _profile(prof: pd.DataFrame, name: str, T: int, row, phase: str) -> list[float] | None:
    match = prof[(prof.task == name) & (prof["T"] == T) & (prof.model == row.model)
                 & (prof.heuristic == row.heuristic) & (prof.phase == phase)]
    if isinstance(row.knob, str):
        match = match[match["dt"] == row["dt"]]
    return None if match.empty else list(match.norms.iloc[0])


def figures(table: pd.DataFrame, profiles: list[dict], out_dir: Path) -> list[Path]:
    """Per (task, T): a heatmap Δt × t for each model with a step size (colour: log10
    ‖∂L/∂h_t‖, diverging around the typical output-step norm, so white is 'as large as
    at the output', red larger, blue smaller; grey: 0 or non-finite, or diverged);
    D against Δt with the stable band and Δt* (★); the profiles at Δt* and of the
    models without a step size, relative to the output step."""
    import seaborn as sns

    plt = plotting.pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    prof = pd.DataFrame(profiles)

    def save(fig, path: Path) -> None:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    for (name, T), g in table.groupby(["task", "T"], sort=False):
        tag = f"{name}_T{T}"
        palette = dict(zip(g.model.unique(), sns.color_palette("tab10", g.model.nunique())))
        for model, gm in g.groupby("model", sort=False):
            if isinstance(gm.knob.iloc[0], str):
                save(_heatmap(gm, prof, name, T, model), out_dir / f"heatmap_{tag}_{model}.png")
        save(_deviation_figure(g, name, T, palette), out_dir / f"deviation_{tag}.png")
        save(_profiles_figure(g, prof, name, T, palette), out_dir / f"profiles_{tag}.png")
    return written


def _heatmap(gm: pd.DataFrame, prof: pd.DataFrame, name: str, T: int, model: str):
    """One model's Δt × t heatmaps, at initialization and after training, on one colour scale."""
    import numpy as np
    import seaborn as sns

    plt = plotting.pyplot()
    knob = gm.knob.iloc[0]
    mats, last = {}, []
    for phase in ("init", "trained"):
        rows, labels = [], []
        for _, r in gm.sort_values("dt").iterrows():
            norms = _profile(prof, name, T, r, phase)
            logs = [_log10(v) for v in norms] if norms else [math.nan] * T
            last.append(logs[-1])
            values, starts = _binned(logs, HEATMAP_COLUMNS)
            rows.append(values)
            labels.append(f"{fmt_dt(r['dt'])}{' ★' if r.heuristic else ''}")
        mats[phase] = pd.DataFrame(rows, index=labels, columns=starts)
    center = float(np.nanmedian(last)) if not all(math.isnan(v) for v in last) else 0.0
    values = np.concatenate([m.to_numpy().ravel() for m in mats.values()])
    values = np.abs(values[np.isfinite(values)] - center)
    span = float(np.clip(np.percentile(values, 98), 2.0, 10.0)) if values.size else 2.0
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.3 * len(gm) + 2.2), sharey=True)
    for ax, phase in zip(axes, ("init", "trained")):
        ax.set_facecolor("0.6")
        with warnings.catch_warnings():  # seaborn 0.13 itself calls the deprecated Colormap.set_bad
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            sns.heatmap(mats[phase], ax=ax, cmap="vlag", center=center, vmin=center - span,
                        vmax=center + span, xticklabels=max(1, len(mats[phase].columns) // 8),
                        cbar_kws={"label": "log10 ‖∂L/∂h_t‖", "extend": "both"})
        ax.set_xlabel("t" + (" (bins of the mean log10)" if T > HEATMAP_COLUMNS else ""))
        ax.set_ylabel(knob if phase == "init" else "")
        ax.set_title(f"{name} T={T} {model}: {phase}")
    return fig


def _deviation_figure(g: pd.DataFrame, name: str, T: int, palette: dict):
    """D against Δt per model, with the stable band, Δt* (★) and the models without a step size."""
    import seaborn as sns

    plt = plotting.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, phase in zip(axes, ("init", "trained")):
        data = g.assign(D=g[f"D_{phase}"].clip(-400, 400))  # ±inf (under/overflow) drawn at ±400
        ax.axhspan(-STABLE_DECADES, STABLE_DECADES, color="0.88", zorder=0,
                   label=f"stable |D| ≤ {STABLE_DECADES:g}")
        swept = data[data.knob.notna() & ~data.heuristic]
        if not swept.empty:
            sns.lineplot(swept, x="dt", y="D", hue="model", palette=palette, marker="o", ax=ax)
        for _, r in data[data.heuristic].iterrows():
            ax.scatter([r["dt"]], [r.D], marker="*", s=220, color=palette[r.model], edgecolor="k", zorder=5)
        for _, r in data[data.knob.isna()].iterrows():
            ax.axhline(r.D, ls="--", color=palette[r.model], label=f"{r.model} (no step size)")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("step size Δt (ε for antisymmetric)")
        ax.set_ylabel("D: largest log10(‖∂L/∂h_t‖ / ‖∂L/∂h_T‖)")
        ax.set_title(f"{name} T={T}: {phase} (★ heuristic Δt*)")
        ax.legend(fontsize=7, loc="best")
    return fig


def _profiles_figure(g: pd.DataFrame, prof: pd.DataFrame, name: str, T: int, palette: dict):
    """The gradient profiles at Δt* and of the models without a step size, relative to the output step."""
    plt = plotting.pyplot()
    keep = g[g.heuristic | g.knob.isna()]
    stride = max(1, T // 2000)
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    for ax, phase in zip(axes, ("init", "trained")):
        ax.axhspan(-STABLE_DECADES, STABLE_DECADES, color="0.88", zorder=0)
        for _, r in keep.iterrows():
            norms = _profile(prof, name, T, r, phase)
            if not norms or not norms[-1] > 0:
                continue
            logs = [_log10(v / norms[-1]) for v in norms[::stride]]
            label = r.model + (f" {r.knob}*={fmt_dt(r['dt'])}" if isinstance(r.knob, str) else "")
            ax.plot(range(1, T + 1, stride), logs, label=label, color=palette[r.model])
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("t")
        ax.set_ylabel("log10(‖∂L/∂h_t‖ / ‖∂L/∂h_T‖)")
        ax.set_title(f"{name} T={T}: {phase}, at Δt* (a line ends where the norm underflows)")
        ax.legend(fontsize=7)
    return fig


# -- command line ----------------------------------------------------------------------------------------
