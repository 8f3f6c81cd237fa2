"""What a study of ``rnnsuite tune`` is: its specification, its search space, and the
definition that makes two runs of it the same study (checked on every resume).
:mod:`suite.tuning.search` fills a study, :mod:`suite.tuning.tune` runs one and
evaluates its best values."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from suite.core import paths
from suite.core.build import resolve
from suite.core.config import normal, run_config, set_value
from suite.core.registry import MODELS, TASKS, SuiteError
from suite.tuning.storage import default_storage

DEFAULT_OUT = paths.TUNING


# Fixed per study, never searched: the table's hidden size (comparable parameter counts),
# the budget (comparable cost), the seed and where it runs.
NOT_SEARCHABLE = {"hidden_size", "seed", "steps", "epochs", "device", "dtype", "eval_every"}
KINDS = ("log", "float", "int", "categorical")


def arm_dirs(study_dir: str | Path, best_trial: int) -> dict[str, Path]:
    """Where a study's evaluation runs go, one folder per arm: the best trial's values
    (``optuna-trial-<n>``) and the untuned configuration (``heuristic``), each run in it
    ``s<seed>-<hash>`` (the study fixes task and model)."""
    return {"optuna": Path(study_dir) / f"optuna-trial-{best_trial}", "heuristic": Path(study_dir) / "heuristic"}


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


def study_definition(spec: TuneSpec) -> dict:
    """What makes two runs of ``tune`` the same study; checked on every resume."""
    space = search_space(spec.model, spec.sets, spec.space)
    check_space(space, spec.task, spec.model, spec.sets, spec.device)
    resolved = resolve(run_config(spec.task, spec.model, spec.sets, spec.device)).config
    fixed = {k: v for k, v in resolved.items() if k not in ("device", *space)}
    fixed["model_params"] = {k: v for k, v in fixed["model_params"].items() if f"model.{k}" not in space}
    task_cls = TASKS.get(spec.task)
    return normal({
        "task": spec.task, "model": spec.model,
        "metric": task_cls.metric,
        "direction": "maximize" if task_cls.higher_is_better else "minimize",
        "search_space": space,
        "fixed": fixed,
        "pruner": pruner_description(spec.pruner, resolved),
    })


def report_seeds(spec: TuneSpec, definition: dict) -> list[int]:
    """Seeds for the reported runs: 1, 2, ..., skipping the seed the trials trained with."""
    tuning_seed = definition["fixed"]["seed"]
    return [s for s in range(1, spec.eval_seeds + 2) if s != tuning_seed][:spec.eval_seeds]


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
