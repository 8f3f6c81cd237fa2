"""``rnnsuite export``: records into TensorBoard, MLflow or Weights & Biases (:mod:`suite.analysis.export`)."""

from __future__ import annotations


def cmd_export(args) -> int:
    from suite.analysis import export as exporter

    counts = exporter.export(args.runs, args.to, args.out, project=args.project, tracking_uri=args.tracking_uri,
                    online=args.online, quiet=args.quiet)
    return 1 if counts["failed"] else 0


def add_command(sub) -> None:
    from suite.analysis import export as exporter  # its trackers and description: built only for `export`
    from suite.analysis.export import DEFAULT_OUT, WRITERS

    p = sub.add_parser("export", help="run records into TensorBoard, MLflow or Weights & Biases",
                       description=exporter.__doc__.split("\n\n")[0])
    p.add_argument("runs", help="results root whose records to export (e.g. results/runs)")
    p.add_argument("--to", required=True, choices=list(WRITERS), help="the tracker to write")
    p.add_argument("--out", default=None, help=f"where the tracker's files go (default {DEFAULT_OUT}/<tracker>)")
    p.add_argument("--project", default="rnnsuite", help="W&B project and MLflow experiment (default rnnsuite)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: a SQLite store under --out)")
    p.add_argument("--online", action="store_true", help="W&B: log to the server now instead of offline files")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)
