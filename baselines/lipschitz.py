"""Lipschitz RNN (Erichson, Azencot, Queiruga, Hodgkinson & Mahoney, ICLR 2021,
"Lipschitz Recurrent Neural Networks").

A linear part plus a Lipschitz nonlinearity, ḣ = A_β h + tanh(W_β h + U x + b), with
    A_β = (1 − β)(M_A + M_Aᵀ) + β(M_A − M_Aᵀ) − γ_A I
    W_β = (1 − β)(M_W + M_Wᵀ) + β(M_W − M_Wᵀ) − γ_W I
and one forward-Euler step of size ε per input:
    h_t = h_{t−1} + ε A_β h_{t−1} + ε tanh(W_β h_{t−1} + U x_t + b)
β ∈ [0, 1] weighs the skew-symmetric part (rotation, imaginary eigenvalues) against the
symmetric part (real eigenvalues); γ_A and γ_W shift both spectra to the left, a
damping. (The paper also reports an RK2 discretization; this file is the Euler one.)

Defaults: the authors' current code (github.com/erichson/LipschitzRNN, README commands
of March 2021 and driver.py defaults): ε = 0.03, β = 0.75, γ = 0.001, init_std = 0.1,
128 units, Adam (lr 0.003 for ordered MNIST, 0.0035 for permuted), lr ×0.1 after epoch
91 of 100, batch 128, no gradient clipping (run settings, in the recipes). These
supersede the June 2020 README (SGD lr 0.1, clip 15, init_std 32, Xavier-normal input
map), which no published number is known to come from. Their code has a single γ for
both matrices, so γ_A = γ_W = 0.001 here.

Initialization, as the authors' current code: M_A, M_W ~ N(0, (init_std / H)²)
entrywise; U and b PyTorch's ``nn.Linear`` default (U(±1/√fan_in)); the readout
PyTorch's default too. Their code multiplies h as a row vector by A_β, i.e. applies
A_βᵀ; since M and Mᵀ have the same distribution, it is the same model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines._fused import Lipschitz, run
from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class LipschitzConfig:
    eps: float = 0.03  # Euler step ε
    beta: float = 0.75  # weight β of the skew-symmetric part
    gamma_A: float = 0.001  # diagonal shift γ_A of A_β
    gamma_W: float = 0.001  # diagonal shift γ_W of W_β
    init_std: float = 0.1  # M_A, M_W ~ N(0, (init_std / H)²)

    def validate(self):
        require(self.eps > 0, f"model.eps={self.eps} must be > 0")
        require(0 <= self.beta <= 1, f"model.beta={self.beta} must be in [0, 1]")
        require(self.gamma_A >= 0, f"model.gamma_A={self.gamma_A} must be >= 0")
        require(self.gamma_W >= 0, f"model.gamma_W={self.gamma_W} must be >= 0")
        require(self.init_std >= 0, f"model.init_std={self.init_std} must be >= 0")


@register_model("lipschitz")
class LipschitzRNN(RecurrentModel):
    Config = LipschitzConfig
    version = 2  # 2: the authors' 2021 settings and initialization (was their June 2020 README)
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0), "model.eps": ("log", 1e-3, 0.1),
                    "model.beta": ("float", 0.5, 1.0), "model.gamma_A": ("log", 1e-4, 0.1),
                    "model.gamma_W": ("log", 1e-4, 0.1), "model.init_std": ("log", 0.01, 64.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        std = cfg.init_std / hidden_size
        self.M_A = nn.Parameter(torch.randn(hidden_size, hidden_size) * std)
        self.M_W = nn.Parameter(torch.randn(hidden_size, hidden_size) * std)
        self.U = nn.Linear(input_size, hidden_size)  # PyTorch's default initialization, as the authors'

    def _blend(self, M, gamma):
        eye = torch.eye(self.hidden_size, device=M.device, dtype=M.dtype)
        beta = self.cfg.beta
        return (1 - beta) * (M + M.T) + beta * (M - M.T) - gamma * eye

    def matrices(self):
        """(A_β, W_β)."""
        return self._blend(self.M_A, self.cfg.gamma_A), self._blend(self.M_W, self.cfg.gamma_W)

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def _update(self, h, ux, A, W):
        eps = self.cfg.eps
        return h + eps * (h @ A.T) + eps * torch.tanh(h @ W.T + ux)

    def step(self, x_t, h):
        return self._update(h, self.U(x_t), *self.matrices())

    def features(self, h):
        return h

    def forward(self, x):
        # the fused pass of baselines/_fused.py: the recurrence of `step`, analytic backward
        A, W = self.matrices()
        return run(Lipschitz(self.cfg.eps), x, input_weight=self.U.weight, input_bias=self.U.bias,
                   recurrent=torch.cat([A, W]))
