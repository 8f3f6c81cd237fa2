"""LinOSS, oscillatory state-space models (T. K. Rusch & D. Rus, ICLR 2025, "Oscillatory
State-Space Models"; code github.com/tk-rusch/linoss, JAX/Equinox, models/LinOSS.py).

Each layer is P uncoupled forced oscillators, y″ = −A y + B u, with A = relu(Â) ≥ 0
diagonal, B ∈ C^{P×H}, written as the first-order system z′ = −A y + B u, y′ = z and
stepped with Δt = σ̂(s) ∈ (0, 1) per mode (σ̂ the sigmoid, s trained):
    IM   (implicit):         z_n = z_{n−1} + Δt (−A y_n + B u_n),      y_n = y_{n−1} + Δt z_n
    IMEX (symplectic):       z_n = z_{n−1} + Δt (−A y_{n−1} + B u_n),  y_n = y_{n−1} + Δt z_n
Both are x_n = M x_{n−1} + F_n on x = (z, y), one real 2×2 block M per mode; IM with
S = 1/(1 + Δt² A): M = [[S, −Δt A S], [Δt S, S]], F = (Δt S, Δt² S) B u_n; IMEX:
M = [[1, −Δt A], [Δt, 1 − Δt² A]], F = (Δt, Δt²) B u_n. The layer's output is
Re(C y_n) + D ⊙ u_n with C ∈ C^{H×P}, D ∈ R^H. ``forward`` solves every layer with the
parallel 2×2 block scan (suite/kernels/scan.py); ``step`` is one step of it.

The stack, as the authors': a linear encoder (input → H), then ``layers`` blocks of
    u ← u + dropout(GLU(dropout(GELU(LinOSS(BN(u))))))
with GLU(v) = W₁v ⊙ σ̂(W₂v) (both with bias), GELU in its tanh form (JAX's default),
dropout elementwise (p = 0.05, their default) and BN Equinox's batch norm without scale
or shift, whose training mode normalizes by exponential running statistics
(suite/kernels/norm.py); then the decoder, the harness's readout. Their classification
head averages the last block's outputs over time before the decoder; the suite's
readout reads them at the last step (or every step), as for every model here.

Initialization, as the authors': Â ~ U(0, 1), s ~ U(0, 1) (so Δt ∈ (0.5, 0.73) at the
start), Re B, Im B ~ U(±1/√H), Re C, Im C ~ U(±1/√P), D ~ N(0, 1); encoder, GLU maps
and readout U(±1/√fan_in), weights and biases (Equinox's Linear, as PyTorch's).
``model.dt`` (not the authors'; for the gradient-control study, which sweeps it) starts
every mode at the one step σ̂(s) = dt ∈ (0, 1) instead, still trained; the other
parameters are drawn as without it. ``step_size_max`` keeps the step-size heuristic
(suite/hamiltonian/heuristic.py) below 1, which σ̂ never reaches.

Defaults: their experiment configs (experiment_configs/repeats/LinOSS/*.json) choose
per data set from a grid of blocks {2, 4, 6}, P {16, 64, 256}, lr {1e-3, 1e-4, 1e-5};
the Config takes their EigenWorms setting (IM, 2 blocks, P = 64; H = 128 is the
suite's hidden size there), their longest sequences (17 984 steps). No LinOSS result on
the adding problem, sMNIST or psMNIST has been published, so there is no recipe here.

State: every layer's (z, y) ∈ C^{P×2} as real and imaginary parts ([B, P, 2, 2]), and
the top block's output u (what the readout sees). ‖∂L/∂h_t‖ is the norm over all of
them: every layer's oscillators, as for the stacked UnICORNN and IndRNN. Batch norm and
dropout make the training-mode ``forward`` differ from ``step``, which is the
evaluation-mode semantics (running statistics, no dropout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel
from suite.kernels.norm import EMABatchNorm
from suite.kernels.scan import block_scan


@dataclass
class LinOSSConfig:
    discretization: Literal["IM", "IMEX"] = "IM"
    layers: int = 2  # blocks
    modes: int = 64  # oscillators P per block
    dropout: float = 0.05
    dt: float | None = None  # every mode's initial Δt; None: the authors' σ̂(U(0, 1))

    def validate(self):
        require(self.discretization in ("IM", "IMEX"), f"model.discretization={self.discretization!r}: IM or IMEX")
        require(self.dt is None or 0 < self.dt < 1, f"model.dt={self.dt} must be in (0, 1): Δt = σ̂(s)")
        require(self.layers >= 1, f"model.layers={self.layers} must be >= 1")
        require(self.modes >= 1, f"model.modes={self.modes} must be >= 1")
        require(0 <= self.dropout < 1, f"model.dropout={self.dropout} must be in [0, 1)")


class _Oscillators(nn.Module):
    """One block's parameters, named and laid out as the authors' LinOSSLayer and GLU."""

    def __init__(self, H: int, P: int, dt: float | None):
        super().__init__()
        self.A_diag = nn.Parameter(torch.rand(P))
        self.B = nn.Parameter(torch.empty(P, H, 2).uniform_(-1 / math.sqrt(H), 1 / math.sqrt(H)))  # (re, im)
        self.C = nn.Parameter(torch.empty(H, P, 2).uniform_(-1 / math.sqrt(P), 1 / math.sqrt(P)))
        self.D = nn.Parameter(torch.randn(H))
        self.steps = nn.Parameter(torch.rand(P))
        if dt is not None:  # drawn all the same: the other parameters do not move with dt
            self.steps.data.fill_(math.log(dt / (1 - dt)))
        self.w1, self.w2 = nn.Linear(H, H), nn.Linear(H, H)


@register_model("linoss")
class LinOSS(RecurrentModel):
    Config = LinOSSConfig
    version = 1
    search_space = {"lr": ("log", 1e-5, 1e-3), "model.layers": ("categorical", [2, 4, 6]),
                    "model.modes": ("categorical", [16, 64, 256]),
                    "model.discretization": ("categorical", ["IM", "IMEX"])}
    step_size_max = 0.99  # Δt = σ̂(s) < 1: the top of the heuristic's search

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.linear_encoder = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(_Oscillators(hidden_size, cfg.modes, cfg.dt) for _ in range(cfg.layers))
        self.norms = nn.ModuleList(EMABatchNorm(hidden_size) for _ in range(cfg.layers))
        self.drop = nn.Dropout(cfg.dropout)

    def step_matches_training(self):
        return False  # batch statistics (and dropout) in training

    def _transition(self, block):
        """M [P, 2, 2] and the factors f [P, 2] with F_n = f · (B u_n)."""
        A, dt = torch.relu(block.A_diag), torch.sigmoid(block.steps)
        if self.cfg.discretization == "IM":
            S = 1 / (1 + dt**2 * A)
            M = torch.stack([torch.stack([S, -dt * A * S], -1), torch.stack([dt * S, S], -1)], -2)
            return M, torch.stack([dt * S, dt**2 * S], -1)
        M = torch.stack([torch.stack([torch.ones_like(A), -dt * A], -1), torch.stack([dt, 1 - dt**2 * A], -1)], -2)
        return M, torch.stack([dt, dt**2], -1)

    def _drive(self, block, f, u):
        """F = f · B u for u [..., H] -> [..., P, 2], complex."""
        Bu = torch.complex(u @ block.B[..., 0].T, u @ block.B[..., 1].T)
        return Bu.unsqueeze(-1) * f

    def _mix(self, block, y, u_normed, skip):
        """The rest of the block after the recurrence: readout of y, GELU, GLU, residual."""
        out = y.real @ block.C[..., 0].T - y.imag @ block.C[..., 1].T + block.D * u_normed
        out = self.drop(F.gelu(out, approximate="tanh"))
        return skip + self.drop(block.w1(out) * torch.sigmoid(block.w2(out)))

    def initial_state(self, batch_size, device, dtype):
        oscillators = [torch.zeros(batch_size, self.cfg.modes, 2, 2, device=device, dtype=dtype)
                       for _ in self.blocks]
        return (*oscillators, torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype))

    def step(self, x_t, state):
        u, new = self.linear_encoder(x_t), []
        for block, norm, osc in zip(self.blocks, self.norms, state):
            M, f = self._transition(block)
            n = norm(u)  # [B, H]: running statistics
            x = torch.view_as_complex(osc.contiguous())  # (z, y) per mode
            x = torch.stack([M[:, 0, 0] * x[..., 0] + M[:, 0, 1] * x[..., 1],
                             M[:, 1, 0] * x[..., 0] + M[:, 1, 1] * x[..., 1]], -1) + self._drive(block, f, n)
            new.append(torch.view_as_real(x))
            u = self._mix(block, x[..., 1], n, u)
        return (*new, u)

    def features(self, state):
        return state[-1]

    def forward(self, x):
        u = self.linear_encoder(x)
        for block, norm in zip(self.blocks, self.norms):
            M, f = self._transition(block)
            n = norm(u)
            states = block_scan(M, self._drive(block, f, n))  # [B, T, P, 2]
            u = self._mix(block, states[..., 1], n, u)
        return u
