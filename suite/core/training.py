"""The rules every run of :mod:`suite.core.harness` shares, one function each: the seed, the
optimizer over a model's parameter groups, the learning-rate schedule, the budget and
the validation cadence in steps, the forward the loss reads (:func:`predict`), the
evaluation of a split, and the clock that splits wall time into categories.
"""

from __future__ import annotations

import math
import random
import resource
import sys
import time
from typing import Any

import numpy as np
import torch

from suite.core import probes
from suite.core.spec import Task

EVAL_BATCH = 256  # evaluation batch size: large for speed, fixed so scores never depend on it


class Clock:
    """Accumulates seconds per category; synchronizes CUDA before every reading."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.totals: dict[str, float] = {"train": 0.0, "eval": 0.0, "data": 0.0, "probe_log": 0.0}

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def add(self, category: str, start: float) -> float:
        elapsed = self.now() - start
        self.totals[category] += elapsed
        return elapsed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(cfg: dict, model) -> torch.optim.Optimizer:
    """One optimizer over the model's parameter groups, each at ``lr × lr_scale``."""
    groups = model.param_groups()
    grouped = [id(p) for g in groups for p in g["params"]]
    if sorted(grouped) != sorted(id(p) for p in model.parameters()):
        raise RuntimeError(f"{type(model).__name__}.param_groups must hold every parameter exactly once")
    params = [{"params": list(g["params"]), "lr": cfg["lr"] * g.get("lr_scale", 1.0),
               **({"weight_decay": g["weight_decay"]} if "weight_decay" in g else {})} for g in groups]
    kwargs = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cfg["optimizer"] != "adam":
        kwargs["momentum"] = cfg["momentum"]
    kinds = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
    return kinds[cfg["optimizer"]](params, **kwargs)


def steps_per_epoch(cfg: dict, task: Task) -> int | None:
    """Optimizer steps in one epoch, as the task batches it; None for streams."""
    return task.steps_per_epoch(cfg["batch_size"])


def make_schedule(cfg: dict, optimizer, total_steps: int, per_epoch: int | None):
    """"constant"; "cosine" to zero over the budget; "step": ×0.1 at 90% of the budget;
    "milestones": × lr_decay at each milestone (epochs under an epochs budget, else steps)."""
    if cfg["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if cfg["schedule"] == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(0.9 * total_steps)], gamma=0.1)
    if cfg["schedule"] == "milestones":
        unit = per_epoch if cfg["epochs"] is not None else 1
        steps = [round(m * unit) for m in cfg["milestones"]]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, steps, gamma=cfg["lr_decay"])
    return None


def total_steps_of(cfg: dict, task: Task) -> int:
    if cfg["epochs"] is None:
        return cfg["steps"]
    return max(1, math.ceil(cfg["epochs"] * steps_per_epoch(cfg, task)))


def eval_interval_of(cfg: dict, task: Task) -> int:
    """Validation cadence in steps: ``eval_every``, or ``eval_every_epochs`` epochs."""
    if cfg["eval_every_epochs"] is None:
        return cfg["eval_every"]
    return max(1, round(cfg["eval_every_epochs"] * steps_per_epoch(cfg, task)))


def predict(model, task: Task, x: torch.Tensor) -> torch.Tensor:
    if task.output_at == "last":  # the model may then skip every other step's features
        return model.readout(model.last_features(x))
    return probes.apply_readout(model, task, model(x))


@torch.no_grad()
def evaluate(model, task: Task, split: str, device, dtype, max_batches: int | None = None) -> dict[str, float]:
    """Mean loss and mean of every per-example metric over ``split``."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    for i, (x, y) in enumerate(task.batches(split, EVAL_BATCH, seed=0)):
        if max_batches is not None and i >= max_batches:
            break
        x, y = to_device(x, device, dtype), to_device(y, device, dtype)
        out = predict(model, task, x)
        values = {"loss": task.loss(out, y), **task.metrics(out, y)}
        for key, v in values.items():
            sums[key] = sums.get(key, 0.0) + v.double().sum().item()
        count += x.shape[0]
    model.train()
    return {k: v / count for k, v in sums.items()}


def to_device(t: torch.Tensor, device, dtype) -> torch.Tensor:
    return t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)


def better(a: float, b: float | None, higher: bool) -> bool:
    if b is None:
        return True
    return a > b if higher else a < b


def reached(value: float, target: float | None, higher: bool) -> bool:
    if target is None:
        return False
    return value >= target if higher else value <= target


def peak_memory(device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"peak_bytes": torch.cuda.max_memory_allocated(device), "kind": "cuda_max_memory_allocated"}
    # ru_maxrss is KiB on Linux, bytes on macOS; it is the peak of the whole process
    scale = 1 if sys.platform == "darwin" else 1024
    return {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
            "kind": "process_max_rss"}
