"""Paper tables: run every (task, model, seed) cell a table needs, then write the table.

    nox -s paper -- smnist --profile quick        (or: rnnsuite paper smnist --profile quick)
    nox -s paper -- adding --profile full --set device=cuda

Cells whose record (same configuration hash) already exists are skipped, and a killed
run resumes from its checkpoint, so rerunning a command completes its table. A table
and its evidence live together: ``results/tables/<table>-<profile>/`` holds ``table.md``,
``table.csv``, ``table.tex``, ``figures/`` and the records, ``records/<task>/<model>/s<seed>-<hash>/``.

Profiles (data: ``suite/experiments/<table>.toml``, read by :mod:`suite.studies.catalog`):
- ``quick``: CPU, minutes; reduced sequence lengths, widths and budgets. Its tables are
  labelled NOT COMPARABLE with the papers: they show the pipeline and gross failures.
- ``full``: the papers' settings and budgets (sequence lengths, epochs); meant for a
  GPU (hours). Each profile's ``cost`` says what it takes, as does docs/tables.md.

Ours is the test metric as mean ± std over seeds, beside the published number of the
same width from the recipes (``results/reference/recipes``, :mod:`suite.core.recipes`) and
the difference; every row carries the task variant (sequence length, permutation hash)
so a reader sees what was compared. The full sMNIST and adding tables run one row per
published number with that number's own recipe (:mod:`suite.studies.paper_recipes`).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from suite.analysis import evidence, report, stats
from suite.core import records
from suite.core.build import list_models, resolve
from suite.core.configure import make_config
from suite.core.records import write_text_atomic
from suite.studies import catalog
from suite.studies.catalog import Grid, Recipes, Table
from suite.studies.paper_recipes import recipe_cells, recipe_table, reference_for

# the tables whose cells are harness runs of every model (grid) or of published recipes
TABLES: dict[str, Table] = {name: table for name, table in catalog.tables().items()
                            if all(isinstance(p, (Grid, Recipes)) for p in table.profiles.values())}


def cell_configs(profile: Grid | Recipes, extra_sets: list[str], models: list[str] | None):
    """The profile's cells as configurations, ``extra_sets`` (``--set``) over them."""
    if isinstance(profile, Recipes):
        return recipe_cells(profile, extra_sets, models)
    names = models or list_models()
    configs = []
    for cell in profile.cells:
        for model in names:
            for seed in profile.seeds:
                sets = [f"{k}={v}" for k, v in profile.sets.items()]
                sets += [f"task.{k}={v}" for k, v in cell.params.items()]
                # the profile is a layer under --set, as a sweep file is
                configs.append(make_config(cell.task, model, seed, list(extra_sets), None,
                                           sweep=("paper profile", sets)))
    return configs


def build_table(name: str, runs: pd.DataFrame, profile_name: str) -> pd.DataFrame:
    """Ours beside the published number at the same width; from records via report.summarize."""
    table = TABLES[name]
    if isinstance(table.profiles[profile_name], Recipes):
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
    profile = TABLES[name].profiles[profile_name]
    cells = set(profile.tasks) if isinstance(profile, Recipes) else {cell.task for cell in profile.cells}
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
    out = {}
    for cfg in cell_configs(TABLES[name].profiles[profile_name], [], None):
        cell = cell_name(cfg.task, cfg.task_params, cfg.model, cfg.seed)
        if only is None or cell in only:
            resolved = resolve(cfg)
            out[cell] = (resolved.config, resolved.hash)
    return out


def record_cell(name: str, profile_name: str, rec: dict) -> str:
    """The cell a record belongs to: its task, the profile's task parameters it matches, model, seed."""
    config = rec["config"]
    for cell in TABLES[name].profiles[profile_name].cells:
        if cell.task == config["task"] and all(config["task_params"].get(k) == v for k, v in cell.params.items()):
            return cell_name(cell.task, cell.params, config["model"], config["seed"])
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
