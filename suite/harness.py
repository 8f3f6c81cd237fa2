"""The harness: one run = task × model × hyperparameters × seed × device.

Data flows one way: :class:`RunConfig` → :func:`suite.build.resolve` (every default
filled in, checked, hashed) → task and model built from the registries → the training
loop below → a record on disk (:mod:`suite.records`) → reports built offline from
records (:mod:`suite.report`).

Rules the loop keeps, the same for every model:
- the loss is the task's per-example loss averaged over the batch (no regularizer);
- validation every ``eval_every`` steps (or ``eval_every_epochs`` epochs) and at the end; the test set is scored once,
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

import contextlib
import dataclasses
import math
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from suite import claims, probes, records
from suite.build import Resolved, build_model, build_task, resolve
from suite.checkpoint import Checkpoint
from suite.config import RunConfig
from suite.cuda_graph import TrainForward
from suite.registry import SuiteError
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
        quiet: bool = False, data_dir: str | None = None, checkpoint_every: int = 500,
        on_eval: Callable[[int, float], None] | None = None, launcher: dict | None = None) -> dict:
    """Run one experiment and return its record; write it under ``out`` when given.

    With ``out`` set: a finished record of the same configuration is not rerun (its
    record is returned) unless ``overwrite``; the cell is claimed first
    (:mod:`suite.claims`), so that workers sharing ``out`` split the cells: a cell a
    live worker holds raises :class:`~suite.claims.CellBusy`; the run checkpoints every
    ``checkpoint_every`` steps (0: never) and, started again after being killed,
    resumes from its last checkpoint to the same final record (timings aside). The
    returned record also has ``path`` and ``outcome`` ("ran" or "complete": found
    finished). ``on_eval(step, value)`` is called after every validation with the
    headline metric (the tuner reports to its pruner there); an exception it raises
    ends the run and propagates, and no record is written. ``launcher`` (what placed
    the run: a cluster job's ids and node, :mod:`suite.launch`) is stored as the
    record's ``launcher`` entry.
    """
    if checkpoint_every < 0:
        raise SuiteError(f"--checkpoint-every {checkpoint_every} must be >= 0 (0: never checkpoint)")
    resolved = resolve(config)
    if out is None:
        record, _ = _train(resolved, quiet=quiet, data_dir=data_dir, on_eval=on_eval)
        return {**record, "outcome": "ran"}
    target_dir = records.run_dir(out, config.task, config.model, config.seed, resolved.hash)
    if records.is_complete(target_dir) and not overwrite:
        return _finished(target_dir)
    # missing data is an error before any file exists; a read-only disk costs no training
    build_task(config.task, data_dir=data_dir, **resolved.config["task_params"]).batch("val", 0, 1, seed=0)
    records.check_writable(target_dir.parent)
    try:
        claim = claims.Claim.acquire(target_dir)
    except OSError as exc:
        raise records.write_error("the claim of", target_dir, exc) from None
    with claim:
        if records.is_complete(target_dir) and not overwrite:  # finished while we looked
            return _finished(target_dir)
        removed = records.remove_leftovers(target_dir)
        if removed and not quiet:
            print(f"removed what an interrupted write left: {', '.join(p.name for p in removed)}", file=sys.stderr)
        checkpoint = None
        if checkpoint_every > 0:
            checkpoint = Checkpoint(records.checkpoint_path(target_dir), checkpoint_every, fresh=overwrite,
                                    config_hash=resolved.hash, claim=claim)
        record, curves = _train(resolved, quiet=quiet, data_dir=data_dir, checkpoint=checkpoint, on_eval=on_eval)
        if launcher is not None:
            record["launcher"] = launcher
        claim.check()
        if not records.write_run(target_dir, record, curves, overwrite=overwrite):
            return _finished(target_dir)  # only if a taken-over claim raced its taker to the end
        claim.finished()
        if checkpoint is not None:
            checkpoint.remove()
    return {**record, "path": str(target_dir), "outcome": "ran"}


def _finished(target_dir: Path) -> dict:
    print(f"skip: {target_dir} already holds this configuration (use --overwrite to rerun)")
    record = records.load_record(target_dir)
    checkpoint = records.checkpoint_path(target_dir)
    if checkpoint.exists() or claims.claim_path(target_dir).exists():
        # its worker was killed between writing the record and cleaning up: clean up for it
        with contextlib.suppress(claims.CellBusy, OSError), claims.Claim.acquire(target_dir):
            checkpoint.unlink(missing_ok=True)
            records.remove_leftovers(target_dir)
    return {**record, "path": str(target_dir), "outcome": "complete"}


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


def _train(resolved: Resolved, *, quiet: bool, data_dir: str | None, checkpoint: Checkpoint | None = None,
           on_eval: Callable[[int, float], None] | None = None) -> tuple[dict, str]:
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
    optimizer = make_optimizer(cfg, model)
    train_forward = TrainForward(model, lambda x: predict(model, task, x), device)  # graphed when asked, on CUDA
    total_steps = total_steps_of(cfg, task)
    schedule = make_schedule(cfg, optimizer, total_steps, steps_per_epoch(cfg, task))
    eval_interval = eval_interval_of(cfg, task)
    clock = Clock(device)
    higher = task.higher_is_better
    metric = task.metric

    # fixed probe batch: the first validation examples, the same for every model
    px, py = task.batch("val", 0, cfg["probe_batch"], seed=0)
    px, py = _to(px, device, dtype), _to(py, device, dtype)
    probe_steps = sorted({round(total_steps * (k + 1) / cfg["probes"]) for k in range(cfg["probes"])})
    p = Progress()

    def probe(step: int) -> None:
        start = clock.now()
        p.hidden[str(step)] = probes.hidden_gradient_profile(model, task, px, py)
        clock.add("probe_log", start)

    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if schedule is not None:
            schedule.load_state_dict(saved["schedule"])
        p = Progress(**saved["progress"])
        clock.totals.update(p.clock)
        torch.set_rng_state(saved["rng"]["torch"])
        np.random.set_state(saved["rng"]["numpy"])
        random.setstate(saved["rng"]["python"])
        p.resumed_at.append(p.step)
        if not quiet:
            print(f"resuming {cfg['task']}/{cfg['model']} seed {cfg['seed']} at step {p.step}", file=sys.stderr)
    else:
        probe(0)

    def save_checkpoint() -> None:
        start = clock.now()
        p.clock = dict(clock.totals)
        checkpoint.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict() if schedule is not None else None,
            "progress": dataclasses.asdict(p),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
            "config_hash": resolved.hash,
        })
        clock.add("probe_log", start)

    bar = tqdm(total=total_steps, initial=p.step, disable=quiet, leave=False, file=sys.stderr,
               desc=f"{cfg['task']}/{cfg['model']} s{cfg['seed']}")
    for step in range(p.step + 1, total_steps + 1):
        start = clock.now()
        x, y = task.batch("train", step - 1, cfg["batch_size"], seed=cfg["seed"])
        x, y = _to(x, device, dtype), _to(y, device, dtype)
        clock.add("data", start)

        start = clock.now()
        loss = task.loss(train_forward(x), y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        p.grad_norm = probes.total_grad_norm(model.parameters())
        p.last_loss = loss.item()
        if not (math.isfinite(p.last_loss) and math.isfinite(p.grad_norm)):
            clock.add("train", start)
            p.status, p.diverged_step = "diverged", step
            break
        if cfg["clip"] is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
        if cfg["clip_value"] is not None:
            torch.nn.utils.clip_grad_value_(model.parameters(), cfg["clip_value"])
        optimizer.step()
        model.constrain()
        if schedule is not None:
            schedule.step()
        p.step_times.append(clock.add("train", start))
        p.step = step
        bar.update(1)

        if step % cfg["log_every"] == 0 or step == total_steps:
            lr = optimizer.param_groups[0]["lr"]
            p.curves.append(f"{step},train,{p.last_loss!r},,{p.grad_norm!r},{lr!r},{clock.totals['train']!r}")

        if step % eval_interval == 0 or step == total_steps:
            start = clock.now()
            val = evaluate(model, task, "val", device, dtype, cfg["val_batches"])
            clock.add("eval", start)
            p.val_history.append((step, val[metric]))
            p.curves.append(f"{step},val,{val['loss']!r},{val[metric]!r},,,{clock.totals['train']!r}")
            bar.set_postfix({metric: f"{val[metric]:.4g}"})
            if p.time_to_target is None and _reached(val[metric], task.target, higher):
                p.time_to_target = {"step": step, "train_seconds": clock.totals["train"]}
            if cfg["selection"] == "best_val" and _better(val[metric], p.best_val, higher):
                p.best_val, p.best_step = val[metric], step
                p.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if on_eval is not None:
                on_eval(step, val[metric])
        if step in probe_steps:
            probe(step)
        if checkpoint is not None and step % checkpoint.every == 0 and step < total_steps:
            save_checkpoint()
    bar.close()

    if p.status == "ok" and cfg["selection"] == "best_val" and p.best_state is not None:
        model.load_state_dict(p.best_state)
    start = clock.now()
    test = evaluate(model, task, "test", device, dtype) if p.status == "ok" else None
    final_val = p.val_history[-1][1] if p.val_history else None
    clock.add("eval", start)

    ratios = {step: probes.gradient_ratio(profile) for step, profile in p.hidden.items()}
    last_probe = max(p.hidden, key=int)
    best = cfg["selection"] == "best_val"
    record = {
        "schema": records.SCHEMA_VERSION,
        "config_hash": resolved.hash,
        "task": cfg["task"],
        "model": cfg["model"],
        "seed": cfg["seed"],
        "status": p.status,
        "config": cfg,
        "provenance": resolved.provenance,
        "task_info": {
            "version": task.version, "variant": task.variant, "metric": metric,
            "higher_is_better": higher, "seq_len": task.seq_len, "output_at": task.output_at,
            "target": task.target, "steps_per_epoch": steps_per_epoch(cfg, task), **task.describe(),
        },
        "model_info": {
            "version": model.version,
            "n_params": sum(q.numel() for q in model.parameters()),
            # as built: values chosen before training (e.g. a heuristic Δt) filled in
            "resolved_params": dataclasses.asdict(model.cfg),
            "extra": model.extra_record(),
        },
        "metrics": {
            "selection": cfg["selection"],
            "selected_step": p.best_step if best else (p.diverged_step or total_steps),
            "val_best": p.best_val if best else final_val,
            "val_final": final_val,
            "test": test[metric] if test else None,
            "test_metrics": test,
            "final_train_loss": p.last_loss,
            "final_grad_norm": p.grad_norm,
            "steps_done": len(p.step_times),
            "diverged_step": p.diverged_step,
        },
        "gradients": {
            "probe_dtype": str(probes.PROBE_DTYPE).replace("torch.", ""),
            "probe_batch": cfg["probe_batch"],
            "hidden_profile": p.hidden,
            "ratio": ratios,
            "ratio_init": ratios["0"],
            "ratio_end": ratios[last_probe],
            "end_step": int(last_probe),
        },
        "timing": {
            # wall time of this process only; a resumed run's per-category seconds add up all segments
            "total_seconds": time.perf_counter() - wall_start,
            **{f"{k}_seconds": v for k, v in clock.totals.items()},
            "median_step_seconds": statistics.median(p.step_times) if p.step_times else None,
            "time_to_target": p.time_to_target,
            "resumed_at_steps": p.resumed_at,
            "train_step": train_forward.kind,  # "cuda_graph" or "eager" (suite.cuda_graph)
        },
        "memory": _peak_memory(device),
        "environment": records.environment(device),
    }
    curves = "step,split,loss,metric,grad_norm,lr,train_seconds\n" + "".join(row + "\n" for row in p.curves)
    return record, curves
