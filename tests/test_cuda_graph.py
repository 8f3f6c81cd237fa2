"""The CUDA-graph training step (suite.cuda_graph) against the eager one: on a GPU, every
model's graphed training steps equal the eager steps within float32 tolerance and the
record says which ran; everywhere, the eager step stays the reference (the CPU ignores
the request) and a malformed request is one line."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import suite
from suite.cli import main
from suite.cuda_graph import ENV, TrainForward
from suite.harness import predict
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


def _twins(name: str, task, **params):
    """Two copies of one model on the GPU, equal parameters, each with its Adam."""
    torch.manual_seed(0)
    a = suite.build_model(name, input_size=task.input_size, output_size=task.output_size, hidden_size=16,
                          seq_len=task.seq_len, **params).cuda()
    b = copy.deepcopy(a)  # the same parameters and the same values chosen at build (a heuristic Δt)
    return [(m, torch.optim.Adam(m.parameters(), lr=1e-3)) for m in (a, b)]


def _train_steps(model, opt, forward, task, steps: int) -> list[float]:
    losses = []
    for i in range(steps):
        x, y = task.batch("train", i, 8, seed=0)
        loss = task.loss(forward(x.cuda()), y.cuda()).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.constrain()
        losses.append(loss.item())
    return losses


@needs_cuda
@pytest.mark.parametrize("name", suite.list_models())
@pytest.mark.parametrize("task_name", ["adding", "copy"])
def test_graphed_training_steps_equal_the_eager_ones(name, task_name):
    task = suite.build_task(task_name, T=20, n_val=8, n_test=8)
    probe = suite.build_model(name, input_size=task.input_size, output_size=task.output_size, hidden_size=16,
                              seq_len=task.seq_len)
    if not probe.step_matches_training():
        pytest.skip(f"{name} has dropout or batch statistics in training: graphed runs equal eager ones in "
                    "distribution only (suite.cuda_graph)")
    (eager, opt_e), (graphed, opt_g) = _twins(name, task)
    fast = TrainForward(graphed, lambda x: predict(graphed, task, x), torch.device("cuda"), enabled=True)
    got = _train_steps(graphed, opt_g, fast, task, 5)
    want = _train_steps(eager, opt_e, lambda x: predict(eager, task, x), task, 5)
    assert fast.kind == "cuda_graph", f"{name}: the capture fell back to the eager step"
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=1e-4, atol=1e-6)
    for (k, p), q in zip(graphed.named_parameters(), eager.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{name}.{k}: {m}")
    # a batch of another shape runs the eager step, the graph kept for the captured shape
    x, _ = task.batch("train", 9, 3, seed=0)
    torch.testing.assert_close(fast(x.cuda()), predict(graphed, task, x.cuda()))


@needs_cuda
def test_a_run_records_its_graphed_step(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "1")
    argv = [("hrnn" if a == "gru" else a) for a in RUN]  # a fused cell, not cuDNN's GRU
    assert main([*argv, "--device", "cuda", "--out", str(tmp_path)]) == 0
    record = json.loads(next(tmp_path.rglob("record.json")).read_text())
    assert record["timing"]["train_step"] == "cuda_graph"
