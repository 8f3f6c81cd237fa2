"""Optuna-tuned baselines, with the tuning cost kept: ``rnnsuite tune``.

    rnnsuite tune --task adding --model gru --trials 20 --budget 500 --set task.T=100
    rnnsuite tune ... --workers 2                       (one machine, a journal file)
    rnnsuite tune ... --storage postgresql+psycopg://user:pw@host/db   (many machines)
    rnnsuite report --tuning                            (heuristic against tuned, figure)

A study maximizes or minimizes the task's validation metric in the direction the task
declares (``Task.higher_is_better``); the test metric is never read while tuning. The
search space is the model's ``search_space`` (keys are ``--set`` keys; ``--space``
adds or narrows a dimension, ``--set`` fixes one), sampled by a seeded TPE sampler;
a pruner (median or Hyperband) stops trials on their intermediate validation values.
Hidden size, seed, budget and task are never searched: they are fixed per study, so
parameter counts and costs stay comparable.

``--trials N`` is the number of finished (complete or pruned) trials the study ends
with: rerunning the command resumes it and adds exactly the missing ones. Every
running trial beats a heartbeat; a trial whose worker died (kill -9, a lost machine)
is marked failed once its heartbeat is older than the grace period, and retried with
the same parameters. Trials run without writing run records; afterwards the study's
best hyperparameters and the settings it held fixed go to ``<out>/<study>/study.json``,
the tuned file that ``rnnsuite run --tuned PATH`` applies (and nothing else does), and
the best and the untuned configurations are trained on ``--eval-seeds`` seeds for the
report. ``--publish`` also copies the tuned file into the repository, as
``baselines/tuned/<task>-<model>.json``; by default nothing is written into the source
tree.

Layout under ``--out`` (default ``results/tuning``)::

    optuna.db                         the default storage (SQLite), every study
    <study>.journal                   the storage of a --workers K study
    <study>/study.json                the tuned file: best values, fixed settings, trial counts, compute
    <study>/history.png, importance.png   Optuna's plots
    <study>/optuna/trial-<n>/...      run records: best trial n's values, eval seeds
    <study>/heuristic/...             run records: the model's defaults or heuristic
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from suite.cli import TUNING_OUT
from suite.config import run_config
from suite.registry import MODELS, TASKS, SuiteError

# The lower layers, each in its own module: where a study is stored, and the search that fills it.
from suite.tune_search import (
    _short,
    counts,
    open_study,
    optimize_until,
    pruner_description,
    quiet_optuna,
    run_workers,
    save_plots,
    study_summary,
)
from suite.tune_storage import default_storage, open_storage, redact, refuse_parallel_sqlite

DEFAULT_OUT = TUNING_OUT
TUNED_ENV = "RNNSUITE_TUNED_DIR"
# Fixed per study, never searched: the table's hidden size (comparable parameter counts),
# the budget (comparable cost), the seed and where it runs.
NOT_SEARCHABLE = {"hidden_size", "seed", "steps", "epochs", "device", "dtype", "eval_every"}
KINDS = ("log", "float", "int", "categorical")


# -- tuned files: written by `rnnsuite tune`, applied only by `rnnsuite run --tuned PATH` ---------

def tuned_dir() -> Path:
    """Where ``--publish`` writes: ``$RNNSUITE_TUNED_DIR``, else ``baselines/tuned``."""
    if os.environ.get(TUNED_ENV):
        return Path(os.environ[TUNED_ENV])
    import baselines

    return Path(baselines.__file__).resolve().parent / "tuned"


def tuned_path(task: str, model: str) -> Path:
    return tuned_dir() / f"{task}-{model}.json"


def load_tuned(path: str | os.PathLike | None, task: str | None = None, model: str | None = None) -> dict | None:
    """The tuned file at ``path`` (a study's ``study.json``, or its published copy),
    checked against ``task`` and ``model``; None when no path is given. Its ``sets`` are
    the tuned ``--set`` strings, its ``fixed`` the resolved settings the study held fixed
    (task parameters, hidden size, budget, every run key not searched), which
    :func:`tuned_differences` compares with a run's."""
    if path is None:
        return None
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SuiteError(f"--tuned {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SuiteError(f"--tuned {path}: not JSON ({str(exc).splitlines()[0]})") from None
    sets = data.get("sets") if isinstance(data, dict) else None
    if not (isinstance(sets, list) and all(isinstance(s, str) and "=" in s for s in sets)):
        raise SuiteError(f"--tuned {path}: not a tuned-hyperparameters file (no list of KEY=VALUE 'sets')")
    if not isinstance(data.get("fixed"), dict):
        raise SuiteError(f"--tuned {path}: records no fixed settings (an older `rnnsuite tune` wrote it): "
                         f"rerun the study to write a new one")
    for what, given in (("task", task), ("model", model)):
        if given is not None and data.get(what) != given:
            raise SuiteError(f"--tuned {path} was tuned for {what} {data.get(what)!r}, not {given!r}")
    return {**data, "path": str(path)}


def tuned_differences(tuned: dict, resolved: dict) -> dict[str, tuple[Any, Any]]:
    """``{key: (tuned under, this run)}`` for every setting the study held fixed that the
    resolved configuration ``resolved`` sets otherwise, keyed as ``--set`` keys. The
    seed is left out: tuned values are meant for other seeds."""
    searched = set(tuned.get("search_space", {}))
    fixed, run = _flat_settings(tuned["fixed"]), _flat_settings(resolved)
    return {k: (fixed.get(k), run.get(k)) for k in sorted(set(fixed) | set(run))
            if k not in searched and k not in ("seed", "device") and _normal(fixed.get(k)) != _normal(run.get(k))}


def describe_differences(diff: dict[str, tuple[Any, Any]]) -> str:
    """One line: ``tuned under task.T=20, steps=150; this run has task.T=10, steps=10``."""
    return ("tuned under " + ", ".join(f"{k}={set_value(a)}" for k, (a, _) in diff.items())
            + "; this run has " + ", ".join(f"{k}={set_value(b)}" for k, (_, b) in diff.items()))


def _flat_settings(config: dict) -> dict:
    out = {}
    for key, value in config.items():
        if key in ("task_params", "model_params") and isinstance(value, dict):
            out.update({f"{key[:-7]}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


# -- configurations and the search space -------------------------------------------------------


def set_value(value: Any) -> str:
    """A sampled value as ``--set`` text that parses back to the same value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def parse_space_arg(text: str) -> tuple[str, tuple]:
    """``KEY=log:LO:HI`` | ``float:LO:HI`` | ``int:LO:HI`` | ``categorical:A,B,...``."""
    if "=" not in text or ":" not in text.split("=", 1)[1]:
        raise SuiteError(f"--space {text!r} is not KEY=KIND:... (for example --space lr=log:1e-4:1e-2)")
    key, rest = text.split("=", 1)
    kind, _, args = rest.partition(":")
    kind = "categorical" if kind == "cat" else kind
    if kind == "categorical":
        return key.strip(), (kind, [a.strip() for a in args.split(",") if a.strip()])
    parts = args.split(":")
    if kind not in KINDS or len(parts) != 2:
        raise SuiteError(f"--space {text!r}: use log:LO:HI, float:LO:HI, int:LO:HI or categorical:A,B")
    conv = int if kind == "int" else float
    try:
        return key.strip(), (kind, conv(parts[0]), conv(parts[1]))
    except ValueError:
        raise SuiteError(f"--space {text!r}: bounds must be {conv.__name__}s") from None


def search_space(model: str, fixed: list[str], extra: list[str] = ()) -> dict[str, tuple]:
    """The model's declared space, with ``--space`` additions; keys fixed by ``--set`` dropped."""
    space = {k: tuple(v) for k, v in MODELS.get(model).search_space.items()}
    space.update(parse_space_arg(text) for text in extra)
    for key in space:
        if key in NOT_SEARCHABLE or key.startswith("task."):
            raise SuiteError(f"search space of {model}: {key!r} is fixed per study, never searched "
                             f"(hidden size, budget, seed, task)")
    fixed_keys = {s.split("=", 1)[0].strip() for s in fixed if "=" in s}
    return {k: v for k, v in space.items() if k not in fixed_keys}


def check_space(space: dict[str, tuple], task: str, model: str, fixed: list[str], device: str | None) -> None:
    """Every key a valid ``--set`` key, every bound a value the run accepts: checked before
    the study starts, so a bad space costs no trial."""
    from suite.build import resolve

    if not space:
        raise SuiteError(f"nothing to tune: {model}'s search space is empty once the --set keys are fixed")
    for key, spec in space.items():
        where = f"search space of {model}: {key!r}"
        if not isinstance(spec, tuple) or not spec or spec[0] not in KINDS:
            raise SuiteError(f"{where}: {spec!r} is not (kind, ...) with kind one of {', '.join(KINDS)}")
        if spec[0] == "categorical":
            if len(spec) != 2 or not isinstance(spec[1], (list, tuple)) or not spec[1]:
                raise SuiteError(f"{where}: categorical needs a non-empty list of choices")
            probes = list(spec[1])
        else:
            if len(spec) != 3 or not all(isinstance(b, (int, float)) for b in spec[1:]) or not spec[1] < spec[2]:
                raise SuiteError(f"{where}: {spec!r} needs bounds lo < hi")
            if spec[0] == "log" and spec[1] <= 0:
                raise SuiteError(f"{where}: a log-uniform range needs lo > 0")
            if spec[0] == "int" and not all(isinstance(b, int) for b in spec[1:]):
                raise SuiteError(f"{where}: an int range needs int bounds")
            probes = list(spec[1:])
        for value in probes:
            try:
                resolve(run_config(task, model, [*fixed, f"{key}={set_value(value)}"], device))
            except SuiteError as exc:
                raise SuiteError(f"search space of {model}: {exc}") from None



# -- the study -------------------------------------------------------------------------------

@dataclasses.dataclass
class TuneSpec:
    """Everything ``rnnsuite tune`` was asked; plain values, so a worker process gets a copy."""

    task: str
    model: str
    trials: int
    sets: list[str] = dataclasses.field(default_factory=list)  # fixed for the study
    space: list[str] = dataclasses.field(default_factory=list)  # --space additions
    storage: str | None = None
    study: str | None = None
    workers: int = 1
    seed: int = 0  # the sampler's
    pruner: str = "median"
    heartbeat: int = 10
    eval_seeds: int = 3
    out: str = DEFAULT_OUT
    device: str | None = None
    data_dir: str | None = None
    publish: bool = False  # also write baselines/tuned/<task>-<model>.json
    quiet: bool = False

    @property
    def study_name(self) -> str:
        return self.study or f"{self.task}-{self.model}"

    @property
    def storage_url(self) -> str:
        return self.storage or default_storage(self.out, self.study_name, self.workers)


def _normal(obj: Any) -> Any:
    """What JSON would give back: comparing a stored attribute with a fresh value."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def study_definition(spec: TuneSpec) -> dict:
    """What makes two runs of ``tune`` the same study; checked on every resume."""
    from suite.build import resolve

    space = search_space(spec.model, spec.sets, spec.space)
    check_space(space, spec.task, spec.model, spec.sets, spec.device)
    resolved = resolve(run_config(spec.task, spec.model, spec.sets, spec.device)).config
    fixed = {k: v for k, v in resolved.items() if k not in ("device", *space)}
    fixed["model_params"] = {k: v for k, v in fixed["model_params"].items() if f"model.{k}" not in space}
    task_cls = TASKS.get(spec.task)
    return _normal({
        "task": spec.task, "model": spec.model,
        "metric": task_cls.metric,
        "direction": "maximize" if task_cls.higher_is_better else "minimize",
        "search_space": space,
        "fixed": fixed,
        "pruner": pruner_description(spec.pruner, resolved),
    })


# -- after the search: summary, tuned file, plots, evaluation --------------------------------

def report_seeds(spec: TuneSpec, definition: dict) -> list[int]:
    """Seeds for the reported runs: 1, 2, ..., skipping the seed the trials trained with."""
    tuning_seed = definition["fixed"]["seed"]
    return [s for s in range(1, spec.eval_seeds + 2) if s != tuning_seed][:spec.eval_seeds]


def evaluate(spec: TuneSpec, definition: dict, summary: dict) -> None:
    """The best trial's values and the untuned configuration, each on the eval seeds;
    records skipped when they exist, so this too resumes; a seed another worker is
    running is left to it."""
    from suite.claims import CellBusy
    from suite.harness import run

    root = Path(spec.out) / spec.study_name
    arms = (("optuna", root / "optuna" / f"trial-{summary['best']['trial']}", summary["sets"]),
            ("heuristic", root / "heuristic", []))
    for name, out, searched in arms:
        for seed in report_seeds(spec, definition):
            cfg = run_config(spec.task, spec.model, [*spec.sets, *searched, f"seed={seed}"], spec.device)
            try:
                record = run(cfg, out=out, quiet=True, data_dir=spec.data_dir)
            except CellBusy as exc:  # another worker of the study runs it: take the next seed
                print(f"eval {name} seed {seed}: left to another worker ({exc})", flush=True)
                continue
            test = record["metrics"]["test"]
            shown = f"{test:.5g}" if test is not None else record["status"]
            print(f"eval {name} seed {seed}: test {definition['metric']} = {shown}", flush=True)


def tune(spec: TuneSpec) -> dict:
    """The whole command from Python: search (resuming), summary, tuned file, plots, evaluation."""
    from suite.records import check_writable, write_json_atomic

    if spec.trials < 1:
        raise SuiteError(f"--trials {spec.trials} must be >= 1")
    if spec.workers < 1:
        raise SuiteError(f"--workers {spec.workers} must be >= 1")
    if spec.heartbeat < 1:
        raise SuiteError(f"--heartbeat {spec.heartbeat} must be >= 1 second")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.study_name):
        raise SuiteError(f"--study {spec.study_name!r}: use letters, digits, '.', '_' and '-'")
    url = spec.storage_url
    if spec.workers > 1 and url.startswith("sqlite:"):
        raise SuiteError("SQLite is not safe under parallel writers: with --workers > 1 leave --storage out "
                         "(a journal file) or give journal:PATH or a server URL")
    with quiet_optuna():
        definition = study_definition(spec)  # every check before the storage is touched
        if spec.publish:
            check_writable(tuned_dir(), create=False)
        check_writable(spec.out)  # a read-only disk found before the first trial, not after the last
        if spec.storage is None and spec.workers > 1:
            refuse_parallel_sqlite(spec)
        storage = open_storage(url, spec.heartbeat)
        study = open_study(spec, definition, storage, create=True)
        before = counts(study)
        if not spec.quiet:
            print(f"study {spec.study_name} in {redact(url)}: {definition['direction']} val "
                  f"{definition['metric']}; {before['finished']}/{spec.trials} trials finished", flush=True)
        if before["finished"] < spec.trials:
            if spec.workers > 1:
                run_workers(spec)
            else:
                optimize_until(study, spec, definition)
        summary = study_summary(study, spec, definition)
        out_dir = Path(spec.out) / spec.study_name
        write_json_atomic(out_dir / "study.json", summary)
        if spec.publish:
            write_json_atomic(tuned_path(spec.task, spec.model), summary)
        plots = save_plots(study, out_dir)
    s = summary["summary"]
    extra = f", {s['surplus']} surplus not run" if s["surplus"] else ""
    print(f"{s['finished']} trials ({s['complete']} complete, {s['pruned']} pruned, {s['failed']} failed{extra}), "
          f"{s['trial_compute_seconds']:.1f} s of trial compute on {', '.join(s['device']) or '?'}")
    print(f"best: trial {summary['best']['trial']}, val {definition['metric']} {summary['best']['value']:.5g}: "
          + " ".join(f"{k}={_short(v)}" for k, v in summary["best"]["params"].items()))
    print(f"tuned file: {out_dir / 'study.json'} (apply with `rnnsuite run --tuned {out_dir / 'study.json'}`)"
          + (f"; published as {tuned_path(spec.task, spec.model)}" if spec.publish else ""))
    for path in plots:
        print(f"figure: {path}")
    if spec.eval_seeds > 0:
        evaluate(spec, definition, summary)
        print(f"table: rnnsuite report --tuning --runs {spec.out}")
    return summary


# -- command line ------------------------------------------------------------------------------

def add_command(sub) -> None:
    p = sub.add_parser("tune", help="Optuna study of a model's hyperparameters on a task (resumable)",
                       description="An Optuna study of a model's hyperparameters on a task's validation metric: "
                                   "resumable (rerun the same command), several workers, crash-safe.",
                       epilog="docs/tuning.md: single machine, several processes, several machines, dashboard")
    p.add_argument("--task", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--trials", type=int, required=True,
                   help="finished (complete or pruned) trials the study ends with; rerun to resume")
    p.add_argument("--budget", type=int, default=None, metavar="STEPS",
                   help="training steps per trial (same as --set steps=STEPS)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a run key, task parameter or hyperparameter for every trial (not searched)")
    p.add_argument("--space", action="append", default=[], metavar="KEY=KIND:...",
                   help="add or replace a search dimension: lr=log:1e-4:1e-2, model.eps=float:0.01:1, "
                        "batch_size=int:16:128, optimizer=categorical:adam,rmsprop")
    p.add_argument("--storage", default=None, metavar="URL",
                   help=f"sqlite:///path.db, postgresql+psycopg://user:pw@host:5432/db or journal:PATH "
                        f"(default: sqlite:///{DEFAULT_OUT}/optuna.db; journal:{DEFAULT_OUT}/<study>.journal "
                        f"with --workers > 1)")
    p.add_argument("--study", default=None, help="study name (default <task>-<model>)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed (default 0)")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median")
    p.add_argument("--heartbeat", type=int, default=10, metavar="SECONDS",
                   help="heartbeat of running trials; one silent for 3x this is failed and retried (default 10)")
    p.add_argument("--eval-seeds", type=int, default=3,
                   help="seeds to train the best and the untuned configuration on for the report (0: none)")
    p.add_argument("--publish", action=argparse.BooleanOptionalAction, default=False,
                   help="also write the tuned file into the repository as baselines/tuned/<task>-<model>.json "
                        "(default: only under --out)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"tuning root (default {DEFAULT_OUT})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("--download", action="store_true", help="fetch MNIST into --data-dir if missing")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-trial lines or progress bars")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    sets = list(args.sets) + ([f"steps={args.budget}"] if args.budget is not None else [])
    spec = TuneSpec(task=args.task, model=args.model, trials=args.trials, sets=sets, space=args.space,
                    storage=args.storage, study=args.study, workers=args.workers, seed=args.seed,
                    pruner=args.pruner, heartbeat=args.heartbeat, eval_seeds=args.eval_seeds, out=args.out,
                    device=args.device, data_dir=args.data_dir, publish=args.publish, quiet=args.quiet)
    TASKS.get(spec.task), MODELS.get(spec.model)  # unknown names: one line before anything else
    if args.download and spec.task in ("smnist", "psmnist"):
        from tasks.mnist import download_mnist, resolve_data_dir

        download_mnist(resolve_data_dir(args.data_dir))
    tune(spec)
    return 0
