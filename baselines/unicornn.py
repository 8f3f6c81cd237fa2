"""UnICORNN, undamped independent controlled oscillatory RNN (Rusch & Mishra, ICML 2021,
"UnICORNN: A recurrent model for learning very long time dependencies").

Every neuron is an undamped oscillator of its own. Per layer, with x_n = V u_n + b:
    z_n = z_{n−1} − Δt σ̂(c) ⊙ [tanh(w ⊙ y_{n−1} + x_n) + α y_{n−1}]
    y_n = y_{n−1} + Δt σ̂(c) ⊙ z_n
where σ̂ is the sigmoid and w, c ∈ R^H are trained per neuron. This is symplectic Euler
for ẏ = z, ż = −(tanh(w y + x) + α y), with a learned per-neuron step Δt σ̂(c) ∈ (0, Δt).
The recurrence is elementwise; the only matrices are the input maps V.

Layers are stacked: layer 1 reads the input sequence u, layer l > 1 reads the y
sequence of layer l − 1. All layers share Δt and α (the authors' psMNIST script does;
other scripts of theirs give each layer its own Δt). State (y_1, z_1, …, y_L, z_L);
the readout sees y_L.

Published psMNIST setting (the authors' script, github.com/tk-rusch/unicornn): 256
units, 3 layers, lr 0.00251, Δt 0.19, α 30.65. These are the Config defaults, the
three layers included, because the published results are for that depth. Each layer
is one more pass over the sequence, but an elementwise one: on CPU at 128 units the
three layers cost, forward and backward, within a factor of two of one coRNN layer.
``layers=1`` is the single-cell variant.

Initialization, as in the authors' code: w ~ U(0, w_init), c ~ U(−c_init, c_init); the
input maps' weights U(−k, k) with k = √(6 / (65 fan_in)) (``kaiming_uniform_`` with
a = 8), biases 0. No dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from suite.config import require
from suite.registry import register_model
from suite.spec import RecurrentModel


@dataclass
class UnICORNNConfig:
    dt: float = 0.19  # largest step size Δt
    alpha: float = 30.65  # stiffness α
    layers: int = 3
    w_init: float = 1.0  # w ~ U(0, w_init)
    c_init: float = 0.1  # c ~ U(−c_init, c_init)

    def validate(self):
        require(self.dt > 0, f"model.dt={self.dt} must be > 0")
        require(self.alpha >= 0, f"model.alpha={self.alpha} must be >= 0")
        require(self.layers >= 1, f"model.layers={self.layers} must be >= 1")
        require(self.w_init >= 0, f"model.w_init={self.w_init} must be >= 0")
        require(self.c_init >= 0, f"model.c_init={self.c_init} must be >= 0")


@register_model("unicornn")
class UnICORNN(RecurrentModel):
    Config = UnICORNNConfig
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0), "model.dt": ("log", 0.01, 1.0),
                    "model.alpha": ("log", 1.0, 100.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        widths = [input_size] + [hidden_size] * (cfg.layers - 1)
        self.V = nn.ModuleList(nn.Linear(width, hidden_size) for width in widths)
        for lin in self.V:
            nn.init.kaiming_uniform_(lin.weight, a=8)
            nn.init.zeros_(lin.bias)
        self.w = nn.Parameter(torch.empty(cfg.layers, hidden_size).uniform_(0, cfg.w_init))
        self.c = nn.Parameter(torch.empty(cfg.layers, hidden_size).uniform_(-cfg.c_init, cfg.c_init))

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return tuple(zeros.clone() for _ in range(2 * self.cfg.layers))

    def _rates(self):
        """The per-neuron step sizes Δt σ̂(c), one row per layer."""
        return self.cfg.dt * torch.sigmoid(self.c)

    def _update(self, y, z, x, rate, w):
        z = z - rate * (torch.tanh(w * y + x) + self.cfg.alpha * y)
        return y + rate * z, z

    def step(self, x_t, state):
        rates, new, u = self._rates(), [], x_t
        for layer, V in enumerate(self.V):
            y, z = self._update(state[2 * layer], state[2 * layer + 1], V(u), rates[layer], self.w[layer])
            new += [y, z]
            u = y
        return tuple(new)

    def features(self, state):
        return state[-2]

    def forward(self, x):
        # layer by layer: each layer's input projection is one product over all steps
        rates, u = self._rates(), x
        for layer, V in enumerate(self.V):
            vx = V(u)
            y = z = torch.zeros(x.shape[0], self.hidden_size, device=x.device, dtype=x.dtype)
            ys = []
            # unbind, not vx[:, t]: backward through an index writes a full-size gradient per step
            for vx_t in vx.unbind(1):
                y, z = self._update(y, z, vx_t, rates[layer], self.w[layer])
                ys.append(y)
            u = torch.stack(ys, dim=1)
        return u
