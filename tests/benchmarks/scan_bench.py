"""The scan backend's speed and activation memory (suite/kernels/scan.py). Measurement only:
nothing here asserts a figure.

    OMP_NUM_THREADS=1 python -m tests.benchmarks.scan_bench            # B = 64, T = 784, H = 128
    OMP_NUM_THREADS=1 python -m tests.benchmarks.scan_bench --lengths 256 1024 4096

Speed: forward, and forward + backward, of h_t = a ⊙ h_{t−1} + b_t with a constant a
(the LRU / S4D case) and an input-dependent a (the minGRU case), one torch thread, the
methods alternating within each repeat so that all see the same machine load: the
sequential reference, ``parallel`` (on the CPU the fused loop, ``CPU_SOLVER = "loop"``)
and the log-depth halving the GPU runs (``CPU_SOLVER = "halving"``); the median of the
repeats and each one's speed-up over the reference. Memory: the bytes autograd keeps for the backward
pass (saved-tensor hooks, each storage counted once), in units of one T·B·H float32
tensor: a constant ratio over T is O(T·B·H), a growing one a T·log T term.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from suite.kernels import scan
from suite.kernels.scan import linear_scan


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def speed(B: int, T: int, H: int, repeats: int) -> None:
    g = torch.Generator().manual_seed(0)
    b = torch.randn(B, T, H, generator=g, requires_grad=True)
    cases = {"constant a": torch.rand(H, generator=g).requires_grad_(),
             "input-dependent a": torch.rand(B, T, H, generator=g).requires_grad_()}
    print(f"B={B} T={T} H={H}, {torch.get_num_threads()} thread(s), median of {repeats}")
    for label, a in cases.items():
        for phase in ("forward", "forward+backward"):
            times = {"sequential": [], "parallel": [], "halving": []}
            for _ in range(repeats + 1):  # the first round warms up and is dropped
                for label_m in times:
                    method = "sequential" if label_m == "sequential" else "parallel"
                    scan.CPU_SOLVER = "halving" if label_m == "halving" else "loop"
                    if phase == "forward":
                        with torch.no_grad():
                            times[label_m].append(_timed(lambda m=method, a=a: linear_scan(a, b, method=m)))
                    else:
                        run = lambda m=method, a=a: linear_scan(a, b, method=m).sum().backward()  # noqa: E731
                        times[label_m].append(_timed(run))
            scan.CPU_SOLVER = "loop"
            seq, par, halv = (statistics.median(times[m][1:]) for m in times)
            print(f"  {label:18s} {phase:17s} sequential {seq * 1e3:7.1f} ms  parallel {par * 1e3:7.1f} ms "
                  f"({seq / par:4.2f}×)  halving {halv * 1e3:7.1f} ms ({seq / halv:4.2f}×)")


def saved_bytes(fn) -> int:
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())


def memory(B: int, H: int, lengths: list[int]) -> None:
    print("activation memory (saved for backward) / one T·B·H float32 tensor")
    for T in lengths:
        unit = T * B * H * 4
        b = torch.randn(B, T, H, requires_grad=True)
        for label, a in (("constant a", torch.rand(H, requires_grad=True)),
                         ("input-dependent a", torch.rand(B, T, H, requires_grad=True))):
            row = [f"{m} {saved_bytes(lambda m=m, a=a, b=b: linear_scan(a, b, method=m)) / unit:5.2f}"
                   for m in ("sequential", "parallel")]
            print(f"  T={T:6d} {label:18s} " + "  ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--length", type=int, default=784)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    args = parser.parse_args()
    torch.set_num_threads(1)
    speed(args.batch, args.length, args.hidden, args.repeats)
    memory(args.batch, args.hidden, args.lengths)


if __name__ == "__main__":
    main()
