"""The Hamiltonian cells: the fused sequence pass equals the step loop (values and
gradients, float64, both modes), the symplecticity each cell's docstring claims (and the
failure it admits), the H2 lower bound at depth 256, the reversible mode's memory and
inverse, and paper (b)'s experiment pipeline on a small scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

import suite
from suite.core.registry import MODELS, SuiteError
from suite.core.spec import as_tuple, step_loop
from suite.hamiltonian import update
from suite.hamiltonian.hdnn import FORMS, HDNNCell, j1, j2
from suite.studies import deep_hdnn as deep
from suite.studies import drift

CELLS = ["hrnn", "hdnn-h1-j1", "hdnn-h1-j2", "hdnn-h2", "hdnn-ms1", "hdnn-ms2", "hdnn-ms3"]
REVERSIBLE = ["hrnn", "hdnn-h2", "hdnn-ms1", "hdnn-ms3"]
SYMPLECTIC = {"hrnn": True, **{f"hdnn-{k}": form.symplectic for k, form in FORMS.items()}}
STEP_FIELD = {"hrnn": "dt"}
MODES = [(name, False) for name in CELLS] + [(name, True) for name in REVERSIBLE]


def _build(name, *, input_size=3, hidden=6, dtype=torch.float64, step=0.3, reversible=False, seed=0, **extra):
    params = {STEP_FIELD.get(name, "h"): step, **extra}
    if reversible:
        params["reversible"] = True
    torch.manual_seed(seed)
    return suite.build_model(name, input_size=input_size, output_size=2, hidden_size=hidden, **params).to(dtype)


def _cell_params(model):
    return {n: p for n, p in model.named_parameters() if not n.startswith("readout")}


def _assert_fused_matches_step_loop(model, x):
    """Features and the gradients (input and cell parameters) agree in float64."""
    fast, ref = model(x), step_loop(model, x)
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-12)
    cotangent = torch.randn_like(ref)
    wrt = [x, *_cell_params(model).values()]
    g_fast = torch.autograd.grad((fast * cotangent).sum(), wrt)
    g_ref = torch.autograd.grad((ref * cotangent).sum(), wrt)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_every_cell_is_registered_with_a_search_space():
    hamiltonian = [n for n in suite.list_models() if n == "hrnn" or n.startswith("hdnn-")]
    assert sorted(hamiltonian) == sorted(CELLS)
    for name in CELLS:
        cls = MODELS.get(name)
        assert "lr" in cls.search_space and f"model.{STEP_FIELD.get(name, 'h')}" in cls.search_space
        assert ("reversible" in cls.Config.__dataclass_fields__) == (name in REVERSIBLE)


@pytest.mark.parametrize("name, reversible", MODES)
def test_fused_equals_step_loop_on_random_shapes(name, reversible):
    gen = np.random.default_rng(abs(hash((name, reversible))) % 2**32)
    for trial in range(3):
        batch, steps, inputs = (int(v) for v in gen.integers(1, 6, size=3))
        hidden = 2 * int(gen.integers(1, 5))
        model = _build(name, input_size=inputs, hidden=hidden, step=float(gen.uniform(0.05, 0.8)),
                       reversible=reversible, seed=trial)
        x = torch.randn(batch, steps, inputs, dtype=torch.float64, requires_grad=True)
        _assert_fused_matches_step_loop(model, x)


@pytest.mark.parametrize("name, reversible", MODES)
def test_fused_passes_gradcheck(name, reversible):
    model = _build(name, input_size=2, hidden=4, step=0.4, reversible=reversible)
    names = list(_cell_params(model))

    def run(x, *params):
        return functional_call(model, dict(zip(names, params)), (x,))

    x = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    params = [p.detach().clone().requires_grad_() for p in _cell_params(model).values()]
    assert torch.autograd.gradcheck(run, (x, *params), eps=1e-6, atol=1e-8, rtol=1e-6)


def _step_jacobian(model, state, u):
    """Φ = ∂(state after one step)/∂(state before), state flattened as [block 0; block 1]."""
    sizes = [c.shape[-1] for c in as_tuple(state)]

    def f(flat):
        blocks = tuple(b[None] for b in flat.split(sizes))
        s = blocks if len(blocks) > 1 else blocks[0]
        return torch.cat(as_tuple(model.step(u[None], s)), dim=-1)[0]

    flat = torch.cat([c[0] for c in as_tuple(state)])
    return torch.autograd.functional.jacobian(f, flat)


def _random_state(model, scale=1.0):
    state = model.initial_state(1, "cpu", torch.float64)
    return tuple(torch.randn_like(c) * scale for c in as_tuple(state))


def _symplectic_defect(phi, J):
    return (phi.T @ J @ phi - J).abs().max().item()


@pytest.mark.parametrize("name", CELLS)
def test_one_step_is_symplectic_exactly_where_documented(name):
    hidden = 6
    model = _build(name, hidden=hidden, step=0.7, seed=1)
    with torch.no_grad():  # larger weights: a strongly nonlinear step, not a near-identity
        for p in _cell_params(model).values():
            p.mul_(2.0)
    for _ in range(3):
        state = _random_state(model, scale=1.5)
        u = torch.randn(3, dtype=torch.float64)
        phi = _step_jacobian(model, state, u)
        J = j1(phi.shape[0], phi)
        defect = _symplectic_defect(phi, J)
        if SYMPLECTIC[name]:
            assert defect < 1e-10, f"{name}: ΦᵀJΦ − J = {defect:.2e}"
        else:
            assert defect > 1e-3, f"{name} is documented as not symplectic, but ΦᵀJΦ = J (defect {defect:.2e})"


def test_h1_is_symplectic_for_neither_j():
    """Forward Euler breaks the structure the continuous H1 flow keeps: ΦᵀJΦ − J = h² S J S
    for J1 (and a first-order defect for J2), so neither J is preserved by one step."""
    for name, J_of in (("hdnn-h1-j1", j1), ("hdnn-h1-j2", j2)):
        model = _build(name, hidden=4, step=0.5, seed=2)
        phi = _step_jacobian(model, _random_state(model), torch.randn(3, dtype=torch.float64))
        assert _symplectic_defect(phi, J_of(4, phi)) > 1e-3
    # the J1 defect is exactly h² S J1 S with S = Kᵀ D K
    model = _build("hdnn-h1-j1", hidden=4, step=0.5, seed=3)
    state, u = _random_state(model), torch.randn(3, dtype=torch.float64)
    phi = _step_jacobian(model, state, u)
    K = model.K["K"]
    pre = state[0][0] @ K.T + model.V(u)
    S = K.T @ torch.diag(1 - torch.tanh(pre) ** 2) @ K
    J = j1(4, phi)
    torch.testing.assert_close(phi.T @ J @ phi - J, 0.25 * S @ J @ S, rtol=1e-10, atol=1e-12)


def test_ms1_preserves_volume_but_not_the_symplectic_form():
    model = _build("hdnn-ms1", hidden=6, step=0.7, seed=4)
    phi = _step_jacobian(model, _random_state(model), torch.randn(3, dtype=torch.float64))
    assert abs(torch.linalg.det(phi).item() - 1.0) < 1e-10
    assert _symplectic_defect(phi, j1(6, phi)) > 1e-3


def test_h2_backward_sensitivity_is_at_least_one_at_depth_256():
    """Paper (b)'s theorem: symplectic ⇒ ‖∂y_N/∂y_{N−ℓ}‖₂ ≥ 1 for every ℓ ≤ N = 256,
    for the deep network (random per-layer weights) and the recurrent cell."""
    torch.manual_seed(0)
    net = deep.DeepNetwork("h2", members=1, layers=256, t_end=256 * 0.2)
    norms = deep.sensitivity(net, 0, torch.randn(8, deep.DIM))
    assert norms.shape == (8, 257)
    assert norms.min().item() >= 1 - 1e-9
    # not vacuous: a non-symplectic network of the same depth goes below 1
    torch.manual_seed(0)
    resnet = deep.DeepNetwork("resnet", members=1, layers=256, t_end=256 * 0.2)
    assert deep.sensitivity(resnet, 0, torch.randn(8, deep.DIM)).min().item() < 0.9

    cell = _build("hdnn-h2", hidden=4, step=0.5, seed=5, input_size=1)
    state = _random_state(cell)
    flat0 = torch.cat([c[0] for c in state]).requires_grad_()
    blocks = (flat0[None, :2], flat0[None, 2:])
    x = torch.randn(256, 1, dtype=torch.float64)
    for t in range(256):
        blocks = cell.step(x[t][None], blocks)
    final = torch.cat(blocks, dim=-1)[0]
    phi = torch.stack([torch.autograd.grad(final[i], flat0, retain_graph=True)[0] for i in range(4)])
    assert torch.linalg.matrix_norm(phi, ord=2).item() >= 1 - 1e-9
    assert _symplectic_defect(phi, j1(4, phi)) < 1e-8 * max(1.0, phi.abs().max().item() ** 2)


@pytest.mark.parametrize("name", REVERSIBLE)
def test_inverse_step_undoes_step(name):
    model = _build(name, hidden=6, step=0.6)
    state, u = _random_state(model), torch.randn(1, 3, dtype=torch.float64)
    shears, drive = model.shears(), model.V(u)
    after = update.step(state, shears, drive)
    back = update.inverse_step(after, shears, drive)
    for a, b in zip(back, state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)


def test_inverse_step_refuses_a_cell_that_reads_what_it_writes():
    model = _build("hdnn-h1-j1", hidden=4)
    with pytest.raises(ValueError, match="no explicit inverse"):
        update.inverse_step((torch.zeros(1, 4, dtype=torch.float64),), model.shears(), torch.zeros(1, 4))


def _saved_bytes(model, x):
    sizes = []

    def pack(t):
        sizes.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return sum(sizes)


@pytest.mark.parametrize("name", ["hrnn", "hdnn-h2"])
def test_reversible_mode_saves_nothing_that_grows_with_the_sequence(name):
    stored, reversible = _build(name, hidden=8, dtype=torch.float32), _build(name, hidden=8, dtype=torch.float32,
                                                                            reversible=True)
    x_short, x_long = torch.randn(4, 50, 3), torch.randn(4, 100, 3)
    input_growth = (x_long.numel() - x_short.numel()) * 4
    assert _saved_bytes(reversible, x_long) - _saved_bytes(reversible, x_short) == input_growth
    # the stored mode keeps the state and the tanh values: at least 2·B·H floats more per step
    assert _saved_bytes(stored, x_long) - _saved_bytes(stored, x_short) >= input_growth + 50 * 2 * 4 * 8 * 4


def test_reversible_float32_gradients_match_the_stored_path_in_the_stable_regime():
    result = drift.reconstruction_drift("hrnn", steps=300, batch=4, hidden=16, dt=0.05)
    assert result["initial_state_max_error"] < 1e-4
    assert max(result["grad_rel_error_reversible_vs_stored"].values()) < 1e-3


def test_split_cells_need_an_even_hidden_size():
    with pytest.raises(SuiteError, match="even hidden_size"):
        suite.build_model("hdnn-h2", input_size=1, output_size=1, hidden_size=5)
    suite.build_model("hdnn-h1-j2", input_size=1, output_size=1, hidden_size=5)  # J2 has no split


def test_form_flags_match_the_shears():
    for name in CELLS[1:]:
        model = _build(name, hidden=4)
        form = FORMS[model.form]
        assert form.invertible == update.invertible(model.shears()) == (name in REVERSIBLE)


def test_the_input_enters_only_the_drive():
    """b_t = b + V u_t inside the tanh: a zero input leaves exactly the undriven cell."""
    for name in CELLS:
        model = _build(name, hidden=4)
        assert isinstance(model.V, torch.nn.Linear)
        width = sum(update.drive_widths(model.shears()))
        assert model.V.out_features == width
    assert issubclass(MODELS.get("hdnn-h2"), HDNNCell)


# -- paper (b)'s experiments ------------------------------------------------------------------------


@pytest.mark.parametrize("name", deep.DATASETS)
def test_datasets_are_seeded_balanced_and_split_even_odd(name):
    pts, labels = deep.make_dataset(name, seed=0)
    again, _ = deep.make_dataset(name, seed=0)
    assert pts.shape == (8000, 2) and np.array_equal(pts, again)
    assert labels.sum() == 4000
    parts = deep.split(pts, labels)
    x_train, y_train = parts["train"]
    assert x_train.shape == (4000, 4) and parts["test"][0].shape == (4000, 4)
    np.testing.assert_array_equal(x_train[:, [0, 3]].numpy(), pts[0::2])
    assert x_train[:, [1, 2]].abs().max() == 0
    np.testing.assert_array_equal(parts["test"][1].numpy(), labels[1::2])


def test_deep_network_layers_are_the_cells_updates():
    torch.manual_seed(0)
    net = deep.DeepNetwork("h2", members=2, layers=3).double()
    y = torch.randn(2, 5, 4, dtype=torch.float64)
    out = net.layer(y, 1)
    p, q = y[..., :2], y[..., 2:]
    Kq, Kp, b = net.K["Kq"][:, 1], net.K["Kp"][:, 1], net.b[:, 1, None]
    p = p - net.h * torch.tanh(q @ Kq.mT + b[..., :2]) @ Kq
    q = q + net.h * torch.tanh(p @ Kp.mT + b[..., 2:]) @ Kp
    torch.testing.assert_close(out, torch.cat([p, q], -1))


def test_regularizer_is_the_weight_smoothness_penalty():
    torch.manual_seed(0)
    net = deep.DeepNetwork("h1-j1", members=1, layers=4)
    K, b = net.K["K"][0], net.b[0]
    expected = sum(0.5 * (K[j + 1] - K[j]).pow(2).sum() + 0.5 * (b[j + 1] - b[j]).pow(2).sum() for j in range(3))
    torch.testing.assert_close(net.regularizer()[0], deep.ALPHA * net.h * expected)


def test_deep_main_writes_the_table_and_the_figure(tmp_path, monkeypatch):
    monkeypatch.setattr(deep, "SENSITIVITY_POINTS", 8)
    code = deep.main(["--out", str(tmp_path), "--epochs", "1", "--networks", "h2,resnet",
                      "--datasets", "double_moons"])
    assert code == 0
    for f in ("table.md", "table.csv", "sensitivity.csv", "figures/sensitivity.png"):
        assert (tmp_path / f).exists()
    assert len(list((tmp_path / "records").rglob("record.json"))) == 2  # one per network
    sens = deep.pd.read_csv(tmp_path / "sensitivity.csv")
    assert sens[sens.network == "H2"]["min"].min() >= 1 - 1e-6
    assert math.isclose(sens[sens.ell == 0]["mean"].max(), 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("name, reversible", MODES)
def test_fused_on_cuda_matches_the_step_loop(name, reversible):
    model = _build(name, hidden=8, reversible=reversible).cuda()
    x = torch.randn(3, 9, 3, dtype=torch.float64, device="cuda", requires_grad=True)
    _assert_fused_matches_step_loop(model, x)
