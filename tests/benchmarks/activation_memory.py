"""Activation memory of one training step against the sequence length, stored against
reversible: what ``model.reversible=true`` buys, and what still grows with T.

    python -m tests.benchmarks.activation_memory                       # hrnn and unicornn, T = 1e3..1e5
    python -m tests.benchmarks.activation_memory --models hrnn --lengths 1000 100000

One training step of the adding problem (2 inputs; the harness's ``predict``, whose
readout at the last step goes through ``RecurrentModel.last_features``; MSE; backward),
each (model, mode, T) in a fresh subprocess, so that one measurement's peak cannot hide
the next. Activation memory = the process's peak resident memory during the step less
its resident memory just before it, less the input batch's size (the model built, a
short step at T = 8 already run so that kernels and the allocator's first pages are not
counted, freed heap memory handed back); the peak is Linux's VmHWM, reset just before
the step. The unit column divides it by one T·B·H float32 tensor: a mode whose
activation memory is O(B·H) shows that ratio falling towards 0 as T grows; a stored
mode keeps it constant. A model without ``model.reversible`` (the linear recurrences)
has its stored row alone. Measurement only: nothing here asserts a size.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import json
import os
import resource
import subprocess
import sys

import torch


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _reset_peak() -> None:
    # "5" resets the process's peak resident set (VmHWM) to its current size (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_bytes() -> int:
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB


def measure(model_name: str, reversible: bool, T: int, B: int, H: int) -> dict:
    """One fresh-process measurement (called in the child)."""
    from suite.core.build import build_model, build_task
    from suite.core.registry import MODELS
    from suite.core.training import predict

    torch.manual_seed(0)
    torch.set_num_threads(1)
    # a fixed step size where the default is the heuristic: its probe would run the whole length first
    fixed = {f.name: 0.1 for f in dataclasses.fields(MODELS.get(model_name).Config) if f.default == "heuristic"}
    if reversible:
        fixed["reversible"] = True
    model = build_model(model_name, input_size=2, output_size=1, hidden_size=H, seq_len=T, **fixed)

    def train_step(length: int) -> None:  # the harness's loss and readout path
        task = build_task("adding", T=length, n_val=1, n_test=1)
        x, y = task.batch("train", 0, B, seed=0)
        task.loss(predict(model, task, x), y).mean().backward()
        model.zero_grad(set_to_none=False)

    train_step(8)
    # hand the heap freed so far back to the system (the model's build may run a
    # step-size probe over the whole length): else the step reuses it unseen
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    x_bytes = B * T * 2 * 4  # the input batch itself, allocated inside the step below
    _reset_peak()
    before = _rss_bytes()
    train_step(T)
    peak = _peak_bytes()
    return {"model": model_name, "reversible": reversible, "T": T, "B": B, "H": H,
            "activation_bytes": max(0, peak - before - x_bytes), "unit_bytes": T * B * H * 4}


def has_reversible(model_name: str) -> bool:
    """Whether the model has a reversible mode (``model.reversible``) to measure beside the stored one."""
    from suite.core.registry import MODELS

    return any(f.name == "reversible" for f in dataclasses.fields(MODELS.get(model_name).Config))


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["hrnn", "unicornn"])
    p.add_argument("--lengths", nargs="+", type=int, default=[1000, 10000, 100000])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        name, rev, T = args.child.split(":")
        out = json.dumps(measure(name, rev == "1", int(T), args.batch, args.hidden))
        print(out)
        return out
    # a fixed mmap threshold: glibc otherwise raises it after large frees, and tensors then
    # come from heap memory freed during start-up, which the resident size does not show
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    lines = [f"B = {args.batch}, H = {args.hidden}, one thread; MB = 2^20 bytes; unit = one T·B·H float32 tensor",
             "| model | mode | T | activation MB | in units of T·B·H |", "|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for name in args.models:
        for rev in (False, True) if has_reversible(name) else (False,):
            for T in args.lengths:
                cmd = [sys.executable, "-m", "tests.benchmarks.activation_memory", "--batch", str(args.batch),
                       "--hidden", str(args.hidden), "--child", f"{name}:{int(rev)}:{T}"]
                done = subprocess.run(cmd, capture_output=True, text=True, env=env)
                mode = "reversible" if rev else "stored"
                if done.returncode:
                    lines.append(f"| {name} | {mode} | {T} | failed: {done.stderr.strip().splitlines()[-1]} | |")
                else:
                    r = json.loads(done.stdout.strip().splitlines()[-1])
                    lines.append(f"| {name} | {mode} | {T} | {r['activation_bytes'] / 2**20:.1f} "
                                 f"| {r['activation_bytes'] / r['unit_bytes']:.2f} |")
                print(lines[-1], flush=True)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
