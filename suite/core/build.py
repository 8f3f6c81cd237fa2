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

from suite.core import cuda_graph, probes
from suite.core.config import PROVENANCE_FIELDS, RunConfig, build_config, config_hash, require
from suite.core.registry import MODELS, TASKS, SuiteError
from suite.core.sizes import check_sizes
from suite.core.spec import RecurrentModel, Task


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
    cfg, notes = build_config(cls.Config, hparams, prefix="model."), {}
    if seq_len is not None:
        cfg, notes = cls.resolve_config(cfg, input_size=input_size, hidden_size=hidden_size, seq_len=seq_len)
    model = cls(input_size, hidden_size, cfg)
    model.resolution = notes
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
    task = task_cls(task_cfg)
    if cfg.epochs is not None:
        if task.split_size("train") is None:
            raise SuiteError(f"epochs is only for tasks with a finite training set; "
                             f"{cfg.task!r} draws fresh samples every step: use steps")
    check_sizes(cfg, task, device, count_parameters(cfg, task))  # batches against splits, memory against the device
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


def count_parameters(cfg, task) -> tuple[int, int, tuple[int, int] | None]:
    """(parameter count, feature width, saved bytes) of the model, built on the meta device;
    a model whose constructor cannot run there counts no parameters and its hidden size as
    width. Saved bytes are :func:`saved_bytes`' ``(fixed, per example)``, None if unknown."""
    try:
        with torch.device("meta"):
            model = build_model(cfg.model, input_size=task.input_size, output_size=task.output_size,
                                hidden_size=cfg.hidden_size, **cfg.model_params)
    except SuiteError:
        raise
    except Exception:  # an operation without a meta kernel, or sizes beyond what torch can index
        return 0, cfg.hidden_size, None
    return sum(p.numel() for p in model.parameters()), model.feature_size, saved_bytes(cfg, task)


def saved_bytes(cfg, task) -> tuple[int, int] | None:
    """Bytes a training step keeps for its backward pass, as ``(fixed, per example)``: the
    tensors autograd saves in the model's forward and readout, counted on the meta device
    (nothing is allocated) at batch sizes 1 and 2; the parameters themselves (and views of
    them) are not counted, they are counted once as parameters. None where the forward
    cannot run on the meta device."""
    key = (cfg.model, repr(sorted(cfg.model_params.items())), cfg.hidden_size, cfg.dtype, task.input_size,
           task.output_size, task.seq_len, task.output_at)
    if key not in _SAVED:
        _SAVED[key] = _measure_saved(cfg, task)
    return _SAVED[key]


_SAVED: dict[tuple, tuple[int, int] | None] = {}


def _measure_saved(cfg, task) -> tuple[int, int] | None:
    """Saved bytes at batch sizes 1 and 2 and two short lengths, fitted as ``a + b·B + c·T +
    d·B·T`` and evaluated at the task's length (a forward of thousands of steps would take
    seconds); at the task's own length where the short ones cannot run. On the meta device;
    on the CPU, for real, for a small model whose forward the meta device cannot run (one
    that branches on a value)."""
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                model = _meta_model(cfg, task)
                if device == "cpu" and sum(p.numel() for p in model.parameters()) > CPU_PROBE_PARAMS:
                    return None
                return _fit_saved(model.to(getattr(torch, cfg.dtype)), task, getattr(torch, cfg.dtype))
        except Exception:  # an operation without a meta kernel (or any other failure): try the next
            continue
    return None  # the estimate falls back on a formula


CPU_PROBE_PARAMS = 2_000_000  # a model measured for real on the CPU: at most this many parameters


def _fit_saved(model, task, dtype) -> tuple[int, int]:
    owned = {id(p) for p in model.parameters()}
    count = lambda batch, steps: _saved_in_forward(model, task, owned, batch, steps, dtype)  # noqa: E731
    length = task.seq_len
    if length > 16:
        try:
            (s11, s21), (s12, s22) = [(count(1, t), count(2, t)) for t in (8, 16)]
        except Exception:  # a model that needs the task's own length
            s11 = None
        if s11 is not None:
            d = ((s22 - s12) - (s21 - s11)) / 8
            b = (s21 - s11) - 8 * d
            c = (s12 - s11) / 8 - d
            a = s11 - b - 8 * c - 8 * d
            return max(0, round(a + c * length)), max(0, round(b + d * length))
    s1, s2 = count(1, length), count(2, length)
    return max(0, 2 * s1 - s2), max(0, s2 - s1)


def _meta_model(cfg, task):
    """The model as the harness builds it, on the meta device; a value the model would
    choose by computing (a heuristic step) is given as any number: it changes no size."""
    params = {**{f.name: f.default for f in dataclasses.fields(MODELS.get(cfg.model).Config)}, **cfg.model_params}
    chosen = {k: 0.1 for k, v in params.items() if v == "heuristic"}
    return build_model(cfg.model, input_size=task.input_size, output_size=task.output_size,
                       hidden_size=cfg.hidden_size, seq_len=None if chosen else task.seq_len,
                       **{**cfg.model_params, **chosen})


def _saved_in_forward(model, task, owned: set[int], batch: int, steps: int, dtype) -> int:
    """Bytes of the distinct tensors autograd saves in one forward and readout (parameters
    and their views left out), plus the output."""
    seen: dict[int, int] = {}
    kept = []  # alive until counted, so that no id is reused

    def pack(t):
        base = t._base if t._base is not None else t
        if id(base) not in owned and id(base) not in seen:
            kept.append(base)
            seen[id(base)] = base.untyped_storage().nbytes()
        return t

    x = torch.zeros(batch, steps, task.input_size, dtype=dtype)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model.readout(model.last_features(x)) if task.output_at == "last" \
            else probes.apply_readout(model, task, model(x))
    return sum(seen.values()) + out.numel() * out.element_size()
