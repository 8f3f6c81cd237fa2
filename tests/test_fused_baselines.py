"""The fused sequence passes of the baselines (baselines/_fused.py, _fused_oscillators.py):
every cell's Function passes ``gradcheck`` in float64, in each of its modes; the paths
the contract test cannot see (UnICORNN's dropout mask inside the pass, IndRNN's batch
normalization on the time-major rows) equal their plain reference (the buffer pool's rule
is tests/test_buffers.py). That ``forward`` equals the ``step`` loop,
values and gradients, is tests/test_contract.py::test_forward_equals_step_loop."""

from __future__ import annotations

import pytest
import torch

import suite
from baselines import _reversible_unicornn
from baselines._fused import Antisymmetric, IndRNNPass, Lipschitz, ModReLU, indrnn_layer, run, tanh_
from baselines._fused_oscillators import LEMPass, Oscillator, unicornn_layer
from suite.core.spec import step_loop

B, T, IN, H = 2, 4, 2, 3


def _t(*shape, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_()


def _coefs(per_neuron: bool) -> dict:
    """a, b, c, r of the oscillator form: per-neuron tensors with gradients, or 0-d constants."""
    if per_neuron:
        return {name: _t(H, scale=0.3, seed=10 + k) for k, name in enumerate("abcr")}
    return {name: torch.tensor(v, dtype=torch.float64) for name, v in zip("abcr", (0.7, 0.2, -0.3, 0.1))}


def _unicornn_masked() -> dict:
    coefs = _coefs(True)
    del coefs["a"]
    return {"recurrent": _t(H, seed=1), **coefs, "mask": torch.tensor([[2.0, 0, 2], [0, 2, 2]], dtype=torch.float64)}


# (label, cell, input map rows, params by name): each gradchecked with x, the input map and the params
CASES = [
    ("antisymmetric", Antisymmetric(0.3), H, lambda: {"recurrent": _t(H, H, seed=1)}),
    ("antisymmetric-gated", Antisymmetric(0.3, gated=True), 2 * H, lambda: {"recurrent": _t(H, H, seed=1)}),
    ("lipschitz", Lipschitz(0.3), H, lambda: {"recurrent": _t(2 * H, H, scale=0.5, seed=1)}),
    ("exprnn", ModReLU(), H,
     lambda: {"recurrent": _t(H, H, scale=0.5, seed=1), "modulus_bias": _t(H, scale=0.1, seed=2)}),
    ("indrnn", IndRNNPass(), H, lambda: {"recurrent": _t(H, seed=1)}),
    ("cornn", Oscillator(), H, lambda: {"recurrent": _t(H, 2 * H, scale=0.5, seed=1), **_coefs(False)}),
    ("unicornn-coefficients", Oscillator(), H, lambda: {"recurrent": _t(H, seed=1), **_coefs(True)}),
    ("unicornn-mask", Oscillator(), H, _unicornn_masked),
    ("lem", LEMPass(0.4), 4 * H,
     lambda: {"recurrent": _t(3 * H, H, scale=0.5, seed=1), "recurrent_y": _t(H, H, scale=0.5, seed=2)}),
]


@pytest.mark.parametrize(("label", "cell", "rows", "make_params"), CASES, ids=[c[0] for c in CASES])
def test_fused_function_passes_gradcheck(label, cell, rows, make_params):
    x, weight, bias = _t(B, T, IN, seed=3), _t(rows, IN, seed=4), _t(rows, scale=0.1, seed=5)
    params = make_params()
    trained = [name for name, p in params.items() if p.requires_grad]

    def f(x, weight, bias, *grad_params):
        return run(cell, x, input_weight=weight, input_bias=bias, **{**params, **dict(zip(trained, grad_params))})

    assert torch.autograd.gradcheck(f, (x, weight, bias, *(params[n] for n in trained)), eps=1e-6, atol=1e-8,
                                    rtol=1e-6)


def test_fused_function_refuses_a_parameter_by_a_wrong_name():
    x, weight = _t(B, T, IN, seed=3), _t(H, IN, seed=4)
    with pytest.raises(TypeError, match="missing"):
        run(Antisymmetric(0.3), x, input_weight=weight)
    with pytest.raises(TypeError, match="unknown"):
        run(Antisymmetric(0.3), x, input_weight=weight, recurrent=_t(H, H), A=_t(H, H))


def test_fused_function_takes_the_drive_itself():
    """``v_weight=None``: x is the drive (plus ``v_bias``), and its gradient is the drive's."""
    wx, u, bias, A = _t(B, T, H, seed=3), _t(H, seed=1), _t(H, scale=0.1, seed=5), _t(H, H, seed=2)
    assert torch.autograd.gradcheck(lambda wx, u: indrnn_layer(wx, recurrent=u), (wx, u), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradcheck(lambda wx, b, A: run(Antisymmetric(0.3), wx, input_bias=b, recurrent=A),
                                    (wx, bias, A), eps=1e-6, atol=1e-8)


def test_tanh_through_the_sigmoid_is_within_its_documented_error():
    x = torch.linspace(-12, 12, 100_001)
    assert (tanh_(x.clone()).double() - torch.tanh(x.double())).abs().max() < 2e-7
    x64 = x.double()
    assert (tanh_(x64.clone()) - torch.tanh(x64)).abs().max() < 1e-15


def test_unicornn_mask_inside_the_pass_equals_masking_the_output():
    u, weight, bias, w = _t(B, T, IN, seed=3), _t(H, IN, seed=4), _t(H, seed=5), _t(H, seed=1)
    rate = torch.rand(H, dtype=torch.float64, generator=torch.Generator().manual_seed(6)).requires_grad_()
    mask = torch.tensor([[2.0, 0, 2], [0, 2, 2]], dtype=torch.float64)
    layer = dict(input_weight=weight, input_bias=bias, w=w, rate=rate, alpha=3.0)
    inside = unicornn_layer(u, **layer, mask=mask)
    outside = unicornn_layer(u, **layer) * mask[:, None]
    torch.testing.assert_close(inside, outside, rtol=0, atol=1e-14)
    cot = torch.randn_like(inside)
    wrt = [u, weight, bias, w, rate]
    for a, b in zip(torch.autograd.grad((inside * cot).sum(), wrt), torch.autograd.grad((outside * cot).sum(), wrt)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def _build(name, **hparams):
    torch.manual_seed(0)
    return suite.build_model(name, input_size=IN, output_size=2, hidden_size=H, seq_len=T, **hparams).double()


def test_unicornn_training_forward_is_the_layer_recurrence_with_per_sequence_masks():
    model = _build("unicornn", dropout=0.5).train()
    x = _t(B, T, IN, seed=3)
    torch.manual_seed(7)
    fast = model(x)
    torch.manual_seed(7)  # the same masks, drawn in the same order
    rates, u = model._rates(), x
    for layer, V in enumerate(model.V):
        mask = model._dropout_mask(x)
        y = z = x.new_zeros(B, H)
        ys = []
        for vx_t in V(u).unbind(1):
            y, z = model._update(y, z, vx_t, rates[layer], model.w[layer])
            ys.append(y)
        u = torch.stack(ys, dim=1) * mask[:, None]
    torch.testing.assert_close(fast, u, rtol=1e-10, atol=1e-12)
    assert (fast == 0).all(dim=1).any()  # a mask is shared by all steps


def test_indrnn_batch_norm_on_time_major_rows_equals_it_on_the_transpose():
    model = _build("indrnn", layers=2, batch_norm=True, dropout=0.0).train()
    twin = _build("indrnn", layers=2, batch_norm=True, dropout=0.0).train()
    x = _t(B, T, IN, seed=3)
    fast = model(x)
    inp = x
    for layer, W in enumerate(twin.W):  # the step recurrence, batch norm on [B, H, T]
        h, hs = x.new_zeros(B, H), []
        for wx_t in W(inp).unbind(1):
            h = torch.relu(wx_t + twin.u[layer] * h)
            hs.append(h)
        inp = twin.bn[layer](torch.stack(hs, dim=1).transpose(1, 2)).transpose(1, 2)
    torch.testing.assert_close(fast, inp, rtol=1e-10, atol=1e-12)
    for a, b in zip(model.bn, twin.bn):
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)
    cot = torch.randn_like(fast)
    cell = [[p for n, p in m.named_parameters() if not n.startswith("readout")] for m in (model, twin)]
    ga = torch.autograd.grad((fast * cot).sum(), cell[0])
    gb = torch.autograd.grad((inp * cot).sum(), cell[1])
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["lem", "cornn", "antisymmetric-gated"])
def test_buffers_in_use_are_never_reused(name):
    """Two graphs alive at once, one backward twice (retain_graph) around another forward,
    and a float32 forward in between: every gradient is the one computed alone."""
    model = _build(name)
    params = [p for n, p in model.named_parameters() if not n.startswith("readout")]
    xs = [_t(B, T, IN, seed=s) for s in (1, 2)]
    cots = [torch.randn(B, T, H, dtype=torch.float64) for _ in xs]

    def grads(out, cot, **kw):
        return torch.autograd.grad((out * cot).sum(), params, **kw)

    alone = [grads(model(x), c) for x, c in zip(xs, cots)]
    first, second = model(xs[0]), model(xs[1])
    again = [grads(second, cots[1]), grads(first, cots[0], retain_graph=True)]
    _build(name).float()(xs[1].float().detach()).sum().backward()
    model(xs[1]).sum().backward()
    again.append(grads(first, cots[0]))
    for got, want in zip(again, [alone[1], alone[0], alone[0]]):
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_benchmark_table_lists_every_requested_model_and_its_site_page_equals_its_csv(tmp_path):
    import csv

    from suite.analysis.site import build_site
    from tests.benchmarks import cell_table
    from tests.test_site import Page

    out = cell_table.main(["--models", "lem", "unicornn", "--rounds", "1", "--batch", "2", "--seq-len", "3",
                           "--hidden", "4", "--variant", "unicornn:layers=1", "--out", str(tmp_path / "t" / "cells")])
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows == ["model", "lstm", "lem", "unicornn", "unicornn (layers=1)"]
    assert "| lem |" in out and "| 1.00 |" in out
    with (tmp_path / "t" / "cells" / "table.csv").open(newline="") as f:
        written = list(csv.reader(f))
    assert [r[0] for r in written] == rows and written[1][2] == "1.00"
    assert (tmp_path / "t" / "cells" / "table.md").read_text().startswith("# Cell table")
    index = build_site(tmp_path / "site", tables=[tmp_path / "t"], runs=[])
    text = (index.parent / "tables" / "t-cells-table.html").read_text()
    assert Page(text).tables["table"] == written
    assert "medians of 1 interleaved rounds; load average" in text  # how it was measured, above the table


def test_memory_benchmark_measures_every_mode_in_its_own_process():
    from tests.benchmarks import activation_memory

    out = activation_memory.main(["--models", "hrnn", "--lengths", "50", "--batch", "2", "--hidden", "4"])
    rows = [line for line in out.splitlines() if line.startswith("| hrnn |")]
    assert [r.split("|")[2].strip() for r in rows] == ["stored", "reversible"]
    assert "failed" not in out


@pytest.mark.parametrize("masked", [False, True])
def test_reversible_unicornn_layer_equals_the_stored_one_and_passes_gradcheck(masked):
    u, weight, bias, w = _t(B, T, IN, seed=3), _t(H, IN, seed=4), _t(H, seed=5), _t(H, seed=1)
    rate = (torch.rand(H, dtype=torch.float64, generator=torch.Generator().manual_seed(6)) * 0.3).requires_grad_()
    mask = torch.tensor([[2.0, 0, 2], [0, 2, 2]], dtype=torch.float64) if masked else None
    wrt = [u, weight, bias, w, rate]

    def layer(u, weight, bias, w, rate, reversible=False):
        return unicornn_layer(u, input_weight=weight, input_bias=bias, w=w, rate=rate, alpha=3.0, mask=mask,
                              reversible=reversible)

    stored = layer(*wrt)
    rev = layer(*wrt, reversible=True)
    torch.testing.assert_close(rev, stored, rtol=0, atol=1e-14)
    cot = torch.randn_like(rev)
    for a, b in zip(torch.autograd.grad((rev * cot).sum(), wrt), torch.autograd.grad((stored * cot).sum(), wrt)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert all(s.abs().max() < 1e-13 for s in _reversible_unicornn.DIAGNOSTICS["reconstructed_initial_state"])
    assert torch.autograd.gradcheck(lambda *a: layer(*a, reversible=True), tuple(wrt),
                                    eps=1e-6, atol=1e-8, rtol=1e-6)


def _saved_numels(fn, x):
    """``fn(x)`` and the sizes of the tensors autograd saved for its backward."""
    sizes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: sizes.append(t.numel()) or t, lambda t: t):
        return fn(x), sizes


@pytest.mark.parametrize("layers", [1, 3])
def test_reversible_unicornn_equals_its_step_loop_and_keeps_no_history(layers):
    model = _build("unicornn", reversible=True, layers=layers).eval()
    params = [p for n, p in model.named_parameters() if not n.startswith("readout")]
    for long in (50, 100):
        x = _t(B, long, IN, seed=3)
        ref = step_loop(model, x)
        for last_only in (False, True):
            fast, sizes = _saved_numels(model.last_features if last_only else model, x)
            want = ref[:, -1] if last_only else ref
            torch.testing.assert_close(fast, want, rtol=1e-9, atol=1e-12)
            grads = zip(torch.autograd.grad(fast.sum(), [x, *params]),
                        torch.autograd.grad(want.sum(), [x, *params], retain_graph=True))
            for a, b in grads:
                torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)
            # held for the backward: the input sequence and O(L·B·H + parameters), no
            # [T, B, H] history of any layer, at either length
            assert max(sizes) == x.numel() and sum(sizes) < x.numel() + 20 * layers * B * H + 4 * H * H


def test_reversible_unicornn_stack_trains_as_the_stored_stack_with_dropout():
    # training mode: one dropout mask per layer and sequence, drawn in the same order
    stored, rev = _build("unicornn", layers=3, dropout=0.4), _build("unicornn", layers=3, dropout=0.4, reversible=True)
    rev.load_state_dict(stored.state_dict())
    x = _t(B, 9, IN, seed=3)
    for last_only in (False, True):
        torch.manual_seed(5)
        want = stored.last_features(x) if last_only else stored(x)
        torch.manual_seed(5)
        got = rev.last_features(x) if last_only else rev(x)
        assert (want == 0).any()  # the masks dropped something
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
        for a, b in zip(torch.autograd.grad(got.sum(), [x, *rev.parameters()], allow_unused=True),
                        torch.autograd.grad(want.sum(), [x, *stored.parameters()], allow_unused=True)):
            if a is not None or b is not None:
                torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("last_only", [False, True])
def test_reversible_unicornn_stack_passes_gradcheck(last_only):
    layers = [(_t(H, IN, seed=4), _t(H, seed=5)), (_t(H, H, scale=0.5, seed=6), _t(H, seed=7))]
    w, rate = _t(2, H, seed=1), (torch.rand(2, H, dtype=torch.float64) * 0.3).requires_grad_()
    masks = torch.tensor([[[2.0, 0, 2], [0, 2, 2]], [[2.0, 2, 0], [2, 0, 2]]], dtype=torch.float64)
    u = _t(B, T, IN, seed=3)
    flat = [u, w, rate, *[p for pair in layers for p in pair]]

    def f(u, w, rate, *p):
        return _reversible_unicornn.reversible_stack(u, input_maps=[(p[0], p[1]), (p[2], p[3])], w=w, rate=rate,
                                                     alpha=3.0, masks=masks, last_only=last_only)

    assert torch.autograd.gradcheck(f, tuple(flat), eps=1e-6, atol=1e-8, rtol=1e-6)
