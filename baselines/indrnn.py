"""IndRNN, independently recurrent neural network (Li, Li, Cook, Zhu & Gao, CVPR 2018,
"Independently Recurrent Neural Network (IndRNN): Building A Longer and Deeper RNN").

    h_t = relu(W x_t + u ⊙ h_{t−1} + b),   |u| ≤ u_max (elementwise)

Each neuron feeds back only to itself, so the gradient through T steps of neuron i is a
product of T factors u_i·relu′, and bounding |u_i| bounds its growth. The paper clips u
to [−u_max, u_max] after every update with u_max = 2^(1/T) for sequences of length T
(the authors' adding-problem code: ``MAG = 2``; their notes suggest u_max = 1 for very
long sequences). The model does not know T, so u_max is a Config field, default 1.

Here the bound is enforced inside the computation: the recurrence uses clamp(u, ±u_max),
so the effective weight is bounded whatever the optimizer does to the stored u, and
the gradient is defined everywhere. It is not the paper's projection: a stored u_i
beyond the bound gets zero gradient and stays pinned at the bound, where the paper's
clipped u_i would move back inside as soon as its gradient points inward.

Single layer; the paper stacks several (2 for the adding problem, 6 for MNIST).
Initialization, after the authors' adding-problem code: u ~ U(0, u_max) (their first
layer; their last layer starts in [2^(−1/T), 2^(1/T)]), W ~ N(0, w_init_std²) with
w_init_std = 0.001, b = 0. Published adding setting: 128 units per layer, Adam, lr 2e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from suite.config import require
from suite.registry import register_model
from suite.spec import RecurrentModel, scan


@dataclass
class IndRNNConfig:
    u_max: float = 1.0  # bound on |u|
    w_init_std: float = 0.001

    def validate(self):
        require(self.u_max > 0, f"model.u_max={self.u_max} must be > 0")
        require(self.w_init_std >= 0, f"model.w_init_std={self.w_init_std} must be >= 0")


@register_model("indrnn")
class IndRNN(RecurrentModel):
    Config = IndRNNConfig
    search_space = {"lr": ("log", 1e-5, 1e-2), "clip": ("log", 0.1, 10.0), "model.u_max": ("float", 0.5, 1.5),
                    "model.w_init_std": ("log", 1e-4, 0.1)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.W = nn.Linear(input_size, hidden_size)
        nn.init.normal_(self.W.weight, std=cfg.w_init_std)
        nn.init.zeros_(self.W.bias)
        self.u = nn.Parameter(torch.empty(hidden_size).uniform_(0, cfg.u_max))

    def recurrent_weight(self):
        """The u the recurrence uses: the stored u clamped to [−u_max, u_max]."""
        return self.u.clamp(-self.cfg.u_max, self.cfg.u_max)

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def step(self, x_t, h):
        return torch.relu(self.W(x_t) + self.recurrent_weight() * h)

    def features(self, h):
        return h

    def forward(self, x):
        u = self.recurrent_weight()
        return scan(self, self.W(x), lambda h, wx_t: torch.relu(wx_t + u * h))
