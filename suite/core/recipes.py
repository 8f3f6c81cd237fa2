"""Recipes: every published number together with the settings that produced it.

    rnnsuite recipes                       every recipe: name, task, model, published value, source
    rnnsuite recipes lem-psmnist           one recipe resolved: every key, its value and its source
    rnnsuite run --recipe lem-psmnist --set epochs=0.01

A recipe is data: one table of a TOML file under ``results/reference/recipes/`` (one
file per source), named ``<model>-<task>[-suffix]``. It holds the published value, its
metric and where it is printed, how that number was selected (best validation, last
epoch, maximum over test), whether it was checked against the source, and the recipe
itself as the suite's own ``--set`` keys (run keys, ``task.*``, ``model.*``). Every key
carries either ``source`` (the authors' script and argument, or the paper's section)
or ``unknown`` (no source states it: the value chosen and why)::

    [lem-smnist.set]
    lr = { value = 0.0018, source = "sMNIST/sMNIST_task.py: --lr default" }
    "task.val_size" = { value = 3000, unknown = "..." }

A recipe resolves to an ordinary configuration: layered over the defaults, under any
``--set`` (which wins), with every value type-checked as ``--set`` is; the record keeps
the recipe's name and which of its keys were overridden. A tuned file
(``rnnsuite tune``) is different: values found by a search of ours, not a published
setting.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
from pathlib import Path
from typing import Any

from suite.core import paths
from suite.core.build import resolve
from suite.core.config import run_config, shown, unknown_key_message
from suite.core.registry import SuiteError

RECIPES = paths.RECIPES
SELECTIONS = ("best_val", "last", "max_test", "unknown")
REQUIRED = ("task", "model", "metric", "units", "source", "selection", "checked")
# no `published`: a setting of the suite's own, for a model with no published number
OPTIONAL = ("published", "code", "selection_source", "checked_note", "log", "notes", "set")
TEXT = ("code", "selection_source", "checked_note", "log", "notes")  # optional fields that are text


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    task: str
    model: str
    metric: str
    published: float | None
    units: str
    source: str  # where the number is printed
    selection: str  # how the published number was selected (SELECTIONS)
    checked: bool  # the number was seen in its source
    values: dict  # --set key -> value
    cites: dict  # --set key -> ("source" | "unknown", text)
    file: str
    code: str = ""
    selection_source: str = ""
    checked_note: str = ""
    log: str = ""
    notes: str = ""

    @property
    def hidden_size(self) -> int | None:
        return self.values.get("hidden_size")

    @property
    def unknowns(self) -> list[str]:
        return [key for key, (kind, _) in self.cites.items() if kind == "unknown"]

    def sets(self) -> list[str]:
        return [f"{key}={format_value(value)}" for key, value in self.values.items()]


def format_value(value: Any) -> str:
    """A TOML value as ``--set`` text that parses back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(format_value(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _parse_entry(name: str, entry: Any, where: str) -> Recipe:
    label = shown(name)
    if not isinstance(entry, dict):
        raise SuiteError(f"{where}: [{label}] must be a table")
    unknown = set(entry) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise SuiteError(f"{where}: [{label}] " + unknown_key_message(sorted(unknown)[0], [*REQUIRED, *OPTIONAL]))
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise SuiteError(f"{where}: [{label}] lacks {', '.join(missing)}")
    if entry["selection"] not in SELECTIONS:
        raise SuiteError(f"{where}: [{label}] selection={entry['selection']!r} is not one of {', '.join(SELECTIONS)}")
    if entry["checked"] not in ("yes", "no"):
        raise SuiteError(f"{where}: [{label}] checked={entry['checked']!r} must be \"yes\" or \"no\"")
    for key in ("task", "model", "metric", "units", "source", *TEXT):
        if key in entry and not isinstance(entry[key], str):
            raise SuiteError(f"{where}: [{label}] {key}={entry[key]!r} must be text (a quoted string)")
    table = entry.get("set", {})
    if not isinstance(table, dict):
        raise SuiteError(f"{where}: [{label}] set must be a table ([{label}.set] with key = {{ value = ..., "
                         f"source = \"...\" }}), not {table!r}")
    published = entry.get("published")
    if "published" in entry and (isinstance(published, bool) or not isinstance(published, (int, float))
                                 or not math.isfinite(published)):
        raise SuiteError(f"{where}: [{label}] published={published!r} is not a number")
    values, cites = {}, {}
    for key, item in table.items():
        kinds = [k for k in ("source", "unknown") if isinstance(item, dict) and k in item]
        if not isinstance(item, dict) or "value" not in item or len(kinds) != 1 or set(item) - {"value", *kinds}:
            raise SuiteError(f"{where}: [{label}.set] {shown(key)} must be {{ value = ..., source = \"...\" }} "
                             f"or {{ value = ..., unknown = \"why this value\" }}")
        values[key], cites[key] = item["value"], (kinds[0], str(item[kinds[0]]))
    fields = {k: entry[k] for k in (*REQUIRED, *OPTIONAL) if k in entry and k != "set"}
    fields["checked"] = entry["checked"] == "yes"
    fields["published"] = float(published) if "published" in entry else None
    return Recipe(name=name, values=values, cites=cites, file=where, **fields)


@functools.lru_cache(maxsize=4)
def load_recipes(directory: str | None = None) -> dict[str, Recipe]:
    """Every recipe under ``directory`` (default ``results/reference/recipes``), checked:
    the file's form here, every value against its key's type when resolved."""
    root = Path(directory) if directory else RECIPES
    recipes: dict[str, Recipe] = {}
    for path in sorted(root.glob("*.toml")):
        if not path.is_file():  # a folder named x.toml holds no recipe
            continue
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise SuiteError(f"{path}: cannot read the recipe file ({exc.strerror or exc})") from None
        except ValueError as exc:  # TOMLDecodeError, UnicodeDecodeError
            raise SuiteError(f"{path}: invalid TOML ({str(exc).splitlines()[0]})") from None
        for name, entry in data.items():
            if name in recipes:
                raise SuiteError(f"{path}: recipe {name!r} is also defined in {recipes[name].file}")
            recipes[name] = _parse_entry(name, entry, str(path))
    return recipes


def get_recipe(name: str) -> Recipe:
    recipes = load_recipes()
    if name not in recipes:
        raise SuiteError(unknown_key_message(name, list(recipes)).replace("unknown key", "unknown recipe", 1))
    return recipes[name]


def recipe_config(name: str, sets: list[str] = (), *, task: str | None = None, model: str | None = None,
                  seed: int = 0, device: str | None = None, layers: tuple = ()):
    """The RunConfig of recipe ``name``, under ``layers`` (e.g. a tuned file) and ``sets``."""
    recipe = get_recipe(name)
    for given, own, what in ((task, recipe.task, "task"), (model, recipe.model, "model")):
        if given is not None and given != own:
            raise SuiteError(f"--{what} {given} contradicts recipe {name!r}, which is {what} {own!r}; "
                             f"drop --{what} or choose another recipe")
    try:
        cfg = run_config(recipe.task, recipe.model, list(sets), device, seed,
                         layers=(("recipe", recipe.sets()), *layers), recipe=name)
    except SuiteError as exc:
        raise SuiteError(f"recipe {name!r} ({recipe.file}): {exc}") from None
    if (recipe.values.get("epochs") is not None and cfg.epochs is None and cfg.schedule == "milestones"
            and cfg.origins.get("milestones") == "recipe"):
        # milestones count epochs under an epochs budget and steps under a steps budget
        raise SuiteError(f"recipe {name!r} decays the learning rate at epochs {list(cfg.milestones)}; with a steps "
                         f"budget these would be read as steps: give --set milestones=... in steps, or "
                         f"--set schedule=constant --set milestones=")
    return cfg


def check_all() -> list[str]:
    """Resolve every recipe (types, impossible values, unknown keys): the names checked."""
    names = []
    for name in load_recipes():
        cfg = recipe_config(name)
        try:
            resolve(cfg)
        except SuiteError as exc:
            raise SuiteError(f"recipe {name!r}: {exc}") from None
        names.append(name)
    return names


def overridden(provenance: dict) -> list[str]:
    """The recipe's keys whose value came from elsewhere (``--set`` or a tuned file)."""
    return sorted(k for k, origin in provenance.get("origins", {}).items()
                  if "(overrides " in origin and "recipe" in origin.split("(overrides ", 1)[1])


# -- the command ------------------------------------------------------------------------------




