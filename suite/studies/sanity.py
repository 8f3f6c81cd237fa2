"""The sanity table: published recipes, trained for their first epochs, against the
authors' own training logs.

    rnnsuite paper sanity                         every anchor (hours of CPU; see docs/tables.md)
    rnnsuite paper sanity --anchors lem-smnist    a subset

Several authors committed the log of their best run beside their code: validation
accuracy after every epoch, or the test MSE every 100 iterations. The first epochs of
a faithful reimplementation, trained with the same recipe, must follow that curve; a
wrong default, initialization, input scaling or learning rate shows there within an
hour of CPU time. Each anchor below runs its recipe (``results/reference/recipes``) for
the logged budget only — the one change to the recipe, named in every record's
provenance — and validates at exactly the points the authors logged. The logged
values are ``results/reference/anchors/<recipe>.csv``.

Each log is a single run of the authors' (their best one, the one they published), so
it is an optimistic anchor. The verdict allows for seed-to-seed variation and nothing
else: at a point, ours (the mean of n seeds) and theirs (one run) differ by noise of
standard deviation σ·√(1 + 1/n), σ the seed spread measured there (with 3 seeds of the
anchor itself, or of the reference anchor ``REFERENCE`` at the same epoch, or the epoch
nearest an accuracy anchor's iteration point); a row
passes within two of those, and never with a tolerance below ``FLOOR`` (the logs round
to 0.01 pp, and our validation images are not the authors'); a point that a run with
half the log's progress over chance (the anchor's ``chance``) would pass too is
uninformative, not a pass. An anchor
may add an escape-time study (its ``escape``): fresh seeds run longer, and the point at
which theirs first falls below a threshold is placed among ours by rank
(:func:`suite.analysis.stats.one_run_among`).

This module holds the anchors, their cells and the rows; :mod:`suite.studies.sanity_report`
writes the table, ``results/tables/sanity-full/`` (``table.md``, ``table.csv``, ``figures/``)
and its runs are ordinary records beside it, ``records/<task>/<model>/s<seed>-<hash>/``
(``rnnsuite report --runs`` reads them); finished cells are skipped and a killed run
resumes from its checkpoint.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from suite.analysis import stats
from suite.core import paths, records
from suite.core.build import resolve
from suite.core.recipes import get_recipe, recipe_config
from suite.core.registry import SuiteError
from suite.studies import catalog
from suite.studies.catalog import Anchor

ANCHORS_DIR = paths.ANCHORS
NAME = "sanity-full"  # <table>-<profile>: the one profile, every anchor at its logged budget
OUT = paths.TABLES / NAME
RUNS = OUT / "records"
PROFILE = catalog.table("sanity").profiles["full"]  # suite/experiments/sanity.toml: every anchor, its notes
ANCHORS: dict[str, Anchor] = PROFILE.anchors
REFERENCE = PROFILE.reference  # the anchor run with 3 seeds: its spread sets the other epoch anchors' tolerance
FLOOR = PROFILE.floor  # percentage points: the smallest tolerance of an accuracy row


def load_log(name: str, points: int | None = None) -> pd.DataFrame:
    """The first ``points`` logged points of the anchor's headline series: the log's first
    metric on its first split (a log may carry others, e.g. IndRNN's accuracy under batch
    statistics and its test accuracy at each learning-rate decay)."""
    path = ANCHORS_DIR / f"{name}.csv"
    return check_log(path, points)


def check_log(path: Path, points: int | None = None) -> pd.DataFrame:
    """An anchor log read and checked: one-line errors naming the file."""
    try:
        log = pd.read_csv(path)
    except (OSError, ValueError) as exc:  # ValueError: pandas' parser and empty-file errors, bad UTF-8
        raise SuiteError(f"anchor log {path} is unreadable ({(str(exc).strip().splitlines() or ['?'])[0]})") from None
    need = {"point_kind", "point", "value", "metric", "split"}
    if not need <= set(log.columns) or log.empty or log.point_kind.nunique() != 1:
        raise SuiteError(f"anchor log {path} needs columns {sorted(need)} and one point_kind")
    if log.point_kind.iloc[0] not in ("epoch", "iteration"):
        raise SuiteError(f"anchor log {path}: point_kind {log.point_kind.iloc[0]!r} is not epoch or iteration")
    for column in ("point", "value"):
        numbers = pd.to_numeric(log[column], errors="coerce")
        if numbers.isna().any() or not numbers.map(math.isfinite).all():
            raise SuiteError(f"anchor log {path}: column {column} holds a value that is not a finite number")
        log[column] = numbers
    if log.metric.isna().any() or log.split.isna().any():
        raise SuiteError(f"anchor log {path}: every row needs its metric and split")
    log = log[(log.metric == log.metric.iloc[0]) & (log.split == log.split.iloc[0])]
    if (log.point <= 0).any() or log.point.duplicated().any():
        raise SuiteError(f"anchor log {path}: the points of {log.metric.iloc[0]} on {log.split.iloc[0]} "
                         f"must be positive and distinct")
    log = log.sort_values("point").reset_index(drop=True)
    return log if points is None else log.iloc[:points]


def validation_steps(name: str, anchor: Anchor) -> tuple[str, int, dict[float, int]]:
    """(point kind, validation interval, logged point -> our validation step or epoch).

    Epoch points are epochs 1, 2, ...; iteration points are evenly spaced, every
    ``interval`` steps from the first, or from 1 when the authors validated after step 1
    and every ``interval`` after (LEM's adding logs: 1, 101, 201, ...). Ours validate
    after every ``interval`` steps, so such a point p is held against our step p − 1 and
    the first point, after one step, has no match."""
    log = load_log(name, anchor.points)
    points = [float(p) for p in log.point]
    if log.point_kind.iloc[0] == "epoch":
        if points != [float(i) for i in range(1, len(points) + 1)]:
            raise SuiteError(f"anchor {name}: epoch points must be 1, 2, ... (got {points})")
        return "epoch", 1, {p: int(p) for p in points}
    offset = 1 if points[0] == 1 and len(points) > 1 else 0
    interval = int(points[1] - points[0]) if offset else int(points[0])
    if interval < 1:
        raise SuiteError(f"anchor {name}: iteration points must be evenly spaced, at least 1 apart (got {points})")
    if any(int(p) != offset + interval * (i + 1 - offset) for i, p in enumerate(points)):
        raise SuiteError(f"anchor {name}: iteration points must be evenly spaced (got {points})")
    return "iteration", interval, {p: int(p) - offset for p in points if int(p) - offset > 0}


def budget_sets(name: str, anchor: Anchor) -> list[str]:
    """The recipe's budget cut to the anchor's first points, validated at exactly those."""
    kind, interval, steps = validation_steps(name, anchor)
    if kind == "epoch":
        return [f"epochs={max(steps.values())}.0", "eval_every_epochs=1.0"]
    budget = max(steps.values())
    sets = ["epochs=none", f"steps={budget}", f"eval_every={interval}"]
    values = get_recipe(name).values
    if values.get("epochs") is not None and values.get("schedule") == "milestones":
        # the recipe's milestones are epochs; under a steps budget they would be read as
        # steps (IndRNN's decay after epoch 318.76 would fall at step 319): give them in steps
        if anchor.iterations_per_epoch is None:
            raise SuiteError(f"anchor {name}: its recipe decays at epochs {values['milestones']}; a steps budget "
                             f"needs iterations_per_epoch to place them")
        at = [round(m * anchor.iterations_per_epoch) for m in values["milestones"]]
        inside = [m for m in at if m <= budget]
        sets += [f"milestones={','.join(map(str, at))}"] if inside else ["schedule=constant", "milestones="]
    return sets


def chosen_anchors(names: str | None) -> list[str]:
    """The anchors named in ``names`` (comma-separated; every anchor when None), each checked."""
    chosen = list(ANCHORS) if names is None else [a.strip() for a in names.split(",") if a.strip()]
    unknown = [n for n in chosen if n not in ANCHORS]
    if unknown or not chosen:
        raise SuiteError(f"unknown anchor {(unknown or [names])[0]!r} (valid: {', '.join(ANCHORS)})")
    return chosen


def configs(names: list[str]):
    return [(name, recipe_config(name, budget_sets(name, ANCHORS[name]), seed=seed))
            for name in names for seed in ANCHORS[name].seeds]


def escape_configs(names: list[str]):
    """The escape-time runs of those anchors that have a study of it: the recipe at the
    study's steps, validated at the anchor's interval, on the study's seeds."""
    found = []
    for name in names:
        anchor = ANCHORS[name]
        if anchor.escape is None:
            continue
        kind, interval, _ = validation_steps(name, anchor)
        if kind != "iteration" or get_recipe(name).values.get("schedule", "constant") != "constant":
            raise SuiteError(f"anchor {name}: an escape study needs an iteration log and a constant learning rate")
        sets = ["epochs=none", f"steps={anchor.escape.steps}", f"eval_every={interval}"]
        found += [(name, recipe_config(name, sets, seed=seed)) for seed in anchor.escape.seeds]
    return found


def point_offset(name: str) -> float:
    """The log's point minus our validation step at it (1 for LEM's adding logs, else 0)."""
    _, _, steps = validation_steps(name, ANCHORS[name])
    return next(p - s for p, s in steps.items())


def escape_runs(name: str, runs_root: Path) -> list[tuple[str, object, pd.DataFrame | None]]:
    """The anchor's own runs and its escape runs, read once: (source, config, the validation
    curve with each step's ``point`` in the log's count, or None when the run has no record)."""
    by_hash = {rec["config_hash"]: path for path, rec in records.iter_records(runs_root)}
    offset = point_offset(name)
    found = []
    for source, cells in (("anchor run", configs([name])), ("escape run", escape_configs([name]))):
        for _, cfg in cells:
            path = by_hash.get(resolve(cfg).hash)
            val = None if path is None else pd.read_csv(path / "curves.csv").query("split == 'val'")
            found.append((source, cfg, None if val is None else val.assign(point=val.step + offset)))
    return found


def escape_rows(name: str, runs: list) -> pd.DataFrame:
    """Per seed of ours (``runs`` from :func:`escape_runs`), the log point at which the run first
    validates below the study's threshold, or the last point it ran to (``escaped`` False:
    censored there)."""
    rows = []
    for source, cfg, val in runs:
        if val is None:
            rows.append({"seed": cfg.seed, "source": source, "steps": cfg.steps, "point": None, "escaped": None})
            continue
        hit = stats.first_below(val.point, val.metric, ANCHORS[name].escape.below)
        rows.append({"seed": cfg.seed, "source": source, "steps": cfg.steps, "escaped": hit is not None,
                     "point": hit if hit is not None else float(val.point.iloc[-1])})
    return pd.DataFrame(rows)


def _ours(record_path: Path, kind: str, per_epoch: int | None, scale: float) -> dict[float, float]:
    """Our validation metric at each validation step, keyed by the log's point unit."""
    curves = pd.read_csv(record_path / "curves.csv")
    val = curves[curves.split == "val"]
    unit = per_epoch if kind == "epoch" else 1
    return {step // unit: metric * scale for step, metric in zip(val.step, val.metric) if step % unit == 0}


def sampling_error(mse: float, samples: int) -> float:
    """Standard error of an MSE estimated on ``samples`` random sequences: a squared
    Gaussian error has standard deviation √2 times its mean (the trivial adding predictor's
    triangular error: 1.18 times), so √2·MSE/√samples."""
    return math.sqrt(2) * mse / math.sqrt(samples)


def _tolerance(sigma: float | None, n: int, kind: str, sampling: float = 0.0) -> float | None:
    """Two standard deviations of ours − theirs: seed noise of their one run and of our
    mean of n, plus the evaluation sets' sampling errors (``sampling``, both sides)."""
    if sigma is None or math.isnan(sigma):
        return None
    tol = 2 * math.sqrt(sigma**2 * (1 + 1 / max(n, 1)) + sampling**2)
    return max(tol, FLOOR) if kind == "epoch" else tol


def build_rows(names: list[str], runs_root: Path) -> pd.DataFrame:
    """One row per (anchor, logged point): theirs, ours (each seed), the verdict."""
    by_hash = {rec["config_hash"]: (path, rec) for path, rec in records.iter_records(runs_root)}
    rows = []
    for name in names:
        log = load_log(name, ANCHORS[name].points)
        kind, _, ours_at = validation_steps(name, ANCHORS[name])
        scale = 100.0 if log.metric.iloc[0] == "accuracy" else 1.0
        seeds_values: list[dict[float, float]] = []
        for _, cfg in configs([name]):
            hit = by_hash.get(resolve(cfg).hash)
            if hit is not None:
                path, rec = hit
                seeds_values.append(_ours(path, kind, rec["task_info"]["steps_per_epoch"], scale))
        for _, point in log.iterrows():
            at = ours_at.get(float(point.point))
            ours = [v[at] for v in seeds_values if at in v]
            rows.append({"anchor": name, "point_kind": kind, "point": point.point, "metric": point.metric,
                         "theirs": point.value, "ours_seeds": ours, "matched": at is not None})
    frame = pd.DataFrame(rows)
    return _verdicts(frame)


def _reference_point(row) -> float | None:
    """The reference anchor's epoch whose σ a row with fewer than 3 seeds borrows."""
    if row.point_kind == "epoch":
        return row.point
    per_epoch = ANCHORS[row.anchor].iterations_per_epoch
    return float(round(row.point / per_epoch)) if per_epoch else None


def _verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    def stats(values):
        if not values:
            return math.nan, math.nan
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else math.nan
        return mean, std

    frame[["ours_mean", "ours_std"]] = frame.ours_seeds.apply(lambda v: pd.Series(stats(v)))
    frame["n"] = frame.ours_seeds.map(len)
    reference = frame[(frame.anchor == REFERENCE) & (frame.n >= 3)].set_index("point").ours_std
    verdicts, tolerances, sigmas = [], [], []
    for _, row in frame.iterrows():
        sigma = row.ours_std if row.n >= 3 else reference.get(_reference_point(row))
        samples = ANCHORS[row.anchor].eval_samples
        sampling = (math.hypot(sampling_error(row.theirs, samples), sampling_error(row.ours_mean, samples))
                    if samples and row.n else 0.0)
        tol = _tolerance(sigma, row.n, row.point_kind, sampling) if row.n else None
        diff = row.ours_mean - row.theirs
        if not row.get("matched", True):
            verdict = "no point of ours (logged after step 1; ours validate first after one interval)"
        elif row.n == 0:
            verdict = "not run"
        elif tol is None:
            verdict = "no tolerance (needs 3 seeds)"
        elif abs(diff) > tol:
            verdict = "FAIL"
        else:
            # a check that a run with half the log's progress over chance would pass as well
            # cannot tell a faithful run from a broken one: say so, not "pass"
            halfway = (ANCHORS[row.anchor].chance + row.theirs) / 2
            blind = abs(halfway - row.theirs) <= tol
            verdict = f"uninformative (a run at {halfway:.3g}, halfway from chance, passes too)" if blind else "pass"
        verdicts.append(verdict)
        tolerances.append(tol)
        sigmas.append(sigma)
    frame["sigma"], frame["tolerance"], frame["verdict"] = sigmas, tolerances, verdicts
    frame["difference"] = frame.ours_mean - frame.theirs
    return frame
