"""Fused sequence passes of the baseline cells: one custom autograd Function per call, with
the input map for all steps in one product, the recurrence over pre-allocated buffers
and a backward derived by hand. Each model's ``forward`` calls the function of its form
with its parameters read at call time; ``step`` stays the definition, and the contract
tests (and tests/test_fused_baselines.py, with ``gradcheck``) hold every pass equal to
the ``step`` loop, values and gradients, in float64.

Three forms, each one forward loop and one backward loop:

* **diagonal** (one state block h): h_t = f(h_{t−1}, p_t), p_t = V x_t + b + R h_{t−1}
  (R a matrix, or a vector acting element-wise), where f is element-wise in p and h_{t−1}
  enters f at most through an identity term. Its adjoint is, with λ_t = ∂L/∂h_t,
      g_t = λ_t ⊙ Q_t (one factor per block of p),   λ_{t−1} = [λ_t] + g_t R
  plus the output gradient; Q_t = ∂f/∂p comes from the stored histories in one pass at
  the start of the backward. Cells:
  AntisymmetricRNN plain and gated (one A h serves both gates), Lipschitz (p = [A; W] h),
  expRNN (modReLU, no identity term), IndRNN (R = diag(u)).
* **oscillator** (blocks y, z): z_t = a z_{t−1} + b tanh(p_t) + c y_{t−1},
  y_t = y_{t−1} + r z_t, p_t = V x_t + b_V + (W [y; z] or w ⊙ y). Adjoint: μ = λ_z + r λ_y,
  g = μ b (1 − tanh²), λ_y ← λ_y + c μ + [g W]_y (or w ⊙ g), λ_z ← a μ + [g W]_z. coRNN
  (scalar a, b, c, r; both damping schemes) and one UnICORNN layer (per-neuron a = 1,
  b = −r, c = −α r, r = Δt σ̂(c); the coefficients' gradients flow back to c).
* **LEM** (blocks y, z, two products per step, the second reading the new z).

What the passes share with each other and with the Hamiltonian cells' pass
(:mod:`suite.kernels.timemajor`): the drive V x + b for all steps in one product per block
of rows, the state histories kept time-major, the weight gradients as one product over
all T·B rows after the backward loop, and the buffers of :mod:`suite.kernels.buffers`.

A cell object of a form names its tensors in ``PARAMS`` (``OPTIONAL``: those that may be
None), gives ``drive_widths(width)``, ``forward(drives, **params) -> (output, saved)``
and ``backward(grad_out, params, saved, needs) -> (drive gradients, parameter
gradients)``, ``params`` and ``needs`` in the order of ``PARAMS``; :func:`run` takes the
tensors by those names.

Speed: the cell table of docs/benchmarks.md (``python -m tests.benchmarks.cell_table``); on one thread of
the two-core machine, LEM's training step at B = 64, T = 784, H = 128 fell from 1.41× to
1.04× torch.nn.LSTM's and UnICORNN's (3 layers) from 1.48× to 0.84×. What is left per step
is mostly Python dispatch of small element-wise ops (≈ 3 µs each).

Not here yet: a GPU path. The loops run on CUDA as they are, one kernel launch per op
and step; a faster device path (CUDA graphs, a Triton kernel for the element-wise
recurrences) would replace a form's two loops behind the same functions, with these
CPU loops as the reference it is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from suite.kernels.buffers import take
from suite.kernels.timemajor import input_drives, input_map_grads, rows_product


def run(cell, x: Tensor, *, input_weight: Tensor | None = None, input_bias: Tensor | None = None,
        **params: Tensor | None) -> Tensor:
    """``cell``'s features ``[B, T, F]`` over ``x: [B, T, in]`` from the zero state.

    The drive is ``x input_weightᵀ + input_bias``, split into ``cell.drive_widths`` row
    blocks; without ``input_weight`` ``x`` itself is the drive (plus ``input_bias`` if
    given). ``params`` are the cell's tensors by the names of ``cell.PARAMS`` (those in
    ``cell.OPTIONAL`` may be left out: None). The pass runs time-major; the output is a
    time-major tensor seen as [B, T, F], so an element-wise op on it (dropout) keeps that
    layout and the next layer's input map reads it without a copy."""
    unknown = set(params) - set(cell.PARAMS)
    missing = set(cell.PARAMS) - set(params) - set(getattr(cell, "OPTIONAL", ()))
    if unknown or missing:
        raise TypeError(f"{type(cell).__name__} takes {', '.join(cell.PARAMS)}: "
                        f"unknown {sorted(unknown)}, missing {sorted(missing)}")
    ordered = [params.get(name) for name in cell.PARAMS]
    return _Sequence.apply(cell, x.transpose(0, 1), input_weight, input_bias, *ordered).transpose(0, 1)


class _Sequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell, x, v_weight, v_bias, *params):
        steps, batch = x.shape[0], x.shape[1]
        width = x.shape[-1] if v_weight is None else v_weight.shape[0]
        if v_weight is None and v_bias is None and not getattr(cell, "writes_drive", True):
            drives = [x]  # read, never written: no copy
        else:
            drives = input_drives(type(cell).__name__, x.reshape(steps * batch, -1), (steps, batch), v_weight, v_bias,
                                  cell.drive_widths(width))
        out, saved = cell.forward(drives, **dict(zip(cell.PARAMS, params)))
        ctx.cell, ctx.n_params = cell, len(params)
        ctx.save_for_backward(x, v_weight, *params, *saved)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, v_weight, *rest = ctx.saved_tensors
        params, saved = rest[:ctx.n_params], rest[ctx.n_params:]
        needs = ctx.needs_input_grad
        if grad_out.stride(-1) != 1:  # the loops read it one [B, F] step at a time
            grad_out = grad_out.contiguous()
        g_drives, g_params = ctx.cell.backward(grad_out, params, saved, needs[4:])
        dx, dvw, dvb = input_map_grads(g_drives, x.reshape(-1, x.shape[-1]), v_weight, needs[1:4])
        dx = dx.view(x.shape) if dx is not None else None
        return (None, dx, dvw, dvb, *g_params)


_SCALARS: dict[tuple, Tensor] = {}


def scalar(value: float, like: Tensor) -> Tensor:
    """``value`` as a 0-dimensional tensor of ``like``'s dtype and device, made once: an op
    with a Python number as operand wraps it in a tensor on every call, which measured
    3 µs, more than the op itself on a 64×128 block."""
    key = (value, like.dtype, like.device)
    if key not in _SCALARS:
        _SCALARS[key] = torch.tensor(value, dtype=like.dtype, device=like.device)
    return _SCALARS[key]


def tanh_(x: Tensor) -> Tensor:
    """tanh in place; on the CPU as 2σ(2x) − 1 (absolute error below 2·10⁻⁷ in float32,
    3·10⁻¹⁶ in float64). torch's CPU tanh hands even one 64×128 step to the math
    library's threads: measured 5× the cost of sigmoid, which runs on the calling thread,
    on one thread, and tens of times slower on two threads of a machine busy with other
    processes; the four ops here cost a third of it."""
    if x.device.type != "cpu":
        return x.tanh_()
    return x.add_(x).sigmoid_().add_(x).sub_(scalar(1, x))


def _sum_bt(a: Tensor, b: Tensor, role: str) -> Tensor:
    """Σ over steps and batch of a ⊙ b (both [T, B, H]) -> [H], through a pooled buffer."""
    return torch.mul(a, b, out=take(role, a.shape, a)).sum((0, 1))


def state_buffer(role: str, steps: int, batch: int, width: int, like: Tensor) -> Tensor:
    """A state history [T + 1, B, width] whose row 0 is the zero initial state."""
    buf = take(role, (steps + 1, batch, width), like)
    buf[0].zero_()
    return buf


# -- the diagonal form ------------------------------------------------------------------------


def _diagonal_backward(grad_out: Tensor, q: Tensor, rec: Tensor, identity: bool) -> tuple[Tensor, Tensor]:
    """λ_t = ∂L/∂h_t for all t, and g_t = λ_t ⊙ Q_t ([T, B, k, H]: k blocks of p).

    λ_{t−1} = grad_out_{t−1} + [λ_t if ``identity``] + g_t R, with R = ``rec``: a
    [k·H, H] matrix, or an [H] vector applied element-wise (k = 1)."""
    steps, batch, k, hidden = q.shape
    lam = take("diagonal.lam", (steps, batch, hidden), q)
    g = take("diagonal.g", q.shape, q)
    carry = q.new_zeros(batch, hidden)
    dense = rec.dim() == 2
    lam_t, g_t, q_t, out_t = lam.unbind(0), g.unbind(0), q.unbind(0), grad_out.unbind(0)
    for t in range(steps - 1, -1, -1):
        lt = torch.add(out_t[t], carry, out=lam_t[t])
        rows = torch.mul(lt.unsqueeze(-2), q_t[t], out=g_t[t]).view(batch, k * hidden)
        if dense:
            carry = torch.addmm(lt, rows, rec) if identity else torch.mm(rows, rec)
        else:
            carry = torch.addcmul(lt, rows, rec) if identity else rows * rec
    return lam, g


@dataclass(frozen=True)
class Antisymmetric:
    """h_t = h_{t−1} + ε tanh(p_t), p = V x + b + A h (plain); gated:
    h_t = h_{t−1} + ε σ(p_z) ⊙ tanh(p_h) with p_z, p_h = V_z x + b_z, V_h x + b_h, plus A h."""

    eps: float
    gated: bool = False
    PARAMS = ("recurrent",)  # A

    def drive_widths(self, width):
        return [width // 2, width // 2] if self.gated else [width]

    def forward(self, drives, recurrent):
        A = recurrent
        steps, batch, hidden = drives[0].shape
        hs = state_buffer("antisymmetric.h", steps, batch, hidden, A)
        h_t, A_t = hs.unbind(0), A.T
        if not self.gated:
            p_t = drives[0].unbind(0)
            for t in range(steps):
                th = tanh_(p_t[t].addmm_(h_t[t], A_t))
                torch.add(h_t[t], th, alpha=self.eps, out=h_t[t + 1])
            return hs[1:], (hs, drives[0])
        pz_t, ph_t = drives[0].unbind(0), drives[1].unbind(0)
        for t in range(steps):
            ah = torch.mm(h_t[t], A_t)
            s, th = pz_t[t].add_(ah).sigmoid_(), tanh_(ph_t[t].add_(ah))
            torch.addcmul(h_t[t], s, th, value=self.eps, out=h_t[t + 1])
        return hs[1:], (hs, drives[0], drives[1])

    def backward(self, grad_out, params, saved, needs):
        (A,), hs, eps = params, saved[0], self.eps
        if not self.gated:
            th = saved[1]
            q = torch.addcmul(th.new_tensor(eps), th, th, value=-eps, out=take("antisymmetric.q", th.shape, th))
            _, g = _diagonal_backward(grad_out, q.unsqueeze(-2), A, identity=True)
            g = g.squeeze(-2)
            return [g], [rows_product(g, hs[:-1]) if needs[0] else None]
        s, th = saved[1], saved[2]
        # ∂h/∂p_z = ε tanh σ(1 − σ), ∂h/∂p_h = ε σ (1 − tanh²); A h enters both
        qz = torch.addcmul(s, s, s, value=-1, out=take("antisymmetric.qz", s.shape, s)).mul_(th).mul_(eps)
        qh = torch.mul(th, th, out=take("antisymmetric.qh", s.shape, s))
        qh = torch.addcmul(s, s, qh, value=-1, out=qh).mul_(eps)
        q = torch.add(qz, qh, out=take("antisymmetric.q", s.shape, s))
        lam, g = _diagonal_backward(grad_out, q.unsqueeze(-2), A, identity=True)
        d_rec = rows_product(g, hs[:-1]) if needs[0] else None
        return [qz.mul_(lam), qh.mul_(lam)], [d_rec]


@dataclass(frozen=True)
class Lipschitz:
    """h_t = h_{t−1} + ε a_t + ε tanh(p_t), [a; p] = [A_β; W_β] h_{t−1} + [0; U x + b]."""

    eps: float
    PARAMS = ("recurrent",)  # [A_β; W_β]

    def drive_widths(self, width):
        return [width]

    def forward(self, drives, recurrent):
        R = recurrent
        steps, batch, hidden = drives[0].shape
        hs = state_buffer("lipschitz.h", steps, batch, hidden, R)
        h_t, p_t, R_t = hs.unbind(0), drives[0].unbind(0), R.T
        for t in range(steps):
            aw = torch.mm(h_t[t], R_t)
            th = tanh_(p_t[t].add_(aw[:, hidden:]))
            torch.add(h_t[t], aw[:, :hidden], alpha=self.eps, out=h_t[t + 1]).add_(th, alpha=self.eps)
        return hs[1:], (hs, drives[0])

    def backward(self, grad_out, params, saved, needs):
        (R,), (hs, th) = params, saved
        steps, batch, hidden = th.shape
        q = take("lipschitz.q", (steps, batch, 2, hidden), th)
        q[:, :, 0].fill_(self.eps)
        torch.addcmul(th.new_tensor(self.eps), th, th, value=-self.eps, out=q[:, :, 1])
        _, g = _diagonal_backward(grad_out, q, R, identity=True)
        return [g[:, :, 1]], [rows_product(g, hs[:-1]) if needs[0] else None]


@dataclass(frozen=True)
class ModReLU:
    """expRNN: h_t = sign(p_t) ⊙ relu(|p_t| + b), p = W_in x + B h_{t−1}."""

    PARAMS = ("recurrent", "modulus_bias")  # B, b

    def drive_widths(self, width):
        return [width]

    def forward(self, drives, recurrent, modulus_bias):
        B, b = recurrent, modulus_bias
        steps, batch, hidden = drives[0].shape
        hs = state_buffer("modrelu.h", steps, batch, hidden, B)
        h_t, p_t, B_t = hs.unbind(0), drives[0].unbind(0), B.T
        for t in range(steps):
            p = p_t[t].addmm_(h_t[t], B_t)
            torch.mul(torch.sign(p), torch.abs(p).add_(b).relu_(), out=h_t[t + 1])
        return hs[1:], (hs,)

    def backward(self, grad_out, params, saved, needs):
        (B, _), (hs,) = params, saved
        # ∂h/∂p = sign(p)² 1[|p| + b > 0] = 1[h ≠ 0];  ∂h/∂b = sign(p) 1[…] = sign(h)
        sign = torch.sign(hs[1:], out=take("modrelu.sign", hs[1:].shape, hs))
        q = torch.abs(sign, out=take("modrelu.q", sign.shape, sign))
        _, g = _diagonal_backward(grad_out, q.unsqueeze(-2), B, identity=False)
        g = g.squeeze(-2)
        d_rec = rows_product(g, hs[:-1]) if needs[0] else None
        d_b = _sum_bt(g, sign, "modrelu.prod") if needs[1] else None  # g sign(h) = λ sign(h), as sign³ = sign
        return [g], [d_rec, d_b]


@dataclass(frozen=True)
class IndRNNPass:
    """h_t = relu(p_t + u ⊙ h_{t−1}), p = W x + b."""

    writes_drive = False
    PARAMS = ("recurrent",)  # u

    def drive_widths(self, width):
        return [width]

    def forward(self, drives, recurrent):
        u = recurrent
        steps, batch, hidden = drives[0].shape
        hs = state_buffer("indrnn.h", steps, batch, hidden, u)
        h_t, p_t = hs.unbind(0), drives[0].unbind(0)
        for t in range(steps):
            torch.addcmul(p_t[t], u, h_t[t], out=h_t[t + 1]).relu_()
        return hs[1:], (hs,)

    def backward(self, grad_out, params, saved, needs):
        (u,), (hs,) = params, saved
        q = take("indrnn.q", hs[1:].shape, hs).copy_(hs[1:] > 0)  # relu′, as autograd takes it
        _, g = _diagonal_backward(grad_out, q.unsqueeze(-2), u, identity=False)
        g = g.squeeze(-2)
        return [g], [_sum_bt(g, hs[:-1], "indrnn.prod") if needs[0] else None]


def indrnn_layer(x: Tensor, *, recurrent: Tensor, input_weight: Tensor | None = None,
                 input_bias: Tensor | None = None) -> Tensor:
    """One IndRNN layer's h sequence ``[B, T, H]``: h_t = relu(x_t input_weightᵀ + input_bias
    + u ⊙ h_{t−1}) with u = ``recurrent``, from h_0 = 0 over ``x: [B, T, in]``, the input map
    for all steps in one product; without ``input_weight`` and ``input_bias``, ``x`` is the
    drive itself."""
    return run(IndRNNPass(), x, input_weight=input_weight, input_bias=input_bias, recurrent=recurrent)
