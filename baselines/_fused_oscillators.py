"""The two-block (y, z) forms of :mod:`baselines._fused`: the oscillator form (coRNN, one
UnICORNN layer) and LEM. Each is a cell object for :func:`baselines._fused.run`: its
``forward`` loop over pre-allocated buffers and its ``backward`` loop derived by hand
(equations in the class docstrings, the adjoint beside each loop)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from baselines._fused import run, scalar, state_buffer, tanh_
from baselines._reversible_unicornn import reversible_stack
from suite.kernels.buffers import take
from suite.kernels.timemajor import rows_product


@dataclass(frozen=True)
class Oscillator:
    """z_t = a z_{t−1} + b tanh(p_t) + c y_{t−1},  y_t = y_{t−1} + r z_t, with
    p_t = V x_t + b_V + W [y_{t−1}; z_{t−1}] (``rec`` a [H, 2H] matrix: coRNN) or
    p_t = V x_t + b_V + w ⊙ y_{t−1} (``rec`` an [H] vector: UnICORNN). The coefficients
    a, b, c, r are tensors, 0-dimensional or one per neuron (a may be None: 1); their
    gradients are returned. The output is y_t, times ``mask`` ([B, H], the same at every
    step: a dropout mask) when one is given.

    Adjoint, with λ_y, λ_z the adjoints of y_t, z_t (λ_y including the output gradient):
        μ = λ_z + r λ_y,   g = μ ⊙ b (1 − tanh²(p_t))   (= ∂L/∂p_t),
        λ_{y,t−1} = λ_y + c μ + [gW]_y (or w ⊙ g),   λ_{z,t−1} = a μ + [gW]_z,
        ∂a = Σ μ z_{t−1}, ∂b = Σ μ tanh(p_t), ∂c = Σ μ y_{t−1}, ∂r = Σ λ_y z_t, ∂w = Σ g y_{t−1}.
    The per-neuron sums accumulate step by step, while the rows are in cache (measured: a
    third of the cost of a product and a sum over the histories afterwards).
    """

    PARAMS = ("recurrent", "a", "b", "c", "r", "mask")  # W or w, the coefficients, the mask
    OPTIONAL = ("a", "mask")

    def drive_widths(self, width):
        return [width]

    def forward(self, drives, recurrent, a, b, c, r, mask):
        rec = recurrent
        steps, batch, hidden = drives[0].shape
        dense = rec.dim() == 2
        if dense:  # W acts on the row [y; z]: keep the two blocks side by side
            s = state_buffer("oscillator.yz", steps, batch, 2 * hidden, rec)
            ys, zs = s[..., :hidden], s[..., hidden:]
            saved = (s,)
        else:  # separate, so that the y history is contiguous for the next layer's input map
            ys = state_buffer("oscillator.y", steps, batch, hidden, rec)
            zs = state_buffer("oscillator.z", steps, batch, hidden, rec)
            s, saved = None, (ys, zs)
        out = ys[1:] if mask is None else take("oscillator.out", ys[1:].shape, rec)
        y_t, z_t, p_t, o_t = ys.unbind(0), zs.unbind(0), drives[0].unbind(0), out.unbind(0)
        s_t, rec_t = (s.unbind(0), rec.T) if dense else (None, rec)
        for t in range(steps):
            p = p_t[t].addmm_(s_t[t], rec_t) if dense else p_t[t].addcmul_(rec_t, y_t[t])
            th = tanh_(p)
            z = torch.addcmul(z_t[t] if a is None else z_t[t] * a, b, th, out=z_t[t + 1]).addcmul_(c, y_t[t])
            y = torch.addcmul(y_t[t], r, z, out=y_t[t + 1])
            if mask is not None:
                torch.mul(y, mask, out=o_t[t])
        return out, (*saved, drives[0])

    def backward(self, grad_out, params, saved, needs):
        rec, a, b, c, r, mask = params
        dense = rec.dim() == 2
        th = saved[-1]
        steps, batch, hidden = th.shape
        ys, zs = (saved[0][..., :hidden], saved[0][..., hidden:]) if dense else saved[:2]
        q = torch.mul(th, th, out=take("oscillator.q", th.shape, th))
        q = torch.addcmul(b, b, q, value=-1, out=q)  # b (1 − tanh²)
        g = take("oscillator.g", th.shape, th)
        carry_y, carry_z = th.new_zeros(batch, hidden), th.new_zeros(batch, hidden)
        rows = [th.new_empty(batch, 2 * hidden) for _ in range(2)] if dense else None
        y_t, z_t, th_t = ys.unbind(0), zs.unbind(0), th.unbind(0)
        g_t, q_t, out_t = g.unbind(0), q.unbind(0), grad_out.unbind(0)
        # ∂w, ∂a, ∂b, ∂c, ∂r: which are wanted, and their accumulators over the batch rows
        wanted = [not dense and needs[0]] + [coef is not None and need for coef, need in zip((a, b, c, r), needs[1:5])]
        acc = [th.new_zeros(batch, hidden) if w else None for w in wanted]
        for t in range(steps - 1, -1, -1):
            l_y = torch.add(out_t[t], carry_y) if mask is None else torch.addcmul(carry_y, out_t[t], mask)
            m = torch.addcmul(carry_z, r, l_y)
            gt = torch.mul(m, q_t[t], out=g_t[t])
            for k, (u, v) in enumerate(((gt, y_t[t]), (m, z_t[t]), (m, th_t[t]), (m, y_t[t]), (l_y, z_t[t + 1]))):
                if acc[k] is not None:
                    acc[k].addcmul_(u, v)
            if dense:
                row = rows[t % 2]  # the carry read in this step is the other row
                torch.addcmul(l_y, c, m, out=row[:, :hidden])
                torch.mul(m, 1 if a is None else a, out=row[:, hidden:])
                row.addmm_(gt, rec)
                carry_y, carry_z = row[:, :hidden], row[:, hidden:]
            else:
                carry_y = torch.addcmul(l_y, c, m).addcmul_(rec, gt)
                carry_z = m if a is None else m * a
        grads = [None] * 6
        if dense and needs[0]:
            grads[0] = rows_product(g, saved[0][:-1])
        for k, (total, like) in enumerate(zip(acc, (rec, a, b, c, r))):
            if total is not None:
                grads[k] = total.sum(0) if like.dim() else total.sum()
        return [g], grads


@dataclass(frozen=True)
class LEMPass:
    """LEM with σ̂-gates s₁, s₂ and targets t_z, t_y (drive blocks [3H, H]):
        [s₁ s₂ t_z] = [σ̂ σ̂ tanh](V₁₂_z x + b₁₂_z + W y),   z_t = z + Δt s₁ (t_z − z),
        t_y = tanh(V_y x + b_y + W_y z_t),                 y_t = y + Δt s₂ (t_y − y)
    with W = [W₁; W₂; W_z] ([3H, H]) and y, z at t − 1. The step's first product and its
    gates and t_z share one contiguous row: t_z = 2σ̂(2·) − 1, with its drive and rows
    of W doubled, so that one sigmoid covers the row.

    Adjoint, with λ_y (including the output gradient) and λ_z those of y_t, z_t:
        e = Δt s₂ λ_y,  g_y = e (1 − t_y²),  g₂ = e (t_y − y)(1 − s₂)
        μ = λ_z + g_y W_y,  f = Δt s₁ μ,  g_z = f (1 − t_z²),  g₁ = f (t_z − z)(1 − s₁)
        λ_{y,t−1} = λ_y − e + [g₁ g₂ g_z] W,   λ_{z,t−1} = μ − f.
    """

    dt: float
    PARAMS = ("recurrent", "recurrent_y")  # W = [W₁; W₂; W_z], W_y

    def drive_widths(self, width):
        return [3 * width // 4, width // 4]

    def forward(self, drives, recurrent, recurrent_y):
        W, W_y = recurrent, recurrent_y
        pre, ty = drives
        steps, batch, hidden = ty.shape
        ys, zs = state_buffer("lem.y", steps, batch, hidden, W), state_buffer("lem.z", steps, batch, hidden, W)
        pre[..., 2 * hidden:].mul_(2)
        ty.mul_(2)
        w_t = torch.cat([W[:2 * hidden], 2 * W[2 * hidden:]]).T
        wy_t = W_y.T
        y_t, z_t, pre_t, ty_t = ys.unbind(0), zs.unbind(0), pre.unbind(0), ty.unbind(0)
        dt, one, two = self.dt, scalar(1, ty), scalar(2, ty)
        for t in range(steps):
            s = pre_t[t].addmm_(y_t[t], w_t).sigmoid_()
            target = s[:, 2 * hidden:].mul_(two).sub_(one)
            z = torch.addcmul(z_t[t], s[:, :hidden], target - z_t[t], value=dt, out=z_t[t + 1])
            target = ty_t[t].addmm_(z, wy_t, alpha=2).sigmoid_().mul_(two).sub_(one)
            torch.addcmul(y_t[t], s[:, hidden:2 * hidden], target - y_t[t], value=dt, out=y_t[t + 1])
        return ys[1:], (ys, zs, pre, ty)

    def backward(self, grad_out, params, saved, needs):
        W, W_y = params
        ys, zs, pre, ty = saved
        steps, batch, hidden = ty.shape
        g3, gy = take("lem.g3", pre.shape, pre), take("lem.gy", ty.shape, ty)
        dt, h, h2 = scalar(self.dt, ty), hidden, 2 * hidden
        carry_y, carry_z = ty.new_zeros(batch, hidden), ty.new_zeros(batch, hidden)
        y_t, z_t, pre_t, ty_t = ys.unbind(0), zs.unbind(0), pre.unbind(0), ty.unbind(0)
        g3_t, gy_t, out_t = g3.unbind(0), gy.unbind(0), grad_out.unbind(0)
        for t in range(steps - 1, -1, -1):
            s1, s2, tz, g = pre_t[t][:, :h], pre_t[t][:, h:h2], pre_t[t][:, h2:], g3_t[t]
            l_y = out_t[t] + carry_y
            e = torch.mul(l_y, s2).mul_(dt)
            torch.addcmul(e, e * ty_t[t], ty_t[t], value=-1, out=gy_t[t])
            d = torch.sub(ty_t[t], y_t[t]).mul_(e)
            torch.addcmul(d, d, s2, value=-1, out=g[:, h:h2])
            m = torch.addmm(carry_z, gy_t[t], W_y)
            f = torch.mul(m, s1).mul_(dt)
            torch.addcmul(f, f * tz, tz, value=-1, out=g[:, h2:])
            d = torch.sub(tz, z_t[t]).mul_(f)
            torch.addcmul(d, d, s1, value=-1, out=g[:, :h])
            carry_y = torch.sub(l_y, e).addmm_(g, W)
            carry_z = m.sub_(f)
        d_w = rows_product(g3, ys[:-1]) if needs[0] else None
        d_wy = rows_product(gy, zs[1:]) if needs[1] else None
        return [g3, gy], [d_w, d_wy]


def unicornn_layer(u: Tensor, *, input_weight: Tensor, input_bias: Tensor, w: Tensor, rate: Tensor,
                   alpha: float, mask: Tensor | None = None, reversible: bool = False) -> Tensor:
    """One UnICORNN layer's y sequence ``[B, T, H]`` over its input sequence ``u: [B, T, in]``:
    the input map ``u input_weightᵀ + input_bias`` for all steps in one product, then per neuron
        z_t = z_{t−1} − rate (tanh(w y_{t−1} + x_t) + α y_{t−1}),   y_t = y_{t−1} + rate z_t;
    times ``mask`` ([B, H], a dropout mask shared by all steps) if given: inside the pass it
    costs one product per step, where a separate dropout pass costs a product over the
    whole sequence forward and backward and two fresh T·B·H tensors.

    ``reversible=True``: the pass keeps only its input and its final state, and the
    backward walks the steps back (:mod:`baselines._reversible_unicornn`, one layer)."""
    if reversible:
        return reversible_stack(u, input_maps=[(input_weight, input_bias)], w=w[None], rate=rate[None], alpha=alpha,
                                masks=None if mask is None else mask[None])
    return run(Oscillator(), u, input_weight=input_weight, input_bias=input_bias, recurrent=w,
               b=-rate, c=-alpha * rate, r=rate, mask=mask)
