"""``rnnsuite site``: the results as a static website (:mod:`suite.analysis.site`)."""

from __future__ import annotations

from suite.core import paths

# the committed tables, each with its records beside it (results/tables/<table>-<profile>/records),
# and the gradient study's and paper (b)'s own output folders where a user's commands wrote them
TABLE_ROOTS = [paths.TABLES, paths.CHECKOUT / "results" / "gradients", paths.CHECKOUT / "results" / "hdnn"]


def cmd_site(args) -> int:
    from pathlib import Path

    from suite.analysis.site import build_site

    tables = [Path(t) for t in (args.tables or TABLE_ROOTS)]
    runs = [Path(r) for r in (args.runs or [])]
    index = build_site(Path(args.out), tables=tables, runs=runs)
    print(f"site: {index} (open it in a browser; no server needed)")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("site", help="a static website of the results: sortable tables, figures and a page per run",
                       description="A static folder of HTML pages built from the records: a sortable page per "
                                   "table with its figures, and a page per run. Works offline, on any static host.")
    p.add_argument("--tables", action="append", default=None, metavar="DIR",
                   help="a folder of tables (CSV, each beside its figures and records); repeatable "
                        "(default: the checkout's results/tables, results/gradients and results/hdnn)")
    p.add_argument("--runs", action="append", default=None, metavar="DIR",
                   help="a results root whose runs are shown, beside the table of the same name or as a table "
                        "of their own; repeatable (default: none beyond each table's records/)")
    p.add_argument("--out", default=paths.SITE, help=f"where the site goes (default {paths.SITE})")
    p.set_defaults(func=cmd_site)
