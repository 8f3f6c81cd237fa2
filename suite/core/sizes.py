"""Sizes checked before a run builds anything: the probe and training batches against
the task's splits, and the memory the run needs against what its device has.

The memory estimate covers a training step: the parameters (counted on a model built on
torch's "meta" device, which allocates nothing) with their gradients, the optimizer's
state and the best-validation copy; what autograd keeps for the backward pass, counted
on the meta device for this model at this width and sequence length
(:func:`suite.core.build.saved_bytes`: every model's own intermediate values, scaled
to the batch size) times ``SAVED_FACTOR``, and never less than ``PER_FEATURE_STEP``
values per feature per step; the input batch as the task makes
it (``INPUT_COPIES``: its generation's temporaries); and the fixed validation and test
sets. ``tests/test_records_trust.py`` holds it against the measured peak of a small
run of every model.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from suite.core.registry import SuiteError

# tensors of the same size as the parameters, besides the parameters themselves
OPTIMIZER_COPIES = {"adam": 2, "rmsprop": 1, "sgd": 0}  # Adam: two moments; RMSprop: the square average


INPUT_COPIES = 4  # a task draws a batch in float64 and converts it: several copies at once
# The backward pass holds, besides what autograd saved, the gradients flowing back and what
# a fused pass keeps outside autograd's sight: measured on the CPU (tests/test_records_trust.py),
# a step's peak is at most 2.2x the saved bytes, and at most 8 values per feature per step
# where the saved bytes are few (the fused passes); the estimate takes the larger of the two.
SAVED_FACTOR = 2.5
PER_FEATURE_STEP = 10


def check_sizes(cfg, task, device: torch.device, counts: tuple) -> None:
    """Refuse a probe or training batch larger than its split, and a run whose memory
    estimate exceeds the device's memory. ``cfg`` is a validated RunConfig; ``counts`` the
    model's (parameter count, feature width, saved bytes), from
    :func:`suite.core.build.count_parameters`."""
    val, train = task.split_size("val"), task.split_size("train")
    if val is not None and cfg.probe_batch > val:
        raise SuiteError(f"probe_batch={cfg.probe_batch} exceeds the {val} validation examples of {cfg.task} "
                         f"(the probe uses the first ones): use probe_batch <= {val}")
    if train is not None and cfg.batch_size > train:
        raise SuiteError(f"batch_size={cfg.batch_size} exceeds the {train} training examples of {cfg.task}: "
                         f"use batch_size <= {train}")
    need = memory_floor(cfg, task, counts)
    have, where = device_memory(device)
    if have is not None and sum(need.values()) > have:
        parts = ", ".join(f"{what} {human(n)}" for what, n in need.items() if n)
        raise SuiteError(f"{cfg.model} on {cfg.task} (hidden_size={cfg.hidden_size}, batch_size={cfg.batch_size}, "
                         f"sequence length {task.seq_len}) needs at least {human(sum(need.values()))} of memory "
                         f"({parts}), more than the {human(have)} of {where}: use smaller sizes")


def memory_floor(cfg, task, counts: tuple) -> dict[str, int]:
    """Bytes that a training step holds at once, by what holds them."""
    width = 8 if cfg.dtype == "float64" else 4
    n_params, features = counts[0], counts[1]
    saved = counts[2] if len(counts) > 2 else None
    copies = 2 + OPTIMIZER_COPIES[cfg.optimizer]  # the parameters and their gradients, then the optimizer's
    copies += int(cfg.optimizer != "adam" and getattr(cfg, "momentum", 0) > 0)  # a momentum buffer
    copies += int(cfg.selection == "best_val")  # the best validation weights, kept for the test
    fixed = sum(task.split_size(s) or 0 for s in ("val", "test"))
    kept = PER_FEATURE_STEP * cfg.batch_size * task.seq_len * features * width
    if saved is not None:
        kept = max(kept, round(SAVED_FACTOR * (saved[0] + saved[1] * cfg.batch_size)))
    return {
        "parameters, gradients and optimizer state": n_params * width * copies,
        "values kept for the backward pass": kept,
        "the input batch": INPUT_COPIES * cfg.batch_size * task.seq_len * task.input_size * 8,
        "validation and test inputs": fixed * task.seq_len * task.input_size * 4,  # float32 as the tasks keep them
    }


def device_memory(device: torch.device) -> tuple[int | None, str]:
    """(bytes, description) of the memory a run on ``device`` can use; None if unknown."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return props.total_memory, f"{props.name} ({device})"
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge number: no limit
            limits.append(int(text))
    return (min(limits), "this machine's memory (cpu)") if limits else (None, "")


def human(n: float) -> str:
    """Bytes in binary units: ``human(3 * 2**40) == "3.0 TiB"``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    for unit in units[:-1]:
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} {units[-1]}"
