"""Paper tables: ours beside the published number, from records only."""

from __future__ import annotations

import pandas as pd
import pytest

import suite
from suite.cli import paper as paper_command
from suite.cli.main import main
from suite.core.build import resolve
from suite.studies import paper


def test_unknown_table_is_a_one_line_error(capsys):
    assert main(["paper", "smnsit"]) == 2
    err = capsys.readouterr().err
    assert "unknown table 'smnsit'" in err and "smnist" in err and err.count("\n") == 1


def test_every_table_has_both_profiles_and_a_cost():
    for name, table in paper.TABLES.items():
        full = table.full.names() if isinstance(table.full, paper.RecipeProfile) else table.full.cells
        assert table.quick.cells and full and table.cost, name
    for name, spec in paper_command.DELEGATED.items():
        assert spec["quick"] and spec["full"] and spec["cost"], name


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
    cells = paper.cell_configs(paper.TABLES["smnist"], paper.RecipeProfile(tasks=("smnist",), seeds=(0,)),
                               tiny, ["cornn"])
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
