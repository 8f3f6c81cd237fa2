"""Paper tables: run every (task, model, seed) cell a table needs, then write the table.

    nox -s paper -- smnist --profile quick        (or: rnnsuite paper smnist --profile quick)
    nox -s paper -- adding --profile full --set device=cuda

Cells whose record (same configuration hash) already exists are skipped, and a killed
run resumes from its checkpoint, so rerunning a command completes its table. A table
and its evidence live together: ``results/tables/<table>-<profile>/`` holds ``table.md``,
``table.csv``, ``table.tex``, ``figures/`` and the records, ``records/<task>/<model>/s<seed>-<hash>/``.

Profiles:
- ``quick``: CPU, minutes; reduced sequence lengths, widths and budgets. Its tables are
  labelled NOT COMPARABLE with the papers: they show the pipeline and gross failures.
- ``full``: the papers' settings and budgets (sequence lengths, epochs); meant for a
  GPU (hours). Costs are listed in ``TABLES`` and in docs/tables.md.

Ours is the test metric as mean ± std over seeds, beside the published number of the
same width from the recipes (``results/reference/recipes``, :mod:`suite.core.recipes`) and
the difference; every row carries the task variant (sequence length, permutation hash)
so a reader sees what was compared. The full sMNIST and adding tables run one row per
published number with that number's own recipe (:mod:`suite.studies.paper_recipes`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd

from suite.analysis import evidence, report, stats
from suite.core import records
from suite.core.build import list_models, resolve
from suite.core.configure import make_config
from suite.core.records import write_text_atomic
from suite.studies.paper_recipes import RecipeProfile, recipe_cells, recipe_table, reference_for


@dataclasses.dataclass(frozen=True)
class Profile:
    """Every registered model runs every (task, params) cell with every seed."""

    cells: tuple[tuple[str, dict], ...]  # (task, task params) per column group
    sets: dict  # run keys for every cell
    seeds: tuple[int, ...] = (0, 1, 2)


@dataclasses.dataclass(frozen=True)
class Table:
    title: str
    quick: Profile
    full: Profile
    cost: str  # what a run of each profile costs, as measured or estimated
    compare_published: bool = True


TABLES: dict[str, Table] = {
    "smnist": Table(
        title="Sequential and permuted sequential MNIST: test accuracy",
        quick=Profile(
            cells=(("smnist", {"pixels_per_step": 16, "n_train": 10000}),
                   ("psmnist", {"pixels_per_step": 16, "n_train": 10000})),
            sets={"hidden_size": 64, "batch_size": 64, "steps": 300, "eval_every": 100, "lr": 0.005,
                  "probes": 1},
            seeds=(0, 1)),
        full=RecipeProfile(tasks=("smnist", "psmnist")),
        cost="quick: 4 CPU-minutes (measured 2026-12-05: 247 CPU-seconds, T = 49, 300 steps, 17 models). "
             "full: every sMNIST and psMNIST recipe (results/reference/recipes) at its published budget "
             "(70-2600 epochs) × 3 seeds; "
             "GPU-days in all; not feasible on CPU.",
    ),
    "adding": Table(
        title="Adding problem: validation MSE against training steps, test MSE at the end",
        quick=Profile(
            cells=tuple(("adding", {"T": T}) for T in (50, 100, 200)),
            sets={"hidden_size": 32, "batch_size": 50, "steps": 400, "eval_every": 100, "lr": 0.005,
                  "probes": 1},
            seeds=(0, 1)),
        full=RecipeProfile(tasks=("adding",)),
        cost="quick: 8 CPU-minutes (measured 2026-12-05: 485 CPU-seconds, 17 models). "
             "full: every adding recipe at its published budget (30k steps at T = 2000-10000 for LEM) × 3 seeds; "
             "hours per recipe on one GPU.",
    ),
    "copy": Table(
        title="Copy task: test cross-entropy against the memoryless baseline",
        quick=Profile(
            cells=tuple(("copy", {"T": T}) for T in (10, 20, 50)),
            sets={"hidden_size": 32, "batch_size": 50, "steps": 400, "eval_every": 100, "lr": 0.005,
                  "probes": 1},
            seeds=(0, 1)),
        full=Profile(
            cells=tuple(("copy", {"T": T}) for T in (100, 500, 1000)),
            sets={"hidden_size": 128, "batch_size": 128, "steps": 10000, "eval_every": 250, "probes": 3},
            seeds=(0, 1, 2)),
        cost="quick: 5 CPU-minutes (measured 2026-12-05: 282 CPU-seconds, 17 models). "
             "full: 10k steps at T up to 1000, 3 seeds; about an hour per model on one GPU.",
        compare_published=False,
    ),
}


def cell_configs(table: Table, profile: Profile | RecipeProfile, extra_sets: list[str], models: list[str] | None):
    if isinstance(profile, RecipeProfile):
        return recipe_cells(profile, extra_sets, models)
    names = models or list_models()
    configs = []
    for task, params in profile.cells:
        for model in names:
            for seed in profile.seeds:
                sets = [f"{k}={v}" for k, v in profile.sets.items()]
                sets += [f"task.{k}={v}" for k, v in params.items()]
                # the profile is a layer under --set, as a sweep file is
                configs.append(make_config(task, model, seed, list(extra_sets), None, sweep=("paper profile", sets)))
    return configs


def build_table(name: str, runs: pd.DataFrame, profile_name: str) -> pd.DataFrame:
    """Ours beside the published number at the same width; from records via report.summarize."""
    table = TABLES[name]
    if isinstance(getattr(table, profile_name), RecipeProfile):
        return recipe_table(runs)
    summary = report.summarize(runs)
    widths = {(r.task, r.model): records.load_record(Path(r.path))["config"]["hidden_size"] for r in runs.itertuples()}
    rows = []
    for _, row in summary.iterrows():
        scale = 100 if row.metric.startswith("accuracy") else 1
        ours, std = row.test_mean * scale, row.test_std * scale
        ref, published_widths = reference_for(row.task, row.model, widths.get((row.task, row.model))) \
            if table.compare_published else (None, [])
        pub = ref.published if ref is not None else math.nan
        notes = ["NOT COMPARABLE with the papers (quick profile)"] if profile_name == "quick" else []
        if ref is None and published_widths:
            notes.append(f"published at {', '.join(map(str, published_widths))} units, not at this width")
        rows.append({
            "task": row.task, "variant": row.variant, "model": row.model, "metric": row.metric,
            "ours": stats.plus_minus(ours, std),
            "seeds": row.seeds, "diverged": row.diverged,
            "published": "—" if math.isnan(pub) else f"{pub:g}",
            "difference": "—" if math.isnan(pub) or math.isnan(ours) else f"{ours - pub:+.2f}",
            "trivial baseline": "—" if row.baseline is None or math.isnan(row.baseline) else f"{row.baseline:.4g}",
            "source": ref.source if ref is not None else "",
            "notes": "; ".join(notes),
        })
    return pd.DataFrame(rows)


def table_dir(out: Path, name: str, profile_name: str) -> Path:
    """Where a table, its figures and its records live: ``<out>/<table>-<profile>/``."""
    return Path(out) / f"{name}-{profile_name}"


def records_dir(out: Path, name: str, profile_name: str) -> Path:
    """The table's records, beside it: ``<out>/<table>-<profile>/records/<task>/<model>/s<seed>-<hash>/``."""
    return table_dir(out, name, profile_name) / "records"


def write_table(name: str, profile_name: str, runs_root: Path, out: Path,
                hashes: set[str] | None = None, *, figures: bool = True) -> Path:
    """The table from the records under ``runs_root`` into ``<out>/<table>-<profile>/``
    (``table.md``, ``.csv``, ``.tex``, ``figures/``; adding: ``curves.csv``); with ``hashes``,
    only the records of those configurations, so a record left by an older setting or
    default never mixes into a cell's mean."""
    profile = getattr(TABLES[name], profile_name)
    cells = set(profile.tasks) if isinstance(profile, RecipeProfile) else {task for task, _ in profile.cells}
    runs = report.load_runs(runs_root, hashes, tasks=cells)
    if runs.attrs["left_out"]:
        print(f"{runs.attrs['left_out']} record(s) under {runs_root} from other configurations left out of the table")
    frame = build_table(name, runs, profile_name)
    where = table_dir(out, name, profile_name)
    header = f"# {TABLES[name].title} ({profile_name} profile)\n\n"
    header += evidence.header_line(records.load_record(Path(p)) for p in runs.path) + "\n\n"
    if profile_name == "quick":
        header += "Quick profile: reduced lengths and budgets, not comparable with published numbers.\n\n"
    write_text_atomic(where / "table.md", header + frame.to_markdown(index=False) + "\n")
    write_text_atomic(where / "table.csv", frame.to_csv(index=False))
    write_text_atomic(where / "table.tex", frame.to_latex(index=False, escape=True))
    if figures:
        report.figures(runs, where / "figures")
    if name == "adding":
        write_text_atomic(where / "curves.csv", _curves(runs).to_csv(index=False))
    print(header + frame.to_markdown(index=False))
    return where / "table.md"


def cell_name(task: str, params: dict, model: str, seed: int) -> str:
    """``adding T=50 gru seed 0``: how a stale cell is named."""
    return " ".join([task, *(f"{k}={v}" for k, v in sorted(params.items())), model, f"seed {seed}"])


def today_cells(name: str, profile_name: str, only: set[str] | None = None) -> dict[str, tuple[dict, str]]:
    """Every cell of the table for every registered model (or the cells named in ``only``),
    as today's code resolves it: cell name -> (configuration, hash)."""
    table = TABLES[name]
    out = {}
    for cfg in cell_configs(table, getattr(table, profile_name), [], None):
        cell = cell_name(cfg.task, cfg.task_params, cfg.model, cfg.seed)
        if only is None or cell in only:
            resolved = resolve(cfg)
            out[cell] = (resolved.config, resolved.hash)
    return out


def record_cell(name: str, profile_name: str, rec: dict) -> str:
    """The cell a record belongs to: its task, the profile's task parameters it matches, model, seed."""
    config = rec["config"]
    for task, params in getattr(TABLES[name], profile_name).cells:
        if task == config["task"] and all(config["task_params"].get(k) == v for k, v in params.items()):
            return cell_name(task, params, config["model"], config["seed"])
    return cell_name(config["task"], config["task_params"], config["model"], config["seed"])


def _curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation metric against training steps, mean over seeds, one column per step."""
    rows = []
    for _, row in runs.iterrows():
        curves = pd.read_csv(Path(row.path) / "curves.csv")
        for step, value in zip(curves[curves.split == "val"].step, curves[curves.split == "val"].metric):
            rows.append({"variant": row.variant, "model": row.model, "step": step, "value": value})
    frame = pd.DataFrame(rows)
    return frame.groupby(["variant", "model", "step"]).value.mean().unstack("step").reset_index()
