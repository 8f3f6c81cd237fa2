"""One way to build every table: ``rnnsuite paper TABLE [--profile P]``.

A table is data (``suite/experiments/<table>.toml``, :mod:`suite.studies.catalog`); its
profile's kind says what the table's cells are and which study builds it. Every table
goes to ``<out>/<table>-<profile>/`` (``table.md``, ``table.csv``, ``figures/``) with the
records it was built from in ``records/`` beside it, and every rerun skips what is
finished. Two families of kinds:

- **cells** (``grid``, ``recipes``, ``anchors``): the profile is a list of harness runs.
  :func:`cells` gives them as configurations; the command line runs them here
  (:func:`suite.core.cells.run_cells`: claimed, skipped, resumed) or as a job array
  (``--launcher local|slurm``), then :func:`write` builds the table from the records.
- **studies** (``tuning``, ``studies``, ``gradients``, ``hdnn``): the study runs its own
  cells (Optuna studies, the gradient probes, paper (b)'s networks), each resumable;
  :func:`run_study` runs it and writes the table.

Which options a kind takes is data too (``OPTIONS``): any other is refused with one line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from suite.core.build import resolve
from suite.core.config import RunConfig
from suite.core.records import check_writable
from suite.core.registry import SuiteError
from suite.studies import catalog, deep_hdnn, gradients, paper, sanity, sanity_report, tuning_quick, tuning_verdict
from suite.studies.catalog import Anchors, Grid, Recipes, Table

# beyond --out, --data-dir, --threads and -q, which every kind takes
OPTIONS: dict[str, tuple[str, ...]] = {
    "grid": ("models", "set", "runs", "launcher"),
    "recipes": ("models", "set", "runs", "launcher"),
    "anchors": ("cells", "runs", "launcher"),
    "tuning": ("cells",),
    "studies": (),
    "gradients": (),
    "hdnn": (),
}
CELL_KINDS = ("grid", "recipes", "anchors")


@dataclasses.dataclass
class Request:
    """What the command line asked for; ``None`` or empty: not given."""

    table: str
    profile: str | None = None
    out: Path = Path("results/tables")
    runs: Path | None = None
    data_dir: str | None = None
    quiet: bool = False
    models: list[str] | None = None
    sets: list[str] = dataclasses.field(default_factory=list)
    cells: str | None = None
    launcher: bool = False


@dataclasses.dataclass(frozen=True)
class Plan:
    """A request checked against its table: the profile to run and where its output goes."""

    request: Request
    table: Table
    profile_name: str
    profile: object
    kind: str

    @property
    def where(self) -> Path:
        return Path(self.request.out) / f"{self.table.name}-{self.profile_name}"

    @property
    def runs_root(self) -> Path:
        return Path(self.request.runs) if self.request.runs else self.where / "records"


def plan(request: Request) -> Plan:
    """The request's table and profile, every option checked against the profile's kind."""
    table = catalog.table(request.table)
    profile_name, profile = table.profile(request.profile)
    kind = catalog.kind_of(profile)
    given = {"models": request.models, "set": request.sets, "runs": request.runs, "cells": request.cells,
             "launcher": request.launcher}
    refused = [name for name, value in given.items() if value and name not in OPTIONS[kind]]
    if refused:
        takes = ", ".join(f"--{o}" for o in OPTIONS[kind]) or "no option beyond --out and --data-dir"
        raise SuiteError(f"table {table.name!r} ({profile_name} profile, {kind}) takes no --{refused[0]} "
                         f"(it takes {takes})")
    return Plan(request, table, profile_name, profile, kind)


def cells(p: Plan, *, every_model: bool = False) -> list[RunConfig]:
    """The harness runs of a cells profile (with ``every_model``: of every registered
    model, ``--models`` aside: the table shows every model whose record exists)."""
    r = p.request
    if isinstance(p.profile, (Grid, Recipes)):
        return paper.cell_configs(p.profile, list(r.sets), None if every_model else r.models)
    if isinstance(p.profile, Anchors):
        names = sanity.chosen_anchors(r.cells)
        return [cfg for _, cfg in sanity.configs(names) + sanity.escape_configs(names)]
    raise SuiteError(f"table {p.table.name!r} ({p.profile_name} profile) runs its own study, not cells")


def check(p: Plan, configs: list[RunConfig]) -> None:
    """Every cell resolved and both folders writable before the first cell runs."""
    for cfg in configs:
        resolve(cfg)
    check_writable(p.runs_root)  # a disk fault found before the first cell, not after the last
    check_writable(p.where)


def shown_hashes(p: Plan) -> set[str]:
    """The configurations a cells table shows: every model's, whichever were run now."""
    return {resolve(cfg).hash for cfg in cells(p, every_model=True)}


def write(p: Plan, hashes: set[str]) -> Path:
    """The table of a cells profile from its records (only those of ``hashes``)."""
    if p.kind == "anchors":
        return sanity_report.write_table(list(sanity.ANCHORS), p.runs_root, p.where)
    return paper.write_table(p.table.name, p.profile_name, p.runs_root, Path(p.request.out), hashes=hashes)


def run_study(p: Plan) -> int:
    """A study profile: its own cells, then its table under ``p.where``."""
    r = p.request
    check_writable(p.where)
    if p.kind == "tuning":
        return tuning_verdict.run_table(r.cells, out=p.where, data_dir=r.data_dir, quiet=r.quiet)
    if p.kind == "studies":
        return tuning_quick.run_table(p.where, r.data_dir, r.quiet, profile_name=p.profile_name)
    if p.kind == "gradients":
        gradients.run_study(gradients.profile_study(p.profile_name, p.where, r.data_dir))
    elif p.kind == "hdnn":
        deep_hdnn.build(p.where, epochs=p.profile.epochs)
    print(f"table {p.table.name} ({p.profile_name}): {p.where}")
    return 0
