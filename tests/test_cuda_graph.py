"""The CUDA-graph training step (suite.core.cuda_graph) against the CPU reference: on a GPU,
every model's graphed training steps (losses and gradients) equal the CPU's eager steps
within float32 tolerance and the record says which ran; everywhere, the eager step stays the reference (the CPU ignores
the request) and a malformed request is one line."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from torch import Tensor

import suite
from suite.cli.main import main
from suite.core.cuda_graph import ENV, TrainForward
from suite.core.training import predict
from tests.test_cli import RUN

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device: the graphed step is tested on a GPU only")


def test_malformed_request_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV, "yes")
    assert main([*RUN, "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{ENV}='yes' must be 0" in err, err
    assert not (tmp_path / "runs").exists()


def test_the_cpu_runs_the_eager_step_when_graphs_are_asked_for(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "1")
    assert main([*RUN, "--out", str(tmp_path)]) == 0
    record = json.loads(next(tmp_path.rglob("record.json")).read_text())
    assert record["timing"]["train_step"] == "eager"


def test_one_capture_per_run_and_the_eager_step_for_other_shapes_or_a_refused_capture(monkeypatch):
    # the control flow of TrainForward, on the CPU, with a stand-in for the graph capture
    task = suite.build_task("adding", T=6, n_val=8, n_test=8)
    model = suite.build_model("hrnn", input_size=2, output_size=1, hidden_size=4, seq_len=6)
    captured = []

    def stand_in(module, sample_args, allow_unused_input):
        captured.append(tuple(sample_args[0].shape))
        return module

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", stand_in)
    fast = TrainForward(model, lambda x: predict(model, task, x), torch.device("cuda"), enabled=True)
    x8, x3 = task.batch("train", 0, 8, seed=0)[0], task.batch("train", 1, 3, seed=0)[0]
    torch.testing.assert_close(fast(x8), predict(model, task, x8))
    fast(x3), fast(x8)
    assert captured == [(8, 6, 2)] and fast.kind == "cuda_graph"

    def refuse(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(torch.cuda, "make_graphed_callables", refuse)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    fast = TrainForward(model, lambda x: predict(model, task, x), torch.device("cuda"), enabled=True)
    with pytest.warns(UserWarning, match="capture of the training step failed, running it eagerly: operation"):
        out = fast(x8)
    torch.testing.assert_close(out, predict(model, task, x8))
    assert fast.kind == "eager" and fast.graphed is None
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        fast(x8)
    assert not later  # no second attempt, no second warning


def _twins(name: str, task):
    """The model on the CPU (the reference) and an exact copy of it on the GPU."""
    torch.manual_seed(0)
    cpu = suite.build_model(name, input_size=task.input_size, output_size=task.output_size, hidden_size=16,
                            seq_len=task.seq_len)
    return cpu, copy.deepcopy(cpu).cuda()  # the same parameters and values chosen at build (a heuristic Δt)


def _train_steps(model, forward, task, device, steps: int) -> list[tuple[float, list[Tensor]]]:
    """Losses and gradients of ``steps`` SGD steps (SGD: linear in the gradient, so that
    float32 differences between devices stay float32-sized; the optimizer is not graphed)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    out = []
    for i in range(steps):
        x, y = task.batch("train", i, 8, seed=0)
        loss = task.loss(forward(x.to(device)), y.to(device)).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        out.append((loss.item(), [p.grad.detach().cpu().clone() for p in model.parameters()]))
        opt.step()
        model.constrain()
    return out


@needs_cuda
@pytest.mark.parametrize("name", suite.list_models())
@pytest.mark.parametrize("task_name", ["adding", "copy"])
def test_graphed_training_steps_equal_the_cpu_reference(name, task_name):
    task = suite.build_task(task_name, T=20, n_val=8, n_test=8)
    cpu, gpu = _twins(name, task)
    if not cpu.step_matches_training():
        pytest.skip(f"{name} has dropout or batch statistics in training: graphed runs equal eager ones in "
                    "distribution only (suite.core.cuda_graph)")
    fast = TrainForward(gpu, lambda x: predict(gpu, task, x), torch.device("cuda"), enabled=True)
    got = _train_steps(gpu, fast, task, "cuda", 4)
    want = _train_steps(cpu, lambda x: predict(cpu, task, x), task, "cpu", 4)
    assert fast.kind == "cuda_graph", f"{name}: the capture fell back to the eager step"
    names = [k for k, _ in cpu.named_parameters()]
    for step, ((loss_g, grads_g), (loss_c, grads_c)) in enumerate(zip(got, want)):
        assert loss_g == pytest.approx(loss_c, rel=1e-4, abs=1e-6), f"{name}, step {step}: loss"
        for k, a, b in zip(names, grads_g, grads_c):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5,
                                       msg=lambda m, k=k, step=step: f"{name}.{k}, step {step}: {m}")
    # a batch of another shape runs the eager step; the graph is kept for the captured shape
    x, _ = task.batch("train", 9, 3, seed=0)
    torch.testing.assert_close(fast(x.cuda()), predict(gpu, task, x.cuda()))
    assert fast.graphed is not None


@needs_cuda
def test_a_run_records_its_graphed_step(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "1")
    argv = [("hrnn" if a == "gru" else a) for a in RUN]  # a fused cell, not cuDNN's GRU
    assert main([*argv, "--device", "cuda", "--out", str(tmp_path)]) == 0
    record = json.loads(next(tmp_path.rglob("record.json")).read_text())
    assert record["timing"]["train_step"] == "cuda_graph"
