"""Float32 reconstruction drift of the reversible mode (:mod:`suite.hamiltonian.fused`).

    python -m suite.studies.drift                          # hrnn and hdnn-h2, T = 10⁴
    python -m suite.studies.drift --models hrnn --dts 0.03,0.1 --steps 10000

For each model: float32, B = 16 sequences of N(0, 1) inputs, H = 128, the model as
initialized (seed 0), the loss a fixed random linear function of every step's features.
Prints
  * the largest |state| reached (for scale);
  * the initial state as the reversible backward reconstructed it (true value 0), max |·|;
  * the largest error of the states walked back step by step with
    :func:`~suite.hamiltonian.update.inverse_step`, against the float32 forward's states;
  * per parameter, ‖g_reversible − g_stored‖ / ‖g_stored‖, and for scale the stored
    path's own error against float64, ‖g_stored − g_float64‖ / ‖g_float64‖.
docs/hamiltonian.md reports the numbers.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from suite.core.build import build_model
from suite.core.spec import as_tuple
from suite.hamiltonian import fused, update


def reconstruction_drift(model_name: str = "hrnn", *, steps: int = 10_000, batch: int = 16, hidden: int = 128,
                         input_size: int = 1, seed: int = 0, **hparams) -> dict:
    torch.manual_seed(seed)
    model = build_model(model_name, input_size=input_size, output_size=1, hidden_size=hidden,
                              seq_len=steps, **hparams)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, steps, input_size, generator=gen)
    weights = torch.randn(batch, steps, model.feature_size, generator=gen) / (batch * steps) ** 0.5
    params = [(n, p) for n, p in model.named_parameters() if not n.startswith("readout")]

    with torch.no_grad():
        shears, drive = model.shears(), model.V(x)
        state = as_tuple(model.initial_state(batch, x.device, x.dtype))
        states = [state]
        for t in range(steps):
            state = update.step(state, shears, drive[:, t])
            states.append(state)
        scale = max(c.abs().max().item() for s in states for c in s)
        worst = 0.0
        for t in range(steps, 0, -1):
            state = update.inverse_step(state, shears, drive[:, t - 1])
            worst = max(worst, max((a - b).abs().max().item() for a, b in zip(state, states[t - 1])))
        del states

    def grads(m, inputs, reversible):
        m.cfg.reversible = reversible
        for _, p in m.named_parameters():
            p.grad = None
        (m(inputs) * weights.to(inputs.dtype)).sum().backward()
        return [p.grad.detach().double().clone() for n, p in m.named_parameters() if not n.startswith("readout")]

    start = time.perf_counter()
    stored = grads(model, x, False)
    stored_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reversible = grads(model, x, True)
    reversible_seconds = time.perf_counter() - start
    initial = max(c.abs().max().item() for c in fused.DIAGNOSTICS["reconstructed_initial_state"])
    reference = grads(copy.deepcopy(model).double(), x.double(), False)

    def rel(a, b):
        return (torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b)).item()

    names = [n for n, _ in params]
    return {
        "model": model_name, "steps": steps, "batch": batch, "hidden": hidden, "hparams": hparams,
        "state_max_abs": scale,
        "initial_state_max_error": initial,
        "max_state_error_over_steps": worst,
        "grad_rel_error_reversible_vs_stored": dict(zip(names, map(rel, reversible, stored))),
        "grad_rel_error_stored_vs_float64": dict(zip(names, map(rel, stored, reference))),
        "grad_rel_error_reversible_vs_float64": dict(zip(names, map(rel, reversible, reference))),
        "seconds": {"stored": stored_seconds, "reversible": reversible_seconds},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Float32 reconstruction drift of the reversible mode.")
    parser.add_argument("--models", default="hrnn,hdnn-h2")
    parser.add_argument("--dts", default="", help="step sizes (dt or h) to try, comma-separated; default: the model's")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args(argv)
    dts = [float(v) for v in args.dts.split(",") if v] or [None]
    for name in args.models.split(","):
        for dt in dts:
            hparams = {} if dt is None else {"dt" if name == "hrnn" else "h": dt}
            r = reconstruction_drift(name, steps=args.steps, batch=args.batch, hidden=args.hidden, **hparams)
            print(f"{name} {hparams or '(default step)'}  T={args.steps} B={args.batch} H={args.hidden} float32")
            print(f"  largest |state|                               {r['state_max_abs']:.3g}")
            print(f"  reconstructed initial state (true 0), max |.|  {r['initial_state_max_error']:.3g}")
            print(f"  max reconstruction error over all steps       {r['max_state_error_over_steps']:.3g}")
            for n, v in r["grad_rel_error_reversible_vs_stored"].items():
                print(f"  grad {n:9s} rel. error: reversible vs stored {v:.2e}; vs float64: stored "
                      f"{r['grad_rel_error_stored_vs_float64'][n]:.2e}, reversible "
                      f"{r['grad_rel_error_reversible_vs_float64'][n]:.2e}")
            print(f"  seconds: stored {r['seconds']['stored']:.1f}, reversible {r['seconds']['reversible']:.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
