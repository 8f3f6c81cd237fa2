"""What a run works on, and how it is saved and restored: the loop's mutable state
(:class:`Progress`), what it is built from (:class:`Setup`, once per run from the
resolved configuration), and the checkpoint round trip (:func:`save`, :func:`resume`).

A resumed run must end in the same record as one never stopped (timings aside), so a
checkpoint holds everything the loop reads: model, optimizer, schedule, the three RNGs
and :class:`Progress`; a checkpoint that does not fit this run is set aside, never half
applied (:func:`resume`).
"""

from __future__ import annotations

import dataclasses
import random
import sys
from typing import Any

import numpy as np
import torch

from suite.core import probes, records, training
from suite.core.build import Resolved, build_model
from suite.core.checkpoint import Checkpoint
from suite.core.cuda_graph import TrainForward
from suite.core.spec import Task


@dataclasses.dataclass
class Progress:
    """The loop's mutable state: what a checkpoint holds besides model and optimizer."""

    step: int = 0
    step_times: list = dataclasses.field(default_factory=list)
    curves: list = dataclasses.field(default_factory=list)  # CSV rows
    hidden: dict = dataclasses.field(default_factory=dict)  # probe step -> profile
    val_history: list = dataclasses.field(default_factory=list)
    best_val: float | None = None
    best_step: int | None = None
    best_state: dict | None = None
    time_to_target: dict | None = None
    last_loss: float | None = None
    grad_norm: float = float("nan")
    status: str = "ok"
    diverged_step: int | None = None
    clock: dict = dataclasses.field(default_factory=dict)
    resumed_at: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Setup:
    """What the loop works on, built once from the resolved configuration."""

    cfg: dict
    device: torch.device
    dtype: torch.dtype
    task: Task
    model: Any
    optimizer: torch.optim.Optimizer
    schedule: Any
    train_forward: TrainForward
    clock: training.Clock
    total_steps: int
    eval_interval: int
    probe_batch: tuple[torch.Tensor, torch.Tensor]  # the first validation examples, the same for every model
    probe_steps: list[int]

    def probe(self, p: Progress, step: int) -> None:
        start = self.clock.now()
        p.hidden[str(step)] = probes.hidden_gradient_profile(self.model, self.task, *self.probe_batch)
        self.clock.add("probe_log", start)


def setup(resolved: Resolved, task: Task) -> Setup:
    cfg, device = resolved.config, resolved.device
    dtype = getattr(torch, cfg["dtype"])
    training.seed_everything(cfg["seed"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = build_model(cfg["model"], input_size=task.input_size, output_size=task.output_size,
                        hidden_size=cfg["hidden_size"], seq_len=task.seq_len,
                        **cfg["model_params"]).to(device=device, dtype=dtype)
    optimizer = training.make_optimizer(cfg, model)
    # graphed when asked, on CUDA
    train_forward = TrainForward(model, lambda x: training.predict(model, task, x), device)
    total_steps = training.total_steps_of(cfg, task)
    schedule = training.make_schedule(cfg, optimizer, total_steps, training.steps_per_epoch(cfg, task))
    px, py = task.batch("val", 0, cfg["probe_batch"], seed=0)
    return Setup(cfg, device, dtype, task, model, optimizer, schedule, train_forward, training.Clock(device),
                  total_steps, training.eval_interval_of(cfg, task),
                  (training.to_device(px, device, dtype), training.to_device(py, device, dtype)),
                  sorted({round(total_steps * (k + 1) / cfg["probes"]) for k in range(cfg["probes"])}))


def restore(s: Setup, saved: dict) -> Progress:
    """Model, optimizer, schedule, clock and RNGs from ``saved``; any misfit raises (and may
    have changed some of them: the caller then builds the run afresh)."""
    progress = saved["progress"]
    if not (isinstance(progress, dict) and type(progress.get("step")) is int
            and 0 < progress["step"] < s.total_steps):
        raise ValueError(f"its step is not one of this run's 1 .. {s.total_steps - 1}")
    if (saved["schedule"] is None) != (s.schedule is None):
        raise ValueError("its learning-rate schedule is not this run's")
    s.model.load_state_dict(saved["model"])
    s.optimizer.load_state_dict(saved["optimizer"])
    if s.schedule is not None:
        s.schedule.load_state_dict(saved["schedule"])
    p = Progress(**progress)
    s.clock.totals.update(p.clock)
    torch.set_rng_state(saved["rng"]["torch"])
    np.random.set_state(saved["rng"]["numpy"])
    random.setstate(saved["rng"]["python"])
    return p


def resume(s: Setup, checkpoint: Checkpoint | None, quiet: bool) -> Progress | None:
    """The progress of a checkpointed run, its model, optimizer, schedule and RNGs restored;
    a fresh one (the step-0 probe taken) when there is none; None when the checkpoint did
    not fit (set aside): the caller builds the run afresh."""
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is None:
        p = Progress()
        s.probe(p, 0)
        return p
    try:
        p = restore(s, saved)
    except Exception as exc:  # what an upgrade between a kill and a resume gives: shapes, fields, states
        checkpoint.set_aside(f"does not fit this run ({records.cause(exc)})")
        return None
    p.resumed_at.append(p.step)
    if not quiet:
        print(f"resuming {s.cfg['task']}/{s.cfg['model']} seed {s.cfg['seed']} at step {p.step}", file=sys.stderr)
    return p


def save(s: Setup, p: Progress, checkpoint: Checkpoint, config_hash: str) -> None:
    start = s.clock.now()
    p.clock = dict(s.clock.totals)
    checkpoint.save({
        "model": s.model.state_dict(), "optimizer": s.optimizer.state_dict(),
        "schedule": s.schedule.state_dict() if s.schedule is not None else None,
        "progress": dataclasses.asdict(p),
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        "config_hash": config_hash,
    })
    s.clock.add("probe_log", start)
