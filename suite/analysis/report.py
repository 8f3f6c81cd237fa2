"""Reports built offline from run records: tables (pandas) and figures (seaborn).

Nothing here trains or re-runs anything. The headline number of a cell — the test
metric's mean ± std over seeds — is computed in one place, :func:`summarize`.

    rnnsuite report --runs results/runs --format md --out results

prints one row per (task, variant, model, setting) — runs of one model under different
settings (say two learning rates) are labelled with the keys that differ,
``gru [lr=0.01]``, and never averaged together: the test metric (with its direction),
mean ± std over seeds and the number of seeds (diverged runs counted apart), the
hidden-state gradient ratio log10(‖∂L/∂h_1‖/‖∂L/∂h_T‖) at initialization and at the
end of training, the median training-step time, the parameter count and the task's
trivial baseline; it writes the figures under ``<out>/figures``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pandas as pd

from suite.analysis import plotting, stats
from suite.core import records
from suite.core.config import flatten
from suite.core.registry import SuiteError


def load_runs(root: str | Path, hashes: set[str] | None = None, tasks: set[str] | None = None,
              exclude: Path | None = None) -> pd.DataFrame:
    """One row per finished run; with ``tasks``, of those tasks only; with ``hashes``, only
    the runs of those configurations (how many of the tasks' runs were left out is in
    ``.attrs["left_out"]``); with ``exclude``, none of the records under that folder (how
    many in ``.attrs["excluded"]``). A record that cannot be read, of a schema version this
    suite does not know, or without a field the table needs is skipped with a warning
    naming it; none left is an error."""
    rows, left_out, skipped, excluded = [], 0, [], 0
    for path, rec in records.iter_records(root, skipped):
        if exclude is not None and Path(path).resolve().is_relative_to(Path(exclude).resolve()):
            excluded += 1
            continue
        if tasks is not None and rec["task"] not in tasks:
            continue
        if hashes is not None and rec["config_hash"] not in hashes:
            left_out += 1
            continue
        try:
            rows.append(_row(path, rec))
        except (KeyError, TypeError, AttributeError) as exc:
            skipped.append(f"{path / records.RECORD}: a field the table needs is missing or malformed ({exc!r})")
    for reason in skipped:
        warn(f"skipped {reason}")
    if not rows:
        if skipped:
            raise SuiteError(f"no usable run records under {root}: all {len(skipped)} found were skipped (named above)")
        also = f" besides the {excluded} under {exclude}, read only when named (--runs {exclude})" if excluded else ""
        raise SuiteError(f"no run records under {root}{also} (run `rnnsuite run ... --out {root}` first)")
    runs = _label_settings(pd.DataFrame(rows))
    runs.attrs["left_out"], runs.attrs["excluded"] = left_out, excluded
    return runs


def warn(message: str) -> None:
    print(f"rnnsuite: warning: {message}", file=sys.stderr)


def _row(path: Path, rec: dict) -> dict:
    info, metrics, grads, timing = rec["task_info"], rec["metrics"], rec["gradients"], rec["timing"]
    return {
        "task": rec["task"], "variant": info["variant"], "model": rec["model"], "seed": rec["seed"],
        "status": rec["status"], "metric": info["metric"], "higher_is_better": bool(info["higher_is_better"]),
        "test": _number(metrics["test"]), "val": _number(metrics["val_best"]),
        "ratio_init": _number(grads["ratio_init"]), "ratio_end": _number(grads["ratio_end"]),
        "median_step_s": _number(timing["median_step_seconds"]),
        "train_s": _number(timing["train_seconds"]),
        "params": int(rec["model_info"]["n_params"]),
        "baseline": _number((info.get("trivial_baseline") or {}).get("value")),
        "device": rec["config"]["device"], "config_hash": rec["config_hash"], "path": str(path),
        "setting": flatten({k: v for k, v in rec["config"].items() if k != "seed"}),
    }


def _number(value) -> float | None:
    """A metric as the record stores it (null for non-finite); anything else is malformed."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise TypeError(f"{value!r} is not a number")




def _label_settings(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs of one (task, variant, model) under different settings are different cells:
    their model label gets the keys that differ (``gru [lr=0.01]``), so no mean mixes them.
    The ``setting`` column (the flat configuration without the seed) is dropped."""
    def text(value) -> str:
        return json.dumps(value, sort_keys=True, default=str)

    labels = runs.model.copy()
    for index in runs.groupby(["task", "variant", "model"]).groups.values():
        settings = runs.setting[index]
        if settings.map(text).nunique() < 2:
            continue
        differ = sorted(k for k in set().union(*settings) if len({text(c.get(k)) for c in settings}) > 1)
        for i in index:
            labels[i] += " [" + ", ".join(f"{k}={settings[i].get(k)}" for k in differ) + "]"
    return runs.assign(model=labels).drop(columns="setting")


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, variant, model): the headline numbers, computed only here."""
    out = []
    for (task, variant, model), g in runs.groupby(["task", "variant", "model"], sort=True):
        ok = g[g.status == "ok"]
        mean, std = stats.mean_std(ok.test)
        arrow = "↑" if g.higher_is_better.iloc[0] else "↓"
        out.append({
            "task": task, "variant": variant, "model": model,
            "metric": f"{g.metric.iloc[0]} {arrow}",
            "test_mean": mean, "test_std": std, "seeds": len(ok), "diverged": int((g.status != "ok").sum()),
            "ratio_init": g.ratio_init.mean(), "ratio_end": ok.ratio_end.mean() if len(ok) else math.nan,
            "median_step_ms": 1000 * g.median_step_s.median(),
            "params": int(g.params.iloc[0]),
            "baseline": g.baseline.iloc[0],
        })
    out.sort(key=lambda r: (r["task"], _natural(r["variant"]), r["model"]))
    return pd.DataFrame(out)


def _natural(text: str) -> tuple:
    """Sort key that orders numbers by value, so T=50 comes before T=100."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def format_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Human-readable columns: mean ± std, rounded."""
    def pm(row):
        if math.isnan(row.test_mean):
            return "—"
        return stats.plus_minus(row.test_mean, row.test_std)

    def num(x, fmt):
        return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

    return pd.DataFrame({
        "task": summary.task, "variant": summary.variant, "model": summary.model,
        "metric": summary.metric,
        "test (mean ± std)": summary.apply(pm, axis=1),
        "seeds": summary.seeds, "diverged": summary.diverged,
        "trivial baseline": summary.baseline.map(lambda v: num(v, ".4g")),
        "grad ratio init": summary.ratio_init.map(lambda v: num(v, ".2f")),
        "grad ratio end": summary.ratio_end.map(lambda v: num(v, ".2f")),
        "step ms (median)": summary.median_step_ms.map(lambda v: num(v, ".2f")),
        "params": summary.params,
    })


def render(table: pd.DataFrame, fmt: str) -> str:
    if fmt == "md":
        return table.to_markdown(index=False)
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "latex":
        return table.to_latex(index=False, escape=True)
    raise SuiteError(f"unknown format {fmt!r} (valid: md, csv, latex)")


def figures(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per (task, variant): hidden-state gradient profiles and validation curves."""
    plt = plotting.pyplot()
    import seaborn as sns

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (task, variant), g in runs.groupby(["task", "variant"]):
        name = f"{task}_{variant}".replace(" ", "_").replace("=", "")
        profile_rows, curve_rows = [], []
        for _, row in g.iterrows():
            try:
                profiles, curves = _figure_rows(row)
            except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:  # ValueError: pandas' too
                warn(f"{row.path}: left out of the figures ({records.cause(exc)})")
                continue
            profile_rows += profiles
            curve_rows += curves
        if profile_rows:
            fig, ax = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
            df = pd.DataFrame(profile_rows)
            for axis, when in zip(ax, ("init", "end")):
                sub = df[df.when == when]
                if not sub.empty:
                    sns.lineplot(sub, x="t", y="log10 ‖∂L/∂h_t‖", hue="model", ax=axis, errorbar=None)
                axis.set_title(f"{task} {variant}: hidden-state gradient, {when}")
            fig.tight_layout()
            written.append(plotting.save(fig, out_dir / f"gradients_{name}.png"))
        if curve_rows:
            metric = g.metric.iloc[0]
            fig, axis = plt.subplots(figsize=(6, 4))
            sns.lineplot(pd.DataFrame(curve_rows), x="step", y=metric, hue="model", ax=axis)
            axis.set_title(f"{task} {variant}: validation {metric}")
            fig.tight_layout()
            written.append(plotting.save(fig, out_dir / f"curves_{name}.png"))
        plt.close("all")
    return written


def _figure_rows(row) -> tuple[list[dict], list[dict]]:
    """One run's gradient profiles (init and end) and validation curve, as figure rows."""
    grads = records.load_record(Path(row.path))["gradients"]
    profiles = []
    for when, step in (("init", "0"), ("end", str(grads["end_step"]))):
        for t, v in enumerate(grads["hidden_profile"][step], start=1):
            if v and v > 0:
                profiles.append({"model": row.model, "seed": row.seed, "t": t,
                                 "log10 ‖∂L/∂h_t‖": math.log10(v), "when": when})
    curves = pd.read_csv(Path(row.path) / records.CURVES)
    val = curves[curves.split == "val"]
    return profiles, [{"model": row.model, "seed": row.seed, "step": s, row.metric: m}
                      for s, m in zip(val.step, val.metric)]
