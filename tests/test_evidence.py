"""Committed evidence is current evidence.

Every table committed under ``results/tables/`` is rebuilt here from the records committed
beside it, and every record must be what today's code gives for its cell: the same
configuration hash, which covers every default and the task's and the model's
``version``. A table whose evidence is stale fails with the names of its stale cells and
what changed; rebuild it (``rnnsuite paper TABLE --profile PROFILE``: current cells are
skipped, so only the stale ones train) and commit its records. No training: seconds.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from suite.analysis import evidence
from suite.core import paths, records
from suite.core.build import resolve
from suite.hamiltonian import heuristic
from suite.studies import deep_hdnn, gradients, paper, sanity, tuning_quick, tuning_table, tuning_verdict

# Every entry of results/tables/, and what keeps it current. The medium tuning table and
# the sanity table are rebuilt by tests/test_tuning_table.py and tests/test_sanity.py; their
# records (results/tables/tuning-medium/records/, results/tables/sanity-full/records/) are checked
# here. The cell table (cells-cpu) is a measurement, not built from records: its files must agree
# and name every registered model.
COMMITTED = {
    "smnist-quick": "paper", "adding-quick": "paper", "copy-quick": "paper",
    "tuning-quick": "tuning quick", "gradients-quick": "gradient study", "hdnn-full": "paper (b)",
    "tuning-medium": "medium tuning table",
    "sanity-full": "sanity table", "cells-cpu": "cell table (tests/benchmarks/cell_table.py --out)",
}
PAPER = ("smnist", "adding", "copy")


def fail_if_stale(where, lines):
    if lines:
        pytest.fail(f"{where}: stale evidence, {len(lines)} cell(s); rebuild the table with today's code and "
                    f"commit its records:\n  " + "\n  ".join(lines), pytrace=False)


def assert_same_files(rebuilt, committed, names):
    for name in names:
        assert (rebuilt / name).read_text() == (committed / name).read_text(), \
            f"{committed / name} is not what its committed records give"


def test_every_committed_table_is_checked():
    # results/ is ignored by git but for what is added on purpose (git add -f): the committed
    # entries are the tracked ones; a user's own tables written there are not evidence
    assert all((paths.TABLES / name).exists() for name in COMMITTED), "a listed table is missing"
    try:
        listed = subprocess.run(["git", "ls-files", "--", str(paths.TABLES)], cwd=paths.CHECKOUT,
                                capture_output=True, text=True, timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        pytest.skip("no git here to list the committed files")
    tracked = {Path(f).relative_to("results/tables").parts[0] for f in listed if (paths.CHECKOUT / f).exists()}
    assert tracked <= set(COMMITTED), f"committed under results/tables, checked by no test: {tracked - set(COMMITTED)}"


@pytest.mark.parametrize("name", PAPER)
def test_paper_table_is_current(name, tmp_path):
    where = paper.table_dir(paths.TABLES, name, "quick")
    found = [(paper.record_cell(name, "quick", rec), rec) for _, rec in records.iter_records(where / "records")]
    assert found, f"no records under {where / 'records'}"
    today = paper.today_cells(name, "quick", only={cell for cell, _ in found})  # resolving costs: only these
    fail_if_stale(where, evidence.stale(found, today))
    paper.write_table(name, "quick", where / "records", tmp_path, hashes={h for _, h in today.values()},
                      figures=False)
    assert_same_files(paper.table_dir(tmp_path, name, "quick"), where, ["table.md", "table.csv"])


def test_tuning_quick_table_is_current(tmp_path):
    where = tuning_quick.OUT
    today, changed = tuning_quick.today_cells(where)
    found = tuning_quick.found_cells(where)
    missing = [f"{cell}: no record" for cell in today if cell not in {c for c, _ in found}]
    fail_if_stale(where, changed + missing + evidence.stale(found, today))
    shutil.copytree(where / "records", tmp_path / "records", ignore=shutil.ignore_patterns("*.journal", "*.png"))
    tuning_quick.write_table(tmp_path, figures=False)
    assert_same_files(tmp_path, where, ["table.md", "table.csv"])


def test_gradient_study_is_current(tmp_path):
    where = paths.TABLES / "gradients-quick"
    study = gradients.profile_study("quick", where)
    heuristics = json.loads((where / "heuristic.json").read_text())
    # Δt* is the committed answer of the heuristic; it stands while the rule's version does
    wrong_rule = [f"{key}: Δt* by rule {info['rule']}, today's is {heuristic.RULE}"
                  for key, info in heuristics.items() if info["rule"] != heuristic.RULE]
    settings = gradients.plan(study, heuristics)
    today = {}
    for setting in settings:
        resolved = resolve(gradients.setting_config(study, *setting[:5]))
        today[gradients.setting_name(*setting[:5])] = (resolved.config, resolved.hash)
    found = [(gradients.record_setting(rec), rec) for _, rec in records.iter_records(where / gradients.RECORDS)]
    fail_if_stale(where, wrong_rule + evidence.stale(found, today))
    rows, profiles = gradients.collect(study, settings, train=False)
    gradients.write(dataclasses.replace(study, out=tmp_path), rows, profiles, heuristics, draw=False)
    assert_same_files(tmp_path, where, ["table.md", "table.csv", "bands.csv"])


def test_hdnn_table_is_current(tmp_path):
    where = paths.TABLES / "hdnn-full"
    recs = sorted((json.loads(p.read_text()) for p in (where / "records").rglob(records.RECORD)),
                  key=lambda r: deep_hdnn.NETWORKS.index(r["config"]["network"]))
    today = {}
    for name in deep_hdnn.NETWORKS:
        today[name] = deep_hdnn.cell_config(name)
    missing = [f"{name}: no record" for name in today if name not in {r["config"]["network"] for r in recs}]
    fail_if_stale(where, missing + evidence.stale(((r["config"]["network"], r) for r in recs), today))
    deep_hdnn.write(recs, tmp_path, draw=False)
    assert_same_files(tmp_path, where, ["table.md", "table.csv", "sensitivity.csv"])


def _medium_table_cells() -> list[str]:
    """The cells the committed medium tuning table shows (a cell being added shows once it is
    complete): its "## NAME: task, ..." sections; "## Across cells" sums them up."""
    return [line[3:].split(":")[0] for line in (tuning_table.OUT / "table.md").read_text().splitlines()
            if line.startswith("## ") and ":" in line]


def test_medium_tuning_table_records_are_current():
    lines = []
    for cell in _medium_table_cells():
        lines += [f"{cell}: study {spec.study_name} is not finished under today's definition"
                  for spec in tuning_table.studies(cell) if tuning_table.finished_summary(spec) is None]
        for arm in tuning_table.arms(cell):
            lines += [f"{cell} {arm.model} ({arm.chosen}) seed {cfg.seed}: no record of today's configuration"
                      for cfg in arm.configs if not records.is_complete(
                          records.run_dir(arm.out, cfg.task, cfg.model, cfg.seed, resolve(cfg).hash, nested=False))]
    fail_if_stale(tuning_table.OUT, lines)


def test_the_heuristic_docs_quote_the_answer_across_cells_as_the_table_has_it():
    # docs/heuristic.md's cross-cell table is a copy of the one the records build: the copy may not drift
    shown = _medium_table_cells()
    frames = {cell: tuning_verdict.cell_rows(cell) for cell in shown}
    assert all(tuning_verdict.is_complete(f) for f in frames.values())
    table = tuning_verdict.across_cells(frames).to_markdown(index=False)
    assert len(table.splitlines()) == len(shown) + 2
    assert table in (paths.CHECKOUT / "docs" / "heuristic.md").read_text(), (
        "docs/heuristic.md's table \"Across cells\" differs from the one the records build: copy it from "
        "results/tables/tuning-medium/table.md")


def test_sanity_table_records_are_current():
    # a seed never run shows in the table as "not run"; a seed run under another configuration is stale
    # (one anchor per task and model, so a run's folder names its anchor and seed)
    lines = []
    for anchor, cfg in sanity.configs(list(sanity.ANCHORS)):
        path = records.run_dir(sanity.RUNS, cfg.task, cfg.model, cfg.seed, resolve(cfg).hash)
        others = [p for p in path.parent.glob(f"s{cfg.seed}-*") if records.is_complete(p) and p != path]
        if others and not records.is_complete(path):
            lines.append(f"{anchor} seed {cfg.seed}: " + evidence.config_difference(
                records.load_record(others[0])["config"], resolve(cfg).config))
    fail_if_stale(sanity.RUNS, lines)


def test_a_bumped_version_names_the_stale_cell():
    rec = {"config_hash": "old", "config": {"model": "cornn", "model_version": 1}}
    today = {"adding T=50 cornn seed 0": ({"model": "cornn", "model_version": 2}, "new")}
    assert evidence.stale([("adding T=50 cornn seed 0", rec)], today) == [
        "adding T=50 cornn seed 0: model_version: 1 -> 2"]
    assert evidence.stale([("adding T=50 gone seed 0", rec)], today) == [
        "adding T=50 gone seed 0: no such cell in today's definition of the table"]


def test_a_paper_table_and_its_records_go_to_one_folder_by_default():
    import argparse

    from suite.cli import paper as paper_cli

    parser = argparse.ArgumentParser()
    paper_cli.add_command(parser.add_subparsers())
    from suite.studies import runner

    for argv, where in ((["paper", "smnist"], "smnist-quick"), (["paper", "sanity"], "sanity-full"),
                        (["paper", "tuning", "--profile", "medium"], "tuning-medium")):
        args = parser.parse_args(argv)
        assert args.runs is None  # no --runs: the records go beside the table
        plan = runner.plan(runner.Request(args.table, args.profile, Path(args.out)))
        assert plan.where == Path("results/tables") / where and plan.runs_root == plan.where / "records"
    assert paper.records_dir(Path(args.out), "smnist", "quick") == Path("results/tables/smnist-quick/records")


def test_cell_table_files_agree_and_name_every_model():
    import csv

    from suite.analysis.site.sources import read_markdown_table
    from suite.core.build import list_models

    where = paths.TABLES / "cells-cpu"
    with (where / "table.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    assert list(read_markdown_table(where / "table.md")) == [rows[0], rows[1:]], "table.md and table.csv differ"
    measured = {row[0] for row in rows[1:]}
    missing = [m for m in list_models() if m not in measured]
    assert not missing, (f"{where}: no row for {missing}; rerun python -m tests.benchmarks.cell_table --threads 1 "
                         f"--out results/tables/cells-cpu")
