"""Paper tables: ours beside the published number, from records only."""

from __future__ import annotations

import pandas as pd
import pytest

import suite
from suite.cli.main import main
from suite.core.build import resolve
from suite.core.registry import SuiteError
from suite.studies import catalog, paper
from suite.studies.catalog import Recipes


def test_unknown_table_is_a_one_line_error(capsys):
    assert main(["paper", "smnsit"]) == 2
    err = capsys.readouterr().err
    assert "unknown table 'smnsit'" in err and "smnist" in err and err.count("\n") == 1


def test_every_table_is_data_with_a_cost_per_profile():
    tables = catalog.tables()
    assert {"smnist", "adding", "copy", "sanity", "tuning", "gradients", "hdnn"} <= set(tables)
    for name, table in tables.items():
        assert table.profiles and all(p.cost for p in table.profiles.values()), name
    for name, table in paper.TABLES.items():  # the paper tables: a quick profile and a full one
        full = table.profiles["full"]
        assert table.profiles["quick"].cells and (full.names() if isinstance(full, Recipes) else full.cells), name


@pytest.mark.parametrize("body, message", [
    ('title = "t"\n[profiles.quick]\nkind = "grdi"\n', "kind = 'grdi' is not a kind of table (valid: grid,"),
    ('title = "t"\n[profiles.quick]\nkind = "hdnn"\nepochs = 5\n', "profiles.quick needs the key 'cost'"),
    ('title = "t"\n[profiles.quick]\nkind = "hdnn"\nepochs = "5"\ncost = ""\n', "epochs = '5' must be int"),
    ('title = "t"\n[profiles.quick]\nkind = "hdnn"\nepochs = 5\ncost = ""\nepoch = 3\n',
     "has no key 'epoch' (valid: epochs, cost)"),
    ('title = "t"\n[profiles.quick]\nkind = "grid"\nseeds = [0]\nsets = {}\ncost = ""\n'
     'cells = [{ tsak = "adding" }]\n', "cells[0] has no key 'tsak' (valid: task, params)"),
    ('title = "t"\nprofiles = 3\n', "needs a title and [profiles.<name>] tables"),
    ("title = \"t\n", "is unreadable"),
])
def test_a_table_file_off_the_schema_is_one_line_naming_it(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(SuiteError) as err:
        catalog.read_table(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_smnist_table_puts_published_numbers_beside_ours(mnist, tmp_path, capsys):
    runs = tmp_path / "runs"
    hashes = set()
    for model, lr in (("lstm", 0.001), ("gru", 0.001), ("gru", 0.01)):  # gru at lr 0.01: a stale setting
        for seed in (0, 1):
            width = 128 if model == "lstm" else 4  # lstm at a published width, gru at none
            cfg = suite.RunConfig(task="smnist", model=model, seed=seed, hidden_size=width, batch_size=16, steps=2,
                                  eval_every=2, probes=1, device="cpu", lr=lr,
                                  task_params={"pixels_per_step": 49, "n_train": 64, "val_size": 32})
            suite.run(cfg, out=runs, quiet=True, data_dir=mnist)
            if lr == 0.001:
                hashes.add(resolve(cfg).hash)
    mixed = pd.read_csv(paper.write_table("smnist", "quick", runs, tmp_path / "mixed").with_suffix(".csv"))
    # without hashes the stale setting is a row of its own (the report never mixes settings) ...
    assert set(mixed.model) == {"lstm", "gru [lr=0.001]", "gru [lr=0.01]"} and (mixed.seeds == 2).all()
    path = paper.write_table("smnist", "quick", runs, tmp_path / "tables", hashes=hashes)  # ... here left out
    assert "2 record(s)" in capsys.readouterr().out
    frame = pd.read_csv(path.with_suffix(".csv"))
    assert set(frame.model) == {"lstm", "gru"} and (frame.seeds == 2).all()
    lstm = frame[frame.model == "lstm"].iloc[0]
    # the published row of the run's width: 97.3 at 128 units (recipe lstm-smnist-128), not 98.8 at 256
    assert float(lstm.published) == 97.3
    ours = float(lstm.ours.split(" ± ")[0])
    assert float(lstm.difference) == pytest.approx(ours - 97.3, abs=0.01)
    assert "NOT COMPARABLE" in lstm.notes
    gru = frame[frame.model == "gru"].iloc[0]
    assert gru.published == "—" and "published at 256 units, not at this width" in gru.notes
    assert "Quick profile" in path.read_text()
    assert path.with_suffix(".tex").exists()


def test_full_table_runs_each_recipe_and_says_what_differs(mnist, tmp_path):
    tiny = ["epochs=0.01", "task.n_train=640", "task.pixels_per_step=49", "hidden_size=4", "probes=1"]
    cells = paper.cell_configs(Recipes(tasks=("smnist",), seeds=(0,), cost=""), tiny, ["cornn"])
    assert {c.recipe for c in cells} == {"cornn-smnist"}
    runs = tmp_path / "runs"
    for cfg in cells:
        suite.run(cfg, out=runs, quiet=True, data_dir=mnist)
    from suite.analysis import report
    from suite.studies.paper_recipes import recipe_table

    row = recipe_table(report.load_runs(runs)).iloc[0]
    assert row.recipe == "cornn-smnist" and row.published == "99.35 %" and row["published selection"] == "last"
    assert "task.split_seed" in row["unknown in the recipe"]
    assert row["changed from the recipe"] == "epochs, hidden_size"


def test_every_study_table_is_dispatched_to_its_study_with_its_profile(tmp_path, monkeypatch):
    # the studies themselves are tested in their own files; here: the one runner hands each
    # kind of profile to its study, with the profile's settings and <out>/<table>-<profile>
    from suite.studies import deep_hdnn, gradients, runner, tuning_quick, tuning_verdict

    calls = []
    monkeypatch.setattr(deep_hdnn, "build", lambda where, epochs: calls.append(("hdnn", where.name, epochs)))
    monkeypatch.setattr(gradients, "run_study", lambda study: calls.append(
        ("gradients", study.out.name, study.train_steps, study.hidden_size)))
    monkeypatch.setattr(tuning_quick, "run_table", lambda where, data_dir, quiet, profile_name: calls.append(
        ("studies", where.name, profile_name)) or 0)
    monkeypatch.setattr(tuning_verdict, "run_table", lambda cells, out, data_dir, quiet: calls.append(
        ("tuning", out.name, cells)) or 0)
    for table, profile, cells in (("hdnn", "full", None), ("gradients", None, None), ("tuning", None, None),
                                  ("tuning", "full", None), ("tuning", "medium", "copy-T50")):
        plan = runner.plan(runner.Request(table, profile, tmp_path, cells=cells))
        assert runner.run_study(plan) == 0
    assert calls == [("hdnn", "hdnn-full", 50), ("gradients", "gradients-quick", 20, 32),
                     ("studies", "tuning-quick", "quick"), ("studies", "tuning-full", "full"),
                     ("tuning", "tuning-medium", "copy-T50")]
    with pytest.raises(SuiteError, match="runs its own study, not cells"):
        runner.cells(runner.plan(runner.Request("hdnn", "quick", tmp_path)))


def test_the_documented_new_table_is_a_valid_table(tmp_path):
    # docs/extending.md's example file: read by the catalog, its cells resolve
    import re

    from suite.core import paths

    text = (paths.CHECKOUT / "docs" / "extending.md").read_text()
    body = re.search(r"## Adding a table.*?```toml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "copy-gru-hrnn.toml").write_text(body)
    table = catalog.read_table(tmp_path / "copy-gru-hrnn.toml")
    cfgs = paper.cell_configs(table.profiles["quick"], [], ["gru", "hrnn"])
    assert len(cfgs) == 2 * 2 * 3 and {c.task_params["T"] for c in cfgs} == {"20", "50"}
    assert all(resolve(c).config["steps"] == 1000 for c in cfgs)
