"""Helpers shared by the task modules: deterministic per-batch random streams."""

from __future__ import annotations

import numpy as np
import torch

# Stream ids keep the training, validation and test draws of one seed independent.
STREAMS = {"train": 0, "val": 1, "test": 2}


def generator(*key: int) -> torch.Generator:
    """A torch CPU generator seeded from a tuple of ints (seed, stream, index, ...).

    SeedSequence mixes the key, so neighbouring seeds or indices give unrelated
    streams; the result depends on nothing but the key (resumable, reproducible).
    """
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


class FixedSets:
    """Validation and test sets of a synthetic task, drawn once from the task's
    ``data_seed`` and cached, so that every run is scored on the same examples."""

    def __init__(self, make, data_seed: int, sizes: dict[str, int]):
        self._make = make  # make(n, generator) -> (x, y)
        self._seed = data_seed
        self._sizes = sizes
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self._cache:
            self._cache[split] = self._make(self._sizes[split], generator(self._seed, STREAMS[split]))
        return self._cache[split]

    def size(self, split: str) -> int:
        return self._sizes[split]

    def batch(self, split: str, index: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.get(split)
        lo = index * batch_size
        if lo >= x.shape[0]:
            raise IndexError(f"{split} batch {index} is past the end ({x.shape[0]} examples)")
        return x[lo : lo + batch_size], y[lo : lo + batch_size]
