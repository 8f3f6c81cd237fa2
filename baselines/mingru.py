"""minGRU, the minimal GRU (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi, 2024, "Were RNNs All
We Needed?", arXiv 2410.01201).

The GRU with its gates made to depend on the input alone, so that the recurrence is
linear in h and runs as a scan:
    z_t = σ(W_z x_t + b_z),   h̃_t = g(W_h x_t + b_h)
    h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t,      h_0 = g(η)
with g(v) = v + ½ for v ≥ 0 and σ(v) below, which keeps every state positive (the
authors' log-space scan needs it), and η a trained initial state. The authors evaluate
it in log space: log h_t from cumulative sums of log(1 − z) and a log-cumsum-exp of
log z + log g. That is the same recurrence; here ``forward`` is the suite's parallel
scan (suite/kernels/scan.py) on a_t = 1 − z_t = σ(−·), b_t = z_t h̃_t, equal to the
step loop in float64.

The stack, as the authors' code (BorealisAI/minRNNs at ff52e9d: models/minRNNs.py,
models/model.py, main.py), with x the width-H residual stream:
    x = W_in u
    per layer:  x = x + W_out h(RMSNorm(x))      h: the minGRU above, width ⌊e·H⌋
                x = x + FF(RMSNorm(x))            if ``ff``
    features = RMSNorm(x)                          the authors' to_out reads this
with RMSNorm(v) = v/max(‖v‖, 10⁻¹²) · √H · (1 + γ), γ = 0 at start; FF(v) =
dropout(W₂ (GELU(b) ⊙ a ⊙ μ)), [a; b] = W₁ v, W₁: H → 2⌊m·H⌋, μ trained, ones at start.
Every Linear carries a bias and PyTorch's initialization; η ~ N(0, 1). The authors'
output map has no bias; the suite's readout has one. Their optional causal depthwise
convolution (off in their selective-copy setting) and batch-norm variant are left out.

Defaults: the authors' selective-copy setting (configs/selective_copy.yaml over
configs/default.yaml, read from the fork Yani-hmc/minRNNs, whose config files carry the
authors' copyright header; the upstream configs/ was not reachable here): 3 layers,
expansion e = 6, no feed-forward (so their dropout 0.1 does nothing there), RMSNorm, the
trained initial state on; width 64, AdamW lr 3·10⁻⁴, weight decay 0.05 but none on
the gate-and-candidate map W_z, W_h (:meth:`param_groups`, as main.py), clip 1.0,
batch 64 in 2 accumulated halves. With ``ff``: m = 2 (default.yaml's ff_mult).
The suite's optimizers have no AdamW (``weight_decay`` is Adam's L2 term), so their
decoupled decay is not reproduced and not searched. The FF dropout is element-wise, so
with ``ff`` and dropout the training-mode forward is not the step loop and ``step`` is
the evaluation-mode semantics.

State: every layer's h_l ([B, ⌊e·H⌋]), then the features (nothing reads them back). So
‖∂L/∂h_t‖ is the norm over all layers' h and the features; the features add only the
direct term of a step the readout reads.

Published numbers: the paper reports selective copying, offline RL (D4RL), character
language modelling and, in later versions, Chomsky-hierarchy tasks (the repository's
data/); as far as we could find no sMNIST, psMNIST, adding or copy-memory result, and
the suite's copy task is not selective copying. So no recipe: the suite runs the
selective-copy setting above.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel
from suite.kernels.scan import linear_scan


def g(v):
    """v + ½ for v ≥ 0, σ(v) below: positive, continuous, linear growth."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


@dataclass
class MinGRUConfig:
    layers: int = 3
    expansion: float = 6.0  # width of each minGRU, × hidden size
    ff: bool = False  # the feed-forward block after each minGRU
    ff_mult: float = 2.0  # its width, × hidden size
    dropout: float = 0.1  # after the feed-forward block (training only)
    init_state: bool = True  # h_0 = g(η) with η trained; False: h_0 = 0

    def validate(self):
        require(self.layers >= 1, f"model.layers={self.layers} must be >= 1")
        require(self.expansion > 0, f"model.expansion={self.expansion} must be > 0")
        require(self.ff_mult > 0, f"model.ff_mult={self.ff_mult} must be > 0")
        require(0 <= self.dropout < 1, f"model.dropout={self.dropout} must be in [0, 1)")


class RMSNorm(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.scale = width**0.5
        self.gamma = nn.Parameter(torch.zeros(width))

    def forward(self, v):
        return F.normalize(v, dim=-1) * self.scale * (1 + self.gamma)


@register_model("mingru")
class MinGRU(RecurrentModel):
    Config = MinGRUConfig
    version = 1
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        H, L = hidden_size, cfg.layers
        self.inner = int(H * cfg.expansion)
        self.layer_in = nn.Linear(input_size, H)
        self.norms = nn.ModuleList(RMSNorm(H) for _ in range(L))
        self.to_hidden_and_gate = nn.ModuleList(nn.Linear(H, 2 * self.inner) for _ in range(L))  # [W_h; W_z]
        self.to_out = nn.ModuleList(nn.Linear(self.inner, H) for _ in range(L))
        self.eta = nn.Parameter(torch.randn(L, self.inner)) if cfg.init_state else None
        if cfg.ff:
            width = int(H * cfg.ff_mult)
            self.ff_norms = nn.ModuleList(RMSNorm(H) for _ in range(L))
            self.ff_in = nn.ModuleList(nn.Linear(H, 2 * width) for _ in range(L))
            self.ff_gain = nn.Parameter(torch.ones(L, width))
            self.ff_out = nn.ModuleList(nn.Linear(width, H) for _ in range(L))
        self.norm = RMSNorm(H)

    def param_groups(self):
        no_decay = [p for lin in self.to_hidden_and_gate for p in lin.parameters()]
        rest = [p for p in self.parameters() if all(p is not q for q in no_decay)]
        return [{"name": "all", "params": rest, "lr_scale": 1.0},
                {"name": "recurrence", "params": no_decay, "lr_scale": 1.0, "weight_decay": 0.0}]

    def step_matches_training(self):
        return not (self.cfg.ff and self.cfg.dropout > 0)

    def _gates(self, layer, x):
        """(1 − z, z ⊙ h̃) of layer ``layer`` from its block input x."""
        hidden, gate = self.to_hidden_and_gate[layer](self.norms[layer](x)).chunk(2, dim=-1)
        # σ(−gate), not 1 − σ(gate): no cancellation when the gate saturates
        return torch.sigmoid(-gate), torch.sigmoid(gate) * g(hidden)

    def _h0(self, layer, batch, like):
        if self.eta is None:
            return like.new_zeros(batch, self.inner)
        return g(self.eta[layer]).to(like.dtype).expand(batch, self.inner)

    def _feed_forward(self, layer, x):
        if not self.cfg.ff:
            return x
        a, b = self.ff_in[layer](self.ff_norms[layer](x)).chunk(2, dim=-1)
        v = self.ff_out[layer](F.gelu(b) * a * self.ff_gain[layer])
        return x + F.dropout(v, self.cfg.dropout, self.training)

    def forward(self, x):
        x = self.layer_in(x)
        for layer in range(self.cfg.layers):
            keep, drive = self._gates(layer, x)
            h = linear_scan(keep, drive, self._h0(layer, x.shape[0], x))
            x = self._feed_forward(layer, x + self.to_out[layer](h))
        return self.norm(x)

    def initial_state(self, batch_size, device, dtype):
        like = torch.zeros((), device=device, dtype=dtype)
        hs = tuple(self._h0(layer, batch_size, like).clone() for layer in range(self.cfg.layers))
        return hs + (torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype),)

    def step(self, x_t, state):
        x, new = self.layer_in(x_t), []
        for layer in range(self.cfg.layers):
            keep, drive = self._gates(layer, x)
            h = keep * state[layer] + drive
            x = self._feed_forward(layer, x + self.to_out[layer](h))
            new.append(h)
        return tuple(new) + (self.norm(x),)

    def features(self, state):
        return state[-1]
