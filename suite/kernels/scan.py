"""Linear recurrences evaluated as scans: the one backend of the suite's linear models.

    linear_scan(a, b, h0)   h_t = a_t ⊙ h_{t−1} + b_t           (diagonal, real or complex)
    block_scan(M, F, x0)    x_t = M_t x_{t−1} + F_t               (a 2×2 block per mode)

Time is dim 1 of ``b`` / ``F`` ([B, T, ...]); every state is returned ([B, T, ...]); the
initial state defaults to zero. ``method="sequential"`` is the reference loop under
autograd, ``method="parallel"`` the log-depth scan (on the CPU a fused loop, below); the
tests hold them equal in float64, values and gradients.

Coefficients. ``a`` with as many dims as ``b`` broadcasts against it as it stands (time
size 1: constant over time; size T: input-dependent). ``a`` with fewer dims is constant
over batch and time and broadcasts against ``b.shape[2:]`` (e.g. ``[H]`` for b of shape
[B, T, H]). The same holds for ``M`` against ``F`` with the trailing ``[2, 2]`` removed.

Parallel implementation: recursive pair-halving (the even–odd form of Blelloch's scan).
Adjacent steps (2k, 2k+1) are combined into one step of the same recurrence,
(a_{2k+1} a_{2k}, a_{2k+1} b_{2k} + b_{2k+1}); the half-length recurrence is solved
recursively, giving the states at odd t, and each even t is one step from the state
before it. Depth O(log T), total work and stored activations O(T·B·H) (a geometric
sum of halves: no T·log T term, unlike Hillis–Steele), any T, no padding. Plain torch
operations, so autograd differentiates through it and it runs wherever torch does.

On the CPU ``method="parallel"`` runs instead a step loop inside a custom autograd
Function of the same kind (``_LoopScan``): one fused multiply-add per step and 2×2
entry (``torch.addcmul`` into the preallocated states), forward and adjoint, batch-major
so that nothing is transposed. Measured at B = 64, T = 784, H = 128 on one thread,
forward and backward, the halving was 2× slower than the autograd loop (a core gains
nothing from log depth, and each halving level is another pass over memory) and the
fused loop 1.3× faster (tests/benchmarks/scan_bench.py; a chunked scan, √T steps
within chunks across all chunks at once, then √T across chunks, matched the plain loop
forward, and forward and backward was 1.5–2× slower than the autograd loop).
``CPU_SOLVER = "halving"`` runs the log-depth scan on the CPU too (the tests check both).

Why not a library (checked May 2026): PyTorch 2.13's ``associative_scan``
(``torch._higher_order_ops``) is private, documented as a prototype without autograd,
and generates code for CUDA only; ``accelerated-scan`` 0.3.1 (PyPI) is a set of Triton
GPU kernels for float32 first-order scans in a [B, C, T] layout with no float64, no 2×2
blocks and no CPU path beyond a reference. A faster GPU kernel can sit behind
``method="parallel"`` later, held against this one by the CUDA test.

    python -m tests.benchmarks.scan_bench   # parallel/sequential speed and activation memory
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

Compose = Callable[[Tensor, Tensor], Tensor]  # (later, earlier) -> their product
Apply = Callable[[Tensor, Tensor], Tensor]  # (coefficient, state) -> coefficient · state

METHODS = ("sequential", "parallel")
CPU_SOLVER = "loop"  # what method="parallel" runs on the CPU: "loop" (_LoopScan) or "halving"


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, *, method: str = "parallel") -> Tensor:
    """All states of h_t = a_t ⊙ h_{t−1} + b_t, t = 0..T−1, from h_{−1} = h0 (zero by default)."""
    a = a if a.dim() == b.dim() else a.reshape((1, 1) + a.shape)
    return _run(a, b, h0, torch.mul, torch.mul, method)


def block_scan(M: Tensor, F: Tensor, h0: Tensor | None = None, *, method: str = "parallel") -> Tensor:
    """All states of x_t = M_t x_{t−1} + F_t with M: [..., 2, 2] and F: [B, T, ..., 2]."""
    if M.shape[-2:] != (2, 2) or F.shape[-1] != 2:
        raise ValueError(f"block_scan wants M [..., 2, 2] and F [..., 2], got {tuple(M.shape)}, {tuple(F.shape)}")
    M = M if M.dim() == F.dim() + 1 else M.reshape((1, 1) + M.shape)
    return _run(M, F, h0, _matmul_2x2, _matvec_2x2, method)


def _matvec_2x2(M: Tensor, x: Tensor) -> Tensor:
    # written out rather than torch.matmul: M may be real while x is complex
    x0, x1 = x[..., 0], x[..., 1]
    return torch.stack([M[..., 0, 0] * x0 + M[..., 0, 1] * x1, M[..., 1, 0] * x0 + M[..., 1, 1] * x1], dim=-1)


def _matmul_2x2(later: Tensor, earlier: Tensor) -> Tensor:
    return torch.stack([_matvec_2x2(later, earlier[..., :, 0]), _matvec_2x2(later, earlier[..., :, 1])], dim=-1)


def _run(a: Tensor, b: Tensor, h0: Tensor | None, compose: Compose, apply: Apply, method: str) -> Tensor:
    if method not in METHODS:
        raise ValueError(f"method={method!r}: expected one of {METHODS}")
    if b.dim() < 2 or b.shape[1] == 0:
        raise ValueError(f"b must be [B, T, ...] with T >= 1, got {tuple(b.shape)}")
    if a.shape[1] not in (1, b.shape[1]):
        raise ValueError(f"coefficients' time size {a.shape[1]} is neither 1 nor T = {b.shape[1]}")
    dtype = torch.promote_types(a.dtype, b.dtype)
    b = b.to(dtype)
    if h0 is not None:
        # the initial state enters as one more input at t = 0: b_0 + a_0 h0
        first = apply(a[:, :1], h0.unsqueeze(1).to(dtype)) + b[:, :1]
        b = torch.cat([first, b[:, 1:]], dim=1)
    if method == "sequential":
        return _sequential(a, b, apply)
    blocks = compose is _matmul_2x2
    if b.device.type == "cpu" and CPU_SOLVER == "loop":
        return _LoopScan.apply(a, b, blocks)
    return _ParallelScan.apply(a, b, blocks)


def _sequential(a: Tensor, b: Tensor, apply: Apply) -> Tensor:
    steps = b.unbind(1)
    coefs = a.unbind(1) if a.shape[1] > 1 else [a[:, 0]] * len(steps)
    h, states = steps[0], [steps[0]]
    for a_t, b_t in zip(coefs[1:], steps[1:]):
        h = apply(a_t, h) + b_t
        states.append(h)
    return torch.stack(states, dim=1)


class _ParallelScan(torch.autograd.Function):
    """The pair-halving scan with its adjoint as the backward pass.

    The adjoint of x_t = a_t x_{t−1} + b_t is again a linear recurrence, run backward in
    time: g_t = a_{t+1}ᴴ g_{t+1} + ∂L/∂x_t gives ∂L/∂b_t = g_t and ∂L/∂a_t = g_t x_{t−1}ᴴ.
    Only the states (and a) are kept for it: activation memory T·B·H, against about three
    times that for autograd through the halving's own operations."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, blocks: bool) -> Tensor:
        compose, apply = (_matmul_2x2, _matvec_2x2) if blocks else (torch.mul, torch.mul)
        varying = a.shape[1] > 1
        # time-major inside: every piece of time is one contiguous block
        states = _halving(a.movedim(1, 0), b.movedim(1, 0).contiguous(), compose, apply, varying)
        ctx.blocks = blocks
        ctx.save_for_backward(a, states)
        return states.movedim(0, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        a, states = ctx.saved_tensors  # states time-major
        compose, apply = (_matmul_2x2, _matvec_2x2) if ctx.blocks else (torch.mul, torch.mul)
        a_h = a.transpose(-1, -2).conj() if ctx.blocks else a.conj()
        varying = a.shape[1] > 1
        # backward in time: at reversed step s the coefficient is a_{T−s}ᴴ (none at s = 0)
        coef = a_h.movedim(1, 0)
        if varying:
            coef = torch.cat([torch.zeros_like(coef[:1]), coef[1:].flip(0)])
        g = _halving(coef, grad.movedim(1, 0).flip(0).to(states.dtype).contiguous(), compose, apply, varying).flip(0)
        grad_b = g.movedim(0, 1)
        grad_a = None
        if ctx.needs_input_grad[0]:
            # a constant in time is summed over time anyway: skip t = 0, whose x_{−1} is zero
            after, before = (g, torch.cat([torch.zeros_like(states[:1]), states[:-1]])) if varying \
                else (g[1:], states[:-1])
            before = before.conj()
            outer = after.unsqueeze(-1) * before.unsqueeze(-2) if ctx.blocks else after * before
            grad_a = _sum_to(outer.movedim(0, 1), a)
        return grad_a, grad_b, None


def _sum_to(grad: Tensor, like: Tensor) -> Tensor:
    """``grad`` summed over the dims that ``like`` broadcasts, in ``like``'s dtype (real for a real ``like``)."""
    dims = tuple(d for d, n in enumerate(like.shape) if n == 1 and grad.shape[d] != 1)
    grad = grad.sum(dims, keepdim=True) if dims else grad
    return grad if like.is_complex() else grad.real if grad.is_complex() else grad


def _halving(a: Tensor, b: Tensor, compose: Compose, apply: Apply, varying: bool) -> Tensor:
    """The scan by pair-halving, time-major ([T, B, ...]), without autograd; ``varying``:
    whether ``a`` changes over time (else its time size is 1)."""
    T = b.shape[0]
    out = torch.empty_like(b)
    out[0] = b[0]
    if T == 1:
        return out
    n, m = T // 2, (T - 1) // 2  # pairs (0, 1), …, (2n − 2, 2n − 1); even steps 2, 4, …, 2m after t = 0
    a_even, a_odd = (a[0 : 2 * n : 2], a[1 : 2 * n : 2]) if varying else (a, a)
    # the states at t = 1, 3, …, 2n − 1: the recurrence of the pairs, half as long
    out[1::2] = _halving(compose(a_odd, a_even), apply(a_odd, b[0 : 2 * n : 2]) + b[1 : 2 * n : 2],
                         compose, apply, varying)
    # each even t ≥ 2 is one step from the odd state before it
    out[2::2] = apply(a[2::2] if varying else a, out[1 : 2 * m : 2]) + b[2::2]
    return out


class _LoopScan(torch.autograd.Function):
    """The CPU path: the step loop without autograd's per-step graph, forward and adjoint
    (the recurrence and its gradients as in ``_ParallelScan``), saving the states alone."""

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, blocks: bool) -> Tensor:
        states = _loop(a, b, blocks, reverse=False)
        ctx.blocks = blocks
        ctx.save_for_backward(a, states)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        a, states = ctx.saved_tensors
        a_h = a.transpose(-1, -2).conj() if ctx.blocks else a.conj()
        g = _loop(a_h, grad.to(states.dtype), ctx.blocks, reverse=True)
        grad_a = None
        constant_block = ctx.blocks and a.shape[:2] == (1, 1) and a.shape[2:-2] == g.shape[2:-1]
        if ctx.needs_input_grad[0] and constant_block:
            grad_a = _block_grad(g[:, 1:], states[:, :-1], a)
        elif ctx.needs_input_grad[0]:
            after, before = g[:, 1:], states[:, :-1].conj()  # x_{−1} = 0: step 0 adds nothing
            outer = after.unsqueeze(-1) * before.unsqueeze(-2) if ctx.blocks else after * before
            if a.shape[1] > 1:
                outer = torch.cat([torch.zeros_like(outer[:, :1]), outer], dim=1)
            grad_a = _sum_to(outer, a)
        return grad_a, g, None


def _block_grad(after: Tensor, before: Tensor, like: Tensor) -> Tensor:
    """Σ over batch and time of after ⊗ conj(before) for a 2×2 coefficient constant over both
    (``like`` [1, 1, ..., 2, 2]): one contraction, where the outer products summed afterwards
    were 60% of LinOSS's backward scan at the demo's shape."""
    if like.is_complex() or not after.is_complex():
        out = torch.einsum("bt...i,bt...j->...ij", after, before.conj())
    else:  # a real coefficient takes Re(a conj(b)) = a_re b_re + a_im b_im
        out = torch.einsum("bt...ir,bt...jr->...ij", torch.view_as_real(after), torch.view_as_real(before))
    return out.reshape(like.shape)


def _loop(a: Tensor, b: Tensor, blocks: bool, reverse: bool) -> Tensor:
    """x_t = a_t x_{t−1} + b_t over [B, T, ...], written step by step into one tensor;
    ``reverse``: the adjoint's order, x_t = a_{t+1} x_{t+1} + b_t from t = T − 1 down."""
    T, varying = b.shape[1], a.shape[1] > 1
    # one cast here, not a promoting copy of the coefficient at every step's addcmul
    a = a.to(b.dtype)
    out = torch.empty_like(b)
    order = range(T - 1, -1, -1) if reverse else range(T)
    prev = None
    for t in order:
        if prev is None:
            out[:, t] = b[:, t]
        else:
            coef = a[:, t + 1 if reverse else t] if varying else a[:, 0]
            _fused_step(out[:, t], coef, out[:, prev], b[:, t], blocks)
        prev = t
    return out


def _fused_step(out: Tensor, coef: Tensor, prev: Tensor, drive: Tensor, blocks: bool) -> None:
    """out = coef · prev + drive in place, one addcmul per product (coef may be real, prev complex)."""
    if not blocks:
        torch.addcmul(drive, coef, prev, out=out)
        return
    x0, x1 = prev[..., 0], prev[..., 1]
    torch.addcmul(drive[..., 0], coef[..., 0, 0], x0, out=out[..., 0]).addcmul_(coef[..., 0, 1], x1)
    torch.addcmul(drive[..., 1], coef[..., 1, 0], x0, out=out[..., 1]).addcmul_(coef[..., 1, 1], x1)
