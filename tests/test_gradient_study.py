"""`rnnsuite gradients`: parsing, the stable band, and the study end to end on a tiny grid."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from suite.cli.main import main
from suite.core.registry import SuiteError
from suite.studies import gradients as gs


def test_parse_dts():
    assert gs.parse_dts("1e-3:1:1") == [0.001, 0.01, 0.1, 1.0]
    four_decades = gs.parse_dts("1e-4:1:2")
    assert len(four_decades) == 9 and four_decades[0] == 1e-4 and four_decades[-1] == 1.0
    assert gs.parse_dts("0.1, 0.01") == [0.01, 0.1]
    for bad in ("abc", "1:0.1:1", "0:1:2", "-0.1", "1e-3:1:0"):
        with pytest.raises(SuiteError):
            gs.parse_dts(bad)


def test_parse_tasks():
    assert gs.parse_tasks("adding:100, psmnist:784") == [("adding", 100), ("psmnist", 784)]
    with pytest.raises(SuiteError, match="task:T"):
        gs.parse_tasks("adding")
    with pytest.raises(SuiteError, match="divide 784"):
        gs.parse_tasks("psmnist:100")
    with pytest.raises(SuiteError, match="did you mean 'adding'"):
        gs.parse_tasks("addding:100")


def test_models_not_yet_registered_are_skipped_with_a_note(capsys, monkeypatch):
    monkeypatch.setattr(gs, "HDNN_CELLS", ("hdnn-future-cell",))
    assert gs.select_models("hrnn,hdnn-future-cell,lstm") == ["hrnn", "lstm"]
    assert "'hdnn-future-cell' is not registered (yet); skipped" in capsys.readouterr().out
    with pytest.raises(SuiteError, match="unknown model"):
        gs.select_models("hrnn,nope")


def test_bands_are_contiguous_stable_runs():
    points = [(0.001, "stable"), (0.01, "stable"), (0.1, "exploding"), (1.0, "stable"), (0.3, "exploding")]
    assert gs._bands(points) == "0.001–0.01, 1"
    assert gs._bands([(0.1, "vanishing")]) == "none"


def test_model_params_are_held_fixed_in_every_setting():
    from suite.cli.gradients import model_params, study_from_args
    from suite.cli.main import build_parser

    assert model_params(["linoss.discretization=IMEX", "linoss.layers=1"]) == \
        {"linoss": {"discretization": "IMEX", "layers": "1"}}
    for bad in ("linoss=IMEX", "discretization=IMEX", "linoss.layers"):
        with pytest.raises(SuiteError, match="MODEL.KEY=VALUE"):
            model_params([bad])
    with pytest.raises(SuiteError, match="unknown model"):
        model_params(["linos.layers=1"])
    argv = ["gradients", "--models", "linoss,hrnn", "--model-param", "linoss.discretization=IMEX"]
    study = study_from_args(build_parser().parse_args(argv))
    assert gs.setting_config(study, "adding", 12, "linoss", "dt", 0.1).model_params == \
        {"discretization": "IMEX", "dt": 0.1}
    assert gs.setting_config(study, "adding", 12, "hrnn", "dt", 0.1).model_params == {"dt": 0.1}


TINY = ["gradients", "--tasks", "adding:12", "--models", "hrnn,lstm", "--dts", "0.01,3", "--train-steps", "2",
        "--hidden-size", "4", "--batch-size", "4", "--probe-batch", "4", "--device", "cpu"]


def test_study_writes_its_table_on_a_tiny_grid(tmp_path, capsys):
    out = tmp_path / "grad"
    assert main([*TINY, "--out", str(out)]) == 0
    first = (out / "table.csv").read_text()
    table = pd.read_csv(out / "table.csv")
    # two swept Δt and the heuristic's for hrnn, one row for lstm
    assert len(table) == 4 and table.heuristic.sum() == 1
    hrnn = table[table.model == "hrnn"].set_index("dt")
    assert hrnn.loc[0.01, "class_init"] == "stable" and hrnn.loc[3.0, "class_init"] == "exploding"
    star = table[table.heuristic].iloc[0]
    assert 0.01 < star["dt"] < 3 and star.class_init == "stable"
    bands = pd.read_csv(out / "bands.csv")
    row = bands[bands.model == "hrnn"].iloc[0]
    assert bool(row.star_in_band) and row.band_init == "0.01" and row.next_unstable_init == 3.0
    text = (out / "table.md").read_text()
    assert "## Stable bands and the heuristic" in text and "## Every setting" in text and "★" in text
    lines = [json.loads(line) for line in (out / "profiles.jsonl").read_text().splitlines()]
    diverged = int((table.class_trained == "diverged").sum())  # no trained profile for those
    assert len(lines) == 8 - diverged and {p["phase"] for p in lines} == {"init", "trained"}
    assert all(len(p["norms"]) == 12 for p in lines)
    heuristics = json.loads((out / "heuristic.json").read_text())
    assert heuristics["adding:12:hrnn"]["dt"] == pytest.approx(star["dt"])
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"heatmap_adding_T12_hrnn.png", "deviation_adding_T12.png", "profiles_adding_T12.png"} <= figures
    # run again: every setting is read back from its record, and the table is the same
    capsys.readouterr()
    assert main([*TINY, "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("(recorded)") == 4
    assert (out / "table.csv").read_text() == first


def test_bad_options_exit_2_with_one_line(tmp_path, capsys):
    code = main(["gradients", "--tasks", "adding:12", "--dts", "abc", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("rnnsuite: error: --dts") and "\n" not in err
    assert not (tmp_path / "x").exists()
