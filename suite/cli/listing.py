"""``rnnsuite list``: every task and model with its description, parameters and defaults,
and the run keys, wrapped to 100 columns.

The text needs every model imported (torch and all), about two seconds; it depends only
on the suite's sources, the installed plug-ins and the Python version, so it is kept in
the user's cache under a key made of those (their files' sizes and modification times),
and a later ``list`` with nothing changed prints it without importing torch. A plug-in
whose module file cannot be found without importing it turns the cache off.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import sys
import textwrap
from importlib import metadata
from pathlib import Path

WIDTH = 100
GROUPS = ("rnnsuite.tasks", "rnnsuite.models")
SKIPPED_RUN_KEYS = ("task", "model", "task_params", "model_params")


def describe(cls) -> str:
    """The first paragraph of a class's docstring (else its module's), on one line."""
    doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ",
                         break_on_hyphens=False) or [indent.rstrip()]


def _fields(cls, skip=()) -> list[str]:
    from suite.core.config import describe_fields

    return [line for name, typ, default in describe_fields(cls) if name not in skip
            for line in _wrap(f"{name}: {typ} = {default!r}", "      ")]


def render() -> str:
    """The full text of ``rnnsuite list`` (imports every registered entry)."""
    from suite.core.build import list_models, list_tasks
    from suite.core.config import PROVENANCE_FIELDS, RunConfig
    from suite.core.registry import MODELS, TASKS

    lines = []
    for title, registry, names in (("tasks", TASKS, list_tasks()), ("models", MODELS, list_models())):
        lines.append(f"{title}:")
        for name in names:
            cls = registry.get(name)
            extra = f"[metric {cls.metric} {'↑' if cls.higher_is_better else '↓'}, v{cls.version}]" \
                if registry is TASKS else f"[v{cls.version}]"
            lines += _wrap(f"{name}  {extra}  {describe(cls)}", "  ")
            lines += _fields(cls.Config)
    lines.append("run keys (--set KEY=VALUE):")
    lines += _fields(RunConfig, skip=(*SKIPPED_RUN_KEYS, *PROVENANCE_FIELDS))
    return "\n".join(lines)


def _module_file(module: str) -> Path | None:
    """Where ``module`` would be imported from, found without importing any of it."""
    path, spec, parts = None, None, module.split(".")
    for depth in range(len(parts)):
        name = ".".join(parts[: depth + 1])
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        path = spec.submodule_search_locations
    return Path(spec.origin) if spec is not None and spec.origin else None


def cache_key(roots: list[Path]) -> str | None:
    """A digest of what the list is made of: the ``.py`` files under ``roots``, the plug-ins'
    entry points with their module files, the suite's version and Python's; None (no
    caching) when a plug-in's file cannot be found."""
    digest = hashlib.sha256(f"{sys.version}|{version()}".encode())
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    for group in GROUPS:
        for ep in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
            file = _module_file(ep.value.split(":")[0])
            if file is None or not file.exists():
                return None
            stat = file.stat()
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else ""
            digest.update(f"{group}|{ep.name}|{ep.value}|{dist}|{file}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rnnsuite"


def version() -> str:
    try:
        return metadata.version("rnnsuite")
    except metadata.PackageNotFoundError:
        return "unknown (not installed: pip install -e . from the checkout)"


def source_roots() -> list[Path]:
    import suite

    roots = [Path(p) for p in suite.__path__]
    for name in ("baselines", "tasks"):
        spec = importlib.machinery.PathFinder.find_spec(name)
        roots += [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    return roots


def cached_text() -> str:
    key = cache_key(source_roots())
    path = cache_dir() / f"list-{key}.txt" if key else None
    if path is not None and path.is_file():
        return path.read_text()
    text = render()
    if path is not None:
        try:  # an optimization only: a cache that cannot be written is no error
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
        except OSError:
            pass
    return text


def cmd_list(args) -> int:
    print(cached_text())
    return 0
