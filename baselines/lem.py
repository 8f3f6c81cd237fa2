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

Δt: the authors' model class (github.com/tk-rusch/LEM) takes it as an argument and
their task scripts set it per task; the Config default is their sMNIST value. The
rest of each recipe (units, lr, clipping) is a run setting, in
results/reference/recipes/lem.toml:

    | task            | units | lr     | Δt     | gradient clip |
    |-----------------|-------|--------|--------|---------------|
    | sMNIST          | 128   | 0.0018 | 0.21   | 1.0           |
    | psMNIST         | 128   | 0.0073 | 0.31   | 1.1           |
    | adding, T=10000 | 128   | 0.0026 | 0.0242 | none          |

Initialization, as the authors' code: every weight and bias U(−1/√H, 1/√H). Their
code has a bias on the input map and one on the hidden map of every pre-activation
(two ``nn.Linear`` with bias), so ours does too: V, W and W_y all carry one. The
readout's weight is ``kaiming_normal_`` (N(0, 2/H)), its bias PyTorch's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines._fused import run
from baselines._fused_oscillators import LEMPass
from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class LEMConfig:
    dt: float = 0.21  # largest step size Δt (the authors' sMNIST script)

    def validate(self):
        require(0 < self.dt <= 1, f"model.dt={self.dt} must be in (0, 1]")


@register_model("lem")
class LEM(RecurrentModel):
    Config = LEMConfig
    version = 2  # 2: biases on the hidden maps, Δt = 0.21 by default, as the authors' code
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0), "model.dt": ("log", 0.01, 1.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.V = nn.Linear(input_size, 4 * hidden_size)  # [V₁; V₂; V_z; V_y] u + b
        self.W = nn.Linear(hidden_size, 3 * hidden_size)  # [W₁; W₂; W_z] y + b'
        self.W_y = nn.Linear(hidden_size, hidden_size)
        bound = hidden_size**-0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def init_readout(self, readout):
        nn.init.kaiming_normal_(readout.weight)

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
        # the fused pass of baselines/_fused_oscillators.py: the recurrence of `step`,
        # analytic backward; the hidden maps' biases join the input map's
        bias = self.V.bias
        hidden_biases = (self.W.bias, self.W_y.bias)
        if any(b is not None for b in hidden_biases):
            widths = (3 * self.hidden_size, self.hidden_size)
            bias = bias + torch.cat([b if b is not None else bias.new_zeros(n) for b, n in zip(hidden_biases, widths)])
        return run(LEMPass(self.cfg.dt), x, input_weight=self.V.weight, input_bias=bias, recurrent=self.W.weight,
                   recurrent_y=self.W_y.weight)
