"""Long expressive memory, LEM (Rusch, Mishra, Erichson & Mahoney, ICLR 2022, "Long
Expressive Memory for Sequence Modeling").

A two-scale system whose time steps are learned gates:
    Δt_n = Δt σ̂(W₁ y_{n−1} + V₁ u_n + b₁)
    Δt̄_n = Δt σ̂(W₂ y_{n−1} + V₂ u_n + b₂)
    z_n = (1 − Δt_n) ⊙ z_{n−1} + Δt_n ⊙ tanh(W_z y_{n−1} + V_z u_n + b_z)
    y_n = (1 − Δt̄_n) ⊙ y_{n−1} + Δt̄_n ⊙ tanh(W_y z_n + V_y u_n + b_y)
with σ̂ the sigmoid. The y update reads the new z_n (an IMEX discretization of the
underlying ODE). For Δt ≤ 1 every update is a convex combination of the old state and a
bounded target, which is what the paper's bounds rest on; the Config rejects Δt > 1.

State (y, z); the readout sees y.

Δt: the Config default is 1.0, the default of the authors' model class
(github.com/tk-rusch/LEM). Their task scripts set it per task:

    | task            | units | lr     | Δt     | gradient clip |
    |-----------------|-------|--------|--------|---------------|
    | sMNIST          | 128   | 0.0018 | 0.21   | 1.0           |
    | psMNIST         | 128   | 0.0073 | 0.31   | 1.1           |
    | adding, T=10000 | 128   | 0.0026 | 0.0242 | none          |

Initialization, as the authors' code: every weight and bias U(−1/√H, 1/√H). Their
code sums a bias of the input map and one of the hidden map in each pre-activation; we
keep one bias per pre-activation, so our biases have a narrower spread than their sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from suite.config import require
from suite.registry import register_model
from suite.spec import RecurrentModel, scan


@dataclass
class LEMConfig:
    dt: float = 1.0  # largest step size Δt

    def validate(self):
        require(0 < self.dt <= 1, f"model.dt={self.dt} must be in (0, 1]")


@register_model("lem")
class LEM(RecurrentModel):
    Config = LEMConfig
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0), "model.dt": ("log", 0.01, 1.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.V = nn.Linear(input_size, 4 * hidden_size)  # [V₁; V₂; V_z; V_y] u + b
        self.W = nn.Linear(hidden_size, 3 * hidden_size, bias=False)  # [W₁; W₂; W_z] y
        self.W_y = nn.Linear(hidden_size, hidden_size, bias=False)
        bound = hidden_size**-0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def _update(self, state, vu):
        y, z = state
        v1, v2, vz, vy = vu.chunk(4, dim=-1)
        w1, w2, wz = self.W(y).chunk(3, dim=-1)
        dt_z = self.cfg.dt * torch.sigmoid(w1 + v1)
        dt_y = self.cfg.dt * torch.sigmoid(w2 + v2)
        z = (1 - dt_z) * z + dt_z * torch.tanh(wz + vz)
        y = (1 - dt_y) * y + dt_y * torch.tanh(self.W_y(z) + vy)
        return (y, z)

    def step(self, x_t, state):
        return self._update(state, self.V(x_t))

    def features(self, state):
        return state[0]

    def forward(self, x):
        return scan(self, self.V(x), self._update)  # four input projections for all steps in one product
