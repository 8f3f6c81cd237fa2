"""The medium tuning table: does the heuristic step size beat Optuna-tuned baselines?

    rnnsuite paper tuning --profile medium                      (every cell; CPU-hours, see docs/tables.md)
    rnnsuite paper tuning --profile medium --cells adding-T100  (a subset)

The claim under test (Rusch, Pearson & Zygalakis 2019): with its step-size heuristic the
Hamiltonian RNN outperforms state-of-the-art RNNs "without the need of computationally
intensive hyperparameter optimization". Per cell (a task at one length, one width, one
budget), every configuration below trains on the same fresh seeds (1, 2, 3; Optuna's
trials train on seed 0 and read validation only):

- **heuristic**: ``hrnn`` and the H-DNN cell ``HEURISTIC_MODELS`` names, their step size
  from the heuristic (docs/heuristic.md), everything else at the suite's defaults; and
  ``hrnn`` with the heuristic Δt and only its learning rate tuned by Optuna (the heuristic
  replaces the step-size search, not every choice);
- **tuned**: LSTM, GRU and AntisymmetricRNN, each tuned by Optuna over its declared
  ``search_space`` (``PROFILE.trials`` trials, the cell's budget per trial), with their
  untuned defaults beside them (what tuning buys);
- **recipe**: coRNN and LEM with their authors' settings for the task, untuned, where a
  recipe exists (``results/reference/recipes``; the cell's length, width and budget
  override the recipe's, which each record's provenance names);
- **sweep**: ``hrnn`` over a grid of fixed Δt (``PROFILE.dt_grid``), the heuristic's
  regret: how far its Δt is from the best one, and what a grid search would have cost.

The cells, their budgets and the profile are data (``suite/experiments/tuning.toml``,
profile ``medium``: ``CELLS``, ``PROFILE``); the table
(:mod:`suite.studies.tuning_verdict`) is built from the records alone. Records go under
``results/tables/tuning-medium/records/``: each study in ``<study>/`` (named
``<cell>-<model>``: ``study.json``, ``study.journal``, its evaluation runs in
``heuristic/`` and ``optuna-trial-<best>/``), the plain runs of a cell in
``<cell>/<model>/`` and its Δt sweep in ``<cell>/hrnn-dt<Δt>/``, each run a folder
``s<seed>-<hash>/``. Finished runs and finished studies (their ``study.json``) are
skipped on a rerun, so the table completes over several sessions.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from suite.core import paths
from suite.core.cells import run_cells
from suite.core.config import RunConfig, normal, run_config, set_value
from suite.core.recipes import recipe_config
from suite.core.registry import MODELS, SuiteError
from suite.studies import catalog
from suite.studies.catalog import Tuning, TuningCell
from suite.tuning.storage import journal_path
from suite.tuning.study import arm_dirs
from suite.tuning.tune import TuneSpec, evaluate, report_seeds, study_definition, tune

OUT = paths.TABLES / "tuning-medium"
RECORDS = "records"  # under the table's folder: every study and run of every cell
PROFILE: Tuning = catalog.table("tuning").profiles["medium"]  # suite/experiments/tuning.toml
CELLS: dict[str, TuningCell] = PROFILE.cells
TUNED_MODELS = PROFILE.tuned_models
# hdnn-h2: the best mean rank of the H-DNN cells over adding-quick and copy-quick
HEURISTIC_MODELS = PROFILE.heuristic_models
LR_ONLY = PROFILE.lr_only  # the model tuned on the learning rate alone, the other searched keys at their defaults


def chosen_cells(names: str | None) -> list[str]:
    chosen = list(CELLS) if names is None else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in CELLS]
    if unknown or not chosen:
        raise SuiteError(f"unknown cell {(unknown or [names])[0]!r} of the medium tuning table "
                         f"(valid: {', '.join(CELLS)})")
    return chosen


# -- the studies and the plain runs of a cell, from the profile ---------------------------------

def _defaults_except(model: str, keep: str) -> list[str]:
    """``--set`` strings fixing every searched key of ``model`` but ``keep`` at its default."""
    run_defaults = dataclasses.asdict(RunConfig(task="adding", model=model))
    params = dataclasses.asdict(MODELS.get(model).Config())
    fixed = []
    for key in MODELS.get(model).search_space:
        if key == keep:
            continue
        value = params[key[6:]] if key.startswith("model.") else run_defaults[key]
        fixed.append(f"{key}={set_value(value)}")
    return fixed


def studies(name: str, root: Path = OUT, data_dir: str | None = None, quiet: bool = True):
    """The cell's Optuna studies as ``TuneSpec``s: the tuned baselines, then hrnn's lr."""
    cell = CELLS[name]
    common = dict(task=cell.task, sets=list(cell.sets), out=str(root / RECORDS), eval_seeds=PROFILE.eval_seeds,
                  pruner=PROFILE.pruner, data_dir=data_dir, quiet=quiet)
    specs = [TuneSpec(model=m, trials=PROFILE.trials, study=f"{name}-{m}", **common) for m in TUNED_MODELS]
    lr_sets = [*cell.sets, *_defaults_except(LR_ONLY, "lr")]
    specs.insert(0, TuneSpec(**{**common, "sets": lr_sets}, model=LR_ONLY, trials=PROFILE.lr_trials,
                             study=f"{name}-{LR_ONLY}-lr"))
    # one journal file per study: studies of a cell can run in parallel processes
    # (run_cell(only=...)), which one SQLite file is not safe for
    return [dataclasses.replace(s, storage=f"journal:{journal_path(s.out, s.study_name)}") for s in specs]


@dataclasses.dataclass
class Arm:
    """One configuration of the table, on every eval seed: where its records are (each
    ``<out>/s<seed>-<hash>/``: the arm fixes task and model)."""

    model: str
    role: str  # heuristic | tuned | defaults | recipe | sweep
    chosen: str  # how its hyperparameters were chosen, in words
    configs: list[RunConfig]
    out: Path
    tuning_seconds: float = 0.0  # what choosing them cost (trial compute), CPU-seconds
    dt: float | None = None  # the sweep's fixed step size


def seeds() -> list[int]:
    return list(range(1, PROFILE.eval_seeds + 1))


def plain_arms(name: str, root: Path = OUT) -> list[Arm]:
    """The runs needing no study: the heuristic models, the recipes, the Δt sweep."""
    cell, root = CELLS[name], root / RECORDS / name
    arms = [Arm(m, "heuristic", "heuristic", [run_config(cell.task, m, [*cell.sets, f"seed={s}"]) for s in seeds()],
                root / m) for m in HEURISTIC_MODELS if m != LR_ONLY]
    for recipe in cell.recipes:
        cfgs = [recipe_config(recipe, list(cell.sets), seed=s) for s in seeds()]
        arms.append(Arm(cfgs[0].model, "recipe", f"authors' recipe {recipe}", cfgs, root / cfgs[0].model))
    for dt in PROFILE.dt_grid:
        cfgs = [run_config(cell.task, LR_ONLY, [*cell.sets, f"model.dt={dt}", f"seed={s}"]) for s in seeds()]
        arms.append(Arm(LR_ONLY, "sweep", f"fixed Δt = {dt:g}", cfgs, root / f"{LR_ONLY}-dt{dt:g}", dt=dt))
    return arms


def is_lr_only(spec) -> bool:
    """Whether ``spec`` is the learning-rate-only study of ``LR_ONLY`` (its rows are heuristic rows)."""
    return spec.model == LR_ONLY and spec.study_name.endswith(f"-{LR_ONLY}-lr")


def study_file(spec) -> Path:
    return Path(spec.out) / spec.study_name / "study.json"


def finished_summary(spec) -> dict | None:
    """The study's summary if it finished its trials under the definition asked for now."""
    path = study_file(spec)
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
        definition = study_definition(spec)
        same = all(normal(summary[k]) == definition[k] for k in ("fixed", "search_space", "pruner"))
        return summary if same and summary["summary"]["finished"] >= spec.trials else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def study_arms(spec) -> list[Arm]:
    """A finished study's two arms, with exactly the configurations ``tune`` evaluates."""
    summary = finished_summary(spec)
    if summary is None:
        return []
    definition = study_definition(spec)
    eval_seeds = report_seeds(spec, definition)
    if eval_seeds != seeds():
        raise SuiteError(f"study {spec.study_name}: evaluated on seeds {eval_seeds}, the table on {seeds()}")
    dirs = arm_dirs(Path(spec.out) / spec.study_name, summary["best"]["trial"])
    best = [*spec.sets, *summary["sets"]]
    n = summary["summary"]["finished"]
    lr_only = is_lr_only(spec)
    tuned = Arm(spec.model, "heuristic" if lr_only else "tuned",
                f"heuristic Δt, Optuna lr ({n} trials)" if lr_only else f"Optuna ({n} trials)",
                [run_config(spec.task, spec.model, [*best, f"seed={s}"]) for s in eval_seeds],
                dirs["optuna"], summary["summary"]["trial_compute_seconds"])
    untuned = Arm(spec.model, "heuristic" if lr_only else "defaults", "heuristic" if lr_only else "defaults",
                  [run_config(spec.task, spec.model, [*spec.sets, f"seed={s}"]) for s in eval_seeds],
                  dirs["heuristic"])
    return [untuned, tuned]


def arms(name: str, root: Path = OUT) -> list[Arm]:
    return [a for spec in studies(name, root) for a in study_arms(spec)] + plain_arms(name, root)


# -- running ------------------------------------------------------------------------------------

def run_cell(name: str, root: Path = OUT, data_dir: str | None = None, quiet: bool = False,
             only: str | None = None) -> int:
    """Every study (skipped when finished: its evaluation runs still complete) and every
    plain run; ``only`` = a study name, or "runs" for the plain runs: one part, so that
    several processes can share a cell."""
    failed = 0
    for spec in studies(name, root, data_dir):
        if only is not None and only != spec.study_name:
            continue
        summary = finished_summary(spec)
        print(f"[{name}] study {spec.study_name}: " + ("finished, evaluating" if summary else "searching"), flush=True)
        if summary is None:
            tune(spec)
        else:
            evaluate(spec, study_definition(spec), summary)
    for arm in plain_arms(name, root) if only in (None, "runs") else []:
        counts = run_cells(arm.configs, arm.out, label=f"[{name}] {arm.model}: {arm.chosen}", quiet=quiet,
                           data_dir=data_dir, nested=False)
        failed += counts["failed"]
    return failed


