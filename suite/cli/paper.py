"""``rnnsuite paper``: run the cells of a paper table and write it (:mod:`suite.studies.paper`)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from suite.core import paths
from suite.core.registry import SuiteError

if TYPE_CHECKING:
    from suite.studies.paper import Table

# Tables produced by their own commands; `paper` runs them with the profile's settings.
# (command-line argv per profile, or "-m module" for a study's own main; "{out}" is
# results/tables/<table>-<profile>, where the table, its figures and its records/ go)
TUNED_MODELS = ("lstm", "gru", "antisymmetric", "hrnn")


DELEGATED: dict[str, dict] = {
    "gradients": {
        "title": "Gradient control: hidden-state gradient ratio against the step size (rnnsuite gradients)",
        "cost": "quick: 147 CPU-seconds (measured 2026-12-05); full: about 10 CPU-hours (estimated), mostly T = 10^4",
        "quick": [["gradients", "--profile", "quick", "--out", "{out}"]],
        "full": [["gradients", "--profile", "full", "--out", "{out}"]],
    },
    "tuning": {
        "title": "Heuristic against Optuna-tuned baselines, with tuning cost (rnnsuite tune, report --tuning)",
        "cost": "quick: 4 trials x 4 models on adding T = 20 (150 steps each), 28 CPU-seconds (measured 2026-12-05); "
                "medium (suite/studies/tuning_table.py): CPU-hours per cell, measured in its table's header; "
                "full: 50 trials per model at the smnist table's budget, days of GPU time",
        "quick": [["-m", "suite.studies.tuning_quick", "--out", "{out}"]],
        "full": [["tune", "--task", "psmnist", "--model", m, "--trials", "50", "--set", "epochs=10",
                  "--set", "hidden_size=128", "--out", "{out}/records", "-q"] for m in TUNED_MODELS]
                + [["report", "--tuning", "--runs", "{out}/records", "--out", "{out}"]],
    },
    "hdnn": {
        "title": "Paper (b): H-DNN 2D classification, 64 layers (python -m suite.studies.deep_hdnn)",
        "cost": "quick: 5 epochs, about 25 CPU-seconds; full: 50 epochs, 230 CPU-seconds (measured 2026-12-05)",
        "quick": [["-m", "suite.studies.deep_hdnn", "--out", "{out}", "--epochs", "5"]],
        "full": [["-m", "suite.studies.deep_hdnn", "--out", "{out}"]],
    },
}


def run_delegated(name: str, profile: str, out: Path, data_dir: str | None) -> None:
    from suite.cli.main import main as cli_main

    target = out / f"{name}-{profile}"
    for argv in DELEGATED[name][profile]:
        argv = [a.replace("{out}", str(target)) for a in argv]
        if argv[0] == "-m":  # a study module's own main(argv)
            code = importlib.import_module(argv[1]).main(argv[2:])
        else:
            if data_dir is not None and argv[0] in ("gradients", "tune"):
                argv += ["--data-dir", data_dir]
            code = cli_main(argv)
        if code != 0:
            raise SuiteError(f"paper {name}: `rnnsuite {' '.join(argv)}` failed with exit code {code}")
    print(f"table {name} ({profile}): {target}")


def cmd_paper(args) -> int:
    from suite.core.build import resolve
    from suite.core.cells import run_cells
    from suite.core.records import check_writable
    from suite.studies import paper
    from suite.studies.paper import TABLES, cell_configs, write_table

    if args.launcher and args.table not in TABLES:
        raise SuiteError(f"--launcher runs the cells of the tables {', '.join(TABLES)}; {args.table!r} runs its own "
                         f"command (run it on a node of its own)")
    if args.table == "sanity":
        from suite.studies import sanity

        if args.models or args.sets:
            raise SuiteError("table 'sanity' takes no --models or --set: each anchor runs its published recipe")
        return sanity.run_table(args.anchors, runs=Path(args.runs) if args.runs else sanity.RUNS, out=Path(args.out),
                                data_dir=args.data_dir, quiet=args.quiet)
    if args.profile == "medium":
        if args.table != "tuning":
            raise SuiteError(f"profile 'medium' exists for the table 'tuning' only "
                             f"(table {args.table!r}: quick or full)")
        if args.models or args.sets:
            raise SuiteError("table 'tuning' takes no --models or --set: its medium profile's cells are "
                             "suite.studies.tuning_table.CELLS")
        from suite.studies import tuning_verdict

        return tuning_verdict.run_table(args.cells, out=Path(args.out) / "tuning-medium", data_dir=args.data_dir,
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
    runs_root = Path(args.runs) if args.runs else paper.records_dir(Path(args.out), args.table, args.profile)
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
    """The cells as a job array (suite.cli.launch); the table is written once every cell is
    complete: after --wait, or when a rerun of the same command finds nothing to submit."""
    from suite.cli import launch
    from suite.core.records import check_writable
    from suite.studies.paper import cell_configs, write_table

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
    from suite.studies import paper  # the table names and the description: built only for `paper`
    from suite.studies.paper import TABLES

    p = sub.add_parser("paper", help="run the cells of a paper table and write it",
                       description=paper.__doc__.split("\n\n")[0])
    p.add_argument("table", help=f"one of: {', '.join([*TABLES, *DELEGATED, 'sanity'])}")
    p.add_argument("--anchors", help="sanity table only: comma-separated anchors (default: every anchor)")
    p.add_argument("--profile", choices=["quick", "medium", "full"], default="quick",
                   help="medium: the tuning table only (suite/studies/tuning_table.py)")
    p.add_argument("--cells", help="medium tuning table only: comma-separated cells (default: every cell)")
    p.add_argument("--models", help="comma-separated models (default: every registered model)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run key of every cell (as `run --set`)")
    p.add_argument("--runs", default=None, help="where the cells' records go (default: OUT/TABLE-PROFILE/records, "
                                             "beside the table; sanity: results/runs/sanity)")
    p.add_argument("--out", default=paths.TABLES_OUT, help="tables go to OUT/TABLE-PROFILE/ (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default 1, or $RNNSUITE_THREADS; see docs/usage.md, Threads)")
    from suite.cli.launch import add_arguments

    add_arguments(p)  # --launcher slurm|local and its options (smnist, adding, copy)
    p.set_defaults(func=cmd_paper)


def main(argv=None) -> int:  # for `python -m suite.studies.paper`
    parser = argparse.ArgumentParser(prog="rnnsuite")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["paper", *(argv or [])])
    return args.func(args)
