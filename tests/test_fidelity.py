"""Each baseline against its authors' formulation, with fixed weights.

The reference functions below restate, in the authors' own parameter layout, what
their published code computes (the layouts and orders are cited in each model's
docstring and in results/reference/recipes/*.toml); the suite's model, given the same
weights mapped into its layout, must produce the same states. Written independently of
the models' code, so a reordering of gates, a lost bias or a transposed matrix fails."""

from __future__ import annotations

import pytest
import torch

import suite
from suite.core.spec import step_loop

B, T, IN, H = 3, 6, 2, 4


def _x(seed=0):
    return torch.randn(B, T, IN, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _model(name, **hparams):
    torch.manual_seed(0)
    return suite.build_model(name, input_size=IN, output_size=3, hidden_size=H, seq_len=T, **hparams).double()


def test_lem_equals_the_authors_cell():
    # authors (LEM network.py): inp2hid -> (i_dt1, i_dt2, i_z, i_y), hid2hid(y) -> (h_dt1, h_dt2, h_y);
    # y's gate from dt1, z's from dt2; z target tanh(i_y + h_y); y target tanh(transform_z(z) + i_z)
    model = _model("lem", dt=0.3)
    v1, v2, vz, vy = model.V.weight.chunk(4, 0)
    bv1, bv2, bvz, bvy = model.V.bias.chunk(4, 0)
    w1, w2, wz = model.W.weight.chunk(3, 0)
    bw1, bw2, bwz = model.W.bias.chunk(3, 0)
    inp_w, inp_b = torch.cat([v2, v1, vy, vz]), torch.cat([bv2, bv1, bvy, bvz])
    hid_w, hid_b = torch.cat([w2, w1, wz]), torch.cat([bw2, bw1, bwz])
    tz_w, tz_b, dt = model.W_y.weight, model.W_y.bias, 0.3
    x = _x()
    y = z = torch.zeros(B, H, dtype=torch.float64)
    ys = []
    for t in range(T):
        i_dt1, i_dt2, i_z, i_y = (x[:, t] @ inp_w.T + inp_b).chunk(4, 1)
        h_dt1, h_dt2, h_y = (y @ hid_w.T + hid_b).chunk(3, 1)
        gate_y, gate_z = dt * torch.sigmoid(i_dt1 + h_dt1), dt * torch.sigmoid(i_dt2 + h_dt2)
        z = (1 - gate_z) * z + gate_z * torch.tanh(i_y + h_y)
        y = (1 - gate_y) * y + gate_y * torch.tanh(z @ tz_w.T + tz_b + i_z)
        ys.append(y)
    torch.testing.assert_close(model(x), torch.stack(ys, 1), rtol=0, atol=1e-12)
    # every weight and bias of the cell U(±1/√H), the readout's weight N(0, 2/H)
    bound = H**-0.5
    assert all(p.abs().max() <= bound for n, p in model.named_parameters() if not n.startswith("readout"))


def test_cornn_explicit_damping_is_the_default_and_the_authors_cell():
    # authors (coRNN network.py): one Linear on [u; z; y]; z += dt (tanh(.) - gamma y - eps z_old); y += dt z
    model = _model("cornn")
    assert model.cfg.damping == "explicit" and (model.cfg.dt, model.cfg.gamma, model.cfg.eps) == (0.042, 2.7, 4.7)
    w_y, w_z = model.W.weight[:, :H], model.W.weight[:, H:]
    i2h = torch.cat([model.V.weight, w_z, w_y], dim=1)
    x, (dt, gamma, eps) = _x(), (0.042, 2.7, 4.7)
    y = z = torch.zeros(B, H, dtype=torch.float64)
    ys = []
    for t in range(T):
        pre = torch.cat([x[:, t], z, y], 1) @ i2h.T + model.V.bias
        z = z + dt * (torch.tanh(pre) - gamma * y - eps * z)
        y = y + dt * z
        ys.append(y)
    torch.testing.assert_close(model(x), torch.stack(ys, 1), rtol=0, atol=1e-12)


def test_unicornn_equals_the_authors_layers_and_its_dropout_mask_is_fixed_over_time():
    model = _model("unicornn", layers=2, dropout=0.0)
    x, dt, alpha = _x(), model.cfg.dt, model.cfg.alpha
    inp = x
    for layer in range(2):
        rate = dt * torch.sigmoid(model.c[layer])
        pre = inp @ model.V[layer].weight.T + model.V[layer].bias
        y = z = torch.zeros(B, H, dtype=torch.float64)
        ys = []
        for t in range(T):
            z = z - rate * (torch.tanh(model.w[layer] * y + pre[:, t]) + alpha * y)
            y = y + rate * z
            ys.append(y)
        inp = torch.stack(ys, 1)
    torch.testing.assert_close(model(x), inp, rtol=0, atol=1e-12)
    # one Bernoulli mask per (sequence, unit), scaled 1/(1-p), the same at every step
    noisy = _model("unicornn", layers=1, dropout=0.5).train()
    out = noisy(x)
    noisy.eval()
    ref = noisy(x)
    ratio = torch.where(ref.abs() > 1e-12, out / ref, torch.zeros_like(ref))
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-9)
    assert set(ratio[:, 0].flatten().round(decimals=6).tolist()) <= {0.0, 2.0}
    readout = noisy.readout
    assert readout.bias.abs().max() == 0


def test_exprnn_equals_the_authors_row_vector_cell():
    # authors (expRNN exprnn.py): h_t = modrelu(W_in x_t + h_{t-1} B), B = expm(triu(X, 1) - triu(X, 1)^T)
    model = _model("exprnn")
    stored = model.recurrent.parametrizations.weight.original.detach()
    authors_x = stored.T  # our lower triangle is their upper triangle
    skew = torch.triu(authors_x, 1) - torch.triu(authors_x, 1).T
    b_mat = torch.linalg.matrix_exp(skew)
    x, h = _x(), torch.zeros(B, H, dtype=torch.float64)
    hs = []
    for t in range(T):
        pre = x[:, t] @ model.W_in.weight.T + h @ b_mat
        h = torch.sign(pre) * torch.relu(pre.abs() + model.b)
        hs.append(h)
    torch.testing.assert_close(model(x), torch.stack(hs, 1), rtol=0, atol=1e-10)
    assert model.cfg.skew_init == "cayley" and model.cfg.skew_lr_scale == 0.1


def test_indrnn_equals_the_authors_plain_network():
    # authors (IndRNN_pytorch pixelMNIST/Indrnn_plainnet.py): per layer Linear over time, relu(x + u h),
    # BatchNorm1d over (batch, time), dropout over time
    model = _model("indrnn", layers=2, dropout=0.0).train()
    x = _x()
    inp = x
    for layer in range(2):
        pre = inp @ model.W[layer].weight.T + model.W[layer].bias
        h = torch.zeros(B, H, dtype=torch.float64)
        hs = []
        for t in range(T):
            h = torch.relu(pre[:, t] + model.u[layer] * h)
            hs.append(h)
        hs = torch.stack(hs, 1)
        mean, var = hs.mean(dim=(0, 1)), hs.var(dim=(0, 1), unbiased=False)
        inp = (hs - mean) / torch.sqrt(var + 1e-5) * model.bn[layer].weight + model.bn[layer].bias
    torch.testing.assert_close(model(x), inp, rtol=0, atol=1e-10)
    # at T = 784 every u starts in [0, 5^(1/784)] (the authors' MAG 5), biases 0
    deep = suite.build_model("indrnn", input_size=1, output_size=10, hidden_size=8, seq_len=784)
    assert deep.cfg.layers == 6 and 0 <= deep.u.min() and deep.u.max() <= 5 ** (1 / 784)
    assert all(lin.bias.abs().max() == 0 for lin in deep.W) and deep.readout.bias.abs().max() == 0


def test_indrnn_eval_step_loop_uses_running_statistics():
    model = _model("indrnn", layers=2, dropout=0.1)
    model.train()
    model(_x(1))  # updates the running statistics
    model.eval()
    torch.testing.assert_close(model(_x()), step_loop(model, _x()), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["lem", "cornn", "unicornn", "exprnn", "indrnn"])
def test_defaults_are_the_published_codes(name):
    model = _model(name)
    assert model.version >= 2, "a model whose defaults changed bumps its version"
