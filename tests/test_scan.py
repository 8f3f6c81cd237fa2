"""The scan backend (suite/kernels/scan.py): the parallel scan equals the sequential
reference in float64, values and gradients, for every kind of coefficient it takes, with
either CPU solver (the fused loop and the log-depth halving the GPU runs)."""

from __future__ import annotations

import pytest
import torch

from suite.kernels import scan
from suite.kernels.scan import block_scan, linear_scan

LENGTHS = [1, 2, 3, 7, 33]
B, H = 2, 3


@pytest.fixture(params=["loop", "halving"])
def solver(request, monkeypatch):
    monkeypatch.setattr(scan, "CPU_SOLVER", request.param)
    return request.param


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _coefficient(kind: str, T: int, dtype, seed=0):
    """|a| < 1, so that states stay of order one and a tolerance means the same at every T."""
    g = _gen(seed)
    shape = {"constant": (H,), "constant-4d": (1, 1, H), "varying": (B, T, H)}[kind]
    radius = 0.3 + 0.65 * torch.rand(shape, generator=g, dtype=torch.float64)
    if dtype.is_complex:
        return torch.polar(radius, 6.28 * torch.rand(shape, generator=g, dtype=torch.float64))
    return radius * torch.sign(torch.randn(shape, generator=g, dtype=torch.float64))


def _blocks(kind: str, T: int, seed=0):
    """Rotations scaled below one: the LinOSS transition's kind of 2×2 block."""
    g = _gen(seed)
    shape = (H,) if kind == "constant" else (B, T, H)
    angle = 3 * torch.rand(shape, generator=g, dtype=torch.float64)
    radius = 0.5 + 0.45 * torch.rand(shape, generator=g, dtype=torch.float64)
    c, s = radius * angle.cos(), radius * angle.sin()
    return torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)


def _randn(shape, dtype, seed=1):
    return torch.randn(shape, generator=_gen(seed), dtype=dtype)


def _assert_methods_agree(fn, coef, drive, h0):
    leaves = [t.requires_grad_() for t in (coef, drive, h0)]
    fast, ref = fn(coef, drive, h0, method="parallel"), fn(coef, drive, h0, method="sequential")
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    weights = _randn(ref.shape, ref.dtype, seed=7)
    loss = lambda y: (y * weights).real.sum()  # noqa: E731
    for g_fast, g_ref in zip(torch.autograd.grad(loss(fast), leaves), torch.autograd.grad(loss(ref), leaves)):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("kind", ["constant", "constant-4d", "varying"])
def test_linear_scan_parallel_equals_sequential(kind, dtype, T, solver):
    a, b, h0 = _coefficient(kind, T, dtype), _randn((B, T, H), dtype), _randn((B, H), dtype, seed=2)
    _assert_methods_agree(linear_scan, a, b, h0)


@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("kind", ["constant", "varying"])
def test_block_scan_parallel_equals_sequential(kind, T, solver):
    # LinOSS: real blocks, complex drive
    M, F, x0 = _blocks(kind, T), _randn((B, T, H, 2), torch.complex128), _randn((B, H, 2), torch.complex128, seed=2)
    _assert_methods_agree(block_scan, M, F, x0)


def test_a_real_coefficient_with_a_complex_drive_keeps_a_real_gradient(solver):
    a, b = _coefficient("constant", 5, torch.float64).requires_grad_(), _randn((B, 5, H), torch.complex128)
    (grad,) = torch.autograd.grad(linear_scan(a, b).abs().sum(), [a])
    assert grad.dtype == torch.float64 and grad.shape == a.shape


@pytest.mark.parametrize("T", [1, 3, 8])
def test_gradcheck(T, solver):
    a = _coefficient("varying", T, torch.complex128).requires_grad_()
    b = _randn((B, T, H), torch.complex128).requires_grad_()
    h0 = _randn((B, H), torch.complex128, seed=2).requires_grad_()
    assert torch.autograd.gradcheck(lambda *args: linear_scan(*args), (a, b, h0))
    M, F = _blocks("constant", T).requires_grad_(), _randn((B, T, H, 2), torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda *args: block_scan(*args), (M, F))


def test_bad_arguments_fail_loudly():
    b = torch.zeros(2, 4, 3)
    with pytest.raises(ValueError, match="method"):
        linear_scan(torch.ones(3), b, method="blelloch")
    with pytest.raises(ValueError, match="time size"):
        linear_scan(torch.ones(2, 3, 3), b)
    with pytest.raises(ValueError, match="2, 2"):
        block_scan(torch.ones(3, 2), torch.zeros(2, 4, 3, 2))


NO_GPU = "no CUDA device: the GPU's halving is checked on the CPU above; its CUDA run needs a GPU"


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_cuda_equals_cpu(dtype):
    T = 257
    a, b = _coefficient("varying", T, dtype).to(dtype), _randn((B, T, H), dtype)
    M, F = _blocks("constant", T).float(), _randn((B, T, H, 2), dtype)
    for fn, coef, drive in ((linear_scan, a, b), (block_scan, M, F)):
        cpu = [t.clone().requires_grad_() for t in (coef, drive)]
        gpu = [t.cuda().requires_grad_() for t in (coef, drive)]
        y_cpu, y_gpu = fn(*cpu), fn(*gpu)
        torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-5)
        g_cpu = torch.autograd.grad(y_cpu.real.sum(), cpu)
        g_gpu = torch.autograd.grad(y_gpu.real.sum(), gpu)
        for x, y in zip(g_gpu, g_cpu):
            torch.testing.assert_close(x.cpu(), y, rtol=1e-4, atol=1e-4)
