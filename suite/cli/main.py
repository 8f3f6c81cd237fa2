"""The ``rnnsuite`` command line: a thin layer over the Python API.

    rnnsuite list
    rnnsuite run --task adding --model gru --set steps=500 --set task.T=200 --seed 1
    rnnsuite sweep --config demo --out results/demo          (a preset name or a TOML file)
    rnnsuite report --runs results/demo --format md --out results/demo

Start-up imports no torch: each command imports what it needs when it runs, and the
parser of a subcommand is built only when that subcommand is named (``rnnsuite --help``
builds none). Bad input (an unknown name or key, an ill-typed or impossible value, a missing data
file) prints one line ``rnnsuite: error: ...`` and exits with code 2 before anything
is written.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import sys
import tomllib
from pathlib import Path

from suite.core import paths
from suite.core.config import RunConfig, shown
from suite.core.registry import SuiteError

PRESETS = paths.PRESETS
DEFAULT_OUT = paths.RUNS
TUNING_OUT = paths.TUNING


def _common_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run key (lr=0.01), task parameter (task.T=1000) or model "
                        "hyperparameter (model.eps=0.1); repeatable")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="where to train (default auto: CUDA where available, else the CPU)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"results root (default {DEFAULT_OUT})")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("--download", action="store_true", help="fetch MNIST into --data-dir if missing")
    p.add_argument("--overwrite", action="store_true", help="rerun and replace existing records")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N",
                   help="checkpoint every N steps (0: never); a killed run started again resumes (default 500)")
    p.add_argument("--tuned", metavar="PATH", default=None,
                   help="apply a tuned file written by `rnnsuite tune` (over a recipe, under --set)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (default 1, or $RNNSUITE_THREADS; see docs/usage.md, Threads)")






def _prepare_data(args, tasks: list[str]) -> None:
    if args.download and any(t in ("smnist", "psmnist") for t in tasks):
        from tasks.mnist import download_mnist, resolve_data_dir

        download_mnist(resolve_data_dir(args.data_dir))


def cmd_run(args) -> int:
    from suite.core.build import resolve
    from suite.core.configure import make_config
    from suite.core.harness import run

    cfg = make_config(args.task, args.model, args.seed, args.sets, args.device, recipe=args.recipe,
                      tuned=args.tuned)
    resolved = resolve(cfg)  # every check before any download or file; the run uses what it resolved
    if cfg.recipe is not None:
        from suite.core.recipes import overridden

        changed = overridden({"origins": cfg.origins})
        print(f"recipe {cfg.recipe}" + (f"; overridden: {', '.join(changed)}" if changed else ", as published"))
    _prepare_data(args, [cfg.task])
    record = run(resolved, out=args.out, overwrite=args.overwrite, quiet=args.quiet, data_dir=args.data_dir,
                 checkpoint_every=args.checkpoint_every)
    m = record["metrics"]
    if record["status"] == "diverged":
        print(f"{cfg.task}/{cfg.model} seed {cfg.seed}: diverged at step {m['diverged_step']}")
    else:
        metric = record["task_info"]["metric"]
        print(f"{cfg.task}/{cfg.model} seed {cfg.seed}: test {metric} = {m['test']:.6g}")
    print(f"record: {record.get('path', '(not written)')}")
    return 0


def load_sweep(args) -> list[RunConfig]:
    from suite.core.configure import make_config  # imports the model builder (torch): not at start-up

    spec: dict = {}
    if args.config:
        path = Path(args.config)
        if not path.exists() and (PRESETS / f"{args.config}.toml").exists():
            path = PRESETS / f"{args.config}.toml"
        if not path.exists():
            presets = ", ".join(p.stem for p in sorted(PRESETS.glob("*.toml")))
            raise SuiteError(f"sweep config {args.config!r} is neither a file nor a preset (presets: {presets})")
        try:
            spec = tomllib.loads(path.read_text())
        except OSError as exc:  # a directory of that name, a file it may not read
            raise SuiteError(f"{path}: cannot read the sweep file ({exc.strerror or exc})") from None
        except ValueError as exc:  # TOMLDecodeError, UnicodeDecodeError
            raise SuiteError(f"{path}: invalid TOML ({str(exc).splitlines()[0]})") from None
        allowed = {"tasks", "models", "seeds", "set", "model_set", "task_params", "model_params", "slurm"}
        unknown = set(spec) - allowed
        if unknown:
            raise SuiteError(f"{path}: unknown keys {sorted(unknown)} (valid: {sorted(allowed)})")
        _check_sweep_spec(spec, path)
    # an option given empty is an error, not "use the file's" (`--seeds ""` is not seed 0)
    tasks = args.tasks.split(",") if args.tasks is not None else spec.get("tasks", [])
    models = args.models.split(",") if args.models is not None else spec.get("models", [])
    seeds = _parse_seeds(args.seeds) if args.seeds is not None else spec.get("seeds", [0])
    if not tasks or not models:
        raise SuiteError("a sweep needs tasks and models (--tasks a,b --models x,y, or a --config file)")
    _check_sweep_names(spec, path if args.config else None, tasks, models)
    if len(tasks) * len(models) * len(seeds) > MAX_CELLS:
        raise SuiteError(f"the sweep has {len(tasks)} tasks x {len(models)} models x {len(seeds)} seeds = "
                         f"{len(tasks) * len(models) * len(seeds)} cells, more than the {MAX_CELLS} one command "
                         f"resolves: split it into several sweeps (they may share --out)")
    from suite.core.recipes import format_value

    file_sets = [f"{k}={format_value(v)}" for k, v in spec.get("set", {}).items()]
    configs = []
    grid = list(itertools.product(tasks, models, seeds))
    progress = _ResolveProgress(len(grid), quiet=getattr(args, "quiet", False))
    for task, model, seed in grid:
        # the file's values, one layer under --set: [set], then [model_set.<model>] (a published
        # recipe's lr), [task_params.<task>] and [model_params.<model>]
        sets = file_sets + [f"{k}={format_value(v)}" for k, v in spec.get("model_set", {}).get(model, {}).items()]
        sets += [f"task.{k}={format_value(v)}" for k, v in spec.get("task_params", {}).get(task, {}).items()]
        sets += [f"model.{k}={format_value(v)}" for k, v in spec.get("model_params", {}).get(model, {}).items()]
        configs.append(make_config(task, model, seed, list(args.sets), args.device, tuned=args.tuned,
                                   sweep=("sweep file", sets)))
        progress.advance()
    progress.close()
    args.slurm_table = spec.get("slurm")  # the launcher's options (suite.cli.launch), flags win
    return configs


def _check_sweep_spec(spec: dict, path: Path) -> None:
    """Every entry of a sweep file of the type it must have, or one line saying which is not."""
    for key in ("tasks", "models"):
        if key in spec and not (isinstance(spec[key], list) and all(isinstance(v, str) for v in spec[key])):
            raise SuiteError(f"{path}: {key} must be a list of names (e.g. {key} = [\"adding\"]), not {spec[key]!r}")
    seeds = spec.get("seeds", [0])
    if not (isinstance(seeds, list) and all(type(v) is int for v in seeds)):
        raise SuiteError(f"{path}: seeds must be a list of integers (e.g. seeds = [0, 1, 2]), not {seeds!r}")
    if not isinstance(spec.get("slurm", {}), dict):
        raise SuiteError(f"{path}: [slurm] must be a table of launcher options (e.g. [slurm] with time = 60)")
    if not isinstance(spec.get("set", {}), dict):
        raise SuiteError(f"{path}: [set] must be a table of run keys (e.g. [set] with steps = 500)")
    for key, example in (("task_params", "adding] with T = 100"), ("model_params", "hrnn] with dt = 0.1"),
                         ("model_set", "cornn] with lr = 0.02")):
        table = spec.get(key, {})
        if not isinstance(table, dict):
            raise SuiteError(f"{path}: [{key}] must hold one table per name (e.g. [{key}.{example}), not {table!r}")
        for name, params in table.items():
            if not isinstance(params, dict):
                raise SuiteError(f"{path}: {key}.{shown(name)} must be a table (e.g. [{key}.{example}), "
                                 f"not {params!r}")


def _check_sweep_names(spec: dict, path: Path | None, tasks: list[str], models: list[str]) -> None:
    """A [task_params.X], [model_params.X] or [model_set.X] table names a task or model of
    the grid (the file's or the command line's): a typo is an error, never ignored."""
    valid = {"task_params": set(tasks) | set(spec.get("tasks", [])),
             "model_params": set(models) | set(spec.get("models", [])),
             "model_set": set(models) | set(spec.get("models", []))}
    for key, names in valid.items():
        for name in spec.get(key, {}):
            if name not in names:
                what = "task" if key == "task_params" else "model"
                raise SuiteError(f"{path}: [{key}.{shown(name)}] names a {what} not in the sweep's grid "
                                 f"(valid: {', '.join(sorted(names)) or 'none'})")


MAX_CELLS = 100_000  # cells one sweep resolves (about 4 ms each): beyond, split the sweep


class _ResolveProgress:
    """One line every few seconds while a large grid resolves, so that it is not silent."""

    EVERY_S = 5.0

    def __init__(self, total: int, *, quiet: bool, what: str = "resolving"):
        import time

        self.total, self.done, self.quiet, self.what, self.clock = total, 0, quiet, what, time.monotonic
        self.last = self.start = self.clock()

    def advance(self) -> None:
        self.done += 1
        now = self.clock()
        if not self.quiet and now - self.last >= self.EVERY_S:
            self.last = now
            print(f"{self.what} the sweep's cells: {self.done}/{self.total}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.quiet and self.last != self.start:
            print(f"{self.what} the sweep's cells: all {self.total} done", file=sys.stderr, flush=True)


def _parse_seeds(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        try:
            seeds.append(int(part))
        except ValueError:
            raise SuiteError(f"--seeds {text!r}: {part.strip()!r} is not an integer "
                             f"(use comma-separated seeds, e.g. --seeds 0,1,2)") from None
    return seeds


def cmd_sweep(args) -> int:
    from suite.core.build import resolve
    from suite.core.records import check_writable

    configs = load_sweep(args)
    if args.launcher:  # checked there for the device of the jobs, not of this machine
        from suite.cli import launch

        _prepare_data(args, [c.task for c in configs])
        counts = launch.launch_cells(configs, args.out, args, label="sweep", table=args.slurm_table,
                                     run_kwargs={"overwrite": args.overwrite, "data_dir": args.data_dir,
                                                 "checkpoint_every": args.checkpoint_every})
        return 1 if counts["failed"] else 0
    progress = _ResolveProgress(len(configs), quiet=args.quiet, what="checking")
    for cfg in configs:
        resolve(cfg)  # all cells checked before the first runs
        progress.advance()
    progress.close()
    check_writable(args.out)
    _prepare_data(args, [c.task for c in configs])
    from suite.core.cells import run_cells  # the harness, and torch with it, only for a sweep that runs

    counts = run_cells(configs, args.out, label="sweep", overwrite=args.overwrite, quiet=args.quiet,
                       data_dir=args.data_dir, checkpoint_every=args.checkpoint_every)
    return 1 if counts["failed"] else 0


def cmd_report(args) -> int:
    from suite.analysis import report
    from suite.core.records import check_writable, write_text_atomic

    if args.tuning:
        from suite.tuning import report as tune_report

        return tune_report.write_report(args.runs or TUNING_OUT, args.format, args.out)
    if args.out:
        check_writable(args.out, create=False)  # before the table is printed: one line, not a half-done report
    runs = report.load_runs(args.runs or DEFAULT_OUT)  # the committed tables' records only when named
    table = report.format_table(report.summarize(runs))
    text = report.render(table, args.format)
    print(text)
    if args.out:
        out = Path(args.out)
        ext = {"md": "md", "csv": "csv", "latex": "tex"}[args.format]
        write_text_atomic(out / f"report.{ext}", text + "\n")
        for path in report.figures(runs, out / "figures"):
            print(f"figure: {path}")
        from suite.analysis.overview import overview_figure

        # the figure to look at first: each model against the trivial baseline, beside its gradient ratio
        print(f"figure: {overview_figure(report.summarize(runs), runs, out / 'overview.png')}")
        print(f"table: {out / f'report.{ext}'}")
    return 0


def _add_list(sub) -> None:
    from suite.cli.listing import cmd_list

    sub.add_parser("list", help="tasks and models with their parameters and defaults").set_defaults(func=cmd_list)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help=COMMANDS["run"])
    p.add_argument("--task", help="a task name (required unless --recipe gives it)")
    p.add_argument("--model", help="a model name (required unless --recipe gives it)")
    p.add_argument("--recipe", help="start from a published recipe (`rnnsuite recipes`); --set overrides it")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the initialization, the data order and the task's samples (default 0)")
    _common_run_args(p)
    p.set_defaults(func=cmd_run)


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help=COMMANDS["sweep"])
    p.add_argument("--config", help="a TOML file or a preset name (e.g. demo)")
    p.add_argument("--tasks", help="comma-separated task names")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--seeds", help="comma-separated seeds (default 0)")
    _common_run_args(p)
    importlib.import_module("suite.cli.launch").add_arguments(p)
    p.set_defaults(func=cmd_sweep)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help=COMMANDS["report"])
    p.add_argument("--runs", default=None,
                   help=f"results root to read (default {DEFAULT_OUT}, without the committed reference records "
                        f"under {DEFAULT_OUT}/sanity; with --tuning, {TUNING_OUT})")
    p.add_argument("--format", choices=["md", "csv", "latex"], default="md", help="table format (default md)")
    p.add_argument("--out", default=None,
                   help="directory for report.<ext> and figures/ (default: print only); "
                        "with --tuning, for tuning_report.<ext> and figures/ (default: --runs)")
    p.add_argument("--tuning", action="store_true",
                   help="the heuristic-against-tuned table (tuning compute, test mean ± std) from `rnnsuite tune`")
    p.set_defaults(func=cmd_report)


# Every subcommand with its one-line help: the top-level parser lists them all, and only
# the one named on the command line gets its full parser (a module that may import more).
COMMANDS = {
    "list": "tasks and models with their parameters and defaults",
    "run": "one run: task x model x seed",
    "sweep": "a grid of tasks x models x seeds; skips finished cells",
    "report": "tables and figures from run records",
    "recipes": "published numbers with the recipes that produced them",
    "paper": "run the cells of a paper table and write it",
    "tune": "Optuna study of a model's hyperparameters on a task (resumable)",
    "gradients": "gradient-control study: Δt sweep, profiles at init and after a short training, stable bands",
    "export": "run records into TensorBoard, MLflow or Weights & Biases",
    "site": "a static website of the results: sortable tables, figures and a page per run",
}
BUILDERS = {"list": _add_list, "run": _add_run, "sweep": _add_sweep, "report": _add_report}
# subcommands defined in their own modules, each with ``add_command(subparsers)``
EXTRA_COMMANDS = {name: f"suite.cli.{name}" for name in ("recipes", "paper", "tune", "gradients", "export", "site")}


def build_parser(only: str | None = None, *, every: bool = True) -> argparse.ArgumentParser:
    """The parser; with ``every=False``, only the subcommand ``only`` is built in full and
    the others are listed by name and help (what ``main`` does for a fast start-up)."""
    from suite.cli.listing import version

    parser = argparse.ArgumentParser(prog="rnnsuite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"rnnsuite {version()}",
                        help="the installed rnnsuite's version")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        if not every and name != only:
            sub.add_parser(name, help=help_text)
        elif name in BUILDERS:
            BUILDERS[name](sub)
        else:
            importlib.import_module(EXTRA_COMMANDS[name]).add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    named = next((a for a in argv if not a.startswith("-")), None)  # the top level has no valued options
    args = build_parser(named, every=False).parse_args(argv)
    try:
        if hasattr(args, "threads"):  # the one place the thread count is set (suite.core.threads)
            from suite.core import threads

            threads.apply(args.threads)
        return args.func(args)
    except SuiteError as exc:
        print(f"rnnsuite: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnsuite: interrupted; finished records are kept, the unfinished run left none", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rnnsuite recipes | head`: the reader left; no traceback
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter flushes stdout at exit)
        return 0


if __name__ == "__main__":
    sys.exit(main())
