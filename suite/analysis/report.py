"""Reports built offline from run records: tables (pandas) and figures (:mod:`suite.analysis.figures`).

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

from suite.analysis import stats
from suite.core import records
from suite.core.config import flatten
from suite.core.registry import SuiteError


def load_runs(root: str | Path, hashes: set[str] | None = None, tasks: set[str] | None = None) -> pd.DataFrame:
    """One row per finished run; with ``tasks``, of those tasks only; with ``hashes``, only
    the runs of those configurations (how many of the tasks' runs were left out is in
    ``.attrs["left_out"]``). A record that cannot be read, of a schema version this suite
    does not know, or without a field the table needs is skipped with a warning naming it;
    none left is an error."""
    rows, left_out, skipped = [], 0, []
    for path, rec in records.iter_records(root, skipped):
        if tasks is not None and rec["task"] not in tasks:
            continue
        if hashes is not None and rec["config_hash"] not in hashes:
            left_out += 1
            continue
        state = records.outcome(rec["status"], rec["metrics"])  # the one rule, applied again on read
        if state != rec["status"]:
            warn(f"{path / records.RECORD}: recorded as {rec['status']!r}, but its final validation or test "
                 f"metric is not finite: counted as {state}")
        try:
            rows.append({**_row(path, rec), "status": state})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            skipped.append(f"{path / records.RECORD}: a field the table needs is missing or malformed ({exc!r})")
    for reason in skipped:
        warn(f"skipped {reason}")
    if not rows:
        if skipped:
            raise SuiteError(f"no usable run records under {root}: all {len(skipped)} found were skipped (named above)")
        raise SuiteError(f"no run records under {root} (run `rnnsuite run ... --out {root}` first)")
    runs = _one_record_per_seed(_label_settings(pd.DataFrame(rows)))
    runs.attrs["left_out"] = left_out
    return runs


def _one_record_per_seed(runs: pd.DataFrame) -> pd.DataFrame:
    """A seed counts once per cell: a second record of the same (task, variant, model and
    setting, seed), a copy say, is left out with a warning naming both."""
    keys = ["task", "variant", "model", "seed"]
    twice = runs.duplicated(keys, keep="first")
    for _, row in runs[twice].iterrows():
        first = runs[(runs[keys] == row[keys]).all(axis=1)].path.iloc[0]
        warn(f"{row.path}: seed {row.seed} of {row.task}/{row.model} again (first in {first}): left out, "
             f"a seed counts once")
    return runs[~twice].reset_index(drop=True)


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
    """Per (task, variant): hidden-state gradient profiles and validation curves
    (:mod:`suite.analysis.figures`)."""
    from suite.analysis import figures as run_figures

    return run_figures.figures(runs, out_dir)
