"""Run records on disk: one directory per run, written atomically, never overwritten
silently.

Layout under a results root::

    <root>/<task>/<model>/s<seed>-<hash10>/record.json   the record (schema below)
                                           /curves.csv    step, split, loss, metric, grad_norm, ...

A run is staged in a hidden sibling directory and renamed into place when complete,
so a killed run leaves no record, and a directory with ``record.json`` is a finished
run. ``hash10`` is the first ten hex digits of the configuration hash, which covers
the resolved configuration (defaults included), the seed, the device type and the
task and model versions: the same hash means the same experiment.

Record schema (top-level keys; ``SCHEMA_VERSION`` changes when it does):
    schema, config_hash, task, model, seed, status ("ok" | "diverged"),
    config (resolved), task_info (version, variant, metric, higher_is_better,
    describe()), model_info (version, n_params, extra), metrics (val_best, test,
    test_metrics, final_train_loss, diverged_step), gradients (hidden profiles by step,
    ratios, probe dtype), timing, memory, environment.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RECORD = "record.json"
CURVES = "curves.csv"


def run_dir(root: str | os.PathLike, task: str, model: str, seed: int, chash: str) -> Path:
    return Path(root) / task / model / f"s{seed}-{chash[:10]}"


def checkpoint_path(path: Path) -> Path:
    """Where an unfinished run keeps its checkpoint: hidden, beside its future directory."""
    return path.parent / f".{path.name}.checkpoint.pt"


def is_complete(path: Path) -> bool:
    return (path / RECORD).is_file()


def sanitize(obj: Any) -> Any:
    """JSON has no NaN or infinity: store them as null (the record says status)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [sanitize(v) for v in obj]
    return obj


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(sanitize(obj), indent=1, allow_nan=False) + "\n")


def write_run(path: Path, record: dict, curves_csv: str, *, overwrite: bool) -> None:
    """Stage the run's files beside ``path`` and move them into place in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.staging"
    staging.mkdir()
    try:
        write_text_atomic(staging / CURVES, curves_csv)
        write_json_atomic(staging / RECORD, record)
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
            retired = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_record(path: Path) -> dict:
    with open(path / RECORD if path.is_dir() else path) as fh:
        return json.load(fh)


def iter_records(root: str | os.PathLike):
    """Every finished record under ``root`` (staging directories are hidden and skipped)."""
    for rec in sorted(Path(root).rglob(RECORD)):
        if any(part.startswith(".") for part in rec.relative_to(root).parts):
            continue
        yield rec.parent, load_record(rec)


def _git_commit() -> dict[str, Any]:
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(dirty) if commit else None}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device) -> dict[str, Any]:
    import numpy
    import torch

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": numpy.__version__}
    try:
        from importlib.metadata import version

        versions["rnnsuite"] = version("rnnsuite")
    except Exception:
        versions["rnnsuite"] = None
    env = {
        "versions": versions,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        "git": _git_commit(),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env
