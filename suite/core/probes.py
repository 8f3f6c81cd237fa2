"""Gradient measurements, in one tested place.

Hidden-state gradient profile ‖∂L/∂h_t‖, t = 1..T
    The model is unrolled through its ``step`` (the reference semantics). After every
    step a zero perturbation δ_t is added to every component of the state, and
    ∂L/∂δ_t is taken: because δ_t enters the recurrence, this is the *total*
    derivative of L with respect to the state at t, through every later step, not
    only the direct term. L is the sum of the per-example losses on a fixed probe
    batch, so example b's gradient is ∂L_b/∂h_t^b; the profile is the mean over
    examples of the per-example Euclidean norm over all state components (h and c
    for an LSTM, y and z for a Hamiltonian cell).

    The probe runs on a float64 copy of the model: vanishing gradients at T = 10⁴
    reach 1e-40 and below, which float32 flushes to zero.

Parameter-gradient norm
    The Euclidean norm of all parameter gradients stacked (not a mean square),
    taken before clipping; see :func:`total_grad_norm`.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor

from suite.core.spec import RecurrentModel, Task, as_tuple

PROBE_DTYPE = torch.float64


def apply_readout(model: RecurrentModel, task: Task, feats: Tensor) -> Tensor:
    """Readout at the last step or at every step, as the task declares."""
    if task.output_at == "last":
        return model.readout(feats[:, -1])
    return model.readout(feats)


def hidden_gradient_profile(model: RecurrentModel, task: Task, x: Tensor, y: Tensor) -> list[float]:
    """‖∂L/∂h_t‖ for t = 1..T (mean over the batch of per-example norms)."""
    # evaluation mode: no dropout, batch normalization from its running statistics, so
    # the profile is a deterministic function of the weights
    probe = copy.deepcopy(model).to(PROBE_DTYPE).eval()
    x = x.to(PROBE_DTYPE)
    y = y.to(PROBE_DTYPE) if y.is_floating_point() else y
    batch, steps = x.shape[0], x.shape[1]
    state = probe.initial_state(batch, x.device, PROBE_DTYPE)
    perturbations: list[tuple[Tensor, ...]] = []
    feats = []
    for t in range(steps):
        state = probe.step(x[:, t], state)
        deltas = tuple(torch.zeros_like(c, requires_grad=True) for c in as_tuple(state))
        perturbed = tuple(c + d for c, d in zip(as_tuple(state), deltas))
        state = perturbed if isinstance(state, tuple) else perturbed[0]
        perturbations.append(deltas)
        if task.output_at == "all":
            feats.append(probe.features(state))
    if task.output_at == "last":
        output = probe.readout(probe.features(state))
    else:
        output = probe.readout(torch.stack(feats, dim=1))
    total = task.loss(output, y).sum()
    flat = [d for deltas in perturbations for d in deltas]
    grads = torch.autograd.grad(total, flat, allow_unused=True)
    per_step = len(perturbations[0])
    profile = []
    for t in range(steps):
        parts = [g.reshape(batch, -1) for g in grads[t * per_step : (t + 1) * per_step] if g is not None]
        if not parts:
            profile.append(0.0)
            continue
        g = torch.cat(parts, dim=1)
        # scaled norm: squaring would underflow below ~1e-154, long before float64 itself
        scale = g.abs().amax(dim=1, keepdim=True)
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        norms = (g / safe).pow(2).sum(-1).sqrt() * scale.squeeze(1)
        profile.append(norms.mean().item())
    return profile


def gradient_ratio(profile: list[float]) -> float | None:
    """log10(‖∂L/∂h_1‖ / ‖∂L/∂h_T‖): ≪ 0 vanishing, ≫ 0 exploding, ≈ 0 preserved.

    None where a norm is zero or not finite (the ratio is then undefined)."""
    first, last = profile[0], profile[-1]
    if not (math.isfinite(first) and math.isfinite(last)) or first <= 0 or last <= 0:
        return None
    return math.log10(first / last)


def total_grad_norm(parameters) -> float:
    """Euclidean norm of all gradients together (what clip_grad_norm_ clips)."""
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    if not norms:
        return 0.0
    return torch.linalg.vector_norm(torch.stack(norms)).item()
