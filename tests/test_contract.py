"""Contract tests parametrized over the registries: a task or model registered anywhere
is tested here without anyone writing a test for it."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import suite
from suite.core.spec import as_tuple, step_loop
from tests.conftest import MNIST_TASKS, mnist_dir, tiny_task_params

TASKS = suite.list_tasks()
MODELS = suite.list_models()
HIDDEN = 6


def _task(name: str):
    if name in MNIST_TASKS and mnist_dir() is None:
        pytest.skip("MNIST files not found in $RNNSUITE_DATA or ../shared/data/mnist")
    return suite.build_task(name, data_dir=str(mnist_dir()) if name in MNIST_TASKS else None,
                            **tiny_task_params(name))


@pytest.mark.parametrize("name", MODELS)
def test_every_model_builds_with_defaults(name):
    model = suite.build_model(name, input_size=3, output_size=2, hidden_size=HIDDEN, seq_len=5)
    assert isinstance(model, suite.RecurrentModel)
    assert isinstance(model.readout, torch.nn.Linear) and model.readout.out_features == 2
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", TASKS)
def test_every_task_declares_its_metric(name):
    cls = suite.core.registry.TASKS.get(name)
    assert isinstance(cls.higher_is_better, bool)
    assert isinstance(cls.version, int) and cls.version >= 1
    assert cls.output_at in ("last", "all")
    task = _task(name)
    x, y = task.batch("val", 0, 4, seed=0)
    out_shape = (4, task.output_size) if task.output_at == "last" else (4, task.seq_len, task.output_size)
    metrics = task.metrics(torch.zeros(out_shape), y)
    assert task.metric in metrics and metrics[task.metric].shape == (4,)


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize("task_name", TASKS)
def test_pair_trains_a_few_steps(task_name, model_name):
    task = _task(task_name)
    model = suite.build_model(model_name, input_size=task.input_size, output_size=task.output_size,
                              hidden_size=HIDDEN, seq_len=task.seq_len)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(3):
        x, y = task.batch("train", step, 4, seed=0)
        assert x.shape == (4, task.seq_len, task.input_size)
        feats = model(x)
        assert feats.shape == (4, task.seq_len, model.feature_size)
        out = suite.core.probes.apply_readout(model, task, feats)
        loss = task.loss(out, y)
        assert loss.shape == (4,)
        loss = loss.mean()
        assert math.isfinite(loss.item())
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
        opt.step()


def _assert_same_values_and_gradients(model, x, fast, ref) -> None:
    """``fast`` equals the reference ``ref``, and so do their gradients (x and every parameter)."""
    torch.testing.assert_close(fast, ref, rtol=1e-9, atol=1e-10)
    weights = torch.randn_like(ref)
    g_fast = torch.autograd.grad((fast * weights).sum(), [x, *model.parameters()], allow_unused=True)
    g_ref = torch.autograd.grad((ref * weights).sum(), [x, *model.parameters()], allow_unused=True)
    for a, b in zip(g_fast, g_ref):
        if a is None or b is None:
            assert a is None and b is None or (a if b is None else b).abs().max() == 0
        else:
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", MODELS)
def test_forward_equals_step_loop(name, mode):
    torch.manual_seed(0)
    model = suite.build_model(name, input_size=3, output_size=2, hidden_size=HIDDEN, seq_len=7).double()
    model.train(mode == "train")
    if mode == "train" and not model.step_matches_training():
        pytest.skip(f"{name}'s training-mode forward has dropout or batch statistics; step is its eval semantics")
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    _assert_same_values_and_gradients(model, x, model(x), step_loop(model, x))


@pytest.mark.parametrize("name", MODELS)
def test_state_and_features_shapes(name):
    model = suite.build_model(name, input_size=3, output_size=2, hidden_size=HIDDEN, seq_len=5)
    state = model.initial_state(2, "cpu", torch.float32)
    state = model.step(torch.randn(2, 3), state)
    assert all(c.shape[0] == 2 for c in as_tuple(state))
    assert model.features(state).shape == (2, model.feature_size)


def _reversible_variants(name: str) -> list[dict]:
    fields = {f.name for f in dataclasses.fields(suite.core.registry.MODELS.get(name).Config)}
    return [{}, {"reversible": True}] if "reversible" in fields else [{}]


@pytest.mark.parametrize("name", MODELS)
def test_last_features_equal_the_step_loops_last_step(name):
    # what the harness trains on for a task read at its last step (output_at = "last")
    for params in _reversible_variants(name):
        torch.manual_seed(0)
        model = suite.build_model(name, input_size=3, output_size=2, hidden_size=HIDDEN, seq_len=7,
                                  **params).double().eval()
        x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
        _assert_same_values_and_gradients(model, x, model.last_features(x), step_loop(model, x)[:, -1])
