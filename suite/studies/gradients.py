"""``rnnsuite gradients``: the gradient-control study (docs/gradient-study.md).

For every (task, T) and model, and for every step size Δt on a log grid (plus the
heuristic's Δt*, :mod:`suite.hamiltonian.heuristic`), one short harness run
(:func:`suite.run`, ``probes=1``) gives the hidden-state gradient profile
‖∂L/∂h_t‖, t = 1..T, at initialization and after ``--train-steps`` steps, measured by
:func:`suite.core.probes.hidden_gradient_profile` (float64) on the task's own probe batch
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

Writes under ``--out`` (default results/gradients): ``records/`` (the harness records;
finished settings are not rerun), ``profiles.jsonl`` (one line per task, T, model,
Δt, phase with the norms for t = 1..T), ``table.md`` / ``table.csv`` (every setting),
``bands.csv`` (stable band per model and where Δt* lands), ``heuristic.json`` and
``figures/`` (heatmaps Δt × t, deviation against Δt, profiles at Δt*).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import pandas as pd
import torch

from suite.analysis import evidence
from suite.analysis.gradient_report import figures, fmt_dev, fmt_dt, write_outputs
from suite.core import paths, records
from suite.core.build import build_task, list_models, resolve
from suite.core.config import RunConfig
from suite.core.harness import run
from suite.core.registry import MODELS, TASKS, SuiteError
from suite.hamiltonian.heuristic import classify, deviation, heuristic_dt, step_size_field
from suite.studies import catalog

DEFAULT_OUT = paths.GRADIENTS
RECORDS = "records"  # the harness records, under --out
HDNN_CELLS = ("hdnn-h1-j1", "hdnn-h1-j2", "hdnn-h2", "hdnn-ms1", "hdnn-ms2", "hdnn-ms3")
CONTRAST = ("antisymmetric", "lstm", "gru")
MNIST_TASKS = ("smnist", "psmnist")
# quick: CPU, a few minutes on two cores; full: the study of docs/gradient-study.md
# (suite/experiments/gradients.toml: the defaults of `rnnsuite gradients --profile NAME`)
PROFILES = {name: {k: v for k, v in dataclasses.asdict(p).items() if k != "cost"}
            for name, p in catalog.table("gradients").profiles.items()}


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
    # per model, hyperparameters held fixed besides the step (``--model-param``), e.g.
    # {"linoss": {"discretization": "IMEX"}}
    model_params: dict[str, dict] = dataclasses.field(default_factory=dict)


def profile_study(name: str, out: Path, data_dir: str | None = None) -> Study:
    """The study of a profile (``PROFILES``) with its defaults, writing under ``out``."""
    base = PROFILES[name]
    return Study(tasks=parse_tasks(base["tasks"]), models=select_models(base["models"]), dts=parse_dts(base["dts"]),
                 train_steps=base["train_steps"], hidden_size=base["hidden_size"], batch_size=base["batch_size"],
                 probe_batch=base["probe_batch"], data_dir=data_dir, out=Path(out))


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
    heuristics = {}
    for (name, T), task in _tasks(study).items():
        for model in study.models:
            if step_size_field(MODELS.get(model)) is None:
                continue
            dt_star, info = heuristic_dt(model, input_size=task.input_size, hidden_size=study.hidden_size, seq_len=T,
                                         **study.model_params.get(model, {}))
            heuristics[f"{name}:{T}:{model}"] = info
            print(f"heuristic {name} T={T} {model}: {info['field']}* = {dt_star:.4g} "
                  f"(init deviation {info['deviation']:+.2f} on random inputs, {info['seconds']:.1f} s)")
    rows, profiles = collect(study, plan(study, heuristics), train=True)
    return write(study, rows, profiles, heuristics)


def _tasks(study: Study) -> dict:
    """Every task built (and MNIST found) before any run."""
    built = {}
    for name, T in study.tasks:
        task = build_task(name, data_dir=study.data_dir,
                          **task_params(name, T, study.probe_batch, study.train_steps, study.batch_size))
        if name in MNIST_TASKS:
            task.batch("val", 0, 1, seed=0)
        built[(name, T)] = task
    return built


def plan(study: Study, heuristics: dict) -> list[tuple]:
    """Every setting (task, T, model, step-size field, Δt, is Δt*), Δt* read from ``heuristics``
    (``heuristic.json``: ``task:T:model`` -> the heuristic's answer)."""
    settings = []
    for name, T in study.tasks:
        for model in study.models:
            field = step_size_field(MODELS.get(model))
            if field is None:
                settings.append((name, T, model, None, None, False))
                continue
            settings += [(name, T, model, field, dt, False) for dt in study.dts]
            settings.append((name, T, model, field, heuristics[f"{name}:{T}:{model}"]["dt"], True))
    return settings


def setting_config(study: Study, name: str, T: int, model: str, field: str | None, dt: float | None) -> RunConfig:
    """The harness run of one setting."""
    return RunConfig(
        task=name, model=model, seed=study.seed, device=study.device, hidden_size=study.hidden_size,
        batch_size=study.batch_size, steps=study.train_steps, lr=study.lr, eval_every=study.train_steps,
        log_every=study.train_steps, val_batches=1, selection="last", probes=1, probe_batch=study.probe_batch,
        task_params=task_params(name, T, study.probe_batch, study.train_steps, study.batch_size),
        model_params={**study.model_params.get(model, {}), **({field: dt} if field else {})},
    )


def setting_name(name: str, T: int, model: str, field: str | None, dt: float | None) -> str:
    """``adding T=100 hrnn dt=0.444``: how a setting (and a stale one) is named."""
    return f"{name} T={T} {model}" + (f" {field}={dt!r}" if field else "")


def record_setting(rec: dict) -> str:
    """The setting a record belongs to, named as :func:`setting_name` names it."""
    c = rec["config"]
    params = c["task_params"]
    T = params["T"] if "T" in params else 784 // params["pixels_per_step"]
    field = step_size_field(MODELS.get(c["model"])) if c["model"] in MODELS.names() else None
    return setting_name(c["task"], T, c["model"], field, c["model_params"].get(field) if field else None)


def collect(study: Study, settings: list[tuple], *, train: bool) -> tuple[list[dict], list[dict]]:
    """A table row and the profiles of every setting, from its record under ``<out>/records``;
    a setting without a record is trained (``train``) or is an error naming it."""
    out, rows, profiles = Path(study.out), [], []
    for k, (name, T, model, field, dt, is_star) in enumerate(settings, start=1):
        start = time.perf_counter()
        cfg = setting_config(study, name, T, model, field, dt)
        path = records.run_dir(out / RECORDS, name, model, study.seed, resolve(cfg).hash)
        if records.is_complete(path) and not study.overwrite:  # resumable: a finished setting is read back
            rec, how = {**records.load_record(path), "path": str(path)}, "recorded"
        elif not train:
            raise SuiteError(f"no record of {setting_name(name, T, model, field, dt)} under {out / RECORDS}")
        else:
            ran = run(cfg, out=out / RECORDS, overwrite=study.overwrite, quiet=True, data_dir=study.data_dir,
                      checkpoint_every=0)
            # read back from disk, as a rebuild reads it (non-finite values are stored as null)
            rec = {**records.load_record(Path(ran["path"])), "path": ran["path"]}
            how = f"{time.perf_counter() - start:.1f} s"
        row, found = summarize_record(rec, name, T, model, field, dt, is_star)
        rows.append(row)
        profiles += found
        if train:
            label = f"{field}={dt:.4g}{' (heuristic)' if is_star else ''}" if field else "(no step size)"
            print(f"[{k}/{len(settings)}] {name} T={T} {model} {label}: init {fmt_dev(row['D_init'])} "
                  f"{row['class_init']}, trained {fmt_dev(row['D_trained'])} {row['class_trained']} ({how})",
                  flush=True)
    return rows, profiles


def write(study: Study, rows: list[dict], profiles: list[dict], heuristics: dict, *, draw: bool = True) -> dict:
    """Tables, bands and figures; ``table.md``'s header says what the records cost and when they ran."""
    out = Path(study.out)
    table = pd.DataFrame(rows)
    bands = stable_bands(table)
    settings = (f"hidden size {study.hidden_size}, {study.train_steps} training steps (Adam, lr {study.lr:g}, "
                f"batch {study.batch_size}), probe batch {study.probe_batch}, seed {study.seed}")
    probes = sum(info["seconds"] for info in heuristics.values())
    used = {r["record"] for r in rows}  # a grid Δt equal to Δt* is one record, counted once
    line = evidence.header_line((records.load_record(Path(p)) for p in sorted(used)),
                                extra=f"besides, {probes:.0f} s (wall clock) of the heuristic's probes "
                                      "(heuristic.json)")
    written = write_outputs(settings, out, table, bands, profiles, heuristics, line)
    if draw:
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
