"""Paper tables: ours beside the published number, from records only."""

from __future__ import annotations

import pandas as pd
import pytest

import suite
from suite import paper
from suite.build import resolve
from suite.cli import main


def test_unknown_table_is_a_one_line_error(capsys):
    assert main(["paper", "smnsit"]) == 2
    err = capsys.readouterr().err
    assert "unknown table 'smnsit'" in err and "smnist" in err and err.count("\n") == 1


def test_every_table_has_both_profiles_and_a_cost():
    for name, table in paper.TABLES.items():
        assert table.quick.cells and table.full.cells and table.cost, name
    for name, spec in paper.DELEGATED.items():
        assert spec["quick"] and spec["full"] and spec["cost"], name


def test_smnist_table_puts_published_numbers_beside_ours(mnist, tmp_path, capsys):
    runs = tmp_path / "runs"
    hashes = set()
    for model, lr in (("lstm", 0.001), ("gru", 0.001), ("gru", 0.01)):  # gru at lr 0.01: a stale setting
        for seed in (0, 1):
            cfg = suite.RunConfig(task="smnist", model=model, seed=seed, hidden_size=4, batch_size=16, steps=2,
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
    assert float(lstm.published) == 98.8  # results/reference/published.csv, first lstm smnist row
    ours = float(lstm.ours.split(" ± ")[0])
    assert float(lstm.difference) == pytest.approx(ours - 98.8, abs=0.01)
    assert "NOT COMPARABLE" in lstm.notes
    assert "Quick profile" in path.read_text()
    assert path.with_suffix(".tex").exists()
