"""expRNN (Lezcano-Casado & Martínez-Rubio, ICML 2019, "Cheap Orthogonal Constraints in
Neural Networks: A Simple Parametrization of the Orthogonal and Unitary Group").

    h_t = modrelu(W_in x_t + B h_{t−1}, b),   B = exp(A),   A = −Aᵀ
    modrelu(z, b) = sign(z) ⊙ relu(|z| + b)

B is orthogonal for every A, so the optimizer works on the unconstrained skew A and
the constraint holds exactly after every step, with no projection. The exponential is
PyTorch's ``parametrizations.orthogonal(..., orthogonal_map="matrix_exp")`` with
``use_trivialization=False``: then B = exp(tril(X) − tril(X)ᵀ) for the stored X, which
is the paper's static parametrization. (The default, ``use_trivialization=True``,
multiplies by a fixed base point instead: the later "dynamic trivialization" paper's
scheme, a different optimization problem.)

Initialization of A (``skew_init``), both from the authors' code: block-diagonal with
2×2 blocks [[0, θ], [−θ, 0]], so that B is a rotation by θ in each plane;
  ``cayley``: θ = −tan(φ/2), φ ~ U(0, π/2), the authors' choice for (permuted) MNIST
  and their script's default, so ours;
  ``henaff``: θ ~ U(−π, π) (Henaff, Szlam & LeCun 2016), the authors' choice for
  copying (their code of the ICML 2019 paper drew U(−π, 0); later code U(−π, π)).
With odd H the last unit has no partner and starts with B's entry 1.
W_in: no bias, Kaiming normal for relu; modrelu's b ~ U(−0.01, 0.01) (the authors' code).
The authors store the skew matrix in the upper triangle and multiply h as a row vector
(h B); we store the lower triangle and apply B to h as a column (B h): for these
initializations the two are the same model in distribution.

The authors train A with a learning rate ten times smaller than the other parameters,
RMSprop for both (README of the ICML 2019 code: MNIST 170 units lr 7e-4 and 7e-5, 360
units 5e-4 / 5e-5, 512 units 3e-4 / 3e-5; psMNIST 1e-3 / 1e-4, 7e-4 / 7e-5, 5e-4 /
5e-5; copying 190 units 2e-4 / 2e-5): ``skew_lr_scale = 0.1`` puts A in a parameter
group of its own at ``lr × skew_lr_scale``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from baselines._fused import ModReLU, run
from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel


@dataclass
class ExpRNNConfig:
    skew_init: Literal["henaff", "cayley"] = "cayley"
    skew_lr_scale: float = 0.1  # A's learning rate = lr × skew_lr_scale

    def validate(self):
        require(self.skew_lr_scale > 0, f"model.skew_lr_scale={self.skew_lr_scale} must be > 0")


def block_skew(hidden_size: int, kind: str) -> torch.Tensor:
    """A skew-symmetric matrix with 2×2 blocks [[0, θ_k], [−θ_k, 0]] on the diagonal."""
    blocks = hidden_size // 2
    if kind == "henaff":
        theta = torch.empty(blocks).uniform_(-math.pi, math.pi)
    else:
        theta = -torch.tan(torch.empty(blocks).uniform_(0, math.pi / 2) / 2)
    A = torch.zeros(hidden_size, hidden_size)
    idx = torch.arange(blocks) * 2
    A[idx, idx + 1] = theta
    return A - A.T


@register_model("exprnn")
class ExpRNN(RecurrentModel):
    Config = ExpRNNConfig
    version = 2  # 2: A in its own parameter group at lr/10; cayley initialization by default
    search_space = {"lr": ("log", 1e-5, 1e-2), "clip": ("log", 0.1, 10.0),
                    "model.skew_init": ("categorical", ["henaff", "cayley"])}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.W_in = nn.Linear(input_size, hidden_size, bias=False)
        nn.init.kaiming_normal_(self.W_in.weight, nonlinearity="relu")
        self.b = nn.Parameter(torch.empty(hidden_size).uniform_(-0.01, 0.01))
        self.recurrent = orthogonal(nn.Linear(hidden_size, hidden_size, bias=False), "weight",
                                    orthogonal_map="matrix_exp", use_trivialization=False)
        with torch.no_grad():
            # tril(A) − tril(A)ᵀ = A for a skew A, so storing A itself gives B = exp(A)
            self.recurrent.parametrizations.weight.original.copy_(block_skew(hidden_size, cfg.skew_init))

    def param_groups(self):
        skew = self.recurrent.parametrizations.weight.original
        rest = [p for p in self.parameters() if p is not skew]
        return [{"name": "rest", "params": rest, "lr_scale": 1.0},
                {"name": "skew", "params": [skew], "lr_scale": self.cfg.skew_lr_scale}]

    def recurrence_matrix(self):
        """B = exp(A); each access recomputes the exponential."""
        return self.recurrent.weight

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def _update(self, h, wx, B):
        z = wx + h @ B.T
        return torch.sign(z) * torch.relu(z.abs() + self.b)

    def step(self, x_t, h):
        return self._update(h, self.W_in(x_t), self.recurrence_matrix())

    def features(self, h):
        return h

    def forward(self, x):
        # the fused pass of baselines/_fused.py: the recurrence of `step` (the exponential
        # computed once), analytic backward
        return run(ModReLU(), x, input_weight=self.W_in.weight, input_bias=self.W_in.bias,
                   recurrent=self.recurrence_matrix(), modulus_bias=self.b)
