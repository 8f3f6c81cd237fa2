"""Model-specific checks for coRNN, UnICORNN, LEM, expRNN, IndRNN and the Lipschitz RNN,
in float64 at tiny sizes: the fused ``forward`` equals the ``step`` loop, and each
model's own invariant (coRNN's damping schemes, expRNN's orthogonality, IndRNN's bound)."""

from __future__ import annotations

import pytest
import torch

import suite
from suite.core.spec import step_loop

B, T, IN, HID = 3, 7, 2, 5

VARIANTS = [
    ("cornn", {"damping": "implicit"}),
    ("cornn", {"damping": "explicit"}),
    ("unicornn", {"layers": 1}),
    ("unicornn", {"layers": 3}),
    ("lem", {"dt": 0.5}),
    ("lem", {}),
    ("exprnn", {"skew_init": "henaff"}),
    ("exprnn", {"skew_init": "cayley"}),
    ("indrnn", {}),
    ("lipschitz", {}),
]


def build(name, seed=0, **hparams):
    torch.manual_seed(seed)
    return suite.build_model(name, input_size=IN, output_size=3, hidden_size=HID, **hparams).double()


def inputs(seed=1):
    return torch.randn(B, T, IN, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def assert_forward_equals_step_loop(model, x):
    # step is the evaluation-mode semantics of a model with dropout or batch statistics
    model.train(model.step_matches_training())
    fast, ref = model(x), step_loop(model, x)
    assert fast.shape == (B, T, model.feature_size)
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-10)
    params = [p for p in model.parameters() if p.requires_grad]
    weights = torch.randn_like(ref)
    g_fast = torch.autograd.grad((fast * weights).sum(), params, allow_unused=True)
    g_ref = torch.autograd.grad((ref * weights).sum(), params, allow_unused=True)
    readout = {id(p) for p in model.readout.parameters()}
    for p, a, b in zip(params, g_fast, g_ref):
        if id(p) in readout:
            continue
        assert a is not None and b is not None, "a recurrent parameter gets no gradient"
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("name", "hparams"), VARIANTS, ids=lambda v: str(v))
def test_forward_equals_step_loop(name, hparams):
    model = build(name, **hparams)
    assert_forward_equals_step_loop(model, inputs())


def test_cornn_damping_schemes_solve_their_equations():
    # one step from a random state: z_n must satisfy the scheme's own equation
    x_t = inputs()[:, 0]
    y0, z0 = torch.randn(2, B, HID, dtype=torch.float64).unbind(0)
    outs = {}
    for damping in ("implicit", "explicit"):
        model = build("cornn", damping=damping)
        dt, gamma, eps = model.cfg.dt, model.cfg.gamma, model.cfg.eps
        y1, z1 = model.step(x_t, (y0, z0))
        sigma = torch.tanh(y0 @ model.W.weight[:, :HID].T + z0 @ model.W.weight[:, HID:].T + model.V(x_t))
        damped = z1 if damping == "implicit" else z0
        torch.testing.assert_close(z1, z0 + dt * sigma - dt * gamma * y0 - dt * eps * damped, rtol=0, atol=1e-12)
        torch.testing.assert_close(y1, y0 + dt * z1, rtol=0, atol=1e-12)
        outs[damping] = model(inputs())
    assert (outs["implicit"] - outs["explicit"]).abs().max() > 1e-3


def test_exprnn_recurrence_is_orthogonal_before_and_after_an_update():
    model = build("exprnn")
    eye = torch.eye(HID, dtype=torch.float64)
    B0 = model.recurrence_matrix().detach().clone()
    torch.testing.assert_close(B0.T @ B0, eye, rtol=0, atol=1e-10)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss = model.readout(model(inputs())[:, -1]).pow(2).sum()
    loss.backward()
    opt.step()
    B1 = model.recurrence_matrix().detach()
    assert (B1 - B0).abs().max() > 1e-4, "the update did not move B; the check below would be vacuous"
    torch.testing.assert_close(B1.T @ B1, eye, rtol=0, atol=1e-10)


def test_indrnn_constraint_projects_u_onto_its_bound():
    model = suite.build_model("indrnn", input_size=IN, output_size=3, hidden_size=HID, seq_len=784).double()
    bound = 5 ** (1 / 784)  # the authors' MAG = 5 at T = 784
    assert model.cfg.u_max == pytest.approx(bound) and 0 <= model.u.min() and model.u.max() <= bound
    with torch.no_grad():
        model.u[0].copy_(torch.tensor([2.0, -3.0, 0.95, 0.5, -0.1], dtype=torch.float64))
    model.constrain()
    assert model.u[0].tolist() == pytest.approx([bound, -bound, 0.95, 0.5, -0.1])


def test_indrnn_layers_batch_norm_and_dropout():
    model = build("indrnn", layers=3, batch_norm=True, dropout=0.5).train()
    x = inputs()
    out = model(x)
    # batch normalization over batch and time of the last layer, then a mask fixed over time
    assert not model.step_matches_training() and out.shape == (B, T, HID)
    dropped = (out == 0).all(dim=1)
    assert dropped.any() and not dropped.all()
    model.eval()
    assert_forward_equals_step_loop(model, x)


@pytest.mark.parametrize(("name", "hparams"), [
    ("cornn", {"dt": 0.0}),
    ("cornn", {"damping": "semi"}),
    ("unicornn", {"layers": 0}),
    ("lem", {"dt": 1.5}),
    ("exprnn", {"skew_init": "haar"}),
    ("indrnn", {"u_max": 0.0}),
    ("indrnn", {"mag": 1.0}),
    ("unicornn", {"dropout": 1.0}),
    ("lipschitz", {"beta": 1.2}),
], ids=lambda v: str(v))
def test_impossible_hyperparameters_are_rejected(name, hparams):
    with pytest.raises(suite.SuiteError):
        build(name, **hparams)
