"""The search of ``rnnsuite tune``: opening a study, and the loop that fills it.

The pruner and the seeded sampler, opening (or creating) a study and checking it was
made with the same settings, the worker loop that runs trials until the study holds
``--trials`` finished ones, the objective that trains one trial, the ``--workers``
processes, and afterwards the study's summary and Optuna's plots. :mod:`suite.tuning.study`
defines what a study is; :mod:`suite.tuning.tune` runs one through this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import socket
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from suite.analysis import plotting
from suite.core import threads
from suite.core.build import resolve
from suite.core.config import run_config, set_value
from suite.core.harness import run
from suite.core.records import environment
from suite.core.registry import SuiteError
from suite.tuning.storage import AskLock, ask_lock_path, first_line, open_storage, redact
from suite.tuning.study import TuneSpec, study_definition

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def suggest(trial: optuna.Trial, key: str, spec: tuple) -> Any:
    kind = spec[0]
    if kind == "log":
        return trial.suggest_float(key, spec[1], spec[2], log=True)
    if kind == "float":
        return trial.suggest_float(key, spec[1], spec[2])
    if kind == "int":
        return trial.suggest_int(key, spec[1], spec[2])
    return trial.suggest_categorical(key, list(spec[1]))


class SurplusTrial(Exception):
    """A trial started beyond the study's N by a worker on another machine."""


# -- the study: pruner, sampler, opening and checking it ------------------------------------

def _dedupe(sets: list[str]) -> list[str]:
    return [f"{k.strip()}={v}" for k, v in dict(s.split("=", 1) for s in sets).items()]




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
                         f"{first_line(exc)}") from None
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
    space = {k: tuple(v) for k, v in definition["search_space"].items()}

    def objective(trial: optuna.Trial) -> float:
        lock.release()
        ahead = [t for t in trial.study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
                 if t.number < trial.number]
        if len(ahead) >= spec.trials:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial(f"trial {trial.number} started after the study had its {spec.trials} trials")
        searched = [f"{k}={set_value(suggest(trial, k, s))}" for k, s in space.items()]
        cfg = run_config(spec.task, spec.model, list(spec.sets), spec.device, layers=(("tuned", searched),))
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
        params = " ".join(f"{k}={short(v)}" for k, v in trial.params.items())
        print(f"{label}trial {trial.number} {trial.state.name.lower()}: val {value}  {params}{took}  "
              f"[{n['finished']}/{spec.trials}]", flush=True)
    return show


def short(v: Any) -> str:

    return f"{v:.3g}" if isinstance(v, float) else set_value(v)


def _worker(spec_fields: dict, index: int) -> None:
    """A --workers process: its own storage connection and sampler stream."""
    spec = TuneSpec(**spec_fields)
    threads.apply()  # the parent's choice, passed on in $RNNSUITE_THREADS
    try:
        with quiet_optuna():
            definition = study_definition(spec)
            study = open_study(spec, definition, open_storage(spec.storage_url, spec.heartbeat),
                               create=False, worker=index)
            optimize_until(study, spec, definition, label=f"[worker {index}] ")
    except SuiteError as exc:
        print(f"rnnsuite: error: worker {index}: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # the terminal's Ctrl-C reached the worker too: the parent says so
        sys.exit(130)


class _NoInterruptTraceback:
    """Optuna logs a trial stopped by Ctrl-C as a failure, with its traceback and a second
    line, before it lets the KeyboardInterrupt through: the command's one line says it
    instead. Other failures are logged as Optuna logs them."""

    def __init__(self):
        self.interrupted: set[str] = set()

    def filter(self, record) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        trial = message.split(" failed with ", 1)[0]  # "Trial 3"
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted.add(trial)
            return False
        return not (" failed with value " in message and trial in self.interrupted)


@contextlib.contextmanager
def quiet_optuna():
    """Optuna's own per-trial log lines and experimental-feature warnings off; ours are printed."""
    import logging

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logger, quiet = logging.getLogger("optuna.study._optimize"), _NoInterruptTraceback()  # where Optuna logs it
    logger.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        logger.removeFilter(quiet)
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


# -- after the search: summary and plots (suite.tuning.tune writes the tuned file and evaluates) ------

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
    plt = plotting.pyplot()
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
