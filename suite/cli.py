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
import importlib
import itertools
import sys
import tomllib
from pathlib import Path

from suite.config import RunConfig, describe_fields, run_config
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
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def make_config(task: str, model: str, seed: int, sets: list[str], device: str | None) -> RunConfig:
    from suite.tune import tuned_sets

    # baselines/tuned/<task>-<model>.json first, so that --set overrides it
    return run_config(task, model, tuned_sets(task, model) + list(sets), device, seed)


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
        if field not in ("task", "model", "task_params", "model_params"):
            print(f"      {field}: {typ} = {default!r}")
    return 0


def cmd_run(args) -> int:
    from suite.build import resolve
    from suite.harness import run
    from suite.tune import tuned_note

    cfg = make_config(args.task, args.model, args.seed, args.sets, args.device)
    resolve(cfg)  # every check before any download or file
    if (note := tuned_note(cfg.task, cfg.model)) is not None:
        print(note)
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
        allowed = {"tasks", "models", "seeds", "set", "task_params", "model_params"}
        unknown = set(spec) - allowed
        if unknown:
            raise SuiteError(f"{path}: unknown keys {sorted(unknown)} (valid: {sorted(allowed)})")
    tasks = args.tasks.split(",") if args.tasks else spec.get("tasks", [])
    models = args.models.split(",") if args.models else spec.get("models", [])
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else spec.get("seeds", [0])
    if not tasks or not models:
        raise SuiteError("a sweep needs tasks and models (--tasks a,b --models x,y, or a --config file)")
    base_sets = [f"{k}={v}" for k, v in spec.get("set", {}).items()] + list(args.sets)
    configs = []
    for task, model, seed in itertools.product(tasks, models, seeds):
        sets = list(base_sets)
        sets += [f"task.{k}={v}" for k, v in spec.get("task_params", {}).get(task, {}).items()]
        sets += [f"model.{k}={v}" for k, v in spec.get("model_params", {}).get(model, {}).items()]
        # later --set values win over the file's (a dict keeps the last)
        configs.append(make_config(task, model, seed, _dedupe(sets), args.device))
    return configs


def _dedupe(sets: list[str]) -> list[str]:
    return [f"{k}={v}" for k, v in dict(s.split("=", 1) for s in sets).items()]


def cmd_sweep(args) -> int:
    from suite.build import resolve
    from suite.harness import run
    from suite.records import is_complete, run_dir

    configs = load_sweep(args)
    resolved = [resolve(c) for c in configs]  # all cells checked before the first runs
    _prepare_data(args, [c.task for c in configs])
    done = 0
    for cfg, res in zip(configs, resolved):
        path = run_dir(args.out, cfg.task, cfg.model, cfg.seed, res.hash)
        if is_complete(path) and not args.overwrite:
            print(f"skip {cfg.task}/{cfg.model} seed {cfg.seed}: {path} exists")
            continue
        record = run(cfg, out=args.out, overwrite=args.overwrite, quiet=args.quiet, data_dir=args.data_dir,
                     checkpoint_every=args.checkpoint_every)
        done += 1
        test = record["metrics"]["test"]
        shown = f"{test:.5g}" if test is not None else record["status"]
        print(f"[{done}] {cfg.task}/{cfg.model} seed {cfg.seed}: test {record['task_info']['metric']} = {shown}")
    print(f"sweep: {done} run(s), {len(configs) - done} skipped; records under {args.out}")
    return 0


def cmd_report(args) -> int:
    from suite import report

    if args.tuning:
        from suite import tune_report

        return tune_report.write_report(args.runs or TUNING_OUT, args.format, args.out)
    runs = report.load_runs(args.runs or DEFAULT_OUT)
    table = report.format_table(report.summarize(runs))
    text = report.render(table, args.format)
    print(text)
    if args.out:
        from suite.records import write_text_atomic

        out = Path(args.out)
        ext = {"md": "md", "csv": "csv", "latex": "tex"}[args.format]
        write_text_atomic(out / f"report.{ext}", text + "\n")
        for path in report.figures(runs, out / "figures"):
            print(f"figure: {path}")
        print(f"table: {out / f'report.{ext}'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnsuite", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="tasks and models with their parameters and defaults").set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="one run: task x model x seed")
    p.add_argument("--task", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--seed", type=int, default=0)
    _common_run_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="a grid of tasks x models x seeds; skips finished cells")
    p.add_argument("--config", help="a TOML file or a preset name (e.g. demo)")
    p.add_argument("--tasks", help="comma-separated task names")
    p.add_argument("--models", help="comma-separated model names")
    p.add_argument("--seeds", help="comma-separated seeds (default 0)")
    _common_run_args(p)
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
    "suite.paper",
    "suite.tune",
    "suite.gradient_study",
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
