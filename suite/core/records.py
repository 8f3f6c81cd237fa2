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
    schema, config_hash, task, model, seed, status ("ok" | "diverged": :data:`STATES`, decided by
    :func:`outcome`),
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

from suite.core import paths
from suite.core.registry import SuiteError

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


def run_dir(root: str | os.PathLike, task: str, model: str, seed: int, chash: str, *, nested: bool = True) -> Path:
    """A run's folder: ``<root>/<task>/<model>/s<seed>-<hash>``, or with ``nested=False``
    ``<root>/s<seed>-<hash>``, for a folder whose runs share their task and model (a
    study's arm, a table's cell): the hash tells its runs apart either way."""
    leaf = f"s{seed}-{chash[:10]}"
    return Path(root) / task / model / leaf if nested else Path(root) / leaf


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


# -- a run's outcome: one of these states, decided only by `outcome` ------------------------------

STATES = {
    "ok": "trained to the end, with finite losses and finite final validation and test metrics",
    "diverged": "a non-finite loss or gradient during training, or a non-finite final validation or test metric",
    "failed": "ended in an error: no record is written (`sweep` and the launcher count it; rerun to retry)",
}
RECORDED = ("ok", "diverged")  # the states a record can hold


def outcome(status: str, metrics: dict) -> str:
    """The one rule: "diverged" when the loop stopped on a non-finite loss or gradient
    (``status``) or when the final validation or the test metric is not finite (a
    record stores those as null); else "ok". The harness decides a run's status with it,
    and readers of records apply it again, so that a record written otherwise (by hand,
    or by an older suite that let an infinite test metric through as "ok") is counted as
    what it is."""
    if status == "diverged":
        return "diverged"
    for key in ("val_final", "test"):
        value = metrics.get(key)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            return "diverged"
    return "ok"


def _number(value, *, none: bool = False, low: float | None = None, high: float | None = None) -> bool:
    if value is None:
        return none
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


def _problems(rec: dict) -> list[str]:
    """What in a record a reader cannot trust: the schema of the fields reports, tables and
    exports read, each checked for its type and its range."""
    text = lambda v: isinstance(v, str) and bool(v.strip())  # noqa: E731
    table = lambda v: isinstance(v, dict)  # noqa: E731
    found = []
    if not (isinstance(rec["config_hash"], str) and len(rec["config_hash"]) >= 10):
        found.append(f"config_hash={rec['config_hash']!r} is not a hash")
    for key in ("task", "model"):
        if not text(rec[key]):
            found.append(f"{key}={rec[key]!r} is not a name")
    if not (type(rec["seed"]) is int and 0 <= rec["seed"] < 2**32):
        found.append(f"seed={rec['seed']!r} is not a seed (an integer in 0 .. 2**32 - 1)")
    if rec["status"] not in RECORDED:
        found.append(f"status={rec['status']!r} is not one of {', '.join(RECORDED)}")
    for key in ("config", "task_info", "model_info", "metrics", "gradients", "timing"):
        if not table(rec[key]):
            found.append(f"{key} is not a table")
    if found:
        return found
    info, metrics = rec["task_info"], rec["metrics"]
    if not text(info.get("variant")):
        found.append(f"task_info.variant={info.get('variant')!r} is not a name")
    if not text(info.get("metric")):
        found.append(f"task_info.metric={info.get('metric')!r} is not a name")
    if not isinstance(info.get("higher_is_better"), bool):
        found.append(f"task_info.higher_is_better={info.get('higher_is_better')!r} is not true or false")
    if not (type(info.get("seq_len")) is int and info["seq_len"] >= 1):
        found.append(f"task_info.seq_len={info.get('seq_len')!r} is not a length")
    n_params = rec["model_info"].get("n_params")
    if not (type(n_params) is int and n_params >= 0):
        found.append(f"model_info.n_params={n_params!r} is not a count")
    # every metric the suite declares is a mean of non-negative values; an accuracy is at most 1
    high = 1.0 if str(info.get("metric", "")).startswith("accuracy") else None
    for key in ("test", "val_best", "val_final"):
        if not _number(metrics.get(key), none=True, low=0.0, high=high):
            found.append(f"metrics.{key}={metrics.get(key)!r} is not a possible {info.get('metric')}")
    if not isinstance(metrics.get("test_metrics") or {}, dict):
        found.append("metrics.test_metrics is not a table")
    grads, timing = rec["gradients"], rec["timing"]
    for key in ("ratio_init", "ratio_end"):
        if not _number(grads.get(key), none=True):
            found.append(f"gradients.{key}={grads.get(key)!r} is not a number")
    profile = grads.get("hidden_profile")
    if not (table(profile) and all(isinstance(v, list) and all(_number(x, none=True) for x in v)
                                   for v in profile.values())):
        found.append("gradients.hidden_profile is not a table of lists of numbers")
    for key in ("median_step_seconds", "train_seconds"):
        if not _number(timing.get(key), none=True, low=0.0):
            found.append(f"timing.{key}={timing.get(key)!r} is not a number of seconds")
    return found


def load_record(path: Path) -> dict:
    """The record of a run directory (or a ``record.json``), checked: a RecordError says
    why it cannot be used (unreadable, not JSON, unknown schema version, keys missing)."""
    file = path / RECORD if path.is_dir() else path
    try:
        rec = json.loads(file.read_text())
    except OSError as exc:
        raise RecordError(f"{file}: cannot read it ({cause(exc)})") from None
    except (ValueError, RecursionError) as exc:  # truncated or not JSON (UnicodeDecodeError included)
        raise RecordError(f"{file}: not a valid JSON record "
                          f"({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    if not isinstance(rec, dict):
        raise RecordError(f"{file}: not a JSON object")
    if rec.get("schema") != SCHEMA_VERSION:
        found = f"schema version {rec['schema']!r}" if "schema" in rec else "no schema version"
        raise RecordError(f"{file}: {found}; this suite reads schema version {SCHEMA_VERSION}")
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        raise RecordError(f"{file}: keys missing: {', '.join(missing)}")
    problems = _problems(rec)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise RecordError(f"{file}: {problems[0]}{more}")
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
    here = paths.CHECKOUT
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
