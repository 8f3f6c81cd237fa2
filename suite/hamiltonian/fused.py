"""The fused sequence pass of every Hamiltonian cell: :func:`run_sequence`, the whole
sequence as one custom autograd Function with the analytic backward, which every cell's
``forward`` uses (CPU and GPU). The update form it runs, a cell's list of shears, and
the reference :func:`~suite.hamiltonian.update.step` are in :mod:`suite.hamiltonian.update`;
the contract and the tests hold this pass equal to the step loop, values and gradients,
in float64.

The analytic backward of one shear, with λ the adjoint of the state after it:
    u = c·λ_tgt,   g = (u W_outᵀ) ⊙ (1 − tanh²),   ∂a = g,
    λ_src += β·λ_tgt + g W_in,   ∂W_in += gᵀ x_src,   ∂W_out += tanhᵀ u,
and λ_tgt passes through unchanged (the x_tgt term is the identity).

Two modes:
  * stored (default): the forward keeps every value of the blocks the backward or the
    output reads (the tanh sources and the features; hrnn's z only as a rolling pair)
    and every tanh, O(T·B·H) memory. The input projection V u + b for all steps is one
    matrix product per tanh shear; each step costs its shears' products (hrnn: W y and
    tanh·W forward, λ·Wᵀ and g·W backward); the parameter gradients are one product over
    all T·B rows at the end (both shared with the baselines' passes:
    :mod:`suite.kernels.timemajor`). Its buffers come from :mod:`suite.kernels.buffers`.
  * reversible (``reversible=True``, cells whose shears all have tgt ≠ src): the
    forward keeps only the final state; the backward walks the steps back with
    :func:`~suite.hamiltonian.update.inverse_step`'s arithmetic, recomputing each tanh from the reconstructed
    source block, and accumulates the gradients step by step. Nothing of size T·H is
    held between forward and backward (the inputs x, of size T·B·input_size, are);
    the drive is computed per step for the same reason. The output is T·B·F all the
    same (and so is its gradient) unless ``last_only``, which the harness asks for when
    the task reads the last step alone (``RecurrentModel.last_features``): activation
    memory is then O(B·H) (``python -m tests.benchmarks.activation_memory``). It costs one more product per
    tanh shear per step each way. Float32 reconstruction drift: measured by
    ``python -m suite.studies.drift``, reported in docs/hamiltonian.md; it is small
    exactly when the gradients are stable (the inverse amplifies rounding errors as the
    backward amplifies gradients).

Speed (two-core CPU, B = 64, T = 784, H = 128, one training step of hrnn): about
0.14 s stored, 0.20 s reversible, against 0.33 s for torch.nn.LSTM
(tests/benchmarks/test_bench_hamiltonian.py). The loops use the caller's thread
count, like every torch op; on a machine busy with other processes,
``torch.set_num_threads(1)`` made them several times faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from suite.hamiltonian.update import Shear, drive_widths, invertible
from suite.kernels.buffers import take
from suite.kernels.layout import consecutive_slices
from suite.kernels.timemajor import input_drives, input_map_grads, rows_product

# The reversible backward leaves here the initial state it reconstructed (true value: 0),
# for the drift measurement (suite.studies.drift); nothing else reads it.
DIAGNOSTICS: dict[str, tuple[Tensor, ...]] = {}


@dataclass(frozen=True)
class _Plan:
    """Everything about a cell but its tensors: hashable, passed through autograd."""

    sizes: tuple[int, ...]  # block widths
    meta: tuple[tuple[int, int, bool, bool, float, float], ...]  # tgt, src, has_in, has_out, scale, beta
    features: tuple[int, ...]  # blocks the output concatenates
    reversible: bool
    last_only: bool = False  # the output is the last step's features alone: [B, 1, F]

    def bind(self, weights: Sequence[Tensor]) -> list[Shear]:
        it = iter(weights)
        return [Shear(tgt, src, next(it) if has_in else None, next(it) if has_out else None, scale, beta)
                for tgt, src, has_in, has_out, scale, beta in self.meta]

    def kept_blocks(self) -> set[int]:
        """Blocks whose every value the stored mode keeps: the output and the tanh sources."""
        return set(self.features) | {src for _, src, has_in, *_ in self.meta if has_in}

    def src_is_new(self) -> list[bool]:
        """Whether each shear reads its source after an earlier shear of the step wrote it."""
        written, out = set(), []
        for tgt, src, *_ in self.meta:
            out.append(src in written)
            written.add(tgt)
        return out


def run_sequence(x: Tensor, *, input_weight: Tensor, input_bias: Tensor, shears: Sequence[Shear],
                 sizes: Sequence[int], features: Sequence[int], reversible: bool = False,
                 last_only: bool = False) -> Tensor:
    """Features ``[B, T, F]`` of a cell run from the zero state over ``x: [B, T, input]``
    (``[B, 1, F]``, the last step's, with ``last_only``: with ``reversible`` nothing of
    size T·B·H is then allocated, forward or backward).

    The drive of step t is ``x_t input_weightᵀ + input_bias``; ``shears`` the cell's update
    form on blocks of widths ``sizes``; ``features`` lists the blocks concatenated into the
    output. Equal to the loop over :func:`step`.
    """
    targets = sorted(sh.tgt for sh in shears)
    if targets != list(range(len(sizes))):
        raise ValueError("every block must be written by exactly one shear per step")
    if reversible and not invertible(shears):
        raise ValueError("reversible mode needs every shear to have tgt != src")
    plan = _Plan(tuple(sizes), tuple((sh.tgt, sh.src, sh.w_in is not None, sh.w_out is not None,
                                      float(sh.scale), float(sh.beta)) for sh in shears),
                 tuple(features), bool(reversible), bool(last_only))
    weights = [w for sh in shears for w in (sh.w_in, sh.w_out) if w is not None]
    return _ShearSequence.apply(plan, x, input_weight, input_bias, *weights)


class _ShearSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, plan: _Plan, x, v_weight, v_bias, *weights):
        shears = plan.bind(weights)
        batch, steps = x.shape[0], x.shape[1]
        widths = drive_widths(shears)
        ctx.plan, ctx.steps, ctx.n_weights = plan, steps, len(weights)
        if plan.reversible:
            blocks = [x.new_zeros(batch, d) for d in plan.sizes]
            out = x.new_empty(1 if plan.last_only else steps, batch, sum(plan.sizes[b] for b in plan.features))
            out_cols = consecutive_slices([plan.sizes[b] for b in plan.features])
            for t in range(steps):
                drives = torch.addmm(v_bias, x[:, t], v_weight.T).split(widths, dim=-1)
                k_in = 0
                for sh in shears:
                    s, x_t = blocks[sh.src], blocks[sh.tgt]
                    if sh.w_in is not None:
                        th = torch.addmm(drives[k_in], s, sh.w_in.T).tanh_()
                        k_in += 1
                        if sh.w_out is None:
                            x_t.add_(th, alpha=sh.scale)
                        else:
                            x_t.addmm_(th, sh.w_out, alpha=sh.scale)
                    if sh.beta != 0:
                        x_t.add_(s, alpha=sh.beta)
                if not plan.last_only or t == steps - 1:
                    for b, cols in zip(plan.features, out_cols):
                        out[0 if plan.last_only else t, :, cols].copy_(blocks[b])
            ctx.save_for_backward(x, v_weight, v_bias, *weights, *blocks)
            return out.transpose(0, 1)

        # stored mode: S[b][t] is block b after t steps; TH[k][t] the tanh of shear k at step t.
        # Only the blocks the backward or the output reads keep their history (the
        # features, the sources of tanh shears); any other block (hrnn's z) keeps its
        # last two values, S[b][t % 2].
        # TH[k] starts as shear k's drive (all steps in one product) and each step turns
        # its slice into tanh(s W_inᵀ + a) in place
        TH = input_drives("hamiltonian", x.transpose(0, 1).reshape(steps * batch, -1), (steps, batch), v_weight,
                          v_bias, widths)
        kept = plan.kept_blocks()
        S = [take(f"hamiltonian.state{b}", (steps + 1 if b in kept else 2, batch, d), x)
             for b, d in enumerate(plan.sizes)]
        for buf in S:
            buf[0].zero_()
        wrap = [steps + 1 if b in kept else 2 for b in range(len(S))]
        src_new = plan.src_is_new()
        w_in_t = [sh.w_in.T if sh.w_in is not None else None for sh in shears]
        # per-step views made once: indexing inside the loop cost a tenth of the step
        S_t, TH_t = [b.unbind(0) for b in S], [b.unbind(0) for b in TH]
        for t in range(steps):
            k_in = 0
            for k, sh in enumerate(shears):
                s = S_t[sh.src][(t + src_new[k]) % wrap[sh.src]]
                old, new = S_t[sh.tgt][t % wrap[sh.tgt]], S_t[sh.tgt][(t + 1) % wrap[sh.tgt]]
                if sh.w_in is None:
                    torch.add(old, s, alpha=sh.beta, out=new)
                    continue
                th = TH_t[k_in][t].addmm_(s, w_in_t[k]).tanh_()
                k_in += 1
                if sh.beta != 0:
                    torch.add(old, s, alpha=sh.beta, out=new)
                else:
                    new.copy_(old)
                if sh.w_out is None:
                    new.add_(th, alpha=sh.scale)
                else:
                    new.addmm_(th, sh.w_out, alpha=sh.scale)
        ctx.save_for_backward(x, v_weight, v_bias, *weights, *S, *TH)
        first = steps if plan.last_only else 1
        if len(plan.features) == 1:
            return S[plan.features[0]][first:].transpose(0, 1)
        return torch.cat([S[b][first:] for b in plan.features], dim=-1).transpose(0, 1)

    @staticmethod
    def backward(ctx, grad_out):
        plan, steps = ctx.plan, ctx.steps
        saved = ctx.saved_tensors
        x, v_weight, v_bias = saved[:3]
        weights = saved[3:3 + ctx.n_weights]
        rest = saved[3 + ctx.n_weights:]
        shears = plan.bind(weights)
        needs = ctx.needs_input_grad
        if plan.reversible:
            grads = _backward_reversible(plan, shears, x, v_weight, v_bias, rest, grad_out, needs)
        else:
            grads = _backward_stored(plan, shears, x, v_weight, v_bias, rest, grad_out, steps, needs)
        return (None, *grads)


def _shear_weight_grads(shears, d_in, d_out) -> list[Tensor]:
    """Weight gradients in the order of the Function's weight inputs."""
    out, k_in = [], 0
    for sh in shears:
        if sh.w_in is not None:
            out.append(d_in[k_in])
            if sh.w_out is not None:
                out.append(d_out[k_in])
            k_in += 1
    return out


def _shear_adjoint(sh: Shear, lam: list[Tensor], th: Tensor | None, w_out_t: Tensor | None, g_out: Tensor | None):
    """Adjoint of one shear: updates ``lam[sh.src]`` and writes ∂a into ``g_out``."""
    lt = lam[sh.tgt]
    src = lam[sh.src] if sh.beta == 0 else torch.add(lam[sh.src], lt, alpha=sh.beta)
    if sh.w_in is None:
        lam[sh.src] = src
        return
    dth = torch.mm(lt, w_out_t) if sh.w_out is not None else (lt if sh.scale == 1 else lt * sh.scale)
    torch.addcmul(dth, torch.mul(dth, th, out=g_out), th, value=-1, out=g_out)  # g = dth ⊙ (1 − tanh²)
    # every λ is a tensor of this backward's own making, so it can be updated in place
    lam[sh.src] = src.addmm_(g_out, sh.w_in)


def _backward_stored(plan, shears, x, v_weight, v_bias, rest, grad_out, steps, needs):
    n_blocks = len(plan.sizes)
    S, TH = rest[:n_blocks], rest[n_blocks:]
    batch = x.shape[0]
    widths = drive_widths(shears)
    G = grad_out.transpose(0, 1)
    feat_cols = list(zip(plan.features, consecutive_slices([plan.sizes[b] for b in plan.features])))
    lam = [x.new_zeros(batch, d) for d in plan.sizes]
    DA = [take(f"hamiltonian.da{k}", (steps, batch, m), x) for k, m in enumerate(widths)]
    # U[k][t]: the adjoint λ_tgt seen by tanh shear k at step t (for ∂W_out at the end)
    U = [take(f"hamiltonian.u{k}", (steps, batch, plan.sizes[sh.tgt]), x) if sh.w_out is not None else None
         for k, sh in enumerate(sh for sh in shears if sh.w_in is not None)]
    w_out_t = [sh.scale * sh.w_out.T if sh.w_out is not None else None for sh in shears]
    in_index = _in_index(shears)
    G_t = [(b, G[:, :, cols].unbind(0)) for b, cols in feat_cols]
    TH_t, DA_t = [b.unbind(0) for b in TH], [b.unbind(0) for b in DA]
    U_t = [b.unbind(0) if b is not None else None for b in U]
    order = [(shears[k], in_index[k], w_out_t[k]) for k in range(len(shears) - 1, -1, -1)]
    for t in range(steps - 1, -1, -1):
        if not plan.last_only or t == steps - 1:  # last_only: the output's one step
            for b, g in G_t:
                lam[b] = lam[b] + g[0 if plan.last_only else t]
        for sh, k_in, wot in order:
            if sh.w_in is None:
                _shear_adjoint(sh, lam, None, None, None)
                continue
            if U_t[k_in] is not None:
                U_t[k_in][t].copy_(lam[sh.tgt])
            _shear_adjoint(sh, lam, TH_t[k_in][t], wot, DA_t[k_in][t])

    src_new = plan.src_is_new()
    d_in, d_out = [], []
    for k, sh in enumerate(shears):
        if sh.w_in is None:
            continue
        k_in = in_index[k]
        source = S[sh.src][1:] if src_new[k] else S[sh.src][:-1]
        d_in.append(rows_product(DA[k_in], source))
        d_out.append(sh.scale * rows_product(TH[k_in], U[k_in]) if sh.w_out is not None else None)
    dx, dvw, dvb = input_map_grads(DA, x.transpose(0, 1).reshape(steps * batch, -1), v_weight, needs[1:4])
    dx = dx.view(steps, batch, -1).transpose(0, 1) if dx is not None else None
    return (dx, dvw, dvb, *_shear_weight_grads(shears, d_in, d_out))


def _backward_reversible(plan, shears, x, v_weight, v_bias, rest, grad_out, needs):
    blocks = [b.clone() for b in rest]  # the final state, walked back in place
    batch, steps = x.shape[0], x.shape[1]
    widths = drive_widths(shears)
    feat_cols = list(zip(plan.features, consecutive_slices([plan.sizes[b] for b in plan.features])))
    lam = [x.new_zeros(batch, d) for d in plan.sizes]
    in_index = _in_index(shears)
    d_in = [torch.zeros_like(sh.w_in) for sh in shears if sh.w_in is not None]
    d_out = [torch.zeros_like(sh.w_out) if sh.w_out is not None else None for sh in shears if sh.w_in is not None]
    w_out_t = [sh.scale * sh.w_out.T if sh.w_out is not None else None for sh in shears]
    dx = x.new_empty(steps, batch, x.shape[-1]) if needs[1] else None
    dvw = torch.zeros_like(v_weight)
    dvb = torch.zeros_like(v_bias)
    g_parts = [x.new_empty(batch, m) for m in widths]
    for t in range(steps - 1, -1, -1):
        if not plan.last_only or t == steps - 1:
            for b, cols in feat_cols:
                lam[b] = lam[b] + grad_out[:, 0 if plan.last_only else t, cols]
        drives = torch.addmm(v_bias, x[:, t], v_weight.T).split(widths, dim=-1)
        for k in range(len(shears) - 1, -1, -1):
            sh, k_in = shears[k], in_index[k]
            s = blocks[sh.src]
            th = None
            if sh.w_in is not None:
                th = torch.addmm(drives[k_in], s, sh.w_in.T).tanh_()
                if sh.w_out is None:
                    blocks[sh.tgt].sub_(th, alpha=sh.scale)
                else:
                    blocks[sh.tgt].addmm_(th, sh.w_out, alpha=-sh.scale)
            if sh.beta != 0:
                blocks[sh.tgt].sub_(s, alpha=sh.beta)
            if sh.w_in is None:
                _shear_adjoint(sh, lam, None, None, None)
                continue
            if sh.w_out is not None:
                d_out[k_in].addmm_(th.T, lam[sh.tgt], alpha=sh.scale)
            _shear_adjoint(sh, lam, th, w_out_t[k], g_parts[k_in])
            d_in[k_in].addmm_(g_parts[k_in].T, s)
        da = g_parts[0] if len(g_parts) == 1 else torch.cat(g_parts, dim=-1)
        if dx is not None:
            torch.mm(da, v_weight, out=dx[t])
        dvw.addmm_(da.T, x[:, t])
        dvb.add_(da.sum(0))
    DIAGNOSTICS["reconstructed_initial_state"] = tuple(b.detach() for b in blocks)
    dx = dx.transpose(0, 1) if dx is not None else None
    return (dx, dvw if needs[2] else None, dvb if needs[3] else None, *_shear_weight_grads(shears, d_in, d_out))


def _in_index(shears) -> list[int | None]:
    """Index of each shear among the tanh shears (None for a shear without W_in)."""
    out, k = [], 0
    for sh in shears:
        out.append(k if sh.w_in is not None else None)
        k += sh.w_in is not None
    return out
