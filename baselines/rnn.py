"""LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014), single layer.

The sequence path is ``torch.nn.LSTM`` / ``torch.nn.GRU`` (cuDNN on GPU). ``step``
recomputes one step from the very same weight tensors, in PyTorch's gate layout, so
the gradient probes see the model that is trained:

LSTM, gates (i, f, g, o) stacked in ``weight_ih_l0`` / ``weight_hh_l0``:
    [i; f; g; o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = σ(f) ∘ c_{t-1} + σ(i) ∘ tanh(g),   h_t = σ(o) ∘ tanh(c_t)
GRU, gates (r, z, n):
    r = σ(W_ir x + b_ir + W_hr h + b_hr),  z = σ(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r ∘ (W_hn h + b_hn)),  h_t = (1 − z) ∘ n + z ∘ h_{t-1}

State: LSTM (h, c), GRU h; the readout sees h. Initialization: PyTorch's default,
U(−1/√H, 1/√H) for every weight and bias.
"""

from __future__ import annotations

import torch
from torch import nn

from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@register_model("lstm")
class LSTM(RecurrentModel):
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True)

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def step(self, x_t, state):
        h, c = state
        r = self.rnn
        gates = x_t @ r.weight_ih_l0.T + r.bias_ih_l0 + h @ r.weight_hh_l0.T + r.bias_hh_l0
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return (torch.sigmoid(o) * torch.tanh(c), c)

    def features(self, state):
        return state[0]

    def forward(self, x):
        return self.rnn(x)[0]


@register_model("gru")
class GRU(RecurrentModel):
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def step(self, x_t, h):
        r = self.rnn
        xr, xz, xn = (x_t @ r.weight_ih_l0.T + r.bias_ih_l0).chunk(3, dim=-1)
        hr, hz, hn = (h @ r.weight_hh_l0.T + r.bias_hh_l0).chunk(3, dim=-1)
        reset, update = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + reset * hn)
        return (1 - update) * n + update * h

    def features(self, h):
        return h

    def forward(self, x):
        return self.rnn(x)[0]
