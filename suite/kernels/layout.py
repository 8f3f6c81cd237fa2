"""How the fused passes lay blocks side by side in one tensor."""

from __future__ import annotations

from collections.abc import Iterable


def consecutive_slices(widths: Iterable[int]) -> list[slice]:
    """The slices of blocks of ``widths`` laid one after another: ``[2, 3]`` -> ``[0:2, 2:5]``."""
    out, start = [], 0
    for w in widths:
        out.append(slice(start, start + w))
        start += w
    return out
