"""Training-step and inference time of every registered model on fixed shapes.

Run with ``nox -s bench`` (saves JSON under .benchmarks/) and compare against the last
saved run of the same machine with ``nox -s bench -- --compare``. Benchmarks are
skipped in the default test run (``--benchmark-skip`` in pyproject).

On CUDA every timed call ends with ``torch.cuda.synchronize()``, so the clock reads
finished work, not queued kernels.
"""

from __future__ import annotations

import pytest
import torch

import suite
from suite.core.probes import apply_readout

SHAPES = {"batch": 32, "seq_len": 100, "input_size": 2, "hidden": 64}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _setup(name: str, device: str):
    torch.manual_seed(0)
    task = suite.build_task("adding", T=SHAPES["seq_len"], n_val=SHAPES["batch"], n_test=SHAPES["batch"])
    model = suite.build_model(name, input_size=SHAPES["input_size"], output_size=1, hidden_size=SHAPES["hidden"],
                              seq_len=SHAPES["seq_len"]).to(device)
    x, y = task.batch("train", 0, SHAPES["batch"], seed=0)
    return task, model, x.to(device), y.to(device)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _info(benchmark, name, device, kind):
    benchmark.extra_info.update({"model": name, "device": device, "kind": kind, **SHAPES,
                                 "dtype": "float32", "torch": torch.__version__,
                                 "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                                 "threads": torch.get_num_threads()})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", suite.list_models())
def test_train_step(benchmark, name, device):
    task, model, x, y = _setup(name, device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        loss = task.loss(apply_readout(model, task, model(x)), y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(device)

    _info(benchmark, name, device, "train_step")
    benchmark.pedantic(step, rounds=20, iterations=1, warmup_rounds=5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", suite.list_models())
def test_inference(benchmark, name, device):
    task, model, x, _ = _setup(name, device)

    @torch.no_grad()
    def infer():
        apply_readout(model, task, model(x))
        _sync(device)

    _info(benchmark, name, device, "inference")
    benchmark.pedantic(infer, rounds=20, iterations=1, warmup_rounds=5)
