"""Heuristic against tuned: ``rnnsuite report --tuning``, built offline from what ``tune`` wrote.

    rnnsuite report --tuning --runs results/tuning --format md

One row per (task, variant, model, how its hyperparameters were chosen): "heuristic"
(the model picked them from the task before training, e.g. hrnn's Δt from T),
"defaults" (published defaults, nothing picked), or "Optuna, N trials"; the chosen
values of the searched keys; the tuning compute (seconds of trial compute, 0 for the
untuned rows) and its device; the test metric's mean ± std over the eval seeds (never
the tuning seed); the parameter count, equal between the rows of one model because
hidden size is never searched. The untuned row of a model shows what tuning buys; for
``hrnn`` the Optuna row shows what its heuristic leaves on the table.

The figure ``figures/tuning_<task>_<variant>.png`` plots the test metric against the
tuning compute, one line per model from its untuned to its tuned point.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from suite.analysis import plotting, report, stats
from suite.analysis.report import warn
from suite.core import records
from suite.core.config import config_hash
from suite.core.registry import SuiteError
from suite.tuning.study import arm_dirs


def record_value(rec: dict, key: str):
    if key.startswith("model."):
        return rec["model_info"]["resolved_params"].get(key[6:])
    return rec["config"].get(key)


def fmt_value(v) -> str:
    if v is None:
        return "none"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def load_rows(root: str | Path) -> pd.DataFrame:
    """One row per finished evaluation run, with the study that it belongs to; a study
    file or record that cannot be used is skipped with a warning naming it."""
    rows, skipped = [], []
    for study_file in sorted(Path(root).glob("*/study.json")):
        try:
            study = json.loads(study_file.read_text())
            arms = tuple(arm_dirs(study_file.parent, study["best"]["trial"]).items())
            s, space = study["summary"], study["search_space"]
            name, finished, compute, device = study["study"], s["finished"], s["trial_compute_seconds"], s["device"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warn(f"skipped {study_file}: not a usable study summary ({records.cause(exc)})")
            continue
        for arm, folder in arms:
            if not folder.is_dir():
                continue
            for path, rec in records.iter_records(folder, skipped):
                try:
                    rows.append(_row(path, rec, arm, name, space, finished, compute, device))
                except (KeyError, TypeError, AttributeError) as exc:
                    skipped.append(f"{path / records.RECORD}: a field the table needs is missing ({exc!r})")
    for reason in skipped:
        warn(f"skipped {reason}")
    if not rows:
        raise SuiteError(f"no tuning results under {root} (run `rnnsuite tune ... --out {root}` first)")
    # an untuned configuration shared by two studies is one experiment: count its runs once
    return pd.DataFrame(rows).drop_duplicates(subset=["arm", "config_hash"])


def _row(path: Path, rec: dict, arm: str, study: str, space: dict, finished: int, compute: float,
         device: list) -> dict:
    if arm == "optuna":
        chosen = f"Optuna, {finished} trials"
    else:
        built, declared = rec["model_info"]["resolved_params"], rec["config"]["model_params"]
        chosen, compute = ("heuristic" if built != declared else "defaults"), 0.0
    cell = {k: v for k, v in rec["config"].items() if k != "seed"}
    return {
        "study": study, "arm": arm, "chosen": chosen,
        "task": rec["task"], "variant": rec["task_info"]["variant"], "model": rec["model"],
        "seed": rec["seed"], "status": records.outcome(rec["status"], rec["metrics"]), "test": rec["metrics"]["test"],
        "metric": rec["task_info"]["metric"], "higher_is_better": rec["task_info"]["higher_is_better"],
        "hyper": ", ".join(f"{k}={fmt_value(record_value(rec, k))}" for k in space),
        "budget": f"{rec['config']['steps']} steps" if rec["config"]["epochs"] is None
        else f"{rec['config']['epochs']} epochs",
        "compute_s": compute, "device": ", ".join(device) if arm == "optuna" else "—",
        "params": rec["model_info"]["n_params"], "hidden": rec["config"]["hidden_size"],
        "config_hash": rec["config_hash"], "cell": config_hash(cell), "path": str(path),
    }


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, variant, model, choice): test mean ± std over seeds, computed only here."""
    rows = rows.assign(group=[r.study if r.arm == "optuna" else r.cell for r in rows.itertuples()])
    out = []
    for (task, variant, model, arm, _), g in rows.groupby(["task", "variant", "model", "arm", "group"], sort=True):
        ok = g[g.status == "ok"].test.dropna()
        first = g.iloc[0]
        out.append({
            "task": task, "variant": variant, "model": model, "arm": arm, "chosen": first.chosen,
            "hyper": first.hyper, "compute_s": first.compute_s, "device": first.device, "budget": first.budget,
            "metric": f"{first.metric} {'↑' if first.higher_is_better else '↓'}",
            **dict(zip(("test_mean", "test_std"), stats.mean_std(ok))),
            "seeds": len(ok), "diverged": int((g.status != "ok").sum()), "params": int(first.params),
        })
    table = pd.DataFrame(out)
    order = {"heuristic": 0, "optuna": 1}
    return table.sort_values(["task", "variant", "model", "arm"], key=lambda c: c.map(order) if c.name == "arm"
                             else c).reset_index(drop=True)


def format_table(summary: pd.DataFrame) -> pd.DataFrame:
    def pm(row):
        if math.isnan(row.test_mean):
            return "—"
        few = " (<3 seeds)" if row.seeds < 3 else ""
        return stats.plus_minus(row.test_mean, row.test_std) + few

    return pd.DataFrame({
        "task": summary.task, "variant": summary.variant, "model": summary.model,
        "hyperparameters by": summary.chosen, "values": summary.hyper,
        "tuning compute (s)": summary.compute_s.map(lambda v: f"{v:.0f}" if v >= 10 else f"{v:.1f}"),
        "device": summary.device, "budget per run": summary.budget, "metric": summary.metric,
        "test (mean ± std)": summary.apply(pm, axis=1), "seeds": summary.seeds,
        "diverged": summary.diverged, "params": summary.params,
    })


def figures(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Per (task, variant): test metric against tuning compute, a line per model."""
    plt = plotting.pyplot()

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (task, variant), g in summary.groupby(["task", "variant"]):
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for i, (model, m) in enumerate(g.groupby("model")):
            color = f"C{i}"
            m = m.sort_values("compute_s")
            ax.plot(m.compute_s, m.test_mean, color=color, alpha=0.5)
            for row in m.itertuples():
                ax.errorbar(row.compute_s, row.test_mean, yerr=row.test_std, color=color, capsize=3,
                            marker="*" if row.arm == "optuna" else "o", markersize=11 if row.arm == "optuna" else 7,
                            label=f"{model}: {row.chosen}")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("tuning compute (s of trial compute; 0 = untuned)")
        ax.set_ylabel(f"test {g.metric.iloc[0]} (mean ± std over seeds)")
        ax.set_title(f"{task} {variant}: heuristic against tuned")
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"tuning_{task}_{variant}".replace(" ", "_").replace("=", "")
        path = out_dir / f"{name}.png"
        tmp = path.with_name(f".{name}.tmp.png")
        fig.savefig(tmp, dpi=110)
        tmp.replace(path)
        written.append(path)
        plt.close(fig)
    return written


def write_report(runs: str | Path, fmt: str, out: str | Path | None) -> int:
    """``rnnsuite report --tuning``: print the table, write it and the figure under ``out``
    (default: the tuning root itself)."""
    out = Path(out or runs)
    records.check_writable(out, create=False)  # before the table is printed: one line, not a half-done report
    summary = summarize(load_rows(runs))
    text = report.render(format_table(summary), fmt)
    print(text)
    ext = {"md": "md", "csv": "csv", "latex": "tex"}[fmt]
    records.write_text_atomic(out / f"tuning_report.{ext}", text + "\n")
    for path in figures(summary, out / "figures"):
        print(f"figure: {path}")
    print(f"table: {out / f'tuning_report.{ext}'}")
    return 0
