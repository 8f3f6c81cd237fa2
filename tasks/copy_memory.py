"""The copying-memory task (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al.
2016, "Unitary evolution recurrent neural networks", Section 4.1).

Alphabet of 10: 0 blank, 1..8 symbols, 9 delimiter. Input of length T + 20, one-hot:
10 symbols drawn uniformly from 1..8, then T - 1 blanks, the delimiter, 10 blanks.
Target of the same length: T + 10 blanks, then the 10 symbols. Loss: cross-entropy
of the readout at every position, averaged over positions; we also report the
accuracy on the 10 recalled symbols.

Reference point: a memoryless strategy predicts blanks for T + 10 steps and a uniform
guess over the 8 symbols for the last 10, scoring 10·log(8) / (T + 20).

Run: ``rnnsuite run --task copy --model gru --set task.T=100``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from suite.core.config import require
from suite.core.registry import register_task
from suite.core.spec import Task
from tasks._common import STREAMS, FixedSets, generator

N_SYMBOLS = 10  # to copy
ALPHABET = 10
DELIMITER = 9


def memoryless_xent(T: int) -> float:
    return N_SYMBOLS * math.log(8) / (T + 20)


@dataclass
class CopyConfig:
    T: int = 100  # the delay: the input has length T + 20
    n_val: int = 1000
    n_test: int = 1000
    data_seed: int = 1234

    def validate(self) -> None:
        require(self.T >= 1, f"task.T={self.T} must be >= 1")
        require(self.n_val >= 1 and self.n_test >= 1, "task.n_val and task.n_test must be >= 1")


def make_copy(n: int, T: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    length = T + 2 * N_SYMBOLS
    symbols = torch.randint(1, 9, (n, N_SYMBOLS), generator=gen)
    seq = torch.zeros(n, length, dtype=torch.long)
    seq[:, :N_SYMBOLS] = symbols
    seq[:, T + N_SYMBOLS - 1] = DELIMITER  # after the 10 symbols and T - 1 blanks
    target = torch.zeros(n, length, dtype=torch.long)
    target[:, -N_SYMBOLS:] = symbols
    return F.one_hot(seq, ALPHABET).float(), target


@register_task("copy")
class Copy(Task):
    Config = CopyConfig
    version = 1
    metric = "xent"
    higher_is_better = False
    output_at = "all"
    input_size = ALPHABET
    output_size = ALPHABET

    def __init__(self, cfg: CopyConfig, **kwargs):
        super().__init__(cfg, **kwargs)
        self.seq_len = cfg.T + 2 * N_SYMBOLS
        self._fixed = FixedSets(lambda n, g: make_copy(n, cfg.T, g), cfg.data_seed,
                                {"val": cfg.n_val, "test": cfg.n_test})

    def split_size(self, split):
        return None if split == "train" else self._fixed.size(split)

    def batch(self, split, index, batch_size, *, seed):
        if split == "train":
            return make_copy(batch_size, self.cfg.T, generator(seed, STREAMS["train"], index))
        return self._fixed.batch(split, index, batch_size)

    def loss(self, output, target):
        # output [B, L, 10], target [B, L]: mean cross-entropy over positions
        return F.cross_entropy(output.transpose(1, 2), target, reduction="none").mean(1)

    def metrics(self, output, target):
        recalled = output[:, -N_SYMBOLS:].argmax(-1) == target[:, -N_SYMBOLS:]
        return {"xent": self.loss(output, target), "recall_acc": recalled.float().mean(1)}

    def describe(self):
        return {"trivial_baseline": {"metric": "xent", "value": memoryless_xent(self.cfg.T),
                                     "rule": "memoryless: blanks, then uniform over 8 symbols"}}

    @property
    def variant(self):
        return f"T={self.cfg.T}"
