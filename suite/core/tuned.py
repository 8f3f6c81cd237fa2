"""Tuned files: written by ``rnnsuite tune`` (a study's ``study.json``, or its published
copy under ``baselines/tuned/``), applied only by ``--tuned PATH``, and only under the
settings they were tuned under."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from suite.core import paths
from suite.core.config import flatten, normal, set_value, shown
from suite.core.registry import SuiteError

TUNED_ENV = "RNNSUITE_TUNED_DIR"


def tuned_dir() -> Path:
    """Where ``--publish`` writes: ``$RNNSUITE_TUNED_DIR``, else ``baselines/tuned``."""
    if os.environ.get(TUNED_ENV):
        return Path(os.environ[TUNED_ENV])
    return paths.TUNED_FILES


def tuned_path(task: str, model: str) -> Path:
    return tuned_dir() / f"{task}-{model}.json"


def load_tuned(path: str | os.PathLike | None, task: str | None = None, model: str | None = None) -> dict | None:
    """The tuned file at ``path`` (a study's ``study.json``, or its published copy),
    checked against ``task`` and ``model``; None when no path is given. Its ``sets`` are
    the tuned ``--set`` strings, its ``fixed`` the resolved settings the study held fixed
    (task parameters, hidden size, budget, every run key not searched), which
    :func:`tuned_differences` compares with a run's."""
    if path is None:
        return None
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise SuiteError(f"--tuned {path}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested beyond reason
        raise SuiteError(f"--tuned {path}: not JSON ({(str(exc).splitlines() or [type(exc).__name__])[0]})") from None
    sets = data.get("sets") if isinstance(data, dict) else None
    if not (isinstance(sets, list) and all(isinstance(s, str) and "=" in s for s in sets)):
        raise SuiteError(f"--tuned {path}: not a tuned-hyperparameters file (no list of KEY=VALUE 'sets')")
    if not isinstance(data.get("fixed"), dict):
        raise SuiteError(f"--tuned {path}: records no fixed settings (an older `rnnsuite tune` wrote it): "
                         f"rerun the study to write a new one")
    if not isinstance(data.get("search_space", {}), dict):
        raise SuiteError(f"--tuned {path}: search_space must be a table of the searched keys "
                         f"(as `rnnsuite tune` writes it), not {type(data['search_space']).__name__}")
    for what in ("task", "model"):
        if not isinstance(data.get(what), str):
            raise SuiteError(f"--tuned {path}: names no {what} it was tuned for (a string under {what!r})")
    for what, given in (("task", task), ("model", model)):
        if given is not None and data.get(what) != given:
            raise SuiteError(f"--tuned {path} was tuned for {what} {data.get(what)!r}, not {given!r}")
    return {**data, "path": str(path)}


def tuned_differences(tuned: dict, resolved: dict) -> dict[str, tuple[Any, Any]]:
    """``{key: (tuned under, this run)}`` for every setting the study held fixed that the
    resolved configuration ``resolved`` sets otherwise, keyed as ``--set`` keys. The
    seed is left out: tuned values are meant for other seeds."""
    searched = set(tuned.get("search_space", {}))
    fixed, run = flatten(tuned["fixed"]), flatten(resolved)
    return {k: (fixed.get(k), run.get(k)) for k in sorted(set(fixed) | set(run))
            if k not in searched and k not in ("seed", "device") and normal(fixed.get(k)) != normal(run.get(k))}


def describe_differences(diff: dict[str, tuple[Any, Any]], limit: int = 4) -> str:
    """One short line: ``tuned under task.T=20, steps=150; this run has task.T=10, steps=10``
    (the first ``limit`` differences, then how many more)."""
    first = dict(list(diff.items())[:limit])
    more = f" (and {len(diff) - limit} more settings)" if len(diff) > limit else ""
    return ("tuned under " + ", ".join(f"{shown(k)}={_short(a)}" for k, (a, _) in first.items())
            + "; this run has " + ", ".join(f"{shown(k)}={_short(b)}" for k, (_, b) in first.items()) + more)


def _short(value: Any, width: int = 40) -> str:
    text = shown(set_value(value))
    return text if len(text) <= width else text[: width - 3] + "..."
