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
    <study>/study.journal             the storage of a --workers K study
    <study>/study.json                the tuned file: best values, fixed settings, trial counts, compute
    <study>/history.png, importance.png   Optuna's plots
    <study>/optuna-trial-<n>/s<seed>-<hash>/   run records: best trial n's values, eval seeds
    <study>/heuristic/s<seed>-<hash>/          run records: the model's defaults or heuristic
"""

from __future__ import annotations

import re
from pathlib import Path

from suite.core.config import RunConfig, run_config
from suite.core.registry import SuiteError
from suite.core.tuned import tuned_dir, tuned_path

# The lower layers, each in its own module: where a study is stored, and the search that fills it.
from suite.tuning.search import (
    counts,
    open_study,
    optimize_until,
    quiet_optuna,
    run_workers,
    save_plots,
    short,
    study_summary,
)
from suite.tuning.storage import open_storage, redact, refuse_parallel_sqlite
from suite.tuning.study import TuneSpec, arm_dirs, report_seeds, study_definition

# -- after the search: summary, tuned file, plots, evaluation --------------------------------

def evaluation_runs(spec: TuneSpec, definition: dict, summary: dict) -> list[tuple[str, Path, RunConfig]]:
    """(arm, records folder, RunConfig) of every reported run: the best trial's values and
    the untuned configuration, each on the eval seeds."""
    dirs = arm_dirs(Path(spec.out) / spec.study_name, summary["best"]["trial"])
    arms = (("optuna", dirs["optuna"], summary["sets"]), ("heuristic", dirs["heuristic"], []))
    # the study's values are a tuned layer under its --set (the same order as `run --tuned`)
    return [(name, out, run_config(spec.task, spec.model, [*spec.sets, f"seed={seed}"], spec.device,
                                   layers=(("tuned", list(searched)),)))
            for name, out, searched in arms for seed in report_seeds(spec, definition)]


def evaluate(spec: TuneSpec, definition: dict, summary: dict) -> None:
    """Every run of :func:`evaluation_runs`; records skipped when they exist, so this too
    resumes; a seed another worker is running is left to it."""
    from suite.core.claims import CellBusy
    from suite.core.harness import run

    for name, out, cfg in evaluation_runs(spec, definition, summary):
        try:
            record = run(cfg, out=out, quiet=True, data_dir=spec.data_dir, nested=False)
        except CellBusy as exc:  # another worker of the study runs it: take the next seed
            print(f"eval {name} seed {cfg.seed}: left to another worker ({exc})", flush=True)
            continue
        test = record["metrics"]["test"]
        shown = f"{test:.5g}" if test is not None else record["status"]
        print(f"eval {name} seed {cfg.seed}: test {definition['metric']} = {shown}", flush=True)


def tune(spec: TuneSpec) -> dict:
    """The whole command from Python: search (resuming), summary, tuned file, plots, evaluation."""
    from suite.core.records import check_writable, write_json_atomic

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
          + " ".join(f"{k}={short(v)}" for k, v in summary["best"]["params"].items()))
    print(f"tuned file: {out_dir / 'study.json'} (apply with `rnnsuite run --tuned {out_dir / 'study.json'}`)"
          + (f"; published as {tuned_path(spec.task, spec.model)}" if spec.publish else ""))
    for path in plots:
        print(f"figure: {path}")
    if spec.eval_seeds > 0:
        evaluate(spec, definition, summary)
        print(f"table: rnnsuite report --tuning --runs {spec.out}")
    return summary


# -- command line ------------------------------------------------------------------------------



