"""Name -> class registries for tasks and models.

Rules (each one a lesson from registries that rotted elsewhere):
- entries are real classes registered by a decorator at import time, never dotted
  strings resolved later, so a broken entry fails when its module is imported;
- a second registration under the same name is an error, not a silent override;
- an unknown name is an error that lists the valid names and suggests the closest;
- third-party packages add entries through the entry-point groups
  ``rnnsuite.models`` and ``rnnsuite.tasks``: each entry point names a module,
  and importing it runs its ``@register_model`` / ``@register_task`` decorators;
- the built-in entries are imported by the loader the package installs
  (:func:`on_first_use`), explicitly and all at once, when a registry is first asked
  for a name: a command that needs no model (``rnnsuite --help``) does not import torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib import metadata
from typing import Generic, TypeVar

T = TypeVar("T")


class SuiteError(ValueError):
    """A user-facing error: bad name, bad value, missing data. The CLI prints it on one
    line and exits with code 2."""


_LOADERS: list[Callable[[], None]] = []  # import the built-in entries; run once, before any lookup


def on_first_use(loader: Callable[[], None]) -> None:
    """Run ``loader`` (which imports modules that register entries) before the first lookup
    of any registry."""
    _LOADERS.append(loader)


def _run_loaders() -> None:
    while _LOADERS:
        _LOADERS.pop(0)()


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise SuiteError(
                    f"{self.kind} {name!r} is already registered by "
                    f"{_qualname(self._entries[name])}; pick another name for {_qualname(obj)}"
                )
            self._entries[name] = obj
            obj.registry_name = name  # type: ignore[attr-defined]
            return obj

        return decorator

    def get(self, name: str) -> T:
        self._load_plugins()
        if name not in self._entries:
            raise SuiteError(self.unknown_message(name))
        return self._entries[name]

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def unknown_message(self, name: str) -> str:
        names = sorted(self._entries)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (valid: {', '.join(names)})"

    def _load_plugins(self) -> None:
        _run_loaders()  # the built-ins first: a plug-in reusing a built-in name is the one refused
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in metadata.entry_points(group=self.entry_point_group):
            try:
                ep.load()
            except Exception as exc:  # a broken plug-in must not hide the built-ins
                raise SuiteError(
                    f"plug-in {ep.name!r} ({ep.value}) in entry-point group "
                    f"{self.entry_point_group!r} failed to import: {exc}"
                ) from exc


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


TASKS: Registry = Registry("task", "rnnsuite.tasks")
MODELS: Registry = Registry("model", "rnnsuite.models")

register_task = TASKS.register
register_model = MODELS.register
