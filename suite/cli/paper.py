"""``rnnsuite paper``: build any table (:mod:`suite.studies.runner`; the tables are data,
``suite/experiments/<table>.toml``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from suite.core import paths
from suite.core.registry import SuiteError


def cmd_paper(args) -> int:
    from suite.core.cells import run_cells
    from suite.studies import runner

    if args.anchors and args.cells:
        raise SuiteError("--anchors is another name for --cells: give one of them")
    request = runner.Request(
        table=args.table, profile=args.profile, out=Path(args.out), runs=Path(args.runs) if args.runs else None,
        data_dir=args.data_dir, quiet=args.quiet, models=args.models.split(",") if args.models else None,
        sets=list(args.sets), cells=args.cells or args.anchors, launcher=bool(args.launcher))
    plan = runner.plan(request)
    if plan.kind not in runner.CELL_KINDS:
        return runner.run_study(plan)
    configs = runner.cells(plan)
    if args.launcher:
        return _launch(args, plan, configs)
    runner.check(plan, configs)
    label = f"paper {plan.table.name}"
    counts = run_cells(configs, plan.runs_root, label=label, quiet=args.quiet, data_dir=args.data_dir)
    if counts["left to other workers"]:
        print(f"{counts['left to other workers']} cell(s) still running elsewhere are not in this table yet: "
              f"rerun the command once they finish")
    # the table shows every model whose record for this profile exists, not only those run now
    runner.write(plan, runner.shown_hashes(plan))
    return 1 if counts["failed"] else 0


def _launch(args, plan, configs) -> int:
    """The cells as a job array (suite.cli.launch); the table is written once every cell is
    complete: after --wait, or when a rerun of the same command finds nothing to submit."""
    from suite.cli import launch
    from suite.core.records import check_writable
    from suite.studies import runner

    check_writable(plan.where)
    counts = launch.launch_cells(configs, plan.runs_root, args, label=f"paper {plan.table.name}",
                                 run_kwargs={"data_dir": args.data_dir})
    if counts["done here"] + counts["skipped as complete"] < len(configs):
        if not counts["failed"]:
            print("the table is written when every cell is complete: rerun this command then")
        return 1 if counts["failed"] else 0
    # the hashes of the jobs' device, which this machine may not have
    shown = launch.pinned(runner.cells(plan, every_model=True), launch.options(args))
    runner.write(plan, {h for _, h in shown})
    return 0


def add_command(sub) -> None:
    from suite.studies import catalog, paper  # the table names and the description: built only for `paper`

    names = ", ".join(catalog.tables())
    p = sub.add_parser("paper", help="build a table: run its cells (finished ones skipped), then write it",
                       description=paper.__doc__.split("\n\n")[0])
    p.add_argument("table", help=f"one of: {names} (suite/experiments/<table>.toml)")
    p.add_argument("--profile", default=None,
                   help="quick, medium or full, as the table has them (default: quick, or the table's only one)")
    p.add_argument("--cells", help="sanity and the medium tuning table: comma-separated anchors or cells "
                                   "(default: every one)")
    p.add_argument("--anchors", help="the sanity table's --cells, by its older name")
    p.add_argument("--models", help="comma-separated models (default: every registered model)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run key of every cell (as `run --set`)")
    p.add_argument("--runs", default=None, help="where the cells' records go (default: OUT/TABLE-PROFILE/records, "
                                             "beside the table)")
    p.add_argument("--out", default=paths.TABLES_OUT, help="tables go to OUT/TABLE-PROFILE/ (default %(default)s)")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default 1, or $RNNSUITE_THREADS; see docs/usage.md, Threads)")
    from suite.cli.launch import add_arguments

    add_arguments(p)  # --launcher slurm|local and its options (the tables of cells)
    p.set_defaults(func=cmd_paper)


def main(argv=None) -> int:  # for `python -m suite.studies.paper`
    parser = argparse.ArgumentParser(prog="rnnsuite")
    add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["paper", *(argv or [])])
    return args.func(args)
