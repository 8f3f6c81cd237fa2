"""The one update form of every Hamiltonian cell, and its reference step.

Every cell of this package (``hrnn``, the H-DNN cells of :mod:`suite.hamiltonian.hdnn`,
and paper (b)'s deep networks in :mod:`suite.studies.deep_hdnn`) splits its state into
blocks x_0, x_1, … and updates it by a fixed sequence of *shears* (row vectors):

    x_tgt ← x_tgt + β·x_src + c·tanh(x_src W_inᵀ + a) W_out

with W_out = I when absent and no tanh term when W_in is absent; ``a`` is the shear's
slice of the step's drive (V u_t + b for the recurrent cells, the layer bias for the
deep networks; slices are taken in the order of the shears that have a W_in). A cell
is the list of its shears (:class:`Shear`); the cell files build that list from their
parameters and document its equations.

  * :func:`step` — the reference: one step through the pure function :func:`shear`.
    The recurrent cells' ``step`` and the deep networks call it; it is the definition.
  * :func:`inverse_step` — the exact inverse of a step whose shears all have
    tgt ≠ src: x_tgt ← x_tgt − β·x_src − c·tanh(x_src W_inᵀ + a) W_out, in reverse
    order (x_src is unchanged by its shear, so everything on the right is known).

The fast path over a whole sequence is :func:`suite.hamiltonian.fused.run_sequence`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Shear:
    """x_tgt ← x_tgt + beta·x_src + scale·tanh(x_src w_inᵀ + a) w_out (row vectors).

    ``w_in``: [m, d_src] or None (no tanh term); ``w_out``: [m, d_tgt] or None (identity,
    m = d_tgt). Weights may carry leading batch dimensions (the deep networks' ensembles).
    """

    tgt: int
    src: int
    w_in: Tensor | None = None
    w_out: Tensor | None = None
    scale: float = 1.0
    beta: float = 0.0


def drive_widths(shears: Sequence[Shear]) -> list[int]:
    """Width of each tanh shear's slice of the drive, in shear order."""
    return [sh.w_in.shape[-2] for sh in shears if sh.w_in is not None]


def shear(x: Tensor, s: Tensor, sh: Shear, a: Tensor | None) -> Tensor:
    """The pure update of one shear: the new value of block ``sh.tgt``."""
    return x + increment(s, sh, a)


def increment(s: Tensor, sh: Shear, a: Tensor | None) -> Tensor:
    """What a shear adds to x_tgt: β·s + c·tanh(s W_inᵀ + a) W_out (a function of s alone)."""
    out = 0.0 if sh.beta == 0 else sh.beta * s
    if sh.w_in is None:
        return out
    th = torch.tanh(s @ sh.w_in.mT + a)
    return out + sh.scale * (th if sh.w_out is None else th @ sh.w_out)


def step(blocks: Sequence[Tensor], shears: Sequence[Shear], drive: Tensor) -> tuple[Tensor, ...]:
    """One step of a cell (the reference semantics): every shear in order."""
    blocks = list(blocks)
    drives = iter(drive.split(drive_widths(shears), dim=-1))
    for sh in shears:
        a = next(drives) if sh.w_in is not None else None
        blocks[sh.tgt] = shear(blocks[sh.tgt], blocks[sh.src], sh, a)
    return tuple(blocks)


def inverse_step(blocks: Sequence[Tensor], shears: Sequence[Shear], drive: Tensor) -> tuple[Tensor, ...]:
    """The state before :func:`step`, exactly (up to rounding): the shears undone in reverse."""
    if not invertible(shears):
        raise ValueError("a shear with tgt == src has no explicit inverse")
    blocks = list(blocks)
    drives = list(drive.split(drive_widths(shears), dim=-1))
    for sh in reversed(shears):
        a = drives.pop() if sh.w_in is not None else None
        blocks[sh.tgt] = blocks[sh.tgt] - increment(blocks[sh.src], sh, a)
    return tuple(blocks)


def invertible(shears: Sequence[Shear]) -> bool:
    """Explicitly invertible: no shear reads the block it writes."""
    return all(sh.tgt != sh.src for sh in shears)
