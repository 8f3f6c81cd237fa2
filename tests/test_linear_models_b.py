"""S4D and minGRU: the step loop against forward in float64, gradcheck, and each model against
its authors' code through a committed fixture (tests/fixtures/linear/make_*.py wrote them,
running the authors' implementations; see each script's docstring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import suite
from suite.core.spec import step_loop

FIXTURES = Path(__file__).parent / "fixtures" / "linear"

VARIANTS = [
    ("s4d", {}),
    ("s4d", {"kernel": "scan", "prenorm": True, "init": "inv"}),
    ("mingru", {}),
    ("mingru", {"ff": True, "init_state": False}),
]


def _model(name, input_size=3, hidden=5, seq_len=7, **params):
    torch.manual_seed(0)
    return suite.build_model(name, input_size=input_size, output_size=2, hidden_size=hidden, seq_len=seq_len,
                             dropout=0.0, **params).double()


@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize("name,params", VARIANTS)
def test_step_loop_equals_forward_in_float64(name, params, T):
    model = _model(name, seq_len=T, **params)
    x = torch.randn(3, T, 3, dtype=torch.float64, requires_grad=True)
    fast, ref = model(x), step_loop(model, x)
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(ref)
    inputs = [x, *model.parameters()]
    for a, b in zip(torch.autograd.grad((fast * w).sum(), inputs, allow_unused=True),
                    torch.autograd.grad((ref * w).sum(), inputs, allow_unused=True)):
        if a is None or b is None:  # the readout: not part of the features
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name,params", VARIANTS)
def test_gradcheck_on_a_tiny_model(name, params):
    small = {"d_state": 4} if name == "s4d" else {"expansion": 1.5}
    model = _model(name, input_size=2, hidden=2, seq_len=4, layers=2, **small, **params)
    x = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    weights = [p for n, p in model.named_parameters() if not n.startswith("readout")]
    assert torch.autograd.gradcheck(lambda x, *ps: model(x), (x, *weights), eps=1e-6, atol=1e-6)


def test_param_groups_hold_every_parameter_once():
    for name, _ in VARIANTS:
        model = _model(name)
        grouped = [p for g in model.param_groups() for p in g["params"]]
        assert len(grouped) == len(list(model.parameters())) == len({id(p) for p in grouped})


def test_s4d_initialization_is_the_authors():
    model = _model("s4d", hidden=4, d_state=8)
    n = torch.arange(4, dtype=torch.float64)
    torch.testing.assert_close(model.A_imag[1, 2], torch.pi * n)
    torch.testing.assert_close(model.log_A_real.exp(), torch.full_like(model.log_A_real, 0.5))
    assert (model.log_dt.exp() >= 0.001).all() and (model.log_dt.exp() <= 0.1).all()
    inv = _model("s4d", hidden=4, d_state=8, init="inv")
    torch.testing.assert_close(inv.A_imag[0, 0], 8 / torch.pi * (8 / (2 * n + 1) - 1))


# -- against the authors' code ----------------------------------------------------------

def _load(name):
    path = FIXTURES / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"{path} missing: run tests/fixtures/linear/make_{name}.py")
    arrays = dict(np.load(path).items())
    for prefix in sorted({k[: -len("names")] for k in arrays if k.endswith("names")}):
        # parameters and gradients are stored flat, with their names and shapes (make_*.py: packed)
        shapes = [tuple(int(n) for n in s.split("x") if n) for s in arrays[f"{prefix}shapes"]]
        offsets = np.cumsum([0] + [int(np.prod(shape)) for shape in shapes])
        for name, shape, lo, hi in zip(arrays[f"{prefix}names"], shapes, offsets, offsets[1:]):
            arrays[f"{prefix}param/{name}"] = arrays[f"{prefix}params"][lo:hi].reshape(shape)
            arrays[f"{prefix}grad/{name}"] = arrays[f"{prefix}grads"][lo:hi].reshape(shape)
    return {k: torch.from_numpy(v) for k, v in arrays.items() if v.dtype.kind == "f"}


def _assign(pairs, arrays, prefix=""):
    """Copy the authors' weights into the suite's model: (their name, our tensor view)."""
    with torch.no_grad():
        for theirs, ours in pairs:
            ours.copy_(arrays[f"{prefix}param/{theirs}"].reshape(ours.shape))


def _compare_grads(pairs, arrays, ours_grads, prefix=""):
    for (theirs, _), grad in zip(pairs, ours_grads):
        ref = arrays[f"{prefix}grad/{theirs}"].reshape(grad.shape)
        torch.testing.assert_close(grad, ref, rtol=1e-9, atol=1e-11, msg=lambda m, n=theirs: f"{n}: {m}")


def _s4d_pairs(model, layers):
    pairs = [("encoder.weight", model.encoder.weight), ("encoder.bias", model.encoder.bias),
             ("decoder.weight", model.readout.weight), ("decoder.bias", model.readout.bias)]
    for i in range(layers):
        s4 = f"s4_layers.{i}"
        pairs += [(f"{s4}.kernel.log_dt", model.log_dt[i]), (f"{s4}.kernel.C", model.C[i]),
                  (f"{s4}.kernel.log_A_real", model.log_A_real[i]), (f"{s4}.kernel.A_imag", model.A_imag[i]),
                  (f"{s4}.D", model.D[i]), (f"{s4}.output_linear.0.weight", model.output_linear[i].weight),
                  (f"{s4}.output_linear.0.bias", model.output_linear[i].bias),
                  (f"norms.{i}.weight", model.norms[i].weight), (f"norms.{i}.bias", model.norms[i].bias)]
    return pairs


@pytest.mark.parametrize("prefix,prenorm", [("post/", False), ("pre/", True)])
def test_s4d_equals_the_authors_stack(prefix, prenorm):
    arrays = _load("s4d")
    x, w = arrays[f"{prefix}x"].clone().requires_grad_(True), arrays[f"{prefix}w"]
    model = _model("s4d", hidden=3, seq_len=x.shape[1], layers=2, d_state=8, prenorm=prenorm).eval()
    pairs = _s4d_pairs(model, 2)
    _assign(pairs, arrays, prefix)
    feats = model(x)
    # their decoder reads the mean over the sequence: the mean of every prefix pins every step
    steps = torch.arange(1, x.shape[1] + 1, dtype=x.dtype)
    prefix_out = model.readout(feats.cumsum(1) / steps[:, None]).transpose(0, 1)
    torch.testing.assert_close(prefix_out, arrays[f"{prefix}prefix_out"], rtol=1e-9, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(model.readout(step_loop(model, x).mean(1)), arrays[f"{prefix}out"],
                                   rtol=1e-9, atol=1e-12)
    out = model.readout(feats.mean(1))
    params = [p for p in model.parameters()]
    grads = dict(zip([id(p) for p in params], torch.autograd.grad((out * w).sum(), params)))
    grad_x = torch.autograd.grad((model.readout(model(x).mean(1)) * w).sum(), x)[0]
    torch.testing.assert_close(grad_x, arrays[f"{prefix}grad_x"], rtol=1e-9, atol=1e-12)
    _compare_grads(pairs, arrays, [_view_grad(grads, model, view) for _, view in pairs], prefix)


def _view_grad(grads, model, view):
    """The gradient of the slice ``view`` of one of ``model``'s parameters."""
    for p in model.parameters():
        if view is p:
            return grads[id(p)]
        if view.untyped_storage().data_ptr() == p.untyped_storage().data_ptr():
            start = view.storage_offset() - p.storage_offset()
            return grads[id(p)].flatten()[start : start + view.numel()].reshape(view.shape)
    raise KeyError("not a view of a parameter")


def _mingru_pairs(model, layers):
    pairs = [("layer_in.weight", model.layer_in.weight), ("layer_in.bias", model.layer_in.bias),
             ("norm.gamma", model.norm.gamma), ("to_out.weight", model.readout.weight)]
    for i in range(layers):
        at = f"layers.{i}"
        pairs += [(f"{at}.1.gamma", model.norms[i].gamma), (f"{at}.2.init_hidden_state", model.eta[i]),
                  (f"{at}.2.to_hidden_and_gate.weight", model.to_hidden_and_gate[i].weight),
                  (f"{at}.2.to_hidden_and_gate.bias", model.to_hidden_and_gate[i].bias),
                  (f"{at}.2.to_out.weight", model.to_out[i].weight), (f"{at}.2.to_out.bias", model.to_out[i].bias),
                  (f"{at}.3.gamma", model.ff_norms[i].gamma),
                  (f"{at}.4.0.weight", model.ff_in[i].weight), (f"{at}.4.0.bias", model.ff_in[i].bias),
                  (f"{at}.4.1.mult_bias", model.ff_gain[i]),
                  (f"{at}.4.2.weight", model.ff_out[i].weight), (f"{at}.4.2.bias", model.ff_out[i].bias)]
    return pairs


def test_mingru_equals_the_authors_stack():
    arrays = _load("mingru")
    x, w = arrays["x"].clone().requires_grad_(True), arrays["w"]
    model = _model("mingru", hidden=4, seq_len=x.shape[1], layers=2, expansion=1.5, ff=True, ff_mult=2.0).eval()
    pairs = _mingru_pairs(model, 2)
    _assign(pairs, arrays)
    with torch.no_grad():
        model.readout.bias.zero_()  # their output map has no bias
        torch.testing.assert_close(model.readout(step_loop(model, x)), arrays["step_out"], rtol=1e-9, atol=1e-12)
    out = model.readout(model(x))
    torch.testing.assert_close(out, arrays["out"], rtol=1e-9, atol=1e-12)
    params = list(model.parameters())
    grads = dict(zip([id(p) for p in params], torch.autograd.grad((out * w).sum(), params)))
    torch.testing.assert_close(torch.autograd.grad((model.readout(model(x)) * w).sum(), x)[0], arrays["grad_x"],
                               rtol=1e-9, atol=1e-12)
    _compare_grads(pairs, arrays, [_view_grad(grads, model, view) for _, view in pairs])


@pytest.mark.parametrize("name", ["s4d", "mingru"])
def test_hidden_gradient_profile_runs_on_the_stack(name):
    # the probe perturbs every state component; S4D's complex modes are stored as real pairs for it
    from suite.core.probes import hidden_gradient_profile
    from tests.conftest import tiny_task_params

    task = suite.build_task("adding", **tiny_task_params("adding"))
    model = suite.build_model(name, input_size=task.input_size, output_size=task.output_size, hidden_size=4,
                              seq_len=task.seq_len)
    x, y = task.batch("val", 0, 3, seed=0)
    profile = hidden_gradient_profile(model, task, x, y)
    assert len(profile) == task.seq_len and all(np.isfinite(profile)) and min(profile) > 0
