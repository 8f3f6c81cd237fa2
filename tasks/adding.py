"""The adding problem (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al. 2016,
"Unitary evolution recurrent neural networks", and Rusch & Mishra 2021, coRNN).

Input ``x: [B, T, 2]``: channel 0 holds values u_t ~ U[0, 1]; channel 1 is a marker
with exactly two ones, one at a uniformly drawn position in the first half
(t < T/2) and one in the second half. Target: the sum of the two marked values.
Loss: mean squared error of the readout at the last step.

Reference point: always predicting 1 gives E[(u_a + u_b - 1)^2] = Var(u_a + u_b)
= 2/12 ≈ 0.167; a model has learned something only below that. The target 0.01
follows the LEM paper (Rusch et al. 2022), whose logs reach it within about 2000
iterations at T = 2000..10000.

Run: ``rnnsuite run --task adding --model lstm --set task.T=200``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from suite.core.config import require
from suite.core.registry import register_task
from suite.core.spec import Task
from tasks._common import STREAMS, FixedSets, generator

TRIVIAL_MSE = 1.0 / 6.0  # Var(U[0,1] + U[0,1]) = 2/12


@dataclass
class AddingConfig:
    T: int = 100  # sequence length
    n_val: int = 1000
    n_test: int = 1000
    data_seed: int = 1234  # fixes the validation and test sets
    target: float = 0.01  # test MSE that counts as solved (time-to-target)

    def validate(self) -> None:
        require(self.T >= 2, f"task.T={self.T} must be >= 2 (one marker in each half)")
        require(self.n_val >= 1 and self.n_test >= 1, "task.n_val and task.n_test must be >= 1")


def make_adding(n: int, T: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    values = torch.rand(n, T, generator=gen)
    half = T // 2
    first = torch.randint(0, half, (n,), generator=gen)
    second = torch.randint(half, T, (n,), generator=gen)
    marker = torch.zeros(n, T)
    rows = torch.arange(n)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return torch.stack([values, marker], dim=-1), target.unsqueeze(-1)


@register_task("adding")
class Adding(Task):
    Config = AddingConfig
    version = 1
    metric = "mse"
    higher_is_better = False
    output_at = "last"
    input_size = 2
    output_size = 1

    def __init__(self, cfg: AddingConfig, **kwargs):
        super().__init__(cfg, **kwargs)
        self.seq_len = cfg.T
        self.target = cfg.target
        self._fixed = FixedSets(lambda n, g: make_adding(n, cfg.T, g), cfg.data_seed,
                                {"val": cfg.n_val, "test": cfg.n_test})

    def split_size(self, split):
        return None if split == "train" else self._fixed.size(split)

    def batch(self, split, index, batch_size, *, seed):
        if split == "train":  # fresh samples every step
            return make_adding(batch_size, self.cfg.T, generator(seed, STREAMS["train"], index))
        return self._fixed.batch(split, index, batch_size)

    def loss(self, output, target):
        return ((output - target) ** 2).sum(-1)

    def metrics(self, output, target):
        return {"mse": self.loss(output, target)}

    def describe(self):
        return {"trivial_baseline": {"metric": "mse", "value": TRIVIAL_MSE,
                                     "rule": "always predict 1"}}

    @property
    def variant(self):
        return f"T={self.cfg.T}"
