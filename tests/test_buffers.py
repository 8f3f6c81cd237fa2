"""The buffer pool of the fused passes (suite/kernels/buffers.py) hands a block out again
only when no tensor can read it any more: not while a view, a detached alias, an
autograd saved tensor or an output of a pass still shares it."""

from __future__ import annotations

import torch

from baselines._fused import Antisymmetric, run
from suite.kernels.buffers import Pool


def test_a_block_is_reused_once_nothing_else_holds_it():
    pool = Pool()
    like = torch.zeros(1)
    a = pool.take("r", (4, 5), like)
    ptr = a.data_ptr()
    assert pool.take("r", (4, 5), like).data_ptr() != ptr  # `a` is alive
    del a
    assert pool.take("r", (2, 5), like).data_ptr() == ptr  # free again, and large enough


def test_views_detached_aliases_and_saved_tensors_keep_a_block_in_use():
    pool = Pool()
    like = torch.zeros(1)
    a = pool.take("r", (4, 5), like).fill_(1)
    ptr = a.data_ptr()
    alias = a.detach()[1:]
    del a
    assert pool.take("r", (4, 5), like).data_ptr() != ptr
    w = torch.ones(3, 5, requires_grad=True)
    y = (w[None] * alias[:, None]).sum()  # autograd saves `alias` for the backward
    del alias
    assert pool.take("r", (4, 5), like).data_ptr() != ptr
    y.backward()  # the saved tensor is released
    assert pool.take("r", (4, 5), like).data_ptr() == ptr


def test_an_output_held_by_the_caller_is_never_overwritten():
    """A pass's outputs (its state history) stay intact through later passes and backwards."""
    x, v, b, A = torch.randn(2, 6, 3), torch.randn(4, 3), torch.randn(4), torch.randn(4, 4) * 0.3
    A.requires_grad_()
    cell = Antisymmetric(0.5)
    first = run(cell, x, input_weight=v, input_bias=b, recurrent=A)
    kept = first.detach().clone()
    first.sum().backward()
    with torch.no_grad():
        for _ in range(3):
            run(cell, x * 2, input_weight=v, input_bias=b, recurrent=A)
    run(cell, -x, input_weight=v, input_bias=b, recurrent=A).sum().backward()
    assert torch.equal(first.detach(), kept)
