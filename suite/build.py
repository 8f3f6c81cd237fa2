"""From names and parameters to objects: the only place tasks and models are built.

``resolve`` turns a :class:`RunConfig` into the fully resolved configuration (every
default filled in, types checked) that identifies a run; the harness builds from that,
and the record stores it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from suite import cuda_graph
from suite.config import PROVENANCE_FIELDS, RunConfig, build_config, config_hash, require
from suite.registry import MODELS, TASKS, SuiteError
from suite.sizes import check_sizes
from suite.spec import RecurrentModel, Task


def list_tasks() -> list[str]:
    return TASKS.names()


def list_models() -> list[str]:
    return MODELS.names()


def build_task(name: str, *, data_dir: str | None = None, **params: Any) -> Task:
    cls = TASKS.get(name)
    return cls(build_config(cls.Config, params, prefix="task."), data_dir=data_dir)


def build_model(name: str, *, input_size: int, output_size: int, hidden_size: int,
                seq_len: int | None = None, **hparams: Any) -> RecurrentModel:
    """The model with its readout (a linear map from features to ``output_size``).

    With ``seq_len`` given (the harness always gives it), hyperparameters the model
    chooses from the task before training are filled in (``resolve_config``)."""
    cls = MODELS.get(name)
    require(hidden_size >= 1, f"hidden_size={hidden_size} must be >= 1")
    cfg = build_config(cls.Config, hparams, prefix="model.")
    if seq_len is not None:
        cfg = cls.resolve_config(cfg, input_size=input_size, hidden_size=hidden_size, seq_len=seq_len)
    model = cls(input_size, hidden_size, cfg)
    model.readout = nn.Linear(model.feature_size, output_size)
    model.init_readout(model.readout)
    return model


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SuiteError("device 'cuda' requested but CUDA is not available (use --device cpu or auto)")
    return torch.device(name)


@dataclasses.dataclass
class Resolved:
    config: dict  # JSON-able: every value that defines the run
    hash: str
    device: torch.device
    provenance: dict  # where the values came from (recipe, tuned file, --set); not hashed


def resolve(cfg: RunConfig) -> Resolved:
    """Check everything that can be checked before any work or any file is written."""
    # re-check a RunConfig built in Python as strictly as one parsed from the command line
    cfg = build_config(RunConfig, {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
    task_cls, model_cls = TASKS.get(cfg.task), MODELS.get(cfg.model)
    task_cfg = build_config(task_cls.Config, cfg.task_params, prefix="task.")
    model_cfg = build_config(model_cls.Config, cfg.model_params, prefix="model.")
    device = resolve_device(cfg.device)
    cuda_graph.requested()  # a malformed RNNSUITE_CUDA_GRAPHS fails here, before any file is written
    if cfg.epochs is not None:
        probe = task_cls(task_cfg)
        if probe.split_size("train") is None:
            raise SuiteError(f"epochs is only for tasks with a finite training set; "
                             f"{cfg.task!r} draws fresh samples every step: use steps")
    check_sizes(cfg, task_cls(task_cfg), device)  # batches against splits, memory against the device
    config = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in PROVENANCE_FIELDS}
    config.update(
        device=device.type,  # 'auto' resolved: where it ran is part of the experiment
        task_params=dataclasses.asdict(task_cfg),
        model_params=dataclasses.asdict(model_cfg),
        task_version=task_cls.version,
        model_version=model_cls.version,
    )
    provenance = {"recipe": cfg.recipe, "tuned": cfg.tuned, "origins": dict(cfg.origins)}
    return Resolved(config=config, hash=config_hash(config), device=device, provenance=provenance)
