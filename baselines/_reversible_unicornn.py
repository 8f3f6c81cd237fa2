"""UnICORNN's reversible pass: the whole stack of layers, step by step, storing no
history (``reversible=true`` of :mod:`baselines.unicornn`).

Each layer's step is exactly invertible, since tanh(w y + x) reads only the y that the
y update leaves known:
    y_{t−1} = y_t − r z_t,   z_{t−1} = z_t + r (tanh(w y_{t−1} + x_t) + α y_{t−1}),
so the backward rebuilds every state from the next, recomputing each step's input map
and tanh. The layers run together, step-major, as ``step`` does: layer l's input at
step t is layer l − 1's output y_{l−1,t} (times its dropout mask), and in the backward,
going from the top layer down within a step, that input is still the state the layer
below holds before it is walked back. So no layer's output sequence is ever stored, and
the gradient it receives from the layer above arrives at the same step it is needed.

Held between forward and backward: the input sequence and every layer's final (y, z),
O(L·B·H) besides the input; with ``last_only`` the output is the top layer's last y
alone, so a task read at its last step trains at any length in memory independent of T
(a layer-by-layer reversible pass would keep each lower layer's [T, B, H] output as the
next layer's input). The cost: the input maps are products per step (a [B, in] by
[in, H] product each) instead of one product over all steps.

Adjoint per layer and step (as :class:`baselines._fused_oscillators.Oscillator` with
a = 1, b = −r, c = −α r), λ_y including the gradient from the layer above:
    μ = λ_z + r λ_y,   g = μ ⊙ b (1 − tanh²),
    λ_{y,t−1} = λ_y + c μ + w ⊙ g,   λ_{z,t−1} = μ,   ∂(layer input) = g V,
    ∂r = Σ λ_y z_t − Σ μ (tanh + α y_{t−1}),   ∂w = Σ g y_{t−1},   ∂V = Σ gᵀ input,
the per-neuron sums accumulated step by step.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from baselines._fused import tanh_

# The backward leaves here the initial states it reconstructed (true value: 0), for
# measuring the reconstruction drift; nothing else reads it.
DIAGNOSTICS: dict[str, tuple[Tensor, ...]] = {}


def reversible_stack(u: Tensor, *, input_maps: list[tuple[Tensor, Tensor]], w: Tensor, rate: Tensor, alpha: float,
                     masks: Tensor | None = None, last_only: bool = False) -> Tensor:
    """The top layer's y sequence ``[B, T, H]`` (its last step ``[B, H]`` with ``last_only``)
    over ``u: [B, T, in]``; ``input_maps`` the layers' (weight, bias) bottom up, ``w`` and
    ``rate`` one row ([L, H]) per layer, ``masks`` [L, B, H] dropout masks or None."""
    params = [p for pair in input_maps for p in pair]
    out = _ReversibleStack.apply(u.transpose(0, 1), w, rate, float(alpha), masks, last_only, *params)
    return out if last_only else out.transpose(0, 1)


def _output(y: Tensor, masks: Tensor | None, layer: int) -> Tensor:
    return y if masks is None else y * masks[layer]


class _ReversibleStack(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, w, rate, alpha, masks, last_only, *params):
        steps, batch, depth, hidden = u.shape[0], u.shape[1], w.shape[0], w.shape[1]
        ys = [u.new_zeros(batch, hidden) for _ in range(depth)]
        zs = [u.new_zeros(batch, hidden) for _ in range(depth)]
        out = None if last_only else u.new_empty(steps, batch, hidden)
        b, c = -rate, -alpha * rate
        maps = [(params[2 * k].T, params[2 * k + 1]) for k in range(depth)]
        for t in range(steps):
            inp = u[t]
            for k, (w_t, bias) in enumerate(maps):
                th = tanh_(torch.addmm(bias, inp, w_t).addcmul_(w[k], ys[k]))
                zs[k].addcmul_(b[k], th).addcmul_(c[k], ys[k])
                ys[k].addcmul_(rate[k], zs[k])
                inp = _output(ys[k], masks, k)
            if out is not None:
                out[t].copy_(inp)
        ctx.alpha, ctx.last_only = alpha, last_only
        ctx.save_for_backward(u, w, rate, masks, *params, *ys, *zs)
        return inp.clone() if last_only else out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        u, w, rate, masks, *rest = ctx.saved_tensors
        depth = w.shape[0]
        params, ys, zs = rest[:2 * depth], [y.clone() for y in rest[2 * depth:3 * depth]], \
            [z.clone() for z in rest[3 * depth:]]  # the final states, walked back in place
        alpha, needs = ctx.alpha, ctx.needs_input_grad
        b, c = -rate, -alpha * rate
        d_u = torch.empty_like(u) if needs[0] else None
        d_params = [torch.zeros_like(p) for p in params]
        acc_w, acc_rate = torch.zeros_like(ys[0]).repeat(depth, 1, 1), torch.zeros_like(ys[0]).repeat(depth, 1, 1)
        carry_y, carry_z = [torch.zeros_like(y) for y in ys], [torch.zeros_like(y) for y in ys]
        steps = u.shape[0]
        for t in range(steps - 1, -1, -1):
            if ctx.last_only:
                d_in = grad_out if t == steps - 1 else None
            else:
                d_in = grad_out[t]
            for k in range(depth - 1, -1, -1):  # top down: the layer below still holds its step-t state
                weight, bias = params[2 * k], params[2 * k + 1]
                inp = u[t] if k == 0 else _output(ys[k - 1], masks, k - 1)
                if d_in is None:
                    l_y = carry_y[k]
                else:
                    l_y = carry_y[k] + (d_in if masks is None else d_in * masks[k])
                acc_rate[k].addcmul_(l_y, zs[k])  # ∂r: λ_y z_t
                ys[k].addcmul_(rate[k], zs[k], value=-1)
                th = tanh_(torch.addmm(bias, inp, weight.T).addcmul_(w[k], ys[k]))
                zs[k].addcmul_(b[k], th, value=-1).addcmul_(c[k], ys[k], value=-1)
                m = torch.addcmul(carry_z[k], rate[k], l_y)
                g = m * b[k] * (1 - th * th)
                acc_rate[k].addcmul_(m, torch.add(th, ys[k], alpha=alpha), value=-1)  # ∂b (−1) and ∂c (−α)
                acc_w[k].addcmul_(g, ys[k])
                carry_y[k], carry_z[k] = torch.addcmul(l_y, c[k], m).addcmul_(w[k], g), m
                d_params[2 * k].addmm_(g.T, inp)
                d_params[2 * k + 1].add_(g.sum(0))
                d_in = g @ weight  # the gradient of this layer's input: the output of the layer below
            if d_u is not None:
                d_u[t].copy_(d_in)
        DIAGNOSTICS["reconstructed_initial_state"] = tuple(s.detach() for s in ys + zs)
        return (d_u, acc_w.sum(1) if needs[1] else None, acc_rate.sum(1) if needs[2] else None, None, None, None,
                *(d if need else None for d, need in zip(d_params, needs[6:])))
