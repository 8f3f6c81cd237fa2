"""The training-step time of every registered model against ``torch.nn.LSTM``, side by side
in one process, with each cell's FLOP floor beside its ratio.

    python -m tests.benchmarks.cell_table                     # every model, B=64, T=784, H=128
    python -m tests.benchmarks.cell_table --models lem unicornn --rounds 7 --threads 2

One training step = forward, readout at the last step, cross-entropy, backward, Adam
step (the sequential-MNIST shape: 1 input, 10 classes). Rounds are interleaved: each
round times every model once, ``lstm`` included, so a load change on a shared machine
hits all models alike; the table gives medians over rounds and each median's ratio to
the LSTM median. Timing only: nothing here asserts a speed.

The floor is the cell's matrix products per step relative to the LSTM's (4H×H, i.e. 8H²
FLOPs forward; its input map, 4H×1 at this shape, is negligible): a fused cell that
costs only its products runs at that fraction of the LSTM step. Stacked cells count
the input maps of their layers 2..L too (H×H each: batched over all steps, but FLOPs
all the same): IndRNN's and UnICORNN's recurrences are element-wise, and their floors
are their default depths' hidden input maps. So are the linear recurrences' (LinOSS,
LRU, S4D, minGRU): their floors count every projection of their default stacks, which
run batched over all steps, and leave out the scan (or S4D's FFT convolution) itself.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

import suite

# matrix products per step / the LSTM's 4H×H (recurrent ones, and stacked layers' H×H input maps)
FLOORS: dict[str, float] = {
    "lstm": 1.0, "gru": 0.75,
    "hrnn": 0.5, "hdnn-h1-j1": 0.5, "hdnn-h1-j2": 0.5, "hdnn-h2": 0.5,
    "hdnn-ms1": 0.5, "hdnn-ms2": 0.5, "hdnn-ms3": 0.5,
    "lem": 1.0,  # [W₁; W₂; W_z] y (3H×H) and W_y z (H×H)
    "cornn": 0.5,  # [W 𝒲] [y; z] (H×2H)
    "lipschitz": 0.5,  # A_β h and W_β h
    "antisymmetric": 0.25, "antisymmetric-gated": 0.25,  # one A h serves both gates
    "exprnn": 0.25,  # B h
    "indrnn": 1.25,  # element-wise recurrence; 6 layers: 5 input maps H×H (5H² against 4H²)
    "unicornn": 0.5,  # element-wise recurrence; 3 layers: 2 input maps H×H
    # the linear recurrences (scanned, element-wise): every projection of their default stacks
    "linoss": 2.0,  # 2 blocks: B, C complex P×H (4PH, P = 64 = H/2) and the GLU's 2H×H: 4H² each
    "lru": 15.0,  # 6 blocks: B, C complex N×H (4NH, N = 256 = 2H) and the GLU's 2H×H: 10H² each
    "s4d": 2.0,  # 4 layers: the output map H→2H (2H²) each; the convolution by FFT is no product
    "mingru": 13.5,  # 3 layers, width e·H = 6H: [W_h; W_z] H→12H and W_out 6H→H: 18H² each
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    n = torch.get_num_threads()
    return f"{cpu}, {n} torch thread{'s' if n != 1 else ''}, torch {torch.__version__}"


def make_step(name: str, shape: dict, hparams: dict, device: torch.device, graphs: bool = False):
    """One training step; on CUDA it waits for the GPU, and with ``graphs`` its forward and
    backward replay CUDA graphs (suite.core.cuda_graph; captured in the warm-up round)."""
    from suite.core.cuda_graph import TrainForward

    torch.manual_seed(0)
    model = suite.build_model(name, input_size=shape["input_size"], output_size=shape["classes"],
                              hidden_size=shape["hidden"], seq_len=shape["seq_len"], **hparams).to(device)
    x = torch.randn(shape["batch"], shape["seq_len"], shape["input_size"], device=device)
    y = torch.randint(0, shape["classes"], (shape["batch"],), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = TrainForward(model, lambda u: model.readout(model.last_features(u)), device, enabled=graphs)

    def train_step():
        loss = torch.nn.functional.cross_entropy(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return train_step


def measure(labels: dict[str, tuple[str, dict]], shape: dict, rounds: int, warmup: int = 1,
            device: torch.device | None = None, graphs: bool = False) -> dict[str, list[float]]:
    """Seconds per training step, ``rounds`` interleaved timings per label (``lstm``, the
    reference, always eager: cuDNN's one call on a GPU)."""
    device = device or torch.device("cpu")
    steps = {label: make_step(name, shape, hp, device, graphs and label != "lstm")
             for label, (name, hp) in labels.items()}
    times: dict[str, list[float]] = {label: [] for label in steps}
    for r in range(warmup + rounds):
        for label, step in steps.items():
            start = time.perf_counter()
            step()
            if r >= warmup:
                times[label].append(time.perf_counter() - start)
    return times


COLUMNS = ["model", "median ms", "ratio to nn.LSTM", "FLOP floor", "ratio / floor"]


def rows(times: dict[str, list[float]], labels: dict[str, tuple[str, dict]]) -> list[list[str]]:
    """One row per label, cells as printed (the Markdown table and the CSV hold the same)."""
    ref = statistics.median(times["lstm"])
    out = []
    for label, ts in times.items():
        med = statistics.median(ts)
        floor = FLOORS.get(labels[label][0])
        out.append([label, f"{1e3 * med:.0f}", f"{med / ref:.2f}", "?" if floor is None else f"{floor:.2f}",
                    "?" if floor is None else f"{med / ref / floor:.2f}"])
    return out


def table(times: dict[str, list[float]], labels: dict[str, tuple[str, dict]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows(times, labels)])


def write(out: Path, head: str, times: dict[str, list[float]], labels: dict[str, tuple[str, dict]]) -> Path:
    """``table.md`` (title, how it was measured, the table) and ``table.csv`` under ``out``:
    the cell table's page on the results site (``rnnsuite site`` reads every table's CSV)."""
    from suite.core.records import write_text_atomic

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([COLUMNS, *rows(times, labels)])
    write_text_atomic(out / "table.csv", buffer.getvalue())
    title = "# Cell table: one training step of every model against torch.nn.LSTM"
    how = head.replace("\ncommand:", "\n\ncommand:")  # the measurement and the command: two paragraphs
    write_text_atomic(out / "table.md", f"{title}\n\n{how}\n\n{table(times, labels)}\n")
    return out / "table.md"


def parse_labels(models: list[str], extra: list[str]) -> dict[str, tuple[str, dict]]:
    """``lstm`` first, then the models; ``--variant name:key=value,...`` adds a labelled variant."""
    labels: dict[str, tuple[str, dict]] = {"lstm": ("lstm", {})}
    for name in models:
        labels.setdefault(name, (name, {}))
    for spec in extra:
        name, _, rest = spec.partition(":")
        hp = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
        labels[f"{name} ({rest})"] = (name, hp)
    return labels


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(prog="python -m tests.benchmarks.cell_table", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    p.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                   help="also time a model with these hyperparameters, e.g. unicornn:reversible=true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=784)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--cuda-graphs", action="store_true", help="replay each model's training step as CUDA graphs")
    p.add_argument("--out", type=Path, default=None,
                   help="also write table.md and table.csv there (results/tables/cells-cpu: the site's page)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = {"batch": args.batch, "seq_len": args.seq_len, "hidden": args.hidden, "input_size": 1, "classes": 10}
    labels = parse_labels(args.models if args.models is not None else suite.list_models(), args.variant)
    device = torch.device(args.device)
    load = os.getloadavg()[0]
    times = measure(labels, shape, args.rounds, device=device, graphs=args.cuda_graphs)
    where = machine() if device.type == "cpu" else torch.cuda.get_device_name(device) + \
        (", CUDA graphs" if args.cuda_graphs else ", eager")
    head = (f"{datetime.date.today().isoformat()}, {where}; B={args.batch}, T={args.seq_len}, "
            f"H={args.hidden}, 1 input, Adam; medians of {args.rounds} interleaved rounds; "
            f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n"
            f"command: python -m tests.benchmarks.cell_table {' '.join(argv if argv is not None else sys.argv[1:])}")
    out = head + "\n\n" + table(times, labels)
    print(out, flush=True)
    if args.out is not None:
        print(f"written: {write(args.out, head, times, labels)}")
    return out


if __name__ == "__main__":
    main()
