"""Every table the suite builds, as data: ``suite/experiments/<table>.toml``.

One file per table: its ``title`` and one ``[profiles.<name>]`` per profile (quick,
medium, full). A profile's ``kind`` says what its cells are and which study builds the
table from their records (:mod:`suite.studies.runner` maps each kind to its runner);
every other key is that kind's data, typed below. ``cost`` says what a run of the
profile costs, as measured or estimated, with the date; dated measurement notes live
here too (``budget_note``, ``note``), not in code::

    [profiles.quick]
    kind = "grid"                   # every registered model on every cell, every seed
    seeds = [0, 1]
    sets = { hidden_size = 32, steps = 400 }
    cells = [{ task = "adding", params = { T = 50 } }]
    cost = "8 CPU-minutes (measured 2026-12-05: ...)"

A file that does not fit the schema (an unknown kind or key, a missing key, a value of
the wrong type) is refused with one line naming the file and the key. To add a table:
a new file, with a profile of an existing kind; a new kind needs its dataclass here and
its runner in :mod:`suite.studies.runner`.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
import types
import typing
from pathlib import Path

from suite.core import paths
from suite.core.recipes import load_recipes
from suite.core.registry import SuiteError

EXPERIMENTS = paths.EXPERIMENTS


# -- the kinds of profile --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GridCell:
    task: str
    params: dict = dataclasses.field(default_factory=dict)  # task parameters (task.<key>)


@dataclasses.dataclass(frozen=True)
class Grid:
    """Every registered model (or those named by --models) on every cell, every seed."""

    cells: tuple[GridCell, ...]
    sets: dict  # run keys of every cell, a layer under --set
    seeds: tuple[int, ...]
    cost: str


@dataclasses.dataclass(frozen=True)
class Recipes:
    """Every published recipe whose task is one of ``tasks``, every seed (one row per published number)."""

    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    cost: str

    def names(self) -> list[str]:
        return [n for n, r in load_recipes().items() if r.task in self.tasks]


@dataclasses.dataclass(frozen=True)
class Escape:
    """When an MSE anchor's runs leave the trivial plateau: the first validation point below
    ``below``, over runs of ``steps`` steps on ``seeds`` (a run still above it at its end is
    censored there), held against the point where the authors' log first falls below it."""

    below: float
    steps: int
    seeds: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Anchor:
    """An authors' log and the budget we run of it: the first ``points`` logged points."""

    points: int
    seeds: tuple[int, ...]
    # the score of a network that learned nothing, in the log's units (accuracy in %, or MSE):
    # a point at which such a run would pass too cannot tell a faithful run from a broken one
    chance: float
    log: str  # what the authors' log is: one run, best or not, and what is known of its seed
    note: str = ""  # what we found out about a failing row
    # an anchor logged by iteration with fewer than 3 seeds borrows the reference's σ at
    # the epoch nearest its point (point / iterations_per_epoch, rounded)
    iterations_per_epoch: int | None = None
    # an MSE anchor whose authors evaluated on this many random sequences per point
    eval_samples: int | None = None
    escape: Escape | None = None  # an escape-time study beside the anchor's own points


@dataclasses.dataclass(frozen=True)
class Anchors:
    """Published recipes cut to their authors' logged points (:mod:`suite.studies.sanity`)."""

    reference: str  # the anchor with 3 seeds whose spread sets the others' tolerance
    floor: float  # percentage points: the smallest tolerance of an accuracy row
    anchors: dict[str, Anchor]
    cost: str


@dataclasses.dataclass(frozen=True)
class TuningCell:
    """One (task, length) column of the medium tuning table: every run of it shares ``sets``."""

    task: str
    sets: tuple[str, ...]  # task parameters, width, batch, budget, evaluation
    target: float  # the test metric that counts as solved, in the task's direction
    budget_note: str  # how the budget was chosen (measured, dated)
    recipes: tuple[str, ...] = ()  # untuned published-recipe baselines


@dataclasses.dataclass(frozen=True)
class Tuning:
    """The heuristic against Optuna-tuned baselines per cell (:mod:`suite.studies.tuning_table`)."""

    trials: int  # Optuna trials per tuned baseline (TPE: the first 10 are its random start-up)
    lr_trials: int  # Optuna trials of the learning-rate-only study
    eval_seeds: int  # fresh seeds 1..n for every reported configuration
    dt_grid: tuple[float, ...]  # the fixed step sizes of the regret sweep
    pruner: str
    tuned_models: tuple[str, ...]
    heuristic_models: tuple[str, ...]
    lr_only: str  # tuned on the learning rate alone, its other searched keys at their defaults
    cells: dict[str, TuningCell]
    cost: str


@dataclasses.dataclass(frozen=True)
class Studies:
    """One Optuna study per model, then the tuning report (:mod:`suite.studies.tuning_quick`)."""

    task: str
    models: tuple[str, ...]
    trials: int
    sets: tuple[str, ...]
    cost: str
    note: str = ""  # a line under the table's header: what the profile can and cannot show


@dataclasses.dataclass(frozen=True)
class Gradients:
    """The gradient-control study's settings (:mod:`suite.studies.gradients`)."""

    tasks: str  # task:T list
    models: str
    dts: str  # a list or LO:HI:PER_DECADE
    train_steps: int
    hidden_size: int
    batch_size: int
    probe_batch: int
    cost: str


@dataclasses.dataclass(frozen=True)
class Hdnn:
    """Paper (b)'s 64-layer H-DNNs on 2-D point sets (:mod:`suite.studies.deep_hdnn`)."""

    epochs: int
    cost: str


KINDS: dict[str, type] = {"grid": Grid, "recipes": Recipes, "anchors": Anchors, "tuning": Tuning,
                          "studies": Studies, "gradients": Gradients, "hdnn": Hdnn}


@dataclasses.dataclass(frozen=True)
class Table:
    name: str
    title: str
    profiles: dict[str, typing.Any]  # profile name -> an instance of a KINDS class
    file: Path
    compare_published: bool = True  # grid tables: ours beside the published number of the same width

    def profile(self, name: str | None):
        """The named profile, or the table's default: quick where it has one, else its first."""
        name = name or ("quick" if "quick" in self.profiles else next(iter(self.profiles)))
        if name not in self.profiles:
            raise SuiteError(f"table {self.name!r} has no profile {name!r} (valid: {', '.join(self.profiles)})")
        return name, self.profiles[name]


# -- reading ---------------------------------------------------------------------------------------

def _typed(value, hint, where: str):
    """``value`` as the annotation ``hint`` asks (lists to tuples, tables to dataclasses)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        return _typed(value, next(a for a in args if a is not type(None)), where)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise SuiteError(f"{where} must be a list")
        return tuple(_typed(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise SuiteError(f"{where} must be a table")
        return {k: _typed(v, args[1], f"{where}.{k}") for k, v in value.items()} if args else value
    ok = isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise SuiteError(f"{where} = {value!r} must be {hint.__name__}")
    return value


def _build(cls: type, data, where: str):
    if not isinstance(data, dict):
        raise SuiteError(f"{where} must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SuiteError(f"{where} has no key {unknown[0]!r} (valid: {', '.join(fields)})")
    missing = [n for n, f in fields.items() if n not in data and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise SuiteError(f"{where} needs the key {missing[0]!r}")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _typed(v, hints[k], f"{where}.{k}") for k, v in data.items()})


def read_table(path: Path) -> Table:
    """One table file, checked against the schema: one-line errors naming the file and key."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SuiteError(f"table file {path} is unreadable ({str(exc).splitlines()[0] if str(exc) else exc!r})") \
            from None
    where = str(path)
    unknown = sorted(set(data) - {"title", "profiles", "compare_published"})
    if unknown or not isinstance(data.get("title"), str) or not isinstance(data.get("profiles"), dict):
        raise SuiteError(f"{where}: needs a title and [profiles.<name>] tables "
                         f"(and optionally compare_published){f'; unknown key {unknown[0]!r}' if unknown else ''}")
    profiles = {}
    for name, body in data["profiles"].items():
        kind = body.get("kind") if isinstance(body, dict) else None
        if kind not in KINDS:
            raise SuiteError(f"{where}: [profiles.{name}] kind = {kind!r} is not a kind of table "
                             f"(valid: {', '.join(KINDS)})")
        profiles[name] = _build(KINDS[kind], {k: v for k, v in body.items() if k != "kind"},
                                f"{where}: profiles.{name}")
    compare = data.get("compare_published", True)
    if not isinstance(compare, bool):
        raise SuiteError(f"{where}: compare_published = {compare!r} must be true or false")
    return Table(path.stem, data["title"], profiles, path, compare)


@functools.cache
def tables(root: Path = EXPERIMENTS) -> dict[str, Table]:
    """Every table under ``root``, by name (the file's stem), in name order."""
    return {p.stem: read_table(p) for p in sorted(Path(root).glob("*.toml"))}


def table(name: str) -> Table:
    found = tables()
    if name not in found:
        raise SuiteError(f"unknown table {name!r} (valid: {', '.join(found)})")
    return found[name]


def kind_of(profile) -> str:
    return next(k for k, cls in KINDS.items() if isinstance(profile, cls))
