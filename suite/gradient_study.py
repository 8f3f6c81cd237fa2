"""``rnnsuite gradients``: the gradient-control study (docs/gradient-study.md).

For every (task, T) and model, and for every step size Δt on a log grid (plus the
heuristic's Δt*, :mod:`suite.hamiltonian.heuristic`), one short harness run
(:func:`suite.run`, ``probes=1``) gives the hidden-state gradient profile
‖∂L/∂h_t‖, t = 1..T, at initialization and after ``--train-steps`` steps, measured by
:func:`suite.probes.hidden_gradient_profile` (float64) on the task's own probe batch
and loss. Each profile is classified by its signed largest deviation
D = log10(‖∂L/∂h_t‖ / ‖∂L/∂h_T‖) of largest magnitude over t: stable if |D| ≤ 1
decade, exploding if D > 1, vanishing if D < −1 (:func:`~suite.hamiltonian.heuristic.classify`).

The step-size knob is ``dt`` (hrnn), ``h`` or ``dt`` (H-DNN cells) and ``eps``
(AntisymmetricRNN's forward-Euler step ε, swept as its step size); LSTM and GRU have
none and appear once per (task, T) for contrast.

    rnnsuite gradients --profile quick --data-dir ../shared/data/mnist   # CPU, about 5 minutes
    rnnsuite gradients --profile full --data-dir ../shared/data/mnist    # about 10 CPU-hours
    rnnsuite gradients --tasks adding:200 --models hrnn,gru --dts 1e-3:1:1 --train-steps 50

What to expect: the Hamiltonian models never vanish; each is stable for small steps and
explodes above an edge that falls as T grows; LSTM and GRU vanish; Δt* is stable, near
the edge (docs/gradient-study.md has the numbers).

Writes under ``--out`` (default results/gradients): ``runs/`` (the harness records;
finished settings are not rerun), ``profiles.jsonl`` (one line per task, T, model,
Δt, phase with the norms for t = 1..T), ``table.md`` / ``table.csv`` (every setting),
``bands.csv`` (stable band per model and where Δt* lands), ``heuristic.json`` and
``figures/`` (heatmaps Δt × t, deviation against Δt, profiles at Δt*).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from pathlib import Path

import pandas as pd
import torch

from suite import records
from suite.build import build_task, list_models, resolve
from suite.config import RunConfig
from suite.gradient_report import figures, fmt_dev, fmt_dt, write_outputs
from suite.hamiltonian.heuristic import classify, deviation, heuristic_dt, step_size_field
from suite.harness import run
from suite.registry import MODELS, TASKS, SuiteError

DEFAULT_OUT = "results/gradients"
HDNN_CELLS = ("hdnn-h1-j1", "hdnn-h1-j2", "hdnn-h2", "hdnn-ms1", "hdnn-ms2", "hdnn-ms3")
CONTRAST = ("antisymmetric", "lstm", "gru")
MNIST_TASKS = ("smnist", "psmnist")
PROFILES = {
    # quick: CPU, a few minutes on two cores; full: the study of docs/gradient-study.md
    "quick": {"tasks": "adding:100,adding:1000,psmnist:196", "models": ",".join(("hrnn", *HDNN_CELLS, *CONTRAST)),
              "dts": "1e-2:1:2", "train_steps": 20, "hidden_size": 32, "batch_size": 16, "probe_batch": 4},
    "full": {"tasks": "adding:100,adding:1000,adding:10000,psmnist:784",
             "models": ",".join(("hrnn", *HDNN_CELLS, *CONTRAST)),
             "dts": "1e-4:1:2", "train_steps": 200, "hidden_size": 64, "batch_size": 32, "probe_batch": 8},
}


# -- parsing ---------------------------------------------------------------------------------------


def parse_tasks(spec: str) -> list[tuple[str, int]]:
    """``adding:100,psmnist:784`` -> [("adding", 100), ("psmnist", 784)]."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, length = item.partition(":")
        TASKS.get(name)  # unknown name: SuiteError with a suggestion
        try:
            T = int(length)
        except ValueError:
            raise SuiteError(f"--tasks item {item!r} is not task:T (for example adding:1000)") from None
        if name in MNIST_TASKS and (T < 1 or 784 % T):
            raise SuiteError(f"--tasks {item}: T must divide 784 for {name} (784, 392, 196, 112, ...)")
        out.append((name, T))
    if not out:
        raise SuiteError("--tasks is empty (for example adding:100,psmnist:784)")
    return out


def parse_dts(spec: str) -> list[float]:
    """``1e-3,0.01,0.1`` (a list) or ``LO:HI:K`` (K points per decade from LO to HI)."""
    try:
        if ":" in spec:
            lo, hi, per = spec.split(":")
            lo, hi, per = float(lo), float(hi), int(per)
            if not (0 < lo <= hi and per >= 1):
                raise ValueError
            n = round(math.log10(hi / lo) * per)
            values = [lo * 10 ** (k / per) for k in range(n + 1)]
        else:
            values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise SuiteError(f"--dts {spec!r} is neither a list of numbers nor LO:HI:PER_DECADE, 0 < LO <= HI") from None
    if not values or any(not (v > 0 and math.isfinite(v)) for v in values):
        raise SuiteError(f"--dts {spec!r}: step sizes must be positive")
    return sorted({float(f"{v:.6g}") for v in values})


def select_models(spec: str) -> list[str]:
    """Registered names in the order given; H-DNN cells not (yet) registered are skipped with a note."""
    registered, chosen = set(list_models()), []
    for name in filter(None, (s.strip() for s in spec.split(","))):
        if name in registered:
            chosen.append(name)
        elif name in HDNN_CELLS:
            print(f"note: model {name!r} is not registered (yet); skipped")
        else:
            MODELS.get(name)  # SuiteError: unknown model, with a suggestion
    if not chosen:
        raise SuiteError(f"none of the models {spec!r} is registered")
    return chosen


def task_params(name: str, T: int, probe_batch: int, train_steps: int, batch_size: int) -> dict:
    """Task parameters for length T, with small validation/test sets: the study scores nothing."""
    if name in MNIST_TASKS:
        return {"pixels_per_step": 784 // T, "val_size": max(256, probe_batch),
                "n_train": max(batch_size, train_steps * batch_size)}
    fields = {f.name for f in dataclasses.fields(TASKS.get(name).Config)}
    if "T" not in fields:
        raise SuiteError(f"task {name!r} has no length parameter T")
    params = {"T": T}
    if {"n_val", "n_test"} <= fields:
        params.update(n_val=max(32, probe_batch), n_test=32)
    return params


# -- the study -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Study:
    tasks: list[tuple[str, int]]
    models: list[str]
    dts: list[float]
    train_steps: int
    hidden_size: int
    batch_size: int
    probe_batch: int
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    data_dir: str | None = None
    out: Path = Path(DEFAULT_OUT)
    overwrite: bool = False
    threads: int = 1


def run_study(study: Study) -> dict:
    """Every setting (resumable), then the profiles, tables and figures. Returns the paths."""
    if study.train_steps < 1:
        raise SuiteError(f"--train-steps={study.train_steps} must be >= 1")
    if study.threads < 1:
        raise SuiteError(f"--threads={study.threads} must be >= 1")
    threads = torch.get_num_threads()
    # H <= 128 and small batches: intra-op threads gain nothing in a Python step loop, and on
    # a shared machine their spinning made it ten times slower (measured on two cores)
    torch.set_num_threads(study.threads)
    try:
        return _run_study(study)
    finally:
        torch.set_num_threads(threads)


def _run_study(study: Study) -> dict:
    out = Path(study.out)
    built = {}
    for name, T in study.tasks:  # every task checked (and MNIST found) before any run
        task = build_task(name, data_dir=study.data_dir,
                          **task_params(name, T, study.probe_batch, study.train_steps, study.batch_size))
        if name in MNIST_TASKS:
            task.batch("val", 0, 1, seed=0)
        built[(name, T)] = task

    heuristics, settings = {}, []
    for (name, T), task in built.items():
        for model in study.models:
            field = step_size_field(MODELS.get(model))
            if field is None:
                settings.append((name, T, model, None, None, False))
                continue
            dt_star, info = heuristic_dt(model, input_size=task.input_size, hidden_size=study.hidden_size, seq_len=T)
            heuristics[f"{name}:{T}:{model}"] = info
            print(f"heuristic {name} T={T} {model}: {field}* = {dt_star:.4g} "
                  f"(init deviation {info['deviation']:+.2f} on random inputs, {info['seconds']:.1f} s)")
            settings += [(name, T, model, field, dt, False) for dt in study.dts]
            settings.append((name, T, model, field, dt_star, True))

    rows, profiles = [], []
    for k, (name, T, model, field, dt, is_star) in enumerate(settings, start=1):
        start = time.perf_counter()
        cfg = RunConfig(
            task=name, model=model, seed=study.seed, device=study.device, hidden_size=study.hidden_size,
            batch_size=study.batch_size, steps=study.train_steps, lr=study.lr, eval_every=study.train_steps,
            log_every=study.train_steps, val_batches=1, selection="last", probes=1, probe_batch=study.probe_batch,
            task_params=task_params(name, T, study.probe_batch, study.train_steps, study.batch_size),
            model_params={field: dt} if field else {},
        )
        path = records.run_dir(out / "runs", name, model, study.seed, resolve(cfg).hash)
        if records.is_complete(path) and not study.overwrite:  # resumable: a finished setting is read back
            rec, how = {**records.load_record(path), "path": str(path)}, "recorded"
        else:
            rec = run(cfg, out=out / "runs", overwrite=study.overwrite, quiet=True, data_dir=study.data_dir,
                      checkpoint_every=0)
            how = f"{time.perf_counter() - start:.1f} s"
        row, found = summarize_record(rec, name, T, model, field, dt, is_star)
        rows.append(row)
        profiles += found
        label = f"{field}={dt:.4g}{' (heuristic)' if is_star else ''}" if field else "(no step size)"
        print(f"[{k}/{len(settings)}] {name} T={T} {model} {label}: init {fmt_dev(row['D_init'])} "
              f"{row['class_init']}, trained {fmt_dev(row['D_trained'])} {row['class_trained']} ({how})", flush=True)

    table = pd.DataFrame(rows)
    bands = stable_bands(table)
    settings = (f"hidden size {study.hidden_size}, {study.train_steps} training steps (Adam, lr {study.lr:g}, "
                f"batch {study.batch_size}), probe batch {study.probe_batch}, seed {study.seed}")
    written = write_outputs(settings, out, table, bands, profiles, heuristics)
    written += figures(table, profiles, out / "figures")
    return {"table": out / "table.md", "written": written, "bands": bands}


def summarize_record(rec: dict, name: str, T: int, model: str, field, dt, is_star) -> tuple[dict, list[dict]]:
    """One table row and the profile lines of one harness record."""
    grads = rec["gradients"]
    hidden = grads["hidden_profile"]
    trained_step = str(rec["config"]["steps"])
    phases = {"init": hidden["0"]}
    if rec["status"] == "ok" and trained_step in hidden:
        phases["trained"] = hidden[trained_step]
    key = {"task": name, "T": T, "model": model, "knob": field, "dt": dt, "heuristic": is_star}
    found = []
    row = dict(key)
    for phase in ("init", "trained"):
        profile = phases.get(phase)
        if profile is None:
            row.update({f"ratio_{phase}": None, f"D_{phase}": math.nan, f"class_{phase}": "diverged"})
            continue
        norms = [math.nan if v is None else v for v in profile]  # the record stores non-finite as null
        dev = deviation(norms)
        ratio = grads["ratio"].get("0" if phase == "init" else trained_step)
        row.update({f"ratio_{phase}": ratio, f"D_{phase}": dev, f"class_{phase}": classify(dev)})
        found.append({**key, "phase": phase, "step": 0 if phase == "init" else int(trained_step), "norms": norms})
    row.update(status=rec["status"], train_loss=rec["metrics"]["final_train_loss"], record=rec.get("path"))
    return row, found


def _bands(points: list[tuple[float, str]]) -> str:
    """Contiguous runs of 'stable' along sorted Δt, as 'lo–hi' (clipped to the swept range)."""
    runs, current = [], None
    for dt, cls in sorted(points):
        if cls == "stable":
            current = [dt, dt] if current is None else [current[0], dt]
        elif current is not None:
            runs.append(current)
            current = None
    if current is not None:
        runs.append(current)
    if not runs:
        return "none"
    return ", ".join(f"{fmt_dt(lo)}–{fmt_dt(hi)}" if lo != hi else fmt_dt(lo) for lo, hi in runs)


def _next_unstable(points: list[tuple[float, str]], above: float):
    """The smallest swept Δt above ``above`` whose profile is not stable (None: none in range)."""
    return min((dt for dt, cls in points if dt > above and cls != "stable"), default=None)


def stable_bands(table: pd.DataFrame) -> pd.DataFrame:
    """Per (task, T, model): the stable band over the swept grid at init and after
    training, where Δt* lands (its own class) and the first unstable grid Δt above it."""
    out = []
    for (name, T, model), g in table.groupby(["task", "T", "model"], sort=False):
        knob = g.knob.iloc[0]
        if not isinstance(knob, str):
            only = g.iloc[0]
            out.append({"task": name, "T": T, "model": model, "knob": "—", "swept": "—",
                        "band_init": only.class_init, "band_trained": only.class_trained,
                        "dt_star": None, "class_star_init": None, "class_star_trained": None,
                        "next_unstable_init": None, "next_unstable_trained": None, "star_in_band": None})
            continue
        grid = g[~g.heuristic]  # the band comes from the grid alone; Δt* is judged against it
        star = g[g.heuristic].iloc[0]
        init, trained = list(zip(grid["dt"], grid.class_init)), list(zip(grid["dt"], grid.class_trained))
        out.append({
            "task": name, "T": T, "model": model, "knob": knob,
            "swept": f"{fmt_dt(grid['dt'].min())}–{fmt_dt(grid['dt'].max())} ({len(grid)})",
            "band_init": _bands(init), "band_trained": _bands(trained),
            "dt_star": star["dt"], "class_star_init": star.class_init, "class_star_trained": star.class_trained,
            "next_unstable_init": _next_unstable(init, star["dt"]),
            "next_unstable_trained": _next_unstable(trained, star["dt"]),
            # lands in the band: Δt*'s own profile, on the task's data and loss, is stable at init
            "star_in_band": star.class_init == "stable",
        })
    return pd.DataFrame(out)


def add_command(subparsers) -> None:
    p = subparsers.add_parser("gradients", help="gradient-control study: Δt sweep, profiles at init and after "
                                                "a short training, stable bands, heuristic",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help="defaults for the options below: quick (CPU, minutes) or full (hours; see docs)")
    p.add_argument("--tasks", help="task:T list, e.g. adding:100,adding:1000,adding:10000,psmnist:784")
    p.add_argument("--models", help="comma-separated models; H-DNN cells not registered yet are skipped")
    p.add_argument("--dts", help="step sizes: a list (1e-3,0.01) or LO:HI:PER_DECADE (1e-4:1:2)")
    p.add_argument("--train-steps", type=int, help="training steps before the 'trained' profile")
    p.add_argument("--hidden-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--probe-batch", type=int, help="examples in the probe batch (the first validation ones)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--data-dir", default=None, help="MNIST directory (default: $RNNSUITE_DATA)")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})")
    p.add_argument("--overwrite", action="store_true", help="rerun settings whose records exist")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: fastest for these sizes)")
    p.set_defaults(func=cmd_gradients)


def study_from_args(args: argparse.Namespace) -> Study:
    base = PROFILES[args.profile]

    def pick(name):
        value = getattr(args, name)
        return base[name] if value is None else value

    return Study(tasks=parse_tasks(pick("tasks")), models=select_models(pick("models")), dts=parse_dts(pick("dts")),
                 train_steps=pick("train_steps"), hidden_size=pick("hidden_size"), batch_size=pick("batch_size"),
                 probe_batch=pick("probe_batch"), lr=args.lr, seed=args.seed, device=args.device,
                 data_dir=args.data_dir, out=Path(args.out), overwrite=args.overwrite,
                 threads=args.threads)


def cmd_gradients(args) -> int:
    result = run_study(study_from_args(args))
    shown = result["bands"][["task", "T", "model", "band_init", "band_trained", "dt_star", "star_in_band"]]
    print(shown.to_string(index=False))
    for path in result["written"]:
        print(f"wrote {path}")
    return 0
