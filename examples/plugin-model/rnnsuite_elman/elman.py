"""Elman RNN (Elman 1990, "Finding Structure in Time"): h_t = tanh(W h_{t−1} + V x_t + b).

A plug-in model: this module is named by the ``rnnsuite.models`` entry point of this
package, and importing it registers ``elman`` in rnnsuite's model registry.

State h; the readout sees h. Initialization: V and b PyTorch's ``nn.Linear`` default,
U(−1/√input_size, 1/√input_size); W a random orthogonal matrix times ``w_gain``, so
that at initialization the linear part of the recurrence neither grows nor shrinks
the state for ``w_gain = 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class ElmanConfig:
    w_gain: float = 1.0  # W = w_gain · (random orthogonal matrix) at initialization

    def validate(self):
        require(self.w_gain > 0, f"model.w_gain={self.w_gain} must be > 0")


@register_model("elman")
class Elman(RecurrentModel):
    Config = ElmanConfig
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0), "model.w_gain": ("float", 0.5, 1.5)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.W = nn.Linear(hidden_size, hidden_size, bias=False)
        self.V = nn.Linear(input_size, hidden_size)  # V x_t + b
        nn.init.orthogonal_(self.W.weight, gain=cfg.w_gain)

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def step(self, x_t, h):
        return torch.tanh(self.W(h) + self.V(x_t))

    def features(self, h):
        return h

    def forward(self, x):
        vx = self.V(x)  # the input map for all steps in one product
        h = self.initial_state(x.shape[0], x.device, x.dtype)
        out = []
        for vx_t in vx.unbind(1):
            h = torch.tanh(self.W(h) + vx_t)
            out.append(h)
        return torch.stack(out, dim=1)
