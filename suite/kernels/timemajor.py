"""What every fused sequence pass shares (the Hamiltonian cells' and the baselines'): the
input map for all steps in one product per block of rows before the forward loop, and
its gradients, with every weight gradient as one product over all T·B rows after the
backward loop.

Layout: time-major. A sequence is ``[T, B, F]`` and its rows ``[T·B, F]``; the drive of
a pass is split into row blocks (one per gate or shear), each its own contiguous
``[T, B, width]`` buffer, so that each step's element-wise ops run on contiguous rows (on
a strided slice of one wide drive they took twice as long). The drive buffers come from
:mod:`suite.kernels.buffers`; the loops write into them in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from suite.kernels.buffers import take
from suite.kernels.layout import consecutive_slices


def input_drives(role: str, rows: Tensor, lead: tuple[int, int], weight: Tensor | None, bias: Tensor | None,
                 widths: Sequence[int]) -> list[Tensor]:
    """The drive ``rows weightᵀ + bias`` for all steps, one pooled ``[T, B, width]`` buffer per
    block of ``widths`` (``lead`` = (T, B), ``rows``: [T·B, in]); without ``weight`` the rows
    themselves are the drive (plus ``bias`` if given)."""
    return [_drive(f"{role}.drive{k}", rows, weight, bias, block, lead)
            for k, block in enumerate(consecutive_slices(widths))]


def _drive(role: str, rows: Tensor, weight: Tensor | None, bias: Tensor | None, block: slice,
           lead: tuple[int, int]) -> Tensor:
    buf = take(role, (*lead, block.stop - block.start), rows)
    flat = buf.view(lead[0] * lead[1], -1)
    if weight is None:
        flat.copy_(rows[:, block])
        if bias is not None:
            flat.add_(bias[block])
    elif bias is None:
        torch.mm(rows, weight[block].T, out=flat)
    else:
        torch.addmm(bias[block], rows, weight[block].T, out=flat)
    return buf


def input_map_grads(grads: Sequence[Tensor], rows: Tensor, weight: Tensor | None,
                    needs: tuple[bool, bool, bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """The gradients of the rows ``[T·B, in]``, of ``weight`` and of the bias, from the drive
    blocks' gradients ``grads`` (``[T, B, width]`` each, in block order), each one product over
    all T·B rows; ``needs`` says which of the three are wanted (None for the others)."""
    flat = [g.reshape(-1, g.shape[-1]) for g in grads]
    blocks = consecutive_slices(g.shape[-1] for g in flat)
    d_rows = d_weight = d_bias = None
    if needs[0]:
        if weight is None:
            d_rows = torch.cat(flat, dim=-1) if len(flat) > 1 else flat[0].clone()
        else:
            d_rows = flat[0] @ weight[blocks[0]]
            for g, block in zip(flat[1:], blocks[1:]):
                d_rows.addmm_(g, weight[block])
    if needs[1]:
        d_weight = weight.new_empty(weight.shape)
        for g, block in zip(flat, blocks):
            torch.mm(g.T, rows, out=d_weight[block])
    if needs[2]:
        d_bias = torch.cat([g.sum(0) for g in flat])
    return d_rows, d_weight, d_bias


def rows_product(g: Tensor, h: Tensor) -> Tensor:
    """Σ over every step and batch row of gᵀ h (``g``: [T, B, …, m], ``h``: [T, B, d]) -> [m, d]:
    a weight gradient in one product over all T·B rows."""
    return g.reshape(h.shape[0] * h.shape[1], -1).T @ h.reshape(-1, h.shape[-1])
