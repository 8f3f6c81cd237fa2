"""Paper tables: run every (task, model, seed) cell a table needs, then write the table.

    nox -s paper -- smnist --profile quick        (or: rnnsuite paper smnist --profile quick)
    nox -s paper -- adding --profile full --set device=cuda

Cells whose record (same configuration hash) already exists are skipped, and a killed
run resumes from its checkpoint, so rerunning a command completes its table. Tables go
to ``results/tables/<table>-<profile>.{md,csv,tex}`` with figures under
``results/tables/figures/<table>-<profile>/``; runs under ``results/runs/paper/<profile>``.

Profiles:
- ``quick``: CPU, minutes; reduced sequence lengths, widths and budgets. Its tables are
  labelled NOT COMPARABLE with the papers: they show the pipeline and gross failures.
- ``full``: the papers' settings and budgets (sequence lengths, epochs); meant for a
  GPU (hours). Costs are listed in ``TABLES`` and in the README.

Ours is the test metric as mean ± std over seeds, beside the published number of the
same width from the recipes (``results/reference/recipes``, :mod:`suite.recipes`) and
the difference; every row carries the task variant (sequence length, permutation hash)
so a reader sees what was compared. The full sMNIST and adding tables run one row per
published number with that number's own recipe (:mod:`suite.paper_recipes`).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

import pandas as pd

from suite import records, report
from suite.paper_recipes import RecipeProfile, recipe_cells, recipe_table, reference_for
from suite.records import write_text_atomic
from suite.registry import SuiteError

ROOT = Path(__file__).resolve().parent.parent


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
        cost="quick: about 6 min on 2 CPU cores (T = 49, 300 steps, 17 models). full: every sMNIST and "
             "psMNIST recipe (results/reference/recipes) at its published budget (70-2600 epochs) × 3 seeds; "
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
        cost="quick: about 10 min on 2 CPU cores (17 models). full: every adding recipe at its published "
             "budget (30k steps at T = 2000-10000 for LEM) × 3 seeds; hours per recipe on one GPU.",
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
        cost="quick: about 5 min on 2 CPU cores (17 models). full: 10k steps at T up to 1000, 3 seeds; "
             "about an hour per model on one GPU.",
        compare_published=False,
    ),
}


def cell_configs(table: Table, profile: Profile | RecipeProfile, extra_sets: list[str], models: list[str] | None):
    from suite.build import list_models
    from suite.cli import make_config

    if isinstance(profile, RecipeProfile):
        return recipe_cells(profile, extra_sets, models)
    names = models or list_models()
    configs = []
    for task, params in profile.cells:
        for model in names:
            for seed in profile.seeds:
                sets = [f"{k}={v}" for k, v in profile.sets.items()]
                sets += [f"task.{k}={v}" for k, v in params.items()] + extra_sets
                configs.append(make_config(task, model, seed, sets, None))
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
            "ours": "—" if math.isnan(ours) else f"{ours:.4g} ± {std:.2g}",
            "seeds": row.seeds, "diverged": row.diverged,
            "published": "—" if math.isnan(pub) else f"{pub:g}",
            "difference": "—" if math.isnan(pub) or math.isnan(ours) else f"{ours - pub:+.2f}",
            "trivial baseline": "—" if row.baseline is None or math.isnan(row.baseline) else f"{row.baseline:.4g}",
            "source": ref.source if ref is not None else "",
            "notes": "; ".join(notes),
        })
    return pd.DataFrame(rows)


def write_table(name: str, profile_name: str, runs_root: Path, out: Path,
                hashes: set[str] | None = None) -> Path:
    """The table from the records under ``runs_root``; with ``hashes``, only the records of
    those configurations, so a record left by an older setting or default never mixes
    into a cell's mean."""
    profile = getattr(TABLES[name], profile_name)
    cells = set(profile.tasks) if isinstance(profile, RecipeProfile) else {task for task, _ in profile.cells}
    runs = report.load_runs(runs_root, hashes, tasks=cells)
    if runs.attrs["left_out"]:
        print(f"{runs.attrs['left_out']} record(s) under {runs_root} from other configurations left out of the table")
    frame = build_table(name, runs, profile_name)
    stem = out / f"{name}-{profile_name}"
    header = f"# {TABLES[name].title} ({profile_name} profile)\n\n"
    if profile_name == "quick":
        header += "Quick profile: reduced lengths and budgets, not comparable with published numbers.\n\n"
    write_text_atomic(stem.with_suffix(".md"), header + frame.to_markdown(index=False) + "\n")
    write_text_atomic(stem.with_suffix(".csv"), frame.to_csv(index=False))
    write_text_atomic(stem.with_suffix(".tex"), frame.to_latex(index=False, escape=True))
    report.figures(runs, out / "figures" / f"{name}-{profile_name}")
    if name == "adding":
        write_text_atomic(out / f"{name}-{profile_name}-curves.csv", _curves(runs).to_csv(index=False))
    print(header + frame.to_markdown(index=False))
    return stem.with_suffix(".md")


def _curves(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation metric against training steps, mean over seeds, one column per step."""
    rows = []
    for _, row in runs.iterrows():
        curves = pd.read_csv(Path(row.path) / "curves.csv")
        for step, value in zip(curves[curves.split == "val"].step, curves[curves.split == "val"].metric):
            rows.append({"variant": row.variant, "model": row.model, "step": step, "value": value})
    frame = pd.DataFrame(rows)
    return frame.groupby(["variant", "model", "step"]).value.mean().unstack("step").reset_index()


# Tables produced by their own commands; `paper` runs them with the profile's settings.
# (command-line argv per profile; "{out}" is results/tables/<table>-<profile>)
TUNED_MODELS = ("lstm", "gru", "antisymmetric", "hrnn")
DELEGATED: dict[str, dict] = {
    "gradients": {
        "title": "Gradient control: hidden-state gradient ratio against the step size (rnnsuite gradients)",
        "cost": "quick: about 5 min on 2 CPU cores; full: about 10 CPU-hours (estimated), mostly T = 10^4",
        "quick": [["gradients", "--profile", "quick", "--out", "{out}"]],
        "full": [["gradients", "--profile", "full", "--out", "{out}"]],
    },
    "tuning": {
        "title": "Heuristic against Optuna-tuned baselines, with tuning cost (rnnsuite tune, report --tuning)",
        "cost": "quick: 4 trials x 4 models on adding T = 20 (150 steps each), about 30 s on 2 CPU cores; "
                "medium (suite/tuning_table.py): CPU-hours per cell, measured in its table's header; "
                "full: 50 trials per model at the smnist table's budget, days of GPU time",
        "quick": [["tune", "--task", "adding", "--model", m, "--trials", "4", "--budget", "150",
                   "--set", "task.T=20", "--set", "hidden_size=32", "--set", "eval_every=50",
                   "--set", "task.n_val=200", "--set", "task.n_test=500",
                   "--out", "{out}", "--no-publish", "-q"] for m in TUNED_MODELS]
                 + [["report", "--tuning", "--runs", "{out}"]],
        "full": [["tune", "--task", "psmnist", "--model", m, "--trials", "50", "--set", "epochs=10",
                  "--set", "hidden_size=128", "--out", "{out}", "-q"] for m in TUNED_MODELS]
                + [["report", "--tuning", "--runs", "{out}"]],
    },
    "hdnn": {
        "title": "Paper (b): H-DNN 2D classification, 64 layers (python -m suite.hamiltonian.deep)",
        "cost": "quick: 5 epochs, about 40 s on 2 CPU cores; full: 50 epochs, about 6 min on 2 CPU cores",
        "quick": [["-m", "suite.hamiltonian.deep", "--out", "{out}", "--epochs", "5"]],
        "full": [["-m", "suite.hamiltonian.deep", "--out", "{out}"]],
    },
}


def run_delegated(name: str, profile: str, out: Path, data_dir: str | None) -> None:
    from suite.cli import main as cli_main

    target = out / f"{name}-{profile}"
    for argv in DELEGATED[name][profile]:
        argv = [a.replace("{out}", str(target)) for a in argv]
        if argv[0] == "-m":
            from suite.hamiltonian.deep import main as deep_main

            code = deep_main(argv[2:])
        else:
            if data_dir is not None and argv[0] in ("gradients", "tune"):
                argv += ["--data-dir", data_dir]
            code = cli_main(argv)
        if code != 0:
            raise SuiteError(f"paper {name}: `rnnsuite {' '.join(argv)}` failed with exit code {code}")
    print(f"table {name} ({profile}): {target}")


def cmd_paper(args) -> int:
    from suite.build import resolve
    from suite.cli import run_cells
    from suite.records import check_writable

    if args.launcher and args.table not in TABLES:
        raise SuiteError(f"--launcher runs the cells of the tables {', '.join(TABLES)}; {args.table!r} runs its own "
                         f"command (run it on a node of its own)")
    if args.table == "sanity":
        from suite import sanity

        if args.models or args.sets:
            raise SuiteError("table 'sanity' takes no --models or --set: each anchor runs its published recipe")
        return sanity.run_table(args.anchors, runs=Path(args.runs).parent / "sanity", out=Path(args.out),
                                data_dir=args.data_dir, quiet=args.quiet)
    if args.profile == "medium":
        if args.table != "tuning":
            raise SuiteError(f"profile 'medium' exists for the table 'tuning' only "
                             f"(table {args.table!r}: quick or full)")
        if args.models or args.sets:
            raise SuiteError("table 'tuning' takes no --models or --set: its medium profile's cells are "
                             "suite.tuning_table.CELLS")
        from suite import tuning_table

        return tuning_table.run_table(args.cells, out=Path(args.out) / "tuning-medium", data_dir=args.data_dir,
                                      quiet=args.quiet)
    if args.cells:
        raise SuiteError("--cells names cells of the medium tuning table (rnnsuite paper tuning --profile medium)")
    if args.table in DELEGATED:
        if args.models or args.sets:
            raise SuiteError(f"table {args.table!r} takes no --models or --set: it runs its own command")
        run_delegated(args.table, args.profile, Path(args.out), args.data_dir)
        return 0
    if args.table not in TABLES:
        raise SuiteError(f"unknown table {args.table!r} (valid: {', '.join([*TABLES, *DELEGATED, 'sanity'])})")
    table = TABLES[args.table]
    profile = getattr(table, args.profile)
    models = args.models.split(",") if args.models else None
    configs = cell_configs(table, profile, list(args.sets), models)
    runs_root = Path(args.runs) / args.profile
    if args.launcher:
        return _launch(args, configs, runs_root, table, profile)
    for cfg in configs:
        resolve(cfg)  # every cell checked before the first runs
    check_writable(runs_root)  # a disk fault found before the first cell, not after the last
    check_writable(args.out)
    counts = run_cells(configs, runs_root, label=f"paper {args.table}", quiet=args.quiet, data_dir=args.data_dir)
    if counts["left to other workers"]:
        print(f"{counts['left to other workers']} cell(s) still running elsewhere are not in this table yet: "
              f"rerun the command once they finish")
    # the table shows every model whose record for this profile exists, not only those run now
    shown = cell_configs(table, profile, list(args.sets), None)
    write_table(args.table, args.profile, runs_root, Path(args.out), hashes={resolve(c).hash for c in shown})
    return 1 if counts["failed"] else 0


def _launch(args, configs, runs_root: Path, table: Table, profile) -> int:
    """The cells as a job array (suite.launch); the table is written once every cell is
    complete: after --wait, or when a rerun of the same command finds nothing to submit."""
    from suite import launch
    from suite.records import check_writable

    check_writable(args.out)
    counts = launch.launch_cells(configs, runs_root, args, label=f"paper {args.table}",
                                 run_kwargs={"data_dir": args.data_dir})
    if counts["done here"] + counts["skipped as complete"] < len(configs):
        if not counts["failed"]:
            print("the table is written when every cell is complete: rerun this command then")
        return 1 if counts["failed"] else 0
    # the hashes of the jobs' device, which this machine may not have
    shown = launch.pinned(cell_configs(table, profile, list(args.sets), None), launch.options(args))
    write_table(args.table, args.profile, runs_root, Path(args.out), hashes={h for _, h in shown})
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("paper", help="run the cells of a paper table and write it",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("table", help=f"one of: {', '.join([*TABLES, *DELEGATED, 'sanity'])}")
    p.add_argument("--anchors", help="sanity table only: comma-separated anchors (default: every anchor)")
    p.add_argument("--profile", choices=["quick", "medium", "full"], default="quick",
                   help="medium: the tuning table only (suite/tuning_table.py)")
    p.add_argument("--cells", help="medium tuning table only: comma-separated cells (default: every cell)")
    p.add_argument("--models", help="comma-separated models (default: every registered model)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--runs", default="results/runs/paper")
    p.add_argument("--out", default="results/tables")
    p.add_argument("--data-dir", default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    from suite.launch import add_arguments

    add_arguments(p)  # --launcher slurm|local and its options (smnist, adding, copy)
    p.set_defaults(func=cmd_paper)


def main(argv=None) -> int:  # for `python -m suite.paper`
    parser = argparse.ArgumentParser(prog="rnnsuite")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["paper", *(argv or [])])
    return args.func(args)
