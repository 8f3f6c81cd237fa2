"""Training-step time of ``hrnn`` (fused sequence Function) against ``lstm`` (torch.nn.LSTM)
at B = 64, T = 784, H = 128, input size 1 (the sequential-MNIST shape), on the CPU.

    python -m pytest tests/benchmarks/test_bench_hamiltonian.py -o addopts="" --benchmark-only -s

The goal is hrnn at most 0.5× lstm. One training step = forward, readout at the last
step, cross-entropy, backward, Adam step, as in the harness. Each model runs with the
process's thread count and again with one thread (``-1-thread``): on a shared two-core
machine other processes' load made every two-thread step several times slower, the
one-thread ones much less. The ratio of each hrnn median to the LSTM median under the
same thread count is printed and kept in ``extra_info`` (``ratio_to_lstm``) once both
have run; the reversible mode is timed for reference. Benchmarks time, they do not
assert: the machine is shared and noisy, so read the ratios of one run, not a threshold.
"""

from __future__ import annotations

import contextlib

import pytest
import torch

import suite

SHAPE = {"batch": 64, "seq_len": 784, "hidden": 128, "input_size": 1, "classes": 10}
# label: (model, hyperparameters, threads; None = the process default)
CASES = {"lstm": ("lstm", {}, None), "hrnn": ("hrnn", {}, None),
         "hrnn-reversible": ("hrnn", {"reversible": True}, None),
         "lstm-1-thread": ("lstm", {}, 1), "hrnn-1-thread": ("hrnn", {}, 1)}
MEDIANS: dict[str, float] = {}


@contextlib.contextmanager
def _threads(n: int | None):
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("label", list(CASES))
def test_train_step_psmnist_shape(benchmark, label):
    name, hparams, threads = CASES[label]
    torch.manual_seed(0)
    model = suite.build_model(name, input_size=SHAPE["input_size"], output_size=SHAPE["classes"],
                              hidden_size=SHAPE["hidden"], seq_len=SHAPE["seq_len"], **hparams)
    x = torch.randn(SHAPE["batch"], SHAPE["seq_len"], SHAPE["input_size"])
    y = torch.randint(0, SHAPE["classes"], (SHAPE["batch"],))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        with _threads(threads):
            loss = torch.nn.functional.cross_entropy(model.readout(model(x)[:, -1]), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    benchmark.extra_info.update({"model": name, "hparams": hparams, "device": "cpu", "dtype": "float32",
                                 "threads": threads or torch.get_num_threads(), "torch": torch.__version__,
                                 **SHAPE})
    benchmark.pedantic(train_step, rounds=7, iterations=1, warmup_rounds=2)
    MEDIANS[label] = benchmark.stats.stats.median
    ref = "lstm-1-thread" if threads == 1 else "lstm"
    if name == "hrnn" and ref in MEDIANS:
        ratio = MEDIANS[label] / MEDIANS[ref]
        benchmark.extra_info["ratio_to_lstm"] = ratio
        print(f"\n{label}: median {MEDIANS[label]:.3f} s / {ref} {MEDIANS[ref]:.3f} s = {ratio:.2f}"
              + ("" if "reversible" in label else " (goal: <= 0.5)"))
