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
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import re
import socket
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat  # JournalStorage has no heartbeat of its own (Optuna 5.0)
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from suite.cli import TUNING_OUT
from suite.config import run_config
from suite.registry import MODELS, TASKS, SuiteError

DEFAULT_OUT = TUNING_OUT
TUNED_ENV = "RNNSUITE_TUNED_DIR"
# Fixed per study, never searched: the table's hidden size (comparable parameter counts),
# the budget (comparable cost), the seed and where it runs.
NOT_SEARCHABLE = {"hidden_size", "seed", "steps", "epochs", "device", "dtype", "eval_every"}
KINDS = ("log", "float", "int", "categorical")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_RETRY = 3  # a trial whose worker died this often is given up
HEARTBEAT_ATTR = "rnnsuite:heartbeat"


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


def suggest(trial: optuna.Trial, key: str, spec: tuple) -> Any:
    kind = spec[0]
    if kind == "log":
        return trial.suggest_float(key, spec[1], spec[2], log=True)
    if kind == "float":
        return trial.suggest_float(key, spec[1], spec[2])
    if kind == "int":
        return trial.suggest_int(key, spec[1], spec[2])
    return trial.suggest_categorical(key, list(spec[1]))


# -- storage -------------------------------------------------------------------------------------

class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the heartbeat its RDB storage has: a running trial
    writes a timestamp every ``interval`` seconds; one silent for ``grace`` seconds is
    stale, and Optuna's own loop fails it and calls ``callback`` (which retries it)."""

    def __init__(self, backend, *, interval: int, grace: int, callback) -> None:
        super().__init__(backend)
        self._interval, self._grace, self._callback = interval, grace, callback

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None and t.datetime_start is not None:
                beat = t.datetime_start.timestamp()  # naive local time, as the journal replays it
            if beat is not None and now - beat > self._grace:
                stale.append(t._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int:
        return self._interval

    def get_heartbeat_stale_trial_callback(self):
        return self._callback


def default_storage(out: str | Path, study: str, workers: int) -> str:
    """SQLite for one worker; a journal file for several (SQLite is unsafe under parallel
    writers), and also for one worker resuming a study that has a journal already."""
    journal = Path(out) / f"{study}.journal"
    if workers > 1 or journal.exists():
        return f"journal:{journal}"
    return f"sqlite:///{Path(out) / 'optuna.db'}"


def redact(url: str) -> str:
    """The URL without its password, for printing and for files."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_storage(url: str, heartbeat: int = 10) -> BaseStorage:
    """``journal:PATH`` or a SQLAlchemy URL, with heartbeats and retry of dead trials;
    any failure to open it is one line."""
    grace = 3 * heartbeat
    retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        if not path.name:
            raise SuiteError(f"--storage {url!r}: journal: needs a file path (journal:results/tuning/x.journal)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return HeartbeatJournalStorage(JournalFileBackend(str(path)), interval=heartbeat, grace=grace,
                                           callback=retry)
        except (OSError, ValueError) as exc:
            raise SuiteError(f"cannot open storage {url!r}: {_first_line(exc)}") from None
    if "://" not in url:
        raise SuiteError(f"--storage {url!r} is neither a SQLAlchemy URL (sqlite:///results/tuning/optuna.db, "
                         f"postgresql+psycopg://user:password@host:5432/db) nor journal:PATH")
    sqlite = url.startswith("sqlite:")
    if sqlite and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    # a busy SQLite file waits instead of failing; a server connection is checked before use
    engine = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    try:
        return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace,
                          heartbeat_stale_trial_callback=retry)
    except Exception as exc:  # SQLAlchemy's errors: bad URL, unknown dialect, missing driver, refused
        raise SuiteError(f"cannot open storage {redact(url)!r}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class AskLock:
    """A file lock held from "how many trials are left?" until the next trial exists, so
    workers on one machine never start more than the missing trials. Workers on other
    machines are not covered: for them a trial started beyond N is failed at once
    (``SurplusTrial``), before any training."""

    def __init__(self, path: Path):
        self.path, self.fd = path, None

    def acquire(self) -> None:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def ask_lock_path(spec: TuneSpec) -> Path:
    """Beside the storage file; for a server, under ``--out`` (it covers this machine's workers)."""
    url = spec.storage_url
    for prefix in ("journal:", "sqlite:///"):
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = Path(url[len(prefix):])
            return path.with_name(f".{path.name}.ask-lock")
    Path(spec.out).mkdir(parents=True, exist_ok=True)
    return Path(spec.out) / f".{spec.study_name}.ask-lock"


class SurplusTrial(Exception):
    """A trial started beyond the study's N by a worker on another machine."""


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


def _dedupe(sets: list[str]) -> list[str]:
    return [f"{k.strip()}={v}" for k, v in dict(s.split("=", 1) for s in sets).items()]


def pruner_description(name: str, resolved: dict) -> dict:
    every = resolved["eval_every"]
    if name == "median":
        # no pruning in the first quarter of the budget: early validation is noise
        warmup = max(every, resolved["steps"] // 4) if resolved["epochs"] is None else every
        return {"name": "MedianPruner", "n_startup_trials": 5, "n_warmup_steps": warmup}
    if name == "hyperband":
        top = resolved["steps"] if resolved["epochs"] is None else "auto"
        return {"name": "HyperbandPruner", "min_resource": every, "max_resource": top, "reduction_factor": 3}
    if name == "none":
        return {"name": "NopPruner"}
    raise SuiteError(f"unknown pruner {name!r} (valid: median, hyperband, none)")


def make_pruner(desc: dict) -> optuna.pruners.BasePruner:
    kwargs = {k: v for k, v in desc.items() if k != "name"}
    return getattr(optuna.pruners, desc["name"])(**kwargs)


def make_sampler(seed: int, *salt: int) -> optuna.samplers.TPESampler:
    """Seeded TPE. Each worker, and each resumed session, draws from its own stream
    (seed, worker, trials already there): one seed for all would repeat the same
    random start-up trials."""
    digest = hashlib.sha256(json.dumps([seed, *salt]).encode()).digest()
    return optuna.samplers.TPESampler(seed=int.from_bytes(digest[:4], "little"), constant_liar=True)


def open_study(spec: TuneSpec, definition: dict, storage: BaseStorage, *, create: bool, worker: int = 0):
    kwargs = {"study_name": spec.study_name, "storage": storage, "pruner": make_pruner(definition["pruner"])}
    try:
        if create:
            study = optuna.create_study(direction=definition["direction"], load_if_exists=True, **kwargs)
        else:
            study = optuna.load_study(**kwargs)
    except SuiteError:
        raise
    except Exception as exc:
        raise SuiteError(f"cannot open study {spec.study_name!r} in {redact(spec.storage_url)!r}: "
                         f"{_first_line(exc)}") from None
    stored = study.user_attrs.get("rnnsuite")
    if stored is None and create:
        if study.trials:
            raise SuiteError(f"study {spec.study_name!r} in {redact(spec.storage_url)} was not made by rnnsuite "
                             f"tune; choose another --study name")
        study.set_user_attr("rnnsuite", definition)
        study.set_user_attr("sampler", {"name": "TPESampler", "seed": spec.seed, "constant_liar": True})
        study.set_user_attr("fixed_sets", _dedupe(spec.sets))  # as first given; `fixed` is what counts
        stored = definition
    if stored != definition:
        diff = sorted(k for k in set(stored) | set(definition) if stored.get(k) != definition.get(k))
        detail = "; ".join(_describe_diff(k, stored.get(k), definition.get(k)) for k in diff)
        raise SuiteError(f"study {spec.study_name!r} was made with other settings ({detail}): "
                         f"rerun with the same ones, or pass a new --study name")
    # seeded per (seed, worker, trials already run), so resuming does not replay the same draws
    study.sampler = make_sampler(spec.seed, worker, len(study.trials))
    return study


def _describe_diff(key: str, old: Any, new: Any) -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return ", ".join(f"{key}.{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys)
    return f"{key}: {old!r} then, {new!r} now"


def counts(study) -> dict[str, int]:
    trials = study.get_trials(deepcopy=False)
    by = {s: sum(t.state == s for t in trials) for s in TrialState}
    return {"finished": by[TrialState.COMPLETE] + by[TrialState.PRUNED], "complete": by[TrialState.COMPLETE],
            "pruned": by[TrialState.PRUNED], "failed": by[TrialState.FAIL], "running": by[TrialState.RUNNING],
            "waiting": by[TrialState.WAITING], "total": len(trials)}


# -- the worker loop -----------------------------------------------------------------------

def optimize_until(study, spec: TuneSpec, definition: dict, *, label: str = "") -> int:
    """Run trials until the study holds ``spec.trials`` finished ones; returns how many
    this worker finished. Running trials of other workers count as on their way; a dead
    worker's trial is failed by the heartbeat after the grace period and retried."""
    lock = AskLock(ask_lock_path(spec))
    objective = make_objective(spec, definition, lock)
    done, waited = 0, False
    while True:
        lock.acquire()
        try:
            optuna.storages.fail_stale_trials(study)
            n = counts(study)
            if n["finished"] >= spec.trials:
                return done
            if n["finished"] + n["running"] >= spec.trials:
                if not waited and not spec.quiet:
                    print(f"{label}waiting for {n['running']} running trial(s): another worker's, or a dead "
                          f"one that the heartbeat fails after {3 * spec.heartbeat} s", flush=True)
                waited = True
                lock.release()
                time.sleep(min(2.0, spec.heartbeat))
                continue
            # the objective releases the lock once its trial exists
            study.optimize(objective, n_trials=1, catch=(SurplusTrial,), callbacks=[_printer(spec, label)])
            done += 1
        finally:
            lock.release()


def make_objective(spec: TuneSpec, definition: dict, lock: AskLock):
    from suite.build import resolve
    from suite.harness import run
    from suite.records import environment

    space = {k: tuple(v) for k, v in definition["search_space"].items()}

    def objective(trial: optuna.Trial) -> float:
        lock.release()
        ahead = [t for t in trial.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
                 if t.number < trial.number]
        if len(ahead) >= spec.trials:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number} started after the study had its {spec.trials} trials")
        searched = [f"{k}={set_value(suggest(trial, k, s))}" for k, s in space.items()]
        cfg = run_config(spec.task, spec.model, [*spec.sets, *searched], spec.device)
        device = resolve(cfg).device
        env = environment(device)
        trial.set_user_attr("sets", searched)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("device", f"{device.type} ({env['device_name']})")

        def report(step: int, value: float) -> None:
            if math.isfinite(value):
                trial.report(value, step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned at step {step}: {definition['metric']} {value:.5g}")

        start = time.perf_counter()
        try:
            record = run(cfg, out=None, quiet=True, data_dir=spec.data_dir, on_eval=report)
        finally:
            trial.set_user_attr("compute_seconds", time.perf_counter() - start)
        trial.set_user_attr("train_seconds", record["timing"]["train_seconds"])
        trial.set_user_attr("eval_seconds", record["timing"]["eval_seconds"])
        value = record["metrics"]["val_best"]
        if record["status"] != "ok" or value is None or not math.isfinite(value):
            # a diverged configuration is a result of the search, not a failure of the worker
            trial.set_user_attr("diverged_step", record["metrics"]["diverged_step"])
            raise optuna.TrialPruned(f"diverged at step {record['metrics']['diverged_step']}")
        return value  # validation only; the study's direction says which way is better

    return objective


def _printer(spec: TuneSpec, label: str):
    def show(study, trial) -> None:
        if spec.quiet:
            return
        n = counts(study)
        if trial.user_attrs.get("surplus"):
            print(f"{label}trial {trial.number} not run: the study had its {spec.trials} trials", flush=True)
            return
        value = f"{trial.value:.5g}" if trial.value is not None else "—"
        secs = trial.user_attrs.get("compute_seconds")
        took = f" {secs:.1f}s" if secs is not None else ""
        params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
        print(f"{label}trial {trial.number} {trial.state.name.lower()}: val {value}  {params}{took}  "
              f"[{n['finished']}/{spec.trials}]", flush=True)
    return show


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else set_value(v)


def _worker(spec_fields: dict, index: int) -> None:
    """A --workers process: its own storage connection and sampler stream."""
    import torch

    import suite  # noqa: F401  (registers tasks and models in a spawned process)

    spec = TuneSpec(**spec_fields)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // spec.workers))
    try:
        with quiet_optuna():
            definition = study_definition(spec)
            study = open_study(spec, definition, open_storage(spec.storage_url, spec.heartbeat),
                               create=False, worker=index)
            optimize_until(study, spec, definition, label=f"[worker {index}] ")
    except SuiteError as exc:
        print(f"rnnsuite: error: worker {index}: {exc}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def quiet_optuna():
    """Optuna's own per-trial log lines and experimental-feature warnings off; ours are printed."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def run_workers(spec: TuneSpec) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    fields = dataclasses.asdict(spec)
    procs = [ctx.Process(target=_worker, args=(fields, i), name=f"rnnsuite-tune-{i}") for i in range(spec.workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:  # a terminal's Ctrl-C reached them too: each fails its trial and stops
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()  # its trial goes stale, and the heartbeat retries it later
        raise
    bad = [(i, p.exitcode) for i, p in enumerate(procs) if p.exitcode != 0]
    if bad:
        raise SuiteError("worker(s) " + ", ".join(f"{i} exited with code {c}" for i, c in bad)
                         + "; finished trials are kept: rerun the same command to resume")


# -- after the search: summary, tuned file, plots, evaluation --------------------------------

def study_summary(study, spec: TuneSpec, definition: dict) -> dict:
    trials = study.get_trials(deepcopy=False)
    n = counts(study)
    if n["complete"] == 0:
        raise SuiteError(f"study {spec.study_name!r} has no completed trial (all pruned or failed): "
                         f"widen the budget or the space")
    best = study.best_trial
    surplus = sum(bool(t.user_attrs.get("surplus")) for t in trials)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    return {
        "task": spec.task, "model": spec.model, "study": spec.study_name,
        "storage": redact(spec.storage_url),
        "metric": definition["metric"], "direction": definition["direction"],
        "sets": list(best.user_attrs["sets"]),
        "best": {"trial": best.number, "value": best.value, "params": best.params},
        "fixed_sets": study.user_attrs.get("fixed_sets", []),
        "fixed": definition["fixed"],
        "search_space": definition["search_space"],
        "sampler": study.user_attrs.get("sampler"),
        "pruner": definition["pruner"],
        "summary": {
            **n,
            "failed": n["failed"] - surplus,  # errors and dead workers; surplus trials never ran
            "surplus": surplus,
            "trial_compute_seconds": sum(t.user_attrs.get("compute_seconds", 0.0) for t in trials),
            "wall_seconds": (max(ends) - min(starts)).total_seconds() if starts and ends else None,
            "device": sorted({t.user_attrs["device"] for t in trials if "device" in t.user_attrs}),
        },
        "optuna": optuna.__version__,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def save_plots(study, out_dir: Path) -> list[Path]:
    """Optuna's history and parameter-importance plots (matplotlib): cheap, skipped where
    Optuna cannot draw them (e.g. importance with fewer than two completed trials)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    written = []
    for name, draw in (("history", ovm.plot_optimization_history), ("importance", ovm.plot_param_importances)):
        try:
            ax = draw(study)
        except (ValueError, RuntimeError, ZeroDivisionError):
            plt.close("all")
            continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(7, 4)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        tmp = path.with_name(f".{name}.tmp.png")
        fig.savefig(tmp, dpi=100)
        tmp.replace(path)
        written.append(path)
        plt.close("all")
    return written


def report_seeds(spec: TuneSpec, definition: dict) -> list[int]:
    """Seeds for the reported runs: 1, 2, ..., skipping the seed the trials trained with."""
    tuning_seed = definition["fixed"]["seed"]
    return [s for s in range(1, spec.eval_seeds + 2) if s != tuning_seed][:spec.eval_seeds]


def evaluate(spec: TuneSpec, definition: dict, summary: dict) -> None:
    """The best trial's values and the untuned configuration, each on the eval seeds;
    records skipped when they exist, so this too resumes."""
    from suite.harness import run

    root = Path(spec.out) / spec.study_name
    arms = (("optuna", root / "optuna" / f"trial-{summary['best']['trial']}", summary["sets"]),
            ("heuristic", root / "heuristic", []))
    for name, out, searched in arms:
        for seed in report_seeds(spec, definition):
            cfg = run_config(spec.task, spec.model, [*spec.sets, *searched, f"seed={seed}"], spec.device)
            record = run(cfg, out=out, quiet=True, data_dir=spec.data_dir)
            test = record["metrics"]["test"]
            shown = f"{test:.5g}" if test is not None else record["status"]
            print(f"eval {name} seed {seed}: test {definition['metric']} = {shown}", flush=True)


def refuse_parallel_sqlite(spec: TuneSpec) -> None:
    """A study begun in the default SQLite file is not continued by parallel writers,
    nor silently restarted in a journal beside it."""
    db = Path(spec.out) / "optuna.db"
    journal = Path(spec.out) / f"{spec.study_name}.journal"
    if journal.exists() or not db.exists():
        return
    if spec.study_name in optuna.study.get_all_study_names(storage=f"sqlite:///{db}"):
        raise SuiteError(f"study {spec.study_name!r} is in sqlite:///{db}, which is unsafe under parallel writers: "
                         f"continue it with --workers 1, or give it a PostgreSQL --storage (optuna.copy_study)")


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
