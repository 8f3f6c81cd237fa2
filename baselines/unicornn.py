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

Published psMNIST setting (the authors' script, github.com/tk-rusch/unicornn,
psMNIST/psMNIST_task.py): 256 units, 3 layers, Adam lr 0.00251 (÷10 after epoch 650 of
2600), batch 32, Δt 0.19, α 30.65, dropout 0.1. These are the Config defaults, the three
layers included, because the published results are for that depth. ``layers=1`` is the
single-cell variant.

Dropout, as the authors' ``Dropout_overtime``: in training, each layer's output
sequence is multiplied by one Bernoulli(1 − p) mask per sequence, shape [B, H], the same
at every time step, scaled by 1/(1 − p); applied to every layer's output, the last one
included (so the readout sees a dropped-out state); never to the input. ``step`` cannot
hold a mask across calls, so it is the evaluation-mode semantics.

Initialization, as the authors' code: w ~ U(0, w_init), c ~ U(−c_init, c_init); the
input maps' weights U(−k, k) with k = √(6 / (65 fan_in)) (``kaiming_uniform_`` with
a = 8), biases 0; the readout's weight ``kaiming_normal_`` (N(0, 2/H)), its bias 0.
Δt and α are fixed, shared by all layers (not trained).

``reversible=true`` reconstructs every layer's states backward in time instead of storing
them, as the authors' CUDA kernel does (symplectic Euler is exactly invertible): the
same gradients up to float32 round-off of the reversed trajectory (1.6·10⁻⁶ in the
initial state at T = 784, 6·10⁻⁵ at T = 10⁴, one layer), at the cost of recomputing the
input map and its nonlinearity, per step. The layers run together, step by step
(baselines/_reversible_unicornn.py), so no layer's output sequence is stored: read at
its last step (``last_features``), the model trains in memory independent of T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines._fused_oscillators import unicornn_layer
from baselines._reversible_unicornn import reversible_stack
from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class UnICORNNConfig:
    dt: float = 0.19  # largest step size Δt
    alpha: float = 30.65  # stiffness α
    layers: int = 3
    w_init: float = 1.0  # w ~ U(0, w_init)
    c_init: float = 0.1  # c ~ U(−c_init, c_init)
    dropout: float = 0.1  # p of the per-sequence dropout mask on every layer's output (training only)
    reversible: bool = False  # reconstruct states in the backward pass instead of storing them

    def validate(self):
        require(self.dt > 0, f"model.dt={self.dt} must be > 0")
        require(self.alpha >= 0, f"model.alpha={self.alpha} must be >= 0")
        require(self.layers >= 1, f"model.layers={self.layers} must be >= 1")
        require(self.w_init >= 0, f"model.w_init={self.w_init} must be >= 0")
        require(self.c_init >= 0, f"model.c_init={self.c_init} must be >= 0")
        require(0 <= self.dropout < 1, f"model.dropout={self.dropout} must be in [0, 1)")


@register_model("unicornn")
class UnICORNN(RecurrentModel):
    Config = UnICORNNConfig
    version = 2  # 2: dropout and the readout's initialization, as the authors' code
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

    def init_readout(self, readout):
        nn.init.kaiming_normal_(readout.weight)
        nn.init.zeros_(readout.bias)

    def step_matches_training(self):
        return self.cfg.dropout == 0

    def _dropout_mask(self, like):
        """One mask per sequence and unit ([B, H]), the same at every step; None when off."""
        p = self.cfg.dropout
        if not self.training or p == 0:
            return None
        mask = torch.empty(like.shape[0], self.hidden_size, dtype=like.dtype, device=like.device)
        return mask.bernoulli_(1 - p) / (1 - p)

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
        # layer by layer, each the fused pass of baselines/_fused_oscillators.py: the input
        # map over all steps in one product, `step`'s recurrence, analytic backward; the
        # dropout mask (training) is applied inside the pass
        if self.cfg.reversible:
            return self._reversible(x, last_only=False)
        rates, u = self._rates(), x
        for layer, V in enumerate(self.V):
            u = unicornn_layer(u, input_weight=V.weight, input_bias=V.bias, w=self.w[layer], rate=rates[layer],
                               alpha=self.cfg.alpha, mask=self._dropout_mask(x))
        return u

    def last_features(self, x):
        # reversible: the whole stack step by step, nothing stored that grows with T
        return self._reversible(x, last_only=True) if self.cfg.reversible else self(x)[:, -1]

    def _reversible(self, x, *, last_only):
        masks = [self._dropout_mask(x) for _ in self.V]
        masks = None if masks[0] is None else torch.stack(masks)
        return reversible_stack(x, input_maps=[(V.weight, V.bias) for V in self.V], w=self.w, rate=self._rates(),
                                alpha=self.cfg.alpha, masks=masks, last_only=last_only)
