"""The harness: one run = task × model × hyperparameters × seed × device.

Data flows one way: :class:`RunConfig` → :func:`suite.core.build.resolve` (every default
filled in, checked, hashed) → task and model built from the registries → the training
loop below (its shared rules, one function each, in :mod:`suite.core.training`; what it
works on and its checkpoints in :mod:`suite.core.run_state`) → a record
on disk (:mod:`suite.core.records`) → reports built offline from records (:mod:`suite.analysis.report`).

Rules the loop keeps, the same for every model:
- the loss is the task's per-example loss averaged over the batch (no regularizer);
- validation every ``eval_every`` steps (or ``eval_every_epochs`` epochs) and at the end; the test set is scored once,
  on the model chosen by ``selection`` ("best_val": the best validation checkpoint;
  "last": the final weights), and never informs any choice;
- training, evaluation, data and probe/logging time in separate accumulators; on
  CUDA the clock is read only after synchronizing;
- a non-finite loss or gradient ends the run with status "diverged" and its step; a
  non-finite final validation or test metric makes it "diverged" too, never "ok"
  (the one rule: :func:`suite.core.records.outcome`);
- one seed drives torch, numpy, python's random and the training data.

Example::

    from suite import RunConfig, run
    record = run(RunConfig(task="adding", model="gru", steps=200, task_params={"T": 50}))
    print(record["metrics"]["test"])
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from suite.core import claims, probes, records, training
from suite.core.build import Resolved, build_task, resolve
from suite.core.checkpoint import Checkpoint
from suite.core.config import RunConfig
from suite.core.progress import bars_shown
from suite.core.registry import SuiteError
from suite.core.run_state import Progress, Setup, resume, save, setup
from suite.core.spec import Task


def run(config: RunConfig | Resolved, *, out: str | Path | None = None, overwrite: bool = False,
        quiet: bool = False, data_dir: str | None = None, checkpoint_every: int = 500,
        on_eval: Callable[[int, float], None] | None = None, launcher: dict | None = None,
        nested: bool = True) -> dict:
    """Run one experiment and return its record; write it under ``out`` when given.

    With ``out`` set: a finished record of the same configuration is not rerun (its
    record is returned) unless ``overwrite``; the cell is claimed first
    (:mod:`suite.core.claims`), so that workers sharing ``out`` split the cells: a cell a
    live worker holds raises :class:`~suite.core.claims.CellBusy`; the run checkpoints every
    ``checkpoint_every`` steps (0: never) and, started again after being killed,
    resumes from its last checkpoint to the same final record (timings aside). The
    returned record also has ``path`` and ``outcome`` ("ran" or "complete": found
    finished). ``on_eval(step, value)`` is called after every validation with the
    headline metric (the tuner reports to its pruner there); an exception it raises
    ends the run and propagates, and no record is written. ``launcher`` (what placed
    the run: a cluster job's ids and node, :mod:`suite.cli.launch`) is stored as the
    record's ``launcher`` entry. ``nested``: the record's folder under ``out``
    (:func:`suite.core.records.run_dir`).
    """
    if checkpoint_every < 0:
        raise SuiteError(f"--checkpoint-every {checkpoint_every} must be >= 0 (0: never checkpoint)")
    # resolved once (a caller that has checked the configuration passes what it resolved),
    # the task built once; both serve every step below
    resolved = config if isinstance(config, Resolved) else resolve(config)
    cfg = resolved.config
    task = build_task(cfg["task"], data_dir=data_dir, **cfg["task_params"])
    if out is None:
        record, _ = _train(resolved, task, quiet=quiet, on_eval=on_eval)
        return {**record, "outcome": "ran"}
    target_dir = records.run_dir(out, cfg["task"], cfg["model"], cfg["seed"], resolved.hash, nested=nested)
    if records.is_complete(target_dir) and not overwrite:
        return _finished(target_dir)
    task.batch("val", 0, 1, seed=0)  # missing data is an error before any file exists
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
        record, curves = _train(resolved, task, quiet=quiet, checkpoint=checkpoint, on_eval=on_eval)
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
    try:
        record = records.load_record(target_dir)
    except records.RecordError as exc:
        raise records.RecordError(f"{exc}; the way out: rerun with --overwrite to replace it, "
                                  f"or remove {target_dir}") from None
    print(f"skip: {target_dir} already holds this configuration (use --overwrite to rerun)")
    checkpoint = records.checkpoint_path(target_dir)
    if checkpoint.exists() or claims.claim_path(target_dir).exists():
        # its worker was killed between writing the record and cleaning up: clean up for it
        with contextlib.suppress(claims.CellBusy, OSError), claims.Claim.acquire(target_dir):
            checkpoint.unlink(missing_ok=True)
            records.remove_leftovers(target_dir)
    return {**record, "path": str(target_dir), "outcome": "complete"}




def _train_step(s: Setup, p: Progress, step: int) -> bool:
    """One optimizer step; False (the run marked diverged) on a non-finite loss or gradient."""
    cfg, clock = s.cfg, s.clock
    start = clock.now()
    x, y = s.task.batch("train", step - 1, cfg["batch_size"], seed=cfg["seed"])
    x, y = training.to_device(x, s.device, s.dtype), training.to_device(y, s.device, s.dtype)
    clock.add("data", start)

    start = clock.now()
    loss = s.task.loss(s.train_forward(x), y).mean()
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    p.grad_norm = probes.total_grad_norm(s.model.parameters())
    p.last_loss = loss.item()
    if not (math.isfinite(p.last_loss) and math.isfinite(p.grad_norm)):
        clock.add("train", start)
        p.status, p.diverged_step = "diverged", step
        return False
    if cfg["clip"] is not None:
        torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg["clip"])
    if cfg["clip_value"] is not None:
        torch.nn.utils.clip_grad_value_(s.model.parameters(), cfg["clip_value"])
    s.optimizer.step()
    s.model.constrain()
    if s.schedule is not None:
        s.schedule.step()
    p.step_times.append(clock.add("train", start))
    p.step = step
    return True


def _validate(s: Setup, p: Progress, step: int) -> float:
    """Score the validation split; note the time to target and the best checkpoint."""
    metric, higher = s.task.metric, s.task.higher_is_better
    start = s.clock.now()
    val = training.evaluate(s.model, s.task, "val", s.device, s.dtype, s.cfg["val_batches"])
    s.clock.add("eval", start)
    p.val_history.append((step, val[metric]))
    p.curves.append(f"{step},val,{val['loss']!r},{val[metric]!r},,,{s.clock.totals['train']!r}")
    if p.time_to_target is None and training.reached(val[metric], s.task.target, higher):
        p.time_to_target = {"step": step, "train_seconds": s.clock.totals["train"]}
    if s.cfg["selection"] == "best_val" and training.better(val[metric], p.best_val, higher):
        p.best_val, p.best_step = val[metric], step
        p.best_state = {k: v.detach().clone() for k, v in s.model.state_dict().items()}
    return val[metric]


def _train(resolved: Resolved, task: Task, *, quiet: bool, checkpoint: Checkpoint | None = None,
           on_eval: Callable[[int, float], None] | None = None) -> tuple[dict, str]:
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    s = setup(resolved, task)
    cfg = s.cfg
    p = resume(s, checkpoint, quiet)
    if p is None:  # a checkpoint that did not fit may have changed the model: start over, from the seed
        s = setup(resolved, task)
        p = resume(s, None, quiet)
    bar = tqdm(total=s.total_steps, initial=p.step, disable=not bars_shown(quiet), leave=False, file=sys.stderr,
               desc=f"{cfg['task']}/{cfg['model']} s{cfg['seed']}")
    for step in range(p.step + 1, s.total_steps + 1):
        if not _train_step(s, p, step):
            break
        bar.update(1)
        if step % cfg["log_every"] == 0 or step == s.total_steps:
            lr = s.optimizer.param_groups[0]["lr"]
            p.curves.append(f"{step},train,{p.last_loss!r},,{p.grad_norm!r},{lr!r},{s.clock.totals['train']!r}")
        if step % s.eval_interval == 0 or step == s.total_steps:
            value = _validate(s, p, step)
            bar.set_postfix({s.task.metric: f"{value:.4g}"})
            if on_eval is not None:
                on_eval(step, value)
        if step in s.probe_steps:
            s.probe(p, step)
        if checkpoint is not None and step % checkpoint.every == 0 and step < s.total_steps:
            save(s, p, checkpoint, resolved.hash)
    bar.close()

    if p.status == "ok" and cfg["selection"] == "best_val" and p.best_state is not None:
        s.model.load_state_dict(p.best_state)
    start = s.clock.now()
    test = training.evaluate(s.model, s.task, "test", s.device, s.dtype) if p.status == "ok" else None
    s.clock.add("eval", start)
    _decide_outcome(s, p, test)
    curves = "step,split,loss,metric,grad_norm,lr,train_seconds\n" + "".join(row + "\n" for row in p.curves)
    return _record(resolved, s, p, test, wall_start, cpu_start), curves


def _decide_outcome(s: Setup, p: Progress, test: dict | None) -> None:
    """The run's state by the one rule of :func:`suite.core.records.outcome`; a run that
    ends on a non-finite final validation or test metric diverged at its first non-finite
    validation (or at its last step when only the test is not finite)."""
    final_val = p.val_history[-1][1] if p.val_history else None
    p.status = records.outcome(p.status, {"val_final": final_val, "test": test[s.task.metric] if test else None})
    if p.status == "diverged" and p.diverged_step is None:
        p.diverged_step = next((step for step, v in p.val_history if not math.isfinite(v)), p.step)


def _record(resolved: Resolved, s: Setup, p: Progress, test: dict | None, wall_start: float,
            cpu_start: float) -> dict:
    cfg, task, model, metric = s.cfg, s.task, s.model, s.task.metric
    final_val = p.val_history[-1][1] if p.val_history else None
    ratios = {step: probes.gradient_ratio(profile) for step, profile in p.hidden.items()}
    last_probe = max(p.hidden, key=int)
    best = cfg["selection"] == "best_val"
    return {
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
            "higher_is_better": task.higher_is_better, "seq_len": task.seq_len, "output_at": task.output_at,
            "target": task.target, "steps_per_epoch": training.steps_per_epoch(cfg, task), **task.describe(),
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
            "selected_step": p.best_step if best else (p.diverged_step or s.total_steps),
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
            # CPU time of this process (all its threads) over the same span: what a table's cost sums
            "cpu_seconds": time.process_time() - cpu_start,
            "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **{f"{k}_seconds": v for k, v in s.clock.totals.items()},
            "median_step_seconds": statistics.median(p.step_times) if p.step_times else None,
            "time_to_target": p.time_to_target,
            "resumed_at_steps": p.resumed_at,
            "train_step": s.train_forward.kind,  # "cuda_graph" or "eager" (suite.core.cuda_graph)
        },
        "memory": training.peak_memory(s.device),
        "environment": records.environment(s.device),
    }
