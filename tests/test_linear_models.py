"""LinOSS and LRU (baselines/linoss.py, baselines/lru.py): the scan-based forward against
the step loop, gradcheck, and the fixtures from the authors' own JAX code
(tests/fixtures/linear/make_fixtures.py), mapped by hand into the suite's models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import suite
from suite.core.spec import step_loop

FIXTURES = Path(__file__).parent / "fixtures" / "linear"
VARIANTS = [("linoss", {"discretization": "IM"}), ("linoss", {"discretization": "IMEX"}), ("lru", {})]


def _model(name, input_size=3, hidden_size=5, **hparams):
    torch.manual_seed(0)
    return suite.build_model(name, input_size=input_size, output_size=2, hidden_size=hidden_size, seq_len=9,
                             **hparams).double()


@pytest.mark.parametrize("name,hparams", VARIANTS)
def test_scan_forward_equals_the_step_loop_with_trained_statistics(name, hparams):
    model = _model(name, layers=2, modes=4, dropout=0.0, **hparams)
    x = torch.randn(3, 11, 3, dtype=torch.float64)
    model.train()
    model(x)
    model(2 * x + 1)  # running statistics away from (0, 1)
    model.eval()
    torch.testing.assert_close(model(x), step_loop(model, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,hparams", VARIANTS)
def test_gradcheck_on_a_tiny_model(name, hparams):
    model = _model(name, input_size=2, hidden_size=3, layers=2, modes=2, **hparams).eval()
    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    params = [p for p in model.parameters() if p is not model.readout.weight and p is not model.readout.bias]
    assert torch.autograd.gradcheck(lambda x, *ps: torch.func.functional_call(
        model, {n: p for (n, _), p in zip(_named(model), ps)}, (x,)), (x, *params))


def _named(model):
    return [(n, p) for n, p in model.named_parameters() if not n.startswith("readout")]


def _fixture_parameters(model, name):
    """Authors' names -> the suite's parameters (same layouts: B (P, H, 2), C (H, P, 2), …)."""
    mapping = {"linear_encoder.weight": model.linear_encoder.weight, "linear_encoder.bias": model.linear_encoder.bias}
    own = ["A_diag", "B", "C", "D", "steps"] if name == "linoss" else \
        ["nu_log", "theta_log", "B_re", "B_im", "C_re", "C_im", "D", "gamma_log"]
    for i, block in enumerate(model.blocks):
        mapping |= {f"{i}.{p}": getattr(block, p) for p in own}
        mapping |= {f"{i}.glu.{w}.{k}": getattr(getattr(block, w), k) for w in ("w1", "w2") for k in ("weight", "bias")}
    return mapping


@pytest.mark.parametrize("name,hparams,file", [(*v, f) for v, f in zip(VARIANTS, ["linoss_im", "linoss_imex", "lru"])])
def test_equals_the_authors_code(name, hparams, file):
    data = np.load(FIXTURES / f"{file}.npz")
    t = {k: torch.from_numpy(data[k]) for k in data.files}
    model = _model(name, layers=2, modes=4, dropout=0.0, **hparams).train()
    params = _fixture_parameters(model, name)
    assert {k.removeprefix("param/") for k in t if k.startswith("param/")} == set(params)
    with torch.no_grad():
        for key, p in params.items():
            p.copy_(t[f"param/{key}"])
    x = t["x"].clone().requires_grad_()
    out = model(x)
    torch.testing.assert_close(out, t["out_train"], rtol=1e-10, atol=1e-11)
    grads = torch.autograd.grad((out * t["w"]).sum(), [x, *params.values()])
    torch.testing.assert_close(grads[0], t["grad_x"], rtol=1e-9, atol=1e-10)
    for key, g in zip(params, grads[1:]):
        torch.testing.assert_close(g, t[f"grad/{key}"], rtol=1e-9, atol=1e-10, msg=lambda m, k=key: f"{k}: {m}")
    with torch.no_grad():
        torch.testing.assert_close(model(t["x2"]), t["out_train2"], rtol=1e-10, atol=1e-11)
        model.eval()
        torch.testing.assert_close(model(t["x"]), t["out_eval"], rtol=1e-10, atol=1e-11)
        torch.testing.assert_close(step_loop(model, t["x"]), t["out_eval"], rtol=1e-10, atol=1e-11)


def test_linoss_step_sizes_and_oscillators_start_as_the_authors():
    model = suite.build_model("linoss", input_size=1, output_size=10, hidden_size=16, seq_len=784)
    assert (model.cfg.discretization, model.cfg.layers, model.cfg.modes, model.cfg.dropout) == ("IM", 2, 64, 0.05)
    for block in model.blocks:
        dt = torch.sigmoid(block.steps)
        assert 0.5 <= dt.min() and dt.max() <= 1 / (1 + np.exp(-1))
        assert 0 <= block.A_diag.min() and block.A_diag.max() <= 1
        assert block.B.abs().max() <= 16**-0.5 and block.C.abs().max() <= 64**-0.5


def test_linoss_dt_starts_every_mode_at_one_step_and_draws_the_rest_the_same():
    fixed, drawn = _model("linoss", dt=0.1), _model("linoss")
    for a, b in zip(fixed.blocks, drawn.blocks):
        torch.testing.assert_close(torch.sigmoid(a.steps), torch.full_like(a.steps, 0.1))
        assert torch.equal(a.A_diag, b.A_diag) and torch.equal(a.B, b.B)
    with pytest.raises(suite.core.registry.SuiteError, match="model.dt"):
        _model("linoss", dt=1.0)


def test_lru_eigenvalues_start_on_the_ring_and_gamma_normalizes():
    model = suite.build_model("lru", input_size=1, output_size=10, hidden_size=16, seq_len=784,
                              r_min=0.9, r_max=0.99, max_phase=0.5)
    for block in model.blocks:
        lam = block.diagonal()
        assert 0.9 <= lam.abs().min() and lam.abs().max() <= 0.99
        assert lam.angle().abs().max() <= 0.5
        torch.testing.assert_close(torch.exp(block.gamma_log), torch.sqrt(1 - lam.abs() ** 2))
