"""LRU, the linear recurrent unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De,
ICML 2023, "Resurrecting Recurrent Neural Networks for Long Sequences", appendix A code).

Each layer is a complex diagonal linear recurrence of N states on an input u ∈ R^H:
    x_n = Λ ⊙ x_{n−1} + γ ⊙ (B u_n),     y_n = Re(C x_n) + D ⊙ u_n
with Λ = exp(−exp(ν) + i exp(θ)) (the exponential parametrization: |Λ| < 1 for every
real ν, θ), γ = exp(γ_log) the normalization, B ∈ C^{N×H}, C ∈ C^{H×N}, D ∈ R^H.
``forward`` solves it with the parallel scan (suite/kernels/scan.py); ``step`` is one
step of it.

Initialization (the paper's appendix A, unchanged in the implementation checked by the
fixture): Λ uniform on the ring r_min ≤ |Λ| ≤ r_max with phase in [0, max_phase]:
ν = log(−½ log(U₁ (r_max² − r_min²) + r_min²)), θ = log(max_phase · U₂); γ_log =
log √(1 − |Λ|²) at initialization, then trained; Re B, Im B ~ N(0, 1/(2H)); Re C, Im C ~
N(0, 1/N); D ~ N(0, 1).

The stack, as the paper's (section 3 and appendix) and the implementation the fixture
comes from: a linear encoder (input → H), ``layers`` blocks of
    u ← u + dropout(GLU(dropout(GELU(LRU(BN(u))))))
with GLU(v) = W₁v ⊙ σ̂(W₂v), GELU in its tanh form, BN Equinox's batch norm without scale
or shift (suite/kernels/norm.py), dropout 0.1; then the decoder, the harness's readout.
The classification head averages over time before the decoder; the suite's readout
reads the last step (or every step), as for every model here.

Source of the fixture (tests/fixtures/linear/lru.npz): models/LRU.py of
github.com/tk-rusch/linoss (the LRU baseline of the LinOSS paper, inherited from Walker
et al.'s Log-NCDE repository), whose layer follows the appendix code formula for
formula. Defaults: the appendix code's r_min = 0, r_max = 1, max_phase = 6.28 (the paper
narrows the ring per long-range task); 6 blocks of N = 256 states, the most common
setting in that repository's configs (experiment_configs/repeats/lru/*.json). No LRU
result on the adding problem, sMNIST or psMNIST has been published: no recipe here.

State: every layer's x ∈ C^N as real and imaginary parts ([B, N, 2]) and the top
block's output u (what the readout sees); ‖∂L/∂h_t‖ is the norm over all of them, every
layer's recurrence, as for the stacked UnICORNN and IndRNN. ``step`` is the evaluation
semantics (running statistics, no dropout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel
from suite.kernels.norm import EMABatchNorm
from suite.kernels.scan import linear_scan


@dataclass
class LRUConfig:
    layers: int = 6  # blocks
    modes: int = 256  # complex states N per block
    r_min: float = 0.0  # the ring r_min ≤ |Λ| ≤ r_max at initialization
    r_max: float = 1.0
    max_phase: float = 6.28
    dropout: float = 0.1

    def validate(self):
        require(self.layers >= 1, f"model.layers={self.layers} must be >= 1")
        require(self.modes >= 1, f"model.modes={self.modes} must be >= 1")
        require(0 <= self.r_min < self.r_max <= 1,
                f"model.r_min={self.r_min}, r_max={self.r_max}: need 0 <= r_min < r_max <= 1")
        require(self.max_phase > 0, f"model.max_phase={self.max_phase} must be > 0")
        require(0 <= self.dropout < 1, f"model.dropout={self.dropout} must be in [0, 1)")


class _Recurrence(nn.Module):
    """One block's parameters, named as the appendix code and the authors' LRULayer and GLU."""

    def __init__(self, H: int, N: int, cfg: LRUConfig):
        super().__init__()
        u1, u2 = torch.rand(N), torch.rand(N)
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(u1 * (cfg.r_max**2 - cfg.r_min**2) + cfg.r_min**2)))
        self.theta_log = nn.Parameter(torch.log(cfg.max_phase * u2))
        self.B_re, self.B_im = (nn.Parameter(torch.randn(N, H) / math.sqrt(2 * H)) for _ in range(2))
        self.C_re, self.C_im = (nn.Parameter(torch.randn(H, N) / math.sqrt(N)) for _ in range(2))
        self.D = nn.Parameter(torch.randn(H))
        modulus = torch.exp(-torch.exp(self.nu_log.detach()))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus**2)))
        self.w1, self.w2 = nn.Linear(H, H), nn.Linear(H, H)

    def diagonal(self):
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def drive(self, u):
        """γ ⊙ (B u) for u [..., H] -> [..., N], complex."""
        gamma = torch.exp(self.gamma_log)
        return torch.complex(u @ self.B_re.T, u @ self.B_im.T) * gamma


@register_model("lru")
class LRU(RecurrentModel):
    Config = LRUConfig
    version = 1
    search_space = {"lr": ("log", 1e-5, 1e-3), "model.layers": ("categorical", [2, 4, 6]),
                    "model.modes": ("categorical", [16, 64, 256]), "model.r_min": ("float", 0.0, 0.9)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.linear_encoder = nn.Linear(input_size, hidden_size)
        self.blocks = nn.ModuleList(_Recurrence(hidden_size, cfg.modes, cfg) for _ in range(cfg.layers))
        self.norms = nn.ModuleList(EMABatchNorm(hidden_size) for _ in range(cfg.layers))
        self.drop = nn.Dropout(cfg.dropout)

    def step_matches_training(self):
        return False  # batch statistics (and dropout) in training

    def _mix(self, block, x, u_normed, skip):
        """The rest of the block after the recurrence: readout of x, GELU, GLU, residual."""
        out = x.real @ block.C_re.T - x.imag @ block.C_im.T + block.D * u_normed
        out = self.drop(F.gelu(out, approximate="tanh"))
        return skip + self.drop(block.w1(out) * torch.sigmoid(block.w2(out)))

    def initial_state(self, batch_size, device, dtype):
        states = [torch.zeros(batch_size, self.cfg.modes, 2, device=device, dtype=dtype) for _ in self.blocks]
        return (*states, torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype))

    def step(self, x_t, state):
        u, new = self.linear_encoder(x_t), []
        for block, norm, h in zip(self.blocks, self.norms, state):
            n = norm(u)  # [B, H]: running statistics
            x = block.diagonal() * torch.view_as_complex(h.contiguous()) + block.drive(n)
            new.append(torch.view_as_real(x))
            u = self._mix(block, x, n, u)
        return (*new, u)

    def features(self, state):
        return state[-1]

    def forward(self, x):
        u = self.linear_encoder(x)
        for block, norm in zip(self.blocks, self.norms):
            n = norm(u)
            u = self._mix(block, linear_scan(block.diagonal(), block.drive(n)), n, u)
        return u
