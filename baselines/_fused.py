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

What the passes share: the drive V x + b for all steps in one product per block of rows
(contiguous per step, so that each step's tanh and sigmoid run on contiguous rows: on a
strided slice they took twice as long), the state histories kept time-major, the weight
gradients as one product over all T·B rows after the backward loop, and :data:`POOL`.

Speed: the README's table (``python -m tests.benchmarks.cell_table``); on one thread of
the two-core machine, LEM's training step at B = 64, T = 784, H = 128 fell from 1.41× to
1.04× torch.nn.LSTM's and UnICORNN's (3 layers) from 1.48× to 0.84×. What is left per step
is mostly Python dispatch of small element-wise ops (≈ 3 µs each).

Not here yet: a GPU path. The loops run on CUDA as they are, one kernel launch per op
and step; a faster device path (CUDA graphs, a Triton kernel for the element-wise
recurrences) would replace a form's two loops behind the same functions, with these
CPU loops as the reference it is tested against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from suite.kernels.layout import consecutive_slices

_use_count = getattr(torch._C, "_storage_Use_Count", None)


class Pool:
    """CPU buffers reused from one call to the next. A fresh buffer of tens of MB costs a
    page fault per 4 KB on first touch (measured: 30 ms per 100 MB, about a tenth of a
    training step of the larger cells at B = 64, T = 784, H = 128), so the passes take
    their buffers here. A held buffer is handed out again only when nothing but the pool
    refers to its storage: autograd's saved tensors, outputs still held by the caller and
    gradients in flight all count, so a buffer in use is never overwritten (a second
    forward before the first backward simply gets other buffers). At most ``KEEP_BYTES``
    are held, least recently used dropped first; ``clear()`` drops them all."""

    KEEP_BYTES = 2**30

    def __init__(self):
        self.held: list[tuple[str, Tensor]] = []

    def take(self, role: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        n = math.prod(shape)
        if like.device.type != "cpu" or _use_count is None:
            return like.new_empty(shape)
        for i, (r, buf) in enumerate(self.held):
            # 2 = the pool's own tensor and the temporary storage object of this check
            if r == role and buf.dtype == like.dtype and buf.numel() >= n \
                    and _use_count(buf.untyped_storage()._cdata) == 2:
                self.held.append(self.held.pop(i))
                return buf[:n].view(shape)
        buf = like.new_empty(n)
        if n * buf.element_size() <= self.KEEP_BYTES:
            self.held.append((role, buf))
            while sum(b.numel() * b.element_size() for _, b in self.held) > self.KEEP_BYTES:
                self.held.pop(0)
        return buf.view(shape)

    def clear(self) -> None:
        self.held.clear()


POOL = Pool()


def run(cell, x: Tensor, v_weight: Tensor | None, v_bias: Tensor | None, *params: Tensor) -> Tensor:
    """``cell``'s features ``[B, T, F]`` over ``x: [B, T, in]`` from the zero state.

    The drive is ``x v_weightᵀ + v_bias``, split into ``cell.drive_widths`` row blocks;
    ``v_weight=None`` takes ``x`` itself as the drive (plus ``v_bias`` if given). The
    pass runs time-major; the output is a time-major tensor seen as [B, T, F], so an
    element-wise op on it (dropout) keeps that layout and the next layer's input map
    reads it without a copy."""
    return _Sequence.apply(cell, x.transpose(0, 1), v_weight, v_bias, *params).transpose(0, 1)


class _Sequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cell, x, v_weight, v_bias, *params):
        steps, batch = x.shape[0], x.shape[1]
        width = x.shape[-1] if v_weight is None else v_weight.shape[0]
        if v_weight is None and v_bias is None and not getattr(cell, "writes_drive", True):
            drives = [x]  # read, never written: no copy
        else:
            x2 = x.reshape(steps * batch, -1)
            drives = [_drive(f"{type(cell).__name__}.drive{k}", x2, v_weight, v_bias, rows, (steps, batch))
                      for k, rows in enumerate(consecutive_slices(cell.drive_widths(width)))]
        out, saved = cell.forward(drives, *params)
        ctx.cell, ctx.n_params, ctx.width = cell, len(params), width
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
        steps, batch = x.shape[0], x.shape[1]
        x2 = x.reshape(steps * batch, -1)
        blocks = consecutive_slices(ctx.cell.drive_widths(ctx.width))
        flat = [g.reshape(steps * batch, -1) for g in g_drives]
        dx = dvw = dvb = None
        if needs[1]:
            if v_weight is None:
                dx = torch.cat(flat, dim=-1) if len(flat) > 1 else flat[0].clone()
            else:
                dx = flat[0] @ v_weight[blocks[0]]
                for g, rows in zip(flat[1:], blocks[1:]):
                    dx.addmm_(g, v_weight[rows])
            dx = dx.view(x.shape)
        if needs[2]:
            dvw = v_weight.new_empty(v_weight.shape)
            for g, rows in zip(flat, blocks):
                torch.mm(g.T, x2, out=dvw[rows])
        if needs[3]:
            dvb = torch.cat([g.sum(0) for g in flat])
        return (None, dx, dvw, dvb, *g_params)


def _drive(role, x2, v_weight, v_bias, rows: slice, lead: tuple[int, int]) -> Tensor:
    """Rows ``rows`` of the drive x v_weightᵀ + v_bias for all steps, [T, B, width], pooled."""
    buf = POOL.take(role, (*lead, rows.stop - rows.start), x2)
    flat = buf.view(lead[0] * lead[1], -1)
    if v_weight is None:
        flat.copy_(x2[:, rows])
        if v_bias is not None:
            flat.add_(v_bias[rows])
    elif v_bias is None:
        torch.mm(x2, v_weight[rows].T, out=flat)
    else:
        torch.addmm(v_bias[rows], x2, v_weight[rows].T, out=flat)
    return buf




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
    return torch.mul(a, b, out=POOL.take(role, a.shape, a)).sum((0, 1))


def state_buffer(role: str, steps: int, batch: int, width: int, like: Tensor) -> Tensor:
    """A state history [T + 1, B, width] whose row 0 is the zero initial state."""
    buf = POOL.take(role, (steps + 1, batch, width), like)
    buf[0].zero_()
    return buf


# -- the diagonal form ------------------------------------------------------------------------


def _diagonal_backward(grad_out: Tensor, q: Tensor, rec: Tensor, identity: bool) -> tuple[Tensor, Tensor]:
    """λ_t = ∂L/∂h_t for all t, and g_t = λ_t ⊙ Q_t ([T, B, k, H]: k blocks of p).

    λ_{t−1} = grad_out_{t−1} + [λ_t if ``identity``] + g_t R, with R = ``rec``: a
    [k·H, H] matrix, or an [H] vector applied element-wise (k = 1)."""
    steps, batch, k, hidden = q.shape
    lam = POOL.take("diagonal.lam", (steps, batch, hidden), q)
    g = POOL.take("diagonal.g", q.shape, q)
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


def _rec_grad(g: Tensor, hs: Tensor) -> Tensor:
    """∂R = Σ_t g_tᵀ h_{t−1}: one product over all T·B rows."""
    return g.reshape(-1, g.shape[-1] if g.dim() == 3 else g.shape[-2] * g.shape[-1]).T @ hs[:-1].reshape(
        -1, hs.shape[-1])


@dataclass(frozen=True)
class Antisymmetric:
    """h_t = h_{t−1} + ε tanh(p_t), p = V x + b + A h (plain); gated:
    h_t = h_{t−1} + ε σ(p_z) ⊙ tanh(p_h) with p_z, p_h = V_z x + b_z, V_h x + b_h, plus A h."""

    eps: float
    gated: bool = False

    def drive_widths(self, width):
        return [width // 2, width // 2] if self.gated else [width]

    def forward(self, drives, A):
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
            q = torch.addcmul(th.new_tensor(eps), th, th, value=-eps, out=POOL.take("antisymmetric.q", th.shape, th))
            _, g = _diagonal_backward(grad_out, q.unsqueeze(-2), A, identity=True)
            g = g.squeeze(-2)
            return [g], [_rec_grad(g, hs) if needs[0] else None]
        s, th = saved[1], saved[2]
        # ∂h/∂p_z = ε tanh σ(1 − σ), ∂h/∂p_h = ε σ (1 − tanh²); A h enters both
        qz = torch.addcmul(s, s, s, value=-1, out=POOL.take("antisymmetric.qz", s.shape, s)).mul_(th).mul_(eps)
        qh = torch.mul(th, th, out=POOL.take("antisymmetric.qh", s.shape, s))
        qh = torch.addcmul(s, s, qh, value=-1, out=qh).mul_(eps)
        q = torch.add(qz, qh, out=POOL.take("antisymmetric.q", s.shape, s))
        lam, g = _diagonal_backward(grad_out, q.unsqueeze(-2), A, identity=True)
        d_rec = _rec_grad(g, hs) if needs[0] else None
        return [qz.mul_(lam), qh.mul_(lam)], [d_rec]


@dataclass(frozen=True)
class Lipschitz:
    """h_t = h_{t−1} + ε a_t + ε tanh(p_t), [a; p] = [A_β; W_β] h_{t−1} + [0; U x + b]."""

    eps: float

    def drive_widths(self, width):
        return [width]

    def forward(self, drives, R):
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
        q = POOL.take("lipschitz.q", (steps, batch, 2, hidden), th)
        q[:, :, 0].fill_(self.eps)
        torch.addcmul(th.new_tensor(self.eps), th, th, value=-self.eps, out=q[:, :, 1])
        _, g = _diagonal_backward(grad_out, q, R, identity=True)
        return [g[:, :, 1]], [_rec_grad(g, hs) if needs[0] else None]


@dataclass(frozen=True)
class ModReLU:
    """expRNN: h_t = sign(p_t) ⊙ relu(|p_t| + b), p = W_in x + B h_{t−1}."""

    def drive_widths(self, width):
        return [width]

    def forward(self, drives, B, b):
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
        sign = torch.sign(hs[1:], out=POOL.take("modrelu.sign", hs[1:].shape, hs))
        q = torch.abs(sign, out=POOL.take("modrelu.q", sign.shape, sign))
        _, g = _diagonal_backward(grad_out, q.unsqueeze(-2), B, identity=False)
        g = g.squeeze(-2)
        d_rec = _rec_grad(g, hs) if needs[0] else None
        d_b = _sum_bt(g, sign, "modrelu.prod") if needs[1] else None  # g sign(h) = λ sign(h), as sign³ = sign
        return [g], [d_rec, d_b]


@dataclass(frozen=True)
class IndRNNPass:
    """h_t = relu(p_t + u ⊙ h_{t−1}), p = W x + b."""

    writes_drive = False

    def drive_widths(self, width):
        return [width]

    def forward(self, drives, u):
        steps, batch, hidden = drives[0].shape
        hs = state_buffer("indrnn.h", steps, batch, hidden, u)
        h_t, p_t = hs.unbind(0), drives[0].unbind(0)
        for t in range(steps):
            torch.addcmul(p_t[t], u, h_t[t], out=h_t[t + 1]).relu_()
        return hs[1:], (hs,)

    def backward(self, grad_out, params, saved, needs):
        (u,), (hs,) = params, saved
        q = POOL.take("indrnn.q", hs[1:].shape, hs).copy_(hs[1:] > 0)  # relu′, as autograd takes it
        _, g = _diagonal_backward(grad_out, q.unsqueeze(-2), u, identity=False)
        g = g.squeeze(-2)
        return [g], [_sum_bt(g, hs[:-1], "indrnn.prod") if needs[0] else None]


def indrnn_layer(x: Tensor, weight: Tensor | None, bias: Tensor | None, u: Tensor) -> Tensor:
    """One IndRNN layer's h sequence ``[B, T, H]``: h_t = relu(x_t weightᵀ + bias + u ⊙ h_{t−1})
    from h_0 = 0 over ``x: [B, T, in]``, the input map for all steps in one product;
    ``weight=None, bias=None``: ``x`` is the drive itself."""
    return run(IndRNNPass(), x, weight, bias, u)
