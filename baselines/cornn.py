"""Coupled oscillatory RNN, coRNN (Rusch & Mishra, ICLR 2021, "Coupled Oscillatory
Recurrent Neural Network (coRNN): An accurate and (gradient) stable architecture for
learning long time dependencies").

A network of driven, damped, coupled oscillators ÿ = σ(W y + 𝒲 ẏ + V u + b) − γ y − ε ẏ,
written for (y, z = ẏ) and discretized with step Δt:
    z_n = z_{n−1} + Δt σ(W y_{n−1} + 𝒲 z_{n−1} + V u_n + b) − Δt γ y_{n−1} − Δt ε z_n
    y_n = y_{n−1} + Δt z_n
with σ = tanh. The damping is implicit in z_n, so a step solves for it:
    z_n = (z_{n−1} + Δt (σ(·) − γ y_{n−1})) / (1 + Δt ε).
``damping="implicit"`` is this scheme, the paper's (its gradient bounds are proved for
it); ``damping="explicit"`` damps with −Δt ε z_{n−1} instead, which is what the
authors' code (github.com/tk-rusch/coRNN, sMNIST/network.py) computes, so every
published coRNN number comes from the explicit scheme: it is the default. For the same
Δt and ε the two are different models; the choice is a Config field so that every
record says which ran.

State (y, z), both zero at the start; the readout sees y at the last step.

Published hyperparameters (the authors' task scripts; lr and width are run settings,
in the recipes under results/reference/recipes/cornn.toml):

    | task    | units | lr     | Δt    | γ   | ε   |
    |---------|-------|--------|-------|-----|-----|
    | sMNIST  | 256   | 0.0021 | 0.042 | 2.7 | 4.7 |
    | psMNIST | 256   | 0.0054 | 0.076 | 0.4 | 8.0 |
    | adding  | 128   | 0.02   | 0.06  | 66  | 15  |

The Config defaults are the sMNIST ones. Initialization: the authors' code maps
[u; z; y] with one ``nn.Linear`` and PyTorch's default initialization, so W, 𝒲, V and b
are all U(−k, k) with k = 1/√(input_size + 2H); we keep that scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from baselines._fused import run
from baselines._fused_oscillators import Oscillator
from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class CoRNNConfig:
    dt: float = 0.042  # step size Δt
    gamma: float = 2.7  # stiffness γ
    eps: float = 4.7  # damping ε
    damping: Literal["implicit", "explicit"] = "explicit"

    def validate(self):
        require(self.dt > 0, f"model.dt={self.dt} must be > 0")
        require(self.gamma >= 0, f"model.gamma={self.gamma} must be >= 0")
        require(self.eps >= 0, f"model.eps={self.eps} must be >= 0")


@register_model("cornn")
class CoRNN(RecurrentModel):
    Config = CoRNNConfig
    version = 2  # 2: the authors' explicit damping and sMNIST values are the defaults
    search_space = {"lr": ("log", 1e-4, 3e-2), "clip": ("log", 0.1, 10.0), "model.dt": ("log", 0.01, 0.3),
                    "model.gamma": ("log", 0.1, 100.0), "model.eps": ("log", 0.5, 30.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.W = nn.Linear(2 * hidden_size, hidden_size, bias=False)  # [W 𝒲] acting on [y; z]
        self.V = nn.Linear(input_size, hidden_size)
        bound = (input_size + 2 * hidden_size) ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def _update(self, state, vu):
        y, z = state
        dt, eps = self.cfg.dt, self.cfg.eps
        drive = torch.tanh(self.W(torch.cat((y, z), dim=-1)) + vu) - self.cfg.gamma * y
        if self.cfg.damping == "implicit":
            z = (z + dt * drive) / (1 + dt * eps)
        else:
            z = z + dt * (drive - eps * z)
        return (y + dt * z, z)

    def step(self, x_t, state):
        return self._update(state, self.V(x_t))

    def features(self, state):
        return state[0]

    def forward(self, x):
        # the fused pass of baselines/_fused_oscillators.py: `step`'s recurrence written as
        # z_n = a z + b σ(·) + c y, y_n = y + Δt z_n, analytic backward
        dt, eps, gamma = self.cfg.dt, self.cfg.eps, self.cfg.gamma
        k = 1 / (1 + dt * eps) if self.cfg.damping == "implicit" else 1.0
        a = k if self.cfg.damping == "implicit" else 1 - dt * eps
        a, b, c, r = (x.new_tensor(v) for v in (a, dt * k, -dt * gamma * k, dt))
        return run(Oscillator(), x, input_weight=self.V.weight, input_bias=self.V.bias, recurrent=self.W.weight,
                   a=a, b=b, c=c, r=r)
