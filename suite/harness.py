"""The harness: one run = task × model × hyperparameters × seed × device.

Data flows one way: :class:`RunConfig` → :func:`suite.build.resolve` (every default
filled in, checked, hashed) → task and model built from the registries → the training
loop below → a record on disk (:mod:`suite.records`) → reports built offline from
records (:mod:`suite.report`).

Rules the loop keeps, the same for every model:
- the loss is the task's per-example loss averaged over the batch (no regularizer);
- validation every ``eval_every`` steps and at the end; the test set is scored once,
  on the model chosen by ``selection`` ("best_val": the best validation checkpoint;
  "last": the final weights), and never informs any choice;
- training, evaluation, data and probe/logging time in separate accumulators; on
  CUDA the clock is read only after synchronizing;
- a non-finite loss or gradient ends the run with status "diverged" and its step;
- one seed drives torch, numpy, python's random and the training data.

Example::

    from suite import RunConfig, run
    record = run(RunConfig(task="adding", model="gru", steps=200, task_params={"T": 50}))
    print(record["metrics"]["test"])
"""

from __future__ import annotations

import dataclasses
import io
import math
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from suite import probes, records
from suite.build import Resolved, build_model, build_task, resolve
from suite.config import RunConfig
from suite.spec import Task

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


def make_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}
    return kinds[cfg["optimizer"]](params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])


def make_schedule(cfg: dict, optimizer, total_steps: int):
    """"constant"; "cosine" to zero over the budget; "step": ×0.1 at 90% of the budget."""
    if cfg["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if cfg["schedule"] == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [int(0.9 * total_steps)], gamma=0.1)
    return None


def total_steps_of(cfg: dict, task: Task) -> int:
    if cfg["epochs"] is None:
        return cfg["steps"]
    per_epoch = max(1, task.split_size("train") // cfg["batch_size"])
    return max(1, math.ceil(cfg["epochs"] * per_epoch))


def predict(model, task: Task, x: torch.Tensor) -> torch.Tensor:
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
        x, y = _to(x, device, dtype), _to(y, device, dtype)
        out = predict(model, task, x)
        values = {"loss": task.loss(out, y), **task.metrics(out, y)}
        for key, v in values.items():
            sums[key] = sums.get(key, 0.0) + v.double().sum().item()
        count += x.shape[0]
    model.train()
    return {k: v / count for k, v in sums.items()}


def _to(t: torch.Tensor, device, dtype) -> torch.Tensor:
    return t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)


def _better(a: float, b: float | None, higher: bool) -> bool:
    if b is None:
        return True
    return a > b if higher else a < b


def _reached(value: float, target: float | None, higher: bool) -> bool:
    if target is None:
        return False
    return value >= target if higher else value <= target


def _peak_memory(device) -> dict[str, Any]:
    if device.type == "cuda":
        return {"peak_bytes": torch.cuda.max_memory_allocated(device), "kind": "cuda_max_memory_allocated"}
    # ru_maxrss is KiB on Linux, bytes on macOS; it is the peak of the whole process
    scale = 1 if sys.platform == "darwin" else 1024
    return {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
            "kind": "process_max_rss"}


def run(config: RunConfig, *, out: str | Path | None = None, overwrite: bool = False,
        quiet: bool = False, data_dir: str | None = None) -> dict:
    """Run one experiment and return its record; write it under ``out`` when given.

    With ``out`` set and a finished record of the same configuration present, the run is
    skipped and the existing record returned, unless ``overwrite``.
    """
    resolved = resolve(config)
    target_dir = None
    if out is not None:
        target_dir = records.run_dir(out, config.task, config.model, config.seed, resolved.hash)
        if records.is_complete(target_dir) and not overwrite:
            print(f"skip: {target_dir} already holds this configuration (use --overwrite to rerun)")
            return {**records.load_record(target_dir), "path": str(target_dir)}
    record, curves = _train(resolved, quiet=quiet, data_dir=data_dir)
    if target_dir is not None:
        records.write_run(target_dir, record, curves, overwrite=overwrite)
        record["path"] = str(target_dir)
    return record


def _train(resolved: Resolved, *, quiet: bool, data_dir: str | None) -> tuple[dict, str]:
    cfg, device = resolved.config, resolved.device
    dtype = getattr(torch, cfg["dtype"])
    wall_start = time.perf_counter()
    seed_everything(cfg["seed"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    task = build_task(cfg["task"], data_dir=data_dir, **cfg["task_params"])
    model = build_model(cfg["model"], input_size=task.input_size, output_size=task.output_size,
                        hidden_size=cfg["hidden_size"], seq_len=task.seq_len,
                        **cfg["model_params"]).to(device=device, dtype=dtype)
    optimizer = make_optimizer(cfg, model.parameters())
    total_steps = total_steps_of(cfg, task)
    schedule = make_schedule(cfg, optimizer, total_steps)
    clock = Clock(device)
    higher = task.higher_is_better
    metric = task.metric

    # fixed probe batch: the first validation examples, the same for every model
    px, py = task.batch("val", 0, cfg["probe_batch"], seed=0)
    px, py = _to(px, device, dtype), _to(py, device, dtype)
    probe_steps = sorted({round(total_steps * (k + 1) / cfg["probes"]) for k in range(cfg["probes"])})
    hidden: dict[str, list[float]] = {}

    def probe(step: int) -> None:
        start = clock.now()
        hidden[str(step)] = probes.hidden_gradient_profile(model, task, px, py)
        clock.add("probe_log", start)

    probe(0)
    curves = io.StringIO()
    curves.write("step,split,loss,metric,grad_norm,lr,train_seconds\n")
    step_times: list[float] = []
    status, diverged_step, last_loss = "ok", None, None
    best_val, best_state, best_step = None, None, None
    val_history: list[tuple[int, float]] = []
    time_to_target = None
    grad_norm = float("nan")

    bar = tqdm(total=total_steps, disable=quiet, desc=f"{cfg['task']}/{cfg['model']} s{cfg['seed']}",
               leave=False, file=sys.stderr)
    for step in range(1, total_steps + 1):
        start = clock.now()
        x, y = task.batch("train", step - 1, cfg["batch_size"], seed=cfg["seed"])
        x, y = _to(x, device, dtype), _to(y, device, dtype)
        clock.add("data", start)

        start = clock.now()
        loss = task.loss(predict(model, task, x), y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = probes.total_grad_norm(model.parameters())
        last_loss = loss.item()
        if not (math.isfinite(last_loss) and math.isfinite(grad_norm)):
            clock.add("train", start)
            status, diverged_step = "diverged", step
            break
        if cfg["clip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        optimizer.step()
        if schedule is not None:
            schedule.step()
        step_times.append(clock.add("train", start))
        bar.update(1)

        start = clock.now()
        if step % cfg["log_every"] == 0 or step == total_steps:
            lr = optimizer.param_groups[0]["lr"]
            curves.write(f"{step},train,{last_loss!r},,{grad_norm!r},{lr!r},{clock.totals['train']!r}\n")
        clock.add("probe_log", start)

        if step % cfg["eval_every"] == 0 or step == total_steps:
            start = clock.now()
            val = evaluate(model, task, "val", device, dtype, cfg["val_batches"])
            clock.add("eval", start)
            val_history.append((step, val[metric]))
            curves.write(f"{step},val,{val['loss']!r},{val[metric]!r},,,{clock.totals['train']!r}\n")
            bar.set_postfix({metric: f"{val[metric]:.4g}"})
            if time_to_target is None and _reached(val[metric], task.target, higher):
                time_to_target = {"step": step, "train_seconds": clock.totals["train"]}
            if cfg["selection"] == "best_val" and _better(val[metric], best_val, higher):
                best_val, best_step = val[metric], step
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if step in probe_steps:
            probe(step)
    bar.close()

    if status == "ok" and cfg["selection"] == "best_val" and best_state is not None:
        model.load_state_dict(best_state)
    start = clock.now()
    test = evaluate(model, task, "test", device, dtype) if status == "ok" else None
    final_val = val_history[-1][1] if val_history else None
    clock.add("eval", start)

    ratios = {step: probes.gradient_ratio(profile) for step, profile in hidden.items()}
    last_probe = max(hidden, key=int)
    record = {
        "schema": records.SCHEMA_VERSION,
        "config_hash": resolved.hash,
        "task": cfg["task"],
        "model": cfg["model"],
        "seed": cfg["seed"],
        "status": status,
        "config": cfg,
        "task_info": {
            "version": task.version, "variant": task.variant, "metric": metric,
            "higher_is_better": higher, "seq_len": task.seq_len, "output_at": task.output_at,
            "target": task.target, **task.describe(),
        },
        "model_info": {
            "version": model.version,
            "n_params": sum(p.numel() for p in model.parameters()),
            # as built: values chosen before training (e.g. a heuristic Δt) filled in
            "resolved_params": dataclasses.asdict(model.cfg),
            "extra": model.extra_record(),
        },
        "metrics": {
            "selection": cfg["selection"],
            "selected_step": best_step if cfg["selection"] == "best_val" else (diverged_step or total_steps),
            "val_best": best_val if cfg["selection"] == "best_val" else final_val,
            "val_final": final_val,
            "test": test[metric] if test else None,
            "test_metrics": test,
            "final_train_loss": last_loss,
            "final_grad_norm": grad_norm,
            "steps_done": len(step_times),
            "diverged_step": diverged_step,
        },
        "gradients": {
            "probe_dtype": str(probes.PROBE_DTYPE).replace("torch.", ""),
            "probe_batch": cfg["probe_batch"],
            "hidden_profile": hidden,
            "ratio": ratios,
            "ratio_init": ratios["0"],
            "ratio_end": ratios[last_probe],
            "end_step": int(last_probe),
        },
        "timing": {
            "total_seconds": time.perf_counter() - wall_start,
            **{f"{k}_seconds": v for k, v in clock.totals.items()},
            "median_step_seconds": statistics.median(step_times) if step_times else None,
            "time_to_target": time_to_target,
        },
        "memory": _peak_memory(device),
        "environment": records.environment(device),
    }
    return record, curves.getvalue()
