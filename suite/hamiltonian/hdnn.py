"""Hamiltonian deep neural networks (H-DNNs) as recurrent cells, after Galimberti, Furieri,
Xu & Ferrari-Trecate 2021, "A unified framework for Hamiltonian deep neural networks"
(arXiv:2104.13166) and its journal version "Hamiltonian deep neural networks
guaranteeing non-vanishing gradients by design" (arXiv:2105.13205).

The ODE: ẏ = J Kᵀ tanh(K y + b), i.e. the Hamiltonian H(y) = 1ᵀ log cosh(K y + b)
with a skew-symmetric structure matrix J. As recurrent cells K (and J) are
time-invariant and the input drives the bias: b_t = b + V u_t, inside the tanh. The
input therefore changes only the Hamiltonian, H_t(y) = 1ᵀ log cosh(K y + b + V u_t),
never J: this is paper (b)'s time-varying H-DNN with a data-driven b(t), every step
is the same kind of map as a layer of the paper's network, and a step that is
symplectic is symplectic for every input. State y ∈ R^H (H = ``hidden_size``; the
split cells need it even, y = [p; q] with p, q ∈ R^{H/2}); the readout sees the whole
state y (both halves: p carries as much of the input as q). Step size h (the paper's
name), by default chosen before training by the step-size heuristic
(:mod:`suite.hamiltonian.heuristic`), as hrnn's Δt is. Row-vector code, column-vector
equations below; a_t = b + V u_t, split into the halves each shear needs.

hdnn-h1-j1, hdnn-h1-j2 — H1: forward Euler, K ∈ R^{H×H}:
    y_t = y_{t−1} + h J Kᵀ tanh(K y_{t−1} + a_t)
  J1 = [[0, I], [−I, 0]] (H even); J2: 0 on the diagonal, +1 above, −1 below (any H).
  Not symplectic: Φ = I + h J S (S = Kᵀ D K symmetric, D = diag tanh') gives
  ΦᵀJ1Φ = J1 + h² S J1 S ≠ J1.
hdnn-h2 — H2: semi-implicit (symplectic) Euler on y = [p; q], K = blockdiag(K_p, K_q):
    p_t = p_{t−1} − h K_qᵀ tanh(K_q q_{t−1} + a_{q,t})
    q_t = q_{t−1} + h K_pᵀ tanh(K_p p_t + a_{p,t})
  Symplectic (two shears with symmetric Jacobian blocks); exactly invertible.
hdnn-ms1 — MS1, Haber & Ruthotto 2017 ("Stable architectures for deep neural
  networks"), the Hamiltonian-inspired network ẏ = tanh(K₀ z + b_y),
  ż = −tanh(K₀ᵀ y + b_z), on y = [y; z], leapfrog/Verlet (z first):
    z_t = z_{t−1} − h tanh(K₀ᵀ y_{t−1} + a_{z,t})
    y_t = y_{t−1} + h tanh(K₀ z_t + a_{y,t})
  (in paper (b)'s form: K = [[0, K₀], [−K₀ᵀ, 0]] and J K = I). Volume-preserving and
  exactly invertible, but not symplectic: the Jacobian blocks h D K₀ᵀ are not symmetric.
hdnn-ms2 — MS2, Haber & Ruthotto's antisymmetric network, forward Euler:
    y_t = y_{t−1} + h tanh((W − Wᵀ − γ I) y_{t−1} + a_t)
  (paper (b): K = −Kᵀ, J K = I, i.e. γ = 0, the default). Not symplectic.
hdnn-ms3 — MS3, Chang et al. 2018 ("Reversible architectures for arbitrarily deep
  residual neural networks"), Verlet on y = [y; z], K = [[0, K₁], [K₂, 0]], J = J1:
    z_t = z_{t−1} − h K₁ tanh(K₁ᵀ y_{t−1} + a_{z,t})
    y_t = y_{t−1} + h K₂ tanh(K₂ᵀ z_t + a_{y,t})
  Symplectic and exactly invertible: H2 with p ↔ z, q ↔ y, K_q = K₁ᵀ, K_p = K₂ᵀ. As
  a function class the two coincide; they differ in which half is updated first
  relative to where the inputs (or, in paper (b)'s deep networks, the data) enter.

docs/hamiltonian.md derives each symplecticity claim; tests/test_hamiltonian.py checks
ΦᵀJΦ = J to 1e-10 for the symplectic cells and its failure for H1 and MS1.

The update of each cell is written once, as a list of shears (:data:`FORMS`,
:mod:`suite.hamiltonian.fused`), and used by the recurrent cells here and by paper
(b)'s deep networks (:mod:`suite.studies.deep_hdnn`). ``forward`` is the fused sequence
Function; ``reversible=True`` (the invertible cells: H2, MS1, MS3) reconstructs the
states backward instead of storing them.

Initialization: every K entry ~ N(0, 1/fan_in), V and b as PyTorch's ``nn.Linear``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from suite.core.config import require
from suite.core.registry import register_model
from suite.core.spec import RecurrentModel, as_tuple
from suite.hamiltonian import fused, update
from suite.hamiltonian.heuristic import HeuristicStepSize
from suite.hamiltonian.update import Shear


def j1(d: int, like: Tensor) -> Tensor:
    """J1 = [[0, I], [−I, 0]] of size d (even)."""
    n = d // 2
    eye = torch.eye(n, dtype=like.dtype, device=like.device)
    zero = torch.zeros_like(eye)
    return torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)


def j2(d: int, like: Tensor) -> Tensor:
    """J2: 0 on the diagonal, +1 above, −1 below."""
    ones = torch.ones(d, d, dtype=like.dtype, device=like.device)
    return torch.triu(ones, 1) - torch.tril(ones, -1)


# Each form: the weight shapes for a state of width d, and the step as shears from those
# weights, the step size h and γ (MS2 only). Blocks: (y,) or the halves ([p; q] / [y; z]).

def _h1(J: Callable[[int, Tensor], Tensor]):
    def shears(w, h, gamma):
        K = w["K"]
        return [Shear(0, 0, w_in=K, w_out=K @ J(K.shape[-1], K).mT, scale=h)]  # row form of h J Kᵀ tanh(K y + a)
    return shears


def _h2(w, h, gamma):
    Kp, Kq = w["Kp"], w["Kq"]
    return [Shear(0, 1, w_in=Kq, w_out=Kq, scale=-h),  # p ← p − h K_qᵀ tanh(K_q q + a_q)
            Shear(1, 0, w_in=Kp, w_out=Kp, scale=h)]  # q ← q + h K_pᵀ tanh(K_p p + a_p)


def _ms1(w, h, gamma):
    K0 = w["K0"]
    return [Shear(1, 0, w_in=K0.mT, scale=-h),  # z ← z − h tanh(K₀ᵀ y + a_z)
            Shear(0, 1, w_in=K0, scale=h)]  # y ← y + h tanh(K₀ z + a_y)


def _ms2(w, h, gamma):
    W = w["W"]
    eye = torch.eye(W.shape[-1], dtype=W.dtype, device=W.device)
    return [Shear(0, 0, w_in=W - W.mT - gamma * eye, scale=h)]  # y ← y + h tanh((W − Wᵀ − γI) y + a)


def _ms3(w, h, gamma):
    K1, K2 = w["K1"], w["K2"]
    return [Shear(1, 0, w_in=K1.mT, w_out=K1.mT, scale=-h),  # z ← z − h K₁ tanh(K₁ᵀ y + a_z)
            Shear(0, 1, w_in=K2.mT, w_out=K2.mT, scale=h)]  # y ← y + h K₂ tanh(K₂ᵀ z + a_y)


@dataclass(frozen=True)
class Form:
    """One cell's update, wherever its weights come from (a recurrent cell, a layer)."""

    weights: Callable[[int], dict[str, tuple[int, ...]]]  # state width d -> weight shapes
    shears: Callable[[dict[str, Tensor], float, float], list[Shear]]  # (weights, h, γ) -> the step
    split: bool  # the state is two halves
    symplectic: bool  # every step's Jacobian satisfies ΦᵀJ1Φ = J1
    invertible: bool  # explicitly invertible (the reversible mode)
    even: bool  # needs an even state width (J1, or the split into halves)


def _square(d):
    return {"K": (d, d)}


def _halves(*names):
    return lambda d: {name: (d // 2, d // 2) for name in names}


FORMS: dict[str, Form] = {
    "h1-j1": Form(_square, _h1(j1), split=False, symplectic=False, invertible=False, even=True),
    "h1-j2": Form(_square, _h1(j2), split=False, symplectic=False, invertible=False, even=False),
    "h2": Form(_halves("Kq", "Kp"), _h2, split=True, symplectic=True, invertible=True, even=True),
    "ms1": Form(_halves("K0"), _ms1, split=True, symplectic=False, invertible=True, even=True),
    "ms2": Form(lambda d: {"W": (d, d)}, _ms2, split=False, symplectic=False, invertible=False, even=False),
    "ms3": Form(_halves("K1", "K2"), _ms3, split=True, symplectic=True, invertible=True, even=True),
}


def block_sizes(form: Form, d: int) -> tuple[int, ...]:
    return (d // 2, d // 2) if form.split else (d,)


@dataclass
class HDNNConfig:
    # step size h; "heuristic": chosen before training by the rule that picks hrnn's Δt
    # (hamiltonian-dt-v1, docs/heuristic.md), so every Hamiltonian cell is compared with
    # a step size nobody tuned; the record keeps the number chosen
    h: float | Literal["heuristic"] = "heuristic"

    def validate(self):
        require(self.h == "heuristic" or self.h > 0, f"model.h={self.h} must be > 0 or 'heuristic'")


@dataclass
class HDNNReversibleConfig(HDNNConfig):
    reversible: bool = False  # reconstruct states in the backward pass instead of storing them


@dataclass
class MS2Config(HDNNConfig):
    gamma: float = 0.0  # diffusion γ; 0 is paper (b)'s MS2 (K = −Kᵀ)

    def validate(self):
        super().validate()
        require(self.gamma >= 0, f"model.gamma={self.gamma} must be >= 0")


class HDNNCell(HeuristicStepSize, RecurrentModel):
    """An H-DNN recurrent cell: the form ``form`` with time-invariant weights."""

    form: str
    Config = HDNNConfig
    search_space = {"lr": ("log", 1e-4, 1e-2), "clip": ("log", 0.1, 10.0), "model.h": ("log", 1e-3, 1.0)}

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        spec = FORMS[self.form]
        require(not spec.even or hidden_size % 2 == 0,
                f"{self.registry_name} needs an even hidden_size (J1 or the state [p; q]); got {hidden_size}")
        self.sizes = block_sizes(spec, hidden_size)
        self.K = nn.ParameterDict({name: nn.Parameter(torch.randn(shape) / shape[-1] ** 0.5)
                                   for name, shape in spec.weights(hidden_size).items()})
        # the drive's width depends on the form alone, not on h (which may still be "heuristic")
        width = sum(update.drive_widths(spec.shears(dict(self.K), 1.0, 0.0)))
        self.V = nn.Linear(input_size, width)

    def shears(self) -> list[Shear]:
        return FORMS[self.form].shears(dict(self.K), self.step_size(), getattr(self.cfg, "gamma", 0.0))

    def initial_state(self, batch_size, device, dtype):
        blocks = tuple(torch.zeros(batch_size, d, device=device, dtype=dtype) for d in self.sizes)
        return blocks if len(blocks) > 1 else blocks[0]

    def step(self, x_t, state):
        blocks = update.step(as_tuple(state), self.shears(), self.V(x_t))
        return blocks if len(blocks) > 1 else blocks[0]

    def features(self, state):
        return torch.cat(as_tuple(state), dim=-1)

    def forward(self, x, last_only: bool = False):
        return fused.run_sequence(x, input_weight=self.V.weight, input_bias=self.V.bias, shears=self.shears(),
                                  sizes=self.sizes, features=tuple(range(len(self.sizes))),
                                  reversible=getattr(self.cfg, "reversible", False), last_only=last_only)

    def last_features(self, x):
        return self(x, last_only=True)[:, -1]


@register_model("hdnn-h1-j1")
class H1J1(HDNNCell):
    form = "h1-j1"


@register_model("hdnn-h1-j2")
class H1J2(HDNNCell):
    form = "h1-j2"


@register_model("hdnn-h2")
class H2(HDNNCell):
    form = "h2"
    Config = HDNNReversibleConfig


@register_model("hdnn-ms1")
class MS1(HDNNCell):
    form = "ms1"
    Config = HDNNReversibleConfig


@register_model("hdnn-ms2")
class MS2(HDNNCell):
    form = "ms2"
    Config = MS2Config
    search_space = {**HDNNCell.search_space, "model.gamma": ("log", 1e-4, 1.0)}


@register_model("hdnn-ms3")
class MS3(HDNNCell):
    form = "ms3"
    Config = HDNNReversibleConfig
