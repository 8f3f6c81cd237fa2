"""AntisymmetricRNN (Chang, Chen, Haber & Chi, ICLR 2019), plain and gated.

Plain:
    A = W − Wᵀ − γ I
    h_t = h_{t−1} + ε tanh(A h_{t−1} + V x_t + b)
Gated:
    z_t = σ(A h_{t−1} + V_z x_t + b_z)
    h_t = h_{t−1} + ε z_t ∘ tanh(A h_{t−1} + V_h x_t + b_h)

W − Wᵀ has purely imaginary eigenvalues, so the underlying ODE neither explodes nor
decays; the diffusion γ stabilizes the forward-Euler discretization with step ε.
Hyperparameters ε and γ (the paper searches both over powers of ten; we default to
ε = γ = 0.01, tuned per task by Optuna). Initialization, as the paper's appendix states
it (the authors published no code): W_ij ~ N(0, σ²/H) with σ = ``w_init_std``, the input
map V_ij ~ N(0, 1/m) for m inputs, and every bias 0. (PyTorch's ``nn.Linear`` default,
which the suite used before, draws V and b from U(±1/√m): biases U(−1, 1) on MNIST.)
The paper's text could not be re-read for this version; the recipes say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines._fused import Antisymmetric, run
from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class AntisymmetricConfig:
    eps: float = 0.01  # step size ε
    gamma: float = 0.01  # diffusion γ
    w_init_std: float = 1.0

    def validate(self):
        require(self.eps > 0, f"model.eps={self.eps} must be > 0")
        require(self.gamma >= 0, f"model.gamma={self.gamma} must be >= 0")


@register_model("antisymmetric")
class AntisymmetricRNN(RecurrentModel):
    Config = AntisymmetricConfig
    version = 2  # 2: the paper's initialization of V and b (was PyTorch's nn.Linear default)
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0),
                    "model.eps": ("log", 1e-3, 1.0), "model.gamma": ("log", 1e-4, 1.0)}
    n_input_maps = 1  # V x_t (the gated form adds V_z x_t)

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.W = nn.Parameter(torch.randn(hidden_size, hidden_size) * cfg.w_init_std / hidden_size**0.5)
        self.V = nn.Linear(input_size, self.n_input_maps * hidden_size)
        nn.init.normal_(self.V.weight, std=input_size**-0.5)
        nn.init.zeros_(self.V.bias)

    def recurrence_matrix(self):
        eye = torch.eye(self.hidden_size, device=self.W.device, dtype=self.W.dtype)
        return self.W - self.W.T - self.cfg.gamma * eye

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def _update(self, h, vx, A):
        return h + self.cfg.eps * torch.tanh(h @ A.T + vx)

    def step(self, x_t, h):
        return self._update(h, self.V(x_t), self.recurrence_matrix())

    def features(self, h):
        return h

    def forward(self, x):
        # the fused pass of baselines/_fused.py: the recurrence of `step`, analytic backward
        cell = Antisymmetric(self.cfg.eps, gated=self.n_input_maps == 2)
        return run(cell, x, input_weight=self.V.weight, input_bias=self.V.bias, recurrent=self.recurrence_matrix())


@register_model("antisymmetric-gated")
class GatedAntisymmetricRNN(AntisymmetricRNN):
    n_input_maps = 2  # [V_z; V_h] x_t

    def _update(self, h, vx, A):
        vz, vh = vx.chunk(2, dim=-1)
        ah = h @ A.T
        return h + self.cfg.eps * torch.sigmoid(ah + vz) * torch.tanh(ah + vh)
