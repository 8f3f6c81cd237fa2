"""Hamiltonian RNN, after Rusch, Pearson & Zygalakis 2019, "Constructing gradient
controllable recurrent neural networks using Hamiltonian dynamics" (arXiv:1911.05035;
withdrawn, full text unavailable: this is a reconstruction from its abstract and from
its descendant UnICORNN, Rusch & Mishra, ICML 2021).

State (y, z) ∈ R^H × R^H (position, momentum), with the input-dependent Hamiltonian
    H(y, z; u_t) = ½‖z‖² + ½ α ‖y‖² + 1ᵀ log cosh(W y + V u_t + b),
so that ẏ = ∂H/∂z = z and ż = −∂H/∂y = −(α y + Wᵀ tanh(W y + V u_t + b)).
One step is symplectic Euler with step Δt (z first, then y with the new z):
    z_t = z_{t−1} − Δt (α y_{t−1} + Wᵀ tanh(W y_{t−1} + V u_t + b))
    y_t = y_{t−1} + Δt z_t
The readout sees y.

Why this Hamiltonian (the choices the abstract leaves open):
  * separable, H = T(z) + V(y; u): symplectic Euler is then explicit, and its step is
    a composition of two shears (a kick in z, a drift in y), each with a symmetric
    off-diagonal Jacobian block, so the step is symplectic for every Δt, every input
    and every W (docs/hamiltonian.md derives it); it is also exactly invertible, which
    the reversible mode uses (UnICORNN reconstructs its states backward the same way);
  * the input enters only the potential, inside the tanh: the structure matrix J is
    untouched, so each step stays symplectic whatever the input;
  * ½α‖y‖² with α > 0 makes the potential confining (log cosh grows only linearly), so
    the energy's level sets are bounded and the undriven flow is bounded; the
    1ᵀ log cosh term is paper (b)'s Hamiltonian, giving the tanh nonlinearity;
  * Δt is the one hyperparameter that moves the hidden-state gradients between
    vanishing and exploding (a frozen mode of stiffness ω² rotates, neither growing
    nor decaying, iff Δt ω < 2); the step-size heuristic picks it before training.

Fast path: ``forward`` runs :func:`suite.hamiltonian.fused.run_sequence` (custom
autograd Function, analytic backward); with ``reversible=True`` it stores no states
and reconstructs them backward in time (O(B·H) activation memory when the task reads
the last step alone: ``last_features``).

Initialization: W_ij ~ N(0, 1/H), V and b as PyTorch's ``nn.Linear``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel
from suite.hamiltonian import fused, update
from suite.hamiltonian.heuristic import HeuristicStepSize
from suite.hamiltonian.update import Shear


@dataclass
class HRNNConfig:
    # step size Δt; "heuristic": chosen before training from T, H, α and the initialized W
    # (rule hamiltonian-dt-v1, docs/heuristic.md); the record keeps the number chosen
    dt: float | Literal["heuristic"] = "heuristic"
    alpha: float = 1.0  # stiffness α of the quadratic potential
    reversible: bool = False  # reconstruct states in the backward pass instead of storing them

    def validate(self):
        require(self.dt == "heuristic" or self.dt > 0, f"model.dt={self.dt} must be > 0 or 'heuristic'")
        require(self.alpha >= 0, f"model.alpha={self.alpha} must be >= 0")


@register_model("hrnn")
class HamiltonianRNN(HeuristicStepSize, RecurrentModel):
    Config = HRNNConfig
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0),
                    "model.dt": ("log", 1e-3, 1.0), "model.alpha": ("log", 1e-2, 1e2)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.W = nn.Parameter(torch.randn(hidden_size, hidden_size) / hidden_size**0.5)
        self.V = nn.Linear(input_size, hidden_size)

    def shears(self) -> list[Shear]:
        """The step as shears on the blocks (y, z): the kick in z, then the drift in y."""
        dt, alpha = self.step_size(), self.cfg.alpha
        return [Shear(tgt=1, src=0, w_in=self.W, w_out=self.W, scale=-dt, beta=-dt * alpha),
                Shear(tgt=0, src=1, beta=dt)]

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return (zeros, zeros.clone())

    def step(self, x_t, state):
        return update.step(state, self.shears(), self.V(x_t))

    def features(self, state):
        return state[0]

    def forward(self, x, last_only: bool = False):
        # getattr: a subclass may bring its own Config without the flag; it runs the stored path
        reversible = getattr(self.cfg, "reversible", False)
        return fused.run_sequence(x, input_weight=self.V.weight, input_bias=self.V.bias, shears=self.shears(),
                                  sizes=(self.hidden_size,) * 2, features=(0,), reversible=reversible,
                                  last_only=last_only)

    def last_features(self, x):
        return self(x, last_only=True)[:, -1]
