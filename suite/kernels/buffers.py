"""The one buffer pool of the fused sequence passes (the Hamiltonian cells' and the
baselines'): :func:`take` hands out a CPU tensor whose memory was used before.

Why: a freshly allocated buffer of tens of MB costs a page fault per 4 KB on first touch
(measured on the two-core machine: 10 to 50 ms per 25 MB, up to a tenth of a training
step at B = 64, T = 784, H = 128), and the passes take a few such buffers per call.

The rule (when a pooled buffer is free), with public means only: the pool keeps each
block of memory as a NumPy array and hands it out as a tensor made by
``torch.frombuffer`` over a fresh ``memoryview`` of it. That tensor's storage holds the
only reference to the memoryview, and torch releases it when the storage is freed,
that is, when the last tensor sharing the storage is gone: views, ``detach()``es,
autograd's saved tensors, outputs kept by the caller, gradients in flight, a NumPy
array made from it. A ``weakref.finalize`` on the memoryview then marks the block free.
So a block is handed out again only when no tensor can read or write it any more,
whatever the caller does with the outputs (no_grad runs, a backward that never comes,
``retain_graph``, gradcheck's repeated backwards): nothing is given back by hand. (Giving
saved buffers back at the end of a backward would not do: with ``retain_graph`` the same
backward runs again and reads them.) Outside the rule: raw addresses (``data_ptr``) kept
past the life of every tensor.

Bounds: blocks are held per role (a name given by the pass, so that a block keeps
serving the same shape) up to ``KEEP_BYTES`` in all, least recently used dropped first
(a dropped block in use lives on until its tensors die, then goes to the allocator);
a request larger than ``KEEP_BYTES`` is not pooled. Other devices than the CPU get
``new_empty``: their caching allocators already reuse memory.
"""

from __future__ import annotations

import math
import weakref

import torch
from torch import Tensor


class _Block:
    """One block of pooled memory; ``free`` is set by the finalizer of its last lease."""

    __slots__ = ("role", "memory", "nbytes", "free")

    def __init__(self, role: str, nbytes: int):
        self.role, self.nbytes, self.free = role, nbytes, True
        # allocated by torch (aligned as torch aligns), seen as a NumPy array only for the
        # buffer protocol that torch.frombuffer reads
        self.memory = torch.empty(nbytes, dtype=torch.uint8).numpy()


def _release(block: _Block) -> None:
    block.free = True


class Pool:
    """CPU buffers reused from one call to the next, each handed out again only when every
    tensor sharing its memory is gone (the module docstring's rule)."""

    KEEP_BYTES = 2**30

    def __init__(self):
        self.held: list[_Block] = []

    def take(self, role: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        """An uninitialized tensor of ``shape`` with ``like``'s dtype and device."""
        if like.device.type != "cpu":
            return like.new_empty(shape)
        n = math.prod(shape)
        nbytes = n * like.element_size()
        if n == 0 or nbytes > self.KEEP_BYTES:
            return like.new_empty(shape)
        for i, block in enumerate(self.held):
            if block.free and block.role == role and block.nbytes >= nbytes:
                self.held.append(self.held.pop(i))
                return _lease(block, n, shape, like.dtype)
        block = _Block(role, nbytes)
        self.held.append(block)
        while sum(b.nbytes for b in self.held) > self.KEEP_BYTES:
            self.held.pop(0)
        return _lease(block, n, shape, like.dtype)

    def clear(self) -> None:
        self.held.clear()


def _lease(block: _Block, n: int, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    block.free = False
    view = memoryview(block.memory)
    # the storage made below holds the only reference to `view`: it dies with the storage
    weakref.finalize(view, _release, block).atexit = False
    return torch.frombuffer(view, dtype=dtype, count=n).view(shape)


POOL = Pool()


def take(role: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
    """A buffer of ``shape`` from the shared pool (see the module docstring for when it is reused)."""
    return POOL.take(role, shape, like)
