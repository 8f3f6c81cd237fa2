"""IndRNN, independently recurrent neural network (Li, Li, Cook, Zhu & Gao, CVPR 2018,
"Independently Recurrent Neural Network (IndRNN): Building A Longer and Deeper RNN";
Li et al. 2019, "Deep Independently Recurrent Neural Network").

A stack of ``layers`` layers; layer l reads the output sequence of layer l − 1 (the
input for l = 1):
    h_t = relu(W x_t + b + u ⊙ h_{t−1}),   |u| ≤ u_bound (elementwise)
    out = dropout(BN(h))                     (each optional)
Each neuron feeds back only to itself, so the gradient through T steps of neuron i is a
product of T factors u_i·relu′; bounding |u_i| bounds its growth. u_bound = mag^(1/T)
for sequences of length T.

As the authors' PyTorch MNIST code (github.com/Sunnydreamrain/IndRNN_pytorch,
pixelMNIST/, the code of the 99.04 % sMNIST log), whose settings are the defaults:
6 layers of 128 units; batch normalization after every layer's recurrence, with one
mean and variance per unit over the batch and all time steps (running statistics in
evaluation); dropout 0.1 after every layer, the last included, with one mask per
sequence shared by all time steps; mag = 5 (their ``MAG``), so u_bound = 5^(1/T).
Initialization: u ~ U(0, u_bound) in every layer (their code intends the last layer in
[u_bound⁻¹, u_bound], but the parameter-name test that would do it never matches, so
all layers start in [0, u_bound]; ``last_layer_init="bounded"`` is the intended rule,
which their CVPR adding-problem code applies); input maps ``kaiming_uniform_`` with
a = 8 (U(±√(6/(65 fan_in)))), biases 0, batch-norm scale 1 and shift 0; the readout
``kaiming_normal_``, bias 0. Training, as theirs (run settings, in the recipes):
Adam lr 2e-4, weight decay 1e-4 on every weight but u (no decay on u and the biases),
gradients clipped element-wise to ±10, and u projected onto [−u_bound, u_bound] after
every update (:meth:`constrain`).

The CVPR adding-problem code (Theano) is 2 layers without batch normalization or
dropout, mag = 2, the last layer in [2^(−1/T), 2^(1/T)] and input maps N(0, 0.001²):
``layers=2 batch_norm=false dropout=0 mag=2 last_layer_init=bounded
input_init=normal``.

``step`` is the evaluation-mode semantics (batch normalization from its running
statistics, no dropout); with batch normalization or dropout the training-mode
``forward`` is not a step loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from baselines._fused import indrnn_layer
from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class IndRNNConfig:
    layers: int = 6
    batch_norm: bool = True  # after every layer's recurrence, statistics over batch and time
    dropout: float = 0.1  # one mask per sequence after every layer (training only)
    mag: float = 5.0  # u_bound = mag^(1/T) unless u_max is given
    u_max: float | None = None  # the bound on |u| itself (None: from mag and T)
    last_layer_init: Literal["same", "bounded"] = "same"  # "bounded": last layer's u in [1/u_bound, u_bound]
    input_init: Literal["kaiming", "normal"] = "kaiming"  # kaiming_uniform_(a=8), or N(0, w_init_std²)
    w_init_std: float = 0.001

    def validate(self):
        require(self.layers >= 1, f"model.layers={self.layers} must be >= 1")
        require(0 <= self.dropout < 1, f"model.dropout={self.dropout} must be in [0, 1)")
        require(self.mag > 1, f"model.mag={self.mag} must be > 1")
        require(self.u_max is None or self.u_max > 0, f"model.u_max={self.u_max} must be > 0")
        require(self.w_init_std >= 0, f"model.w_init_std={self.w_init_std} must be >= 0")


@register_model("indrnn")
class IndRNN(RecurrentModel):
    Config = IndRNNConfig
    version = 2  # 2: the authors' deep network (layers, batch norm, dropout, their initialization)
    search_space = {"lr": ("log", 1e-5, 1e-2), "clip": ("log", 0.1, 10.0), "model.mag": ("float", 1.5, 10.0)}

    @classmethod
    def resolve_config(cls, cfg, *, input_size, hidden_size, seq_len):
        if cfg.u_max is not None:
            return cfg, {}
        return IndRNNConfig(**{**cfg.__dict__, "u_max": cfg.mag ** (1.0 / seq_len)}), {}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        bound = self.u_bound()
        widths = [input_size] + [hidden_size] * (cfg.layers - 1)
        self.W = nn.ModuleList(nn.Linear(width, hidden_size) for width in widths)
        for lin in self.W:
            if cfg.input_init == "kaiming":
                nn.init.kaiming_uniform_(lin.weight, a=8)
            else:
                nn.init.normal_(lin.weight, std=cfg.w_init_std)
            nn.init.zeros_(lin.bias)
        self.u = nn.Parameter(torch.empty(cfg.layers, hidden_size).uniform_(0, bound))
        if cfg.last_layer_init == "bounded":
            with torch.no_grad():
                self.u[-1].uniform_(1 / bound, bound)
        self.bn = nn.ModuleList(nn.BatchNorm1d(hidden_size) for _ in range(cfg.layers)) if cfg.batch_norm else None

    def u_bound(self) -> float:
        """u_max as resolved from mag and T; 1 for a model built without a sequence length."""
        return self.cfg.u_max if self.cfg.u_max is not None else 1.0

    def init_readout(self, readout):
        nn.init.kaiming_normal_(readout.weight)
        nn.init.zeros_(readout.bias)

    def step_matches_training(self):
        return not self.cfg.batch_norm and self.cfg.dropout == 0

    def param_groups(self):
        # the authors' weight decay skips u and every bias
        exempt = {id(self.u)} | {id(p) for name, p in self.named_parameters() if name.endswith("bias")}
        return [{"name": "decayed", "params": [p for p in self.parameters() if id(p) not in exempt],
                 "lr_scale": 1.0},
                {"name": "u_and_biases", "params": [p for p in self.parameters() if id(p) in exempt],
                 "lr_scale": 1.0, "weight_decay": 0.0}]

    @torch.no_grad()
    def constrain(self):
        bound = self.u_bound()
        self.u.clamp_(-bound, bound)

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return tuple(zeros.clone() for _ in range(self.cfg.layers))

    def _norm_step(self, layer, h):
        """Batch normalization of one step from the running statistics (eval semantics)."""
        if self.bn is None:
            return h
        bn = self.bn[layer]
        return F.batch_norm(h, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    def step(self, x_t, state):
        new, inp = [], x_t
        for layer, W in enumerate(self.W):
            h = torch.relu(W(inp) + self.u[layer] * state[layer])
            new.append(h)
            inp = self._norm_step(layer, h)
        return tuple(new)

    def features(self, state):
        return self._norm_step(self.cfg.layers - 1, state[-1])

    def _dropout(self, hs):
        p = self.cfg.dropout
        if not self.training or p == 0:
            return hs
        return hs * (torch.empty_like(hs[:, 0]).bernoulli_(1 - p) / (1 - p)).unsqueeze(1)

    def forward(self, x):
        inp = x
        for layer, W in enumerate(self.W):
            # the fused pass of baselines/_fused.py: the input map over all steps in one
            # product, h_t = relu(W x_t + b + u ⊙ h_{t−1}) from h_0 = 0, analytic backward
            hs = indrnn_layer(inp, input_weight=W.weight, input_bias=W.bias, recurrent=self.u[layer])
            if self.bn is not None:
                # statistics over batch and time: BatchNorm1d over the rows of the time-major
                # [T·B, H] view the fused pass returns (on the [B, H, T] transpose, measured
                # ten times slower)
                rows = hs.transpose(0, 1)
                hs = self.bn[layer](rows.reshape(-1, self.hidden_size)).view(rows.shape).transpose(0, 1)
            inp = self._dropout(hs)
        return inp
