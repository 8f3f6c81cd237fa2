"""Run records on disk: one directory per run, written atomically, never overwritten
silently.

Layout under a results root::

    <root>/<task>/<model>/s<seed>-<hash10>/record.json   the record (schema below)
                                           /curves.csv    step, split, loss, metric, grad_norm, ...

A run is staged in a hidden sibling directory and renamed into place when complete,
so a killed run leaves no record, and a directory with ``record.json`` is a finished
run; what a killed write leaves (a ``.staging`` directory, a ``.checkpoint.pt.tmp``)
is removed by the next run of that cell (:func:`remove_leftovers`). A failed write is
a one-line :class:`SuiteError` naming the path and the cause (disk full, read-only,
not a directory), its temporary files removed. ``hash10`` is the first ten hex
digits of the configuration hash, which covers the resolved configuration (defaults
included), the seed, the device type and the task and model versions: the same hash
means the same experiment.

Record schema (top-level keys; ``SCHEMA_VERSION`` changes when it does):
    schema, config_hash, task, model, seed, status ("ok" | "diverged"),
    config (resolved), task_info (version, variant, metric, higher_is_better,
    describe()), model_info (version, n_params, extra), metrics (val_best, test,
    test_metrics, final_train_loss, diverged_step), gradients (hidden profiles by step,
    ratios, probe dtype), timing, memory, environment.
"""

from __future__ import annotations

import contextlib
import errno
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

from suite.registry import SuiteError

SCHEMA_VERSION = 1
RECORD = "record.json"
CURVES = "curves.csv"
# what a reader of records needs; a record without one of them is skipped by reports
REQUIRED = ("schema", "config_hash", "task", "model", "seed", "status", "config", "task_info", "model_info",
            "metrics", "gradients", "timing")
CAUSES = {
    errno.ENOSPC: "disk full (no space left on device)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a regular file is in the way (not a directory)",
    errno.EEXIST: "a regular file is in the way (not a directory)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "a directory is in the way",
}


class RecordError(SuiteError):
    """A record that cannot be read, or whose schema this suite does not know."""


class DiskError(SuiteError):
    """A write that failed for a reason of the disk (full, read-only, a file in the way)."""


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


def cause(exc: BaseException) -> str:
    """Why a file operation failed, in words."""
    code = getattr(exc, "errno", None)
    if code in CAUSES:
        return CAUSES[code]
    text = (getattr(exc, "strerror", None) or str(exc)).strip().splitlines()
    return text[0] if text else type(exc).__name__


def write_error(what: str, path: Path, exc: BaseException) -> DiskError:
    return DiskError(f"cannot write {what} {path}: {cause(exc)}")


def check_writable(root: str | os.PathLike, *, create: bool = True) -> Path:
    """Make ``root`` and write (and remove) a file in it, or raise a one-line DiskError:
    run before any training, so a read-only or full disk, or a file in the way, costs no
    compute. With ``create=False`` nothing is made: the deepest existing directory on
    the way to ``root`` is probed instead."""
    root = Path(root)
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
            where = root
        else:
            where = next(p for p in (root, *root.parents) if p.exists())
            if not where.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(where))
        fd, probe = tempfile.mkstemp(dir=where, prefix=".rnnsuite-write-check.", suffix=".tmp")
        try:
            os.write(fd, b"rnnsuite\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        raise DiskError(f"cannot write under {root}: {_in_the_way(root) or cause(exc)}") from None
    return root


def _in_the_way(root: Path) -> str | None:
    for parent in (root, *root.parents):
        if parent.exists():
            return None if parent.is_dir() else f"{parent} is a file, not a directory"
    return None


def write_bytes_atomic(path: Path, data, *, tmp: Path | None = None) -> None:
    """Write ``data`` to ``tmp`` (default: a fresh hidden name beside ``path``), flush it
    to the disk and rename it onto ``path``; on any failure the temporary file is
    removed and the error raised (an OSError keeps its errno)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if tmp is None:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
    else:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(sanitize(obj), indent=1, allow_nan=False) + "\n")


def write_run(path: Path, record: dict, curves_csv: str, *, overwrite: bool) -> bool:
    """Stage the run's files beside ``path`` and move them into place in one rename.

    Returns False, writing nothing, when a finished record is already there and
    ``overwrite`` is off (another worker finished the cell); a failed write is a
    SuiteError naming the path and the cause, its staging directory removed."""
    staging = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.staging"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
        write_text_atomic(staging / CURVES, curves_csv)
        write_json_atomic(staging / RECORD, record)
        if path.exists():
            if not overwrite:
                shutil.rmtree(staging, ignore_errors=True)
                return False
            retired = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(path, retired)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and is_complete(path) and not overwrite:
            return False  # finished by another worker between the check and the rename
        raise write_error("the record", path, exc) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return True


def remove_leftovers(path: Path) -> list[Path]:
    """Remove what killed writes of the run at ``path`` left beside it (staging and
    retired directories, a partial checkpoint); only its claim's holder may call this."""
    found = [*path.parent.glob(f".{path.name}.*.staging"), *path.parent.glob(f".{path.name}.*.old"),
             *path.parent.glob(f".{path.name}.checkpoint.pt.tmp")]
    for leftover in found:
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    return found


def load_record(path: Path) -> dict:
    """The record of a run directory (or a ``record.json``), checked: a RecordError says
    why it cannot be used (unreadable, not JSON, unknown schema version, keys missing)."""
    file = path / RECORD if path.is_dir() else path
    try:
        rec = json.loads(file.read_text())
    except OSError as exc:
        raise RecordError(f"{file}: cannot read it ({cause(exc)})") from None
    except ValueError as exc:  # truncated or not JSON (UnicodeDecodeError included)
        raise RecordError(f"{file}: not a valid JSON record ({str(exc).splitlines()[0]})") from None
    if not isinstance(rec, dict):
        raise RecordError(f"{file}: not a JSON object")
    if rec.get("schema") != SCHEMA_VERSION:
        found = f"schema version {rec['schema']!r}" if "schema" in rec else "no schema version"
        raise RecordError(f"{file}: {found}; this suite reads schema version {SCHEMA_VERSION}")
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        raise RecordError(f"{file}: keys missing: {', '.join(missing)}")
    return rec


def iter_records(root: str | os.PathLike, skipped: list[str] | None = None):
    """Every finished record under ``root`` (staging directories are hidden and skipped).
    With ``skipped``, a record that cannot be used is left out and its reason appended
    there; without it, it raises a RecordError."""
    for rec in sorted(Path(root).rglob(RECORD)):
        if any(part.startswith(".") for part in rec.relative_to(root).parts):
            continue
        try:
            loaded = load_record(rec)
        except RecordError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
            continue
        yield rec.parent, loaded


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
