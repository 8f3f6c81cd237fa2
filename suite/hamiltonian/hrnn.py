"""Hamiltonian RNN, after Rusch, Pearson & Zygalakis 2019, "Constructing gradient
controllable recurrent neural networks using Hamiltonian dynamics" (arXiv:1911.05035).

State (y, z) ∈ R^H × R^H, with the input-dependent Hamiltonian
    H(y, z; u_t) = ½‖z‖² + ½ α ‖y‖² + 1ᵀ log cosh(W y + V u_t + b),
so that ẏ = ∂H/∂z = z and ż = −∂H/∂y = −(α y + Wᵀ tanh(W y + V u + b)).
One step is symplectic Euler with step Δt (z first, then y with the new z):
    z_t = z_{t−1} − Δt (α y_{t−1} + Wᵀ tanh(W y_{t−1} + V u_t + b))
    y_t = y_{t−1} + Δt z_t
The readout sees y. The step map is a composition of two shears, each with unit
Jacobian determinant, and is symplectic for every Δt; Δt is the one hyperparameter
that moves the hidden-state gradients between vanishing and exploding.

Initialization: W_ij ~ N(0, 1/H), V and b as PyTorch's ``nn.Linear``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from suite.config import require
from suite.registry import register_model
from suite.spec import RecurrentModel


@dataclass
class HRNNConfig:
    dt: float = 0.1  # step size Δt
    alpha: float = 1.0  # stiffness α of the quadratic potential

    def validate(self):
        require(self.dt > 0, f"model.dt={self.dt} must be > 0")
        require(self.alpha >= 0, f"model.alpha={self.alpha} must be >= 0")


@register_model("hrnn")
class HamiltonianRNN(RecurrentModel):
    Config = HRNNConfig

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.W = nn.Parameter(torch.randn(hidden_size, hidden_size) / hidden_size**0.5)
        self.V = nn.Linear(input_size, hidden_size)

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def _update(self, state, vu):
        y, z = state
        dt, alpha = self.cfg.dt, self.cfg.alpha
        z = z - dt * (alpha * y + torch.tanh(y @ self.W.T + vu) @ self.W)
        return (y + dt * z, z)

    def step(self, x_t, state):
        return self._update(state, self.V(x_t))

    def features(self, state):
        return state[0]

    def forward(self, x):
        vu = self.V(x)  # the input projection for all steps in one product
        state = self.initial_state(x.shape[0], x.device, x.dtype)
        out = []
        for t in range(x.shape[1]):
            state = self._update(state, vu[:, t])
            out.append(state[0])
        return torch.stack(out, dim=1)
