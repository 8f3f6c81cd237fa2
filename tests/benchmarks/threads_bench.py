"""One against two torch threads for a training step, side by side in one process.

    python -m tests.benchmarks.threads_bench                  # small and large cell, gru lstm hrnn
    python -m tests.benchmarks.threads_bench --cells large --models gru --rounds 10

One training step as in the cell table (forward, readout of the last step,
cross-entropy, backward, Adam; :func:`tests.benchmarks.cell_table.make_step`). Rounds
alternate the thread count within each round (``torch.set_num_threads``), so a change of
the machine's load hits both alike; the table gives the median of each and their ratio,
with the load average before and after. Timing only: nothing here asserts a speed. The
figures quoted in docs/usage.md ("Threads") come from this script.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import torch

from tests.benchmarks.cell_table import make_step

CELLS = {  # the small cell of a quick table and the psMNIST shape of the cell table
    "small": {"input_size": 2, "classes": 1, "hidden": 64, "seq_len": 100, "batch": 50},
    "large": {"input_size": 1, "classes": 10, "hidden": 128, "seq_len": 784, "batch": 64},
}


def measure(model: str, shape: dict, rounds: int) -> dict[int, list[float]]:
    # the readout is cross-entropy over `classes`; at classes = 1 it is still one output per sequence
    shape = {**shape, "classes": max(shape["classes"], 2)}
    step = make_step(model, shape, {}, torch.device("cpu"))
    times: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds + 1):  # round 0 warms up and is dropped
        for threads in (1, 2):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            step()
            if r:
                times[threads].append(time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--models", nargs="+", default=["gru", "lstm", "hrnn"])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per cell (large: a third)")
    args = parser.parse_args(argv)
    print(f"{datetime.date.today()}, torch {torch.__version__}, {os.cpu_count()} cores")
    print("| cell | model | 1 thread | 2 threads | 2 / 1 | load average before, after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for cell in args.cells:
        rounds = args.rounds if cell == "small" else max(args.rounds // 3, 3)
        for model in args.models:
            before = os.getloadavg()[0]
            times = measure(model, CELLS[cell], rounds)
            one, two = (statistics.median(times[n]) for n in (1, 2))
            print(f"| {cell} ({CELLS[cell]['seq_len']} steps, H = {CELLS[cell]['hidden']}, "
                  f"batch {CELLS[cell]['batch']}) | {model} | {one * 1e3:.0f} ms | {two * 1e3:.0f} ms | "
                  f"{two / one:.2f} | {before:.1f}, {os.getloadavg()[0]:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
