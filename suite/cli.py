"""The ``rnnsuite`` command line: a thin layer over the Python API.

    rnnsuite list
    rnnsuite run --task adding --model gru --set steps=500 --set task.T=200 --seed 1
    rnnsuite sweep --config demo --out results/demo          (a preset name or a TOML file)
    rnnsuite report --runs results/demo --format md --out results/demo

Bad input (an unknown name or key, an ill-typed or impossible value, a missing data
file) prints one line ``rnnsuite: error: ...`` and exits with code 2 before anything
is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import itertools
import sys
import tomllib
from pathlib import Path

from suite.config import PROVENANCE_FIELDS, RunConfig, describe_fields, run_config
from suite.registry import MODELS, TASKS, SuiteError

PRESETS = Path(__file__).parent / "presets"
DEFAULT_OUT = "results/runs"
TUNING_OUT = "results/tuning"  # `tune` writes here, `report --tuning` reads here


def _common_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run key (lr=0.01), task parameter (task.T=1000) or model "
                        "hyperparameter (model.eps=0.1); repeatable")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--out", default=DEFAULT_OUT, help=f"results root (default {DEFAULT_OUT})")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("--download", action="store_true", help="fetch MNIST into --data-dir if missing")
    p.add_argument("--overwrite", action="store_true", help="rerun and replace existing records")
    p.add_argument("--checkpoint-every", type=int, default=500, metavar="N",
                   help="checkpoint every N steps (0: never); a killed run started again resumes (default 500)")
    p.add_argument("--tuned", metavar="PATH", default=None,
                   help="apply a tuned file written by `rnnsuite tune` (over a recipe, under --set)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def make_config(task: str | None, model: str | None, seed: int, sets: list[str], device: str | None, *,
                recipe: str | None = None, tuned: str | None = None) -> RunConfig:
    """Defaults, then a recipe's values, then a tuned file's, then ``--set``: a later
    layer wins, and the configuration names each key's origin (its provenance). A tuned
    file applies only under the settings it was tuned under; any other is refused."""
    from suite.tune import load_tuned

    data = load_tuned(tuned, task, model)
    layers = (("tuned", data["sets"]),) if data else ()
    if recipe is not None:
        from suite.recipes import recipe_config

        cfg = recipe_config(recipe, sets, task=task, model=model, seed=seed, device=device, layers=layers)
    elif task is None or model is None:
        raise SuiteError("name --task and --model, or a --recipe (see `rnnsuite recipes`)")
    else:
        cfg = run_config(task, model, list(sets), device, seed, layers=layers)
    if data:
        _check_tuned_applies(data, cfg)
    return dataclasses.replace(cfg, tuned=data["path"] if data else None)


def _check_tuned_applies(data: dict, cfg: RunConfig) -> None:
    from suite.build import resolve
    from suite.tune import describe_differences, tuned_differences

    diff = tuned_differences(data, resolve(cfg).config)
    if diff:
        raise SuiteError(f"--tuned {data['path']} does not apply to this run: {describe_differences(diff)} "
                         f"(tune under these settings, or pass the values you want with --set)")


def _prepare_data(args, tasks: list[str]) -> None:
    if args.download and any(t in ("smnist", "psmnist") for t in tasks):
        from tasks.mnist import download_mnist, resolve_data_dir

        download_mnist(resolve_data_dir(args.data_dir))


def cmd_list(args) -> int:
    from suite.build import list_models, list_tasks

    for title, registry, names in (("tasks", TASKS, list_tasks()), ("models", MODELS, list_models())):
        print(f"{title}:")
        for name in names:
            cls = registry.get(name)
            doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
            extra = f"  [metric {cls.metric} {'↑' if cls.higher_is_better else '↓'}, v{cls.version}]" \
                if registry is TASKS else f"  [v{cls.version}]"
            print(f"  {name}{extra}  {doc[0] if doc else ''}")
            for field, typ, default in describe_fields(cls.Config):
                print(f"      {field}: {typ} = {default!r}")
    print("run keys (--set KEY=VALUE):")
    for field, typ, default in describe_fields(RunConfig):
        if field not in ("task", "model", "task_params", "model_params", *PROVENANCE_FIELDS):
            print(f"      {field}: {typ} = {default!r}")
    return 0


def cmd_run(args) -> int:
    from suite.build import resolve
    from suite.harness import run

    cfg = make_config(args.task, args.model, args.seed, args.sets, args.device, recipe=args.recipe,
                      tuned=args.tuned)
    resolve(cfg)  # every check before any download or file
    if cfg.recipe is not None:
        from suite.recipes import overridden

        changed = overridden({"origins": cfg.origins})
        print(f"recipe {cfg.recipe}" + (f"; overridden: {', '.join(changed)}" if changed else ", as published"))
    _prepare_data(args, [cfg.task])
    record = run(cfg, out=args.out, overwrite=args.overwrite, quiet=args.quiet, data_dir=args.data_dir,
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
        except tomllib.TOMLDecodeError as exc:
            raise SuiteError(f"{path}: invalid TOML ({exc})") from None
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
    file_sets = [f"{k}={v}" for k, v in spec.get("set", {}).items()]
    configs = []
    for task, model, seed in itertools.product(tasks, models, seeds):
        # [model_set.<model>]: run keys of one model (a published recipe's lr); the command line wins
        sets = file_sets + [f"{k}={v}" for k, v in spec.get("model_set", {}).get(model, {}).items()] + list(args.sets)
        sets += [f"task.{k}={v}" for k, v in spec.get("task_params", {}).get(task, {}).items()]
        sets += [f"model.{k}={v}" for k, v in spec.get("model_params", {}).get(model, {}).items()]
        # later --set values win over the file's (a dict keeps the last)
        configs.append(make_config(task, model, seed, _dedupe(sets), args.device, tuned=args.tuned))
    args.slurm_table = spec.get("slurm")  # the launcher's options (suite.launch), flags win
    return configs


def _check_sweep_spec(spec: dict, path: Path) -> None:
    """Every entry of a sweep file of the type it must have, or one line saying which is not."""
    for key in ("tasks", "models"):
        if key in spec and not (isinstance(spec[key], list) and all(isinstance(v, str) for v in spec[key])):
            raise SuiteError(f"{path}: {key} must be a list of names (e.g. {key} = [\"adding\"]), not {spec[key]!r}")
    seeds = spec.get("seeds", [0])
    if not (isinstance(seeds, list) and all(type(v) is int for v in seeds)):
        raise SuiteError(f"{path}: seeds must be a list of integers (e.g. seeds = [0, 1, 2]), not {seeds!r}")
    if not isinstance(spec.get("set", {}), dict):
        raise SuiteError(f"{path}: [set] must be a table of run keys (e.g. [set] with steps = 500)")
    for key, example in (("task_params", "adding] with T = 100"), ("model_params", "hrnn] with dt = 0.1"),
                         ("model_set", "cornn] with lr = 0.02")):
        table = spec.get(key, {})
        if not isinstance(table, dict):
            raise SuiteError(f"{path}: [{key}] must hold one table per name (e.g. [{key}.{example}), not {table!r}")
        for name, params in table.items():
            if not isinstance(params, dict):
                raise SuiteError(f"{path}: {key}.{name} must be a table (e.g. [{key}.{example}), not {params!r}")


def _parse_seeds(text: str) -> list[int]:
    seeds = []
    for part in text.split(","):
        try:
            seeds.append(int(part))
        except ValueError:
            raise SuiteError(f"--seeds {text!r}: {part.strip()!r} is not an integer "
                             f"(use comma-separated seeds, e.g. --seeds 0,1,2)") from None
    return seeds


def _dedupe(sets: list[str]) -> list[str]:
    return [f"{k}={v}" for k, v in dict(s.split("=", 1) for s in sets).items()]


def run_cells(configs: list[RunConfig], out: str | Path, *, label: str, **run_kwargs) -> dict[str, int]:
    """Run the cells under ``out`` as one worker among any number sharing it: a cell
    found finished is skipped, one claimed by a live worker is left to it, a failed one
    is counted and the next one run (a failed write stops them all: the next would fail
    too). Prints one line per cell (with the counts so far and the time left; an overall
    bar on a terminal, unless ``quiet``) and the counts at the end; returns the counts."""
    import time

    from suite.claims import CellBusy
    from suite.harness import run
    from suite.progress import CellProgress
    from suite.records import DiskError

    counts = {"done here": 0, "skipped as complete": 0, "left to other workers": 0, "failed": 0}
    progress = CellProgress(len(configs), label, quiet=run_kwargs.get("quiet", False))

    def summary() -> None:
        progress.close()
        print(f"{label}: " + ", ".join(f"{n} {what}" for what, n in counts.items()) + f"; records under {out}")

    for i, cfg in enumerate(configs, 1):
        cell = f"[{i}/{len(configs)}] {cfg.task}/{cfg.model} seed {cfg.seed}"
        start = time.monotonic()
        try:
            record = run(cfg, out=out, **run_kwargs)
        except CellBusy as exc:
            counts["left to other workers"] += 1
            progress.line(f"{cell}: left to another worker: {exc}", "left")
            continue
        except DiskError:
            counts["failed"] += 1
            summary()
            raise
        except Exception as exc:  # one bad cell must not abandon the others
            counts["failed"] += 1
            detail = str(exc) if isinstance(exc, SuiteError) else f"{type(exc).__name__}: {exc}"
            progress.line(f"{cell}: failed: {detail.splitlines()[0] if detail.strip() else type(exc).__name__}",
                          "failed", time.monotonic() - start)
            continue
        if record["outcome"] == "complete":
            counts["skipped as complete"] += 1
            progress.advance("skipped")
            continue
        counts["done here"] += 1
        test = record["metrics"]["test"]
        shown = f"{test:.5g}" if test is not None else record["status"]
        progress.line(f"{cell}: test {record['task_info']['metric']} = {shown}", "done", time.monotonic() - start)
    summary()
    return counts


def cmd_sweep(args) -> int:
    from suite.build import resolve
    from suite.records import check_writable

    configs = load_sweep(args)
    if args.launcher:  # checked there for the device of the jobs, not of this machine
        from suite import launch

        _prepare_data(args, [c.task for c in configs])
        counts = launch.launch_cells(configs, args.out, args, label="sweep", table=args.slurm_table,
                                     run_kwargs={"overwrite": args.overwrite, "data_dir": args.data_dir,
                                                 "checkpoint_every": args.checkpoint_every})
        return 1 if counts["failed"] else 0
    for cfg in configs:
        resolve(cfg)  # all cells checked before the first runs
    check_writable(args.out)
    _prepare_data(args, [c.task for c in configs])
    counts = run_cells(configs, args.out, label="sweep", overwrite=args.overwrite, quiet=args.quiet,
                       data_dir=args.data_dir, checkpoint_every=args.checkpoint_every)
    return 1 if counts["failed"] else 0


def cmd_report(args) -> int:
    from suite import report
    from suite.records import check_writable, write_text_atomic

    if args.tuning:
        from suite import tune_report

        return tune_report.write_report(args.runs or TUNING_OUT, args.format, args.out)
    if args.out:
        check_writable(args.out, create=False)  # before the table is printed: one line, not a half-done report
    runs = report.load_runs(args.runs or DEFAULT_OUT)
    table = report.format_table(report.summarize(runs))
    text = report.render(table, args.format)
    print(text)
    if args.out:
        out = Path(args.out)
        ext = {"md": "md", "csv": "csv", "latex": "tex"}[args.format]
        write_text_atomic(out / f"report.{ext}", text + "\n")
        for path in report.figures(runs, out / "figures"):
            print(f"figure: {path}")
        from suite.overview import overview_figure

        # the figure to look at first: each model against the trivial baseline, beside its gradient ratio
        print(f"figure: {overview_figure(report.summarize(runs), runs, out / 'overview.png')}")
        print(f"table: {out / f'report.{ext}'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnsuite", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="tasks and models with their parameters and defaults").set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="one run: task x model x seed")
    p.add_argument("--task", help="a task name (required unless --recipe gives it)")
    p.add_argument("--model", help="a model name (required unless --recipe gives it)")
    p.add_argument("--recipe", help="start from a published recipe (`rnnsuite recipes`); --set overrides it")
    p.add_argument("--seed", type=int, default=0)
    _common_run_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="a grid of tasks x models x seeds; skips finished cells")
    p.add_argument("--config", help="a TOML file or a preset name (e.g. demo)")
    p.add_argument("--tasks", help="comma-separated task names")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--seeds", help="comma-separated seeds (default 0)")
    _common_run_args(p)
    importlib.import_module("suite.launch").add_arguments(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="tables and figures from run records")
    p.add_argument("--runs", default=None,
                   help=f"results root to read (default {DEFAULT_OUT}; with --tuning, {TUNING_OUT})")
    p.add_argument("--format", choices=["md", "csv", "latex"], default="md")
    p.add_argument("--out", default=None,
                   help="directory for report.<ext> and figures/ (default: print only); "
                        "with --tuning, for tuning_report.<ext> and figures/ (default: --runs)")
    p.add_argument("--tuning", action="store_true",
                   help="the heuristic-against-tuned table (tuning compute, test mean ± std) from `rnnsuite tune`")
    p.set_defaults(func=cmd_report)

    for name in EXTRA_COMMANDS:
        importlib.import_module(name).add_command(sub)
    return parser


# Subcommands defined in their own modules, each with ``add_command(subparsers)``;
# imported when the parser is built, so a broken one fails at start-up.
EXTRA_COMMANDS: list[str] = [
    "suite.recipes",
    "suite.paper",
    "suite.tune",
    "suite.gradient_study",
    "suite.export",
]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SuiteError as exc:
        print(f"rnnsuite: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnsuite: interrupted; finished records are kept, the unfinished run left none", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
