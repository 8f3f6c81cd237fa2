"""The medium tuning table (suite.studies.tuning_table, suite.studies.tuning_verdict) on a tiny profile:
every configuration runs on every eval seed, the verdicts follow their stated rule, a
rerun (also from a fresh clone, without the Optuna database) trains nothing, and bad
input is one line. About a minute."""

from __future__ import annotations

import dataclasses
import math
import re

import pandas as pd
import pytest
import torch

from suite.cli.main import main
from suite.studies import tuning_table, tuning_verdict
from suite.studies.catalog import TuningCell
from suite.tuning import study, tune

TINY = ("task.T=6", "hidden_size=8", "batch_size=16", "steps=20", "eval_every=10", "task.n_val=50",
        "task.n_test=50", "probes=1")


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    cell = TuningCell(task="adding", sets=TINY, target=0.2, recipes=("cornn-adding-T100",),
                      budget_note="tiny, for the test")
    monkeypatch.setattr(tuning_table, "CELLS", {"tiny": cell})
    monkeypatch.setattr(tuning_verdict, "CELLS", {"tiny": cell})
    profile = dataclasses.replace(tuning_table.PROFILE, trials=2, lr_trials=2, eval_seeds=3, dt_grid=(0.05, 0.5),
                                  cells={"tiny": cell}, tuned_models=("gru",))
    monkeypatch.setattr(tuning_table, "PROFILE", profile)
    monkeypatch.setattr(tuning_verdict, "PROFILE", profile)
    monkeypatch.setattr(tuning_table, "TUNED_MODELS", ("gru",))
    monkeypatch.setenv("RNNSUITE_TUNED_DIR", str(tmp_path / "tuned"))
    return tmp_path / "tuning-medium"


def _row(mean, std, n, higher=False):
    return pd.Series({"mean": mean, "std": std, "n": n, "higher_is_better": higher})


def test_verdict_rule():
    # lower is better: 0.10 ± 0.01 against 0.20 ± 0.01 over 3 seeds is far beyond 2 standard errors
    assert tuning_verdict.compare(_row(0.10, 0.01, 3), _row(0.20, 0.01, 3)) == "beats"
    assert tuning_verdict.compare(_row(0.20, 0.01, 3), _row(0.10, 0.01, 3)) == "loses to"
    # se = sqrt(2 * 0.05^2 / 3) = 0.041; a difference of 0.05 is within 2 se
    assert tuning_verdict.compare(_row(0.15, 0.05, 3), _row(0.10, 0.05, 3)) == "ties"
    assert tuning_verdict.compare(_row(0.10, 0.01, 2), _row(0.20, 0.01, 3)) is None
    # higher is better flips the sign
    assert tuning_verdict.compare(_row(0.9, 0.01, 3, True), _row(0.5, 0.01, 3, True)) == "beats"


def test_across_cells_ranks_the_heuristic_and_names_what_is_ahead():
    def row(model, role, chosen, mean, choose_s=0.0, dt=math.nan):
        return {"model": model, "role": role, "chosen": chosen, "mean": mean, "std": 0.01, "n": 3, "runs": 3,
                "planned": 3, "higher_is_better": False, "choose_s": choose_s, "dt": dt}

    frame = pd.DataFrame([row("hrnn", "heuristic", "heuristic", 0.10, 0.3, 0.45),
                          row("gru", "tuned", "Optuna (16 trials)", 0.01, 2486.0),
                          row("gru", "defaults", "defaults", 0.095),  # ahead, within 2 SE
                          row("lstm", "tuned", "Optuna (16 trials)", 0.20, 2159.0),
                          row("hrnn", "sweep", "fixed Δt = 0.1", 0.001, dt=0.1),  # the sweep is not ranked
                          row("hrnn", "sweep", "fixed Δt = 0.5", 0.099, dt=0.5)])
    out = tuning_verdict.across_cells({"cell": frame}).iloc[0]
    assert out["rank by mean"] == "3 of 4"
    assert out["ahead of it (choosing its hyperparameters, CPU-s; the gap)"] == (
        "tuned gru (2486; beyond 2 SE); untuned gru (0; a tie)")
    assert out["the heuristic's probe (CPU-s)"] == "0.3"
    assert out["its Δt against the sweep's best"] == "loses to Δt = 0.1"
    # a cell still missing rows says so beside its rank
    missing = frame.assign(runs=[3, 3, 3, 0, 3, 3], n=[3, 3, 3, 0, 3, 3])
    assert tuning_verdict.across_cells({"cell": missing}).iloc[0]["rank by mean"] == "3 of 3 (rows missing)"


def test_a_grid_point_that_diverged_on_every_seed_is_run_and_failed_not_missing(monkeypatch):
    monkeypatch.setattr(tuning_verdict, "PROFILE", dataclasses.replace(tuning_verdict.PROFILE, dt_grid=(0.1, 0.3, 1.0)))

    def row(role, chosen, mean, n, dt, run_s):
        return {"model": "hrnn", "role": role, "chosen": chosen, "mean": mean, "std": 0.01, "n": n, "runs": 3,
                "diverged": 3 - n, "planned": 3, "higher_is_better": True, "choose_s": 2.0, "dt": dt,
                "run_s": run_s, "metric": "accuracy"}

    frame = pd.DataFrame([row("heuristic", "heuristic", 0.76, 3, 0.165, 300.0),
                          row("sweep", "fixed Δt = 0.1", 0.79, 3, 0.1, 300.0),
                          row("sweep", "fixed Δt = 0.3", 0.49, 1, 0.3, 250.0),
                          row("sweep", "fixed Δt = 1", math.nan, 0, 1.0, 0.5)])
    text = tuning_verdict.regret(frame)
    assert "(3 of 3 grid points run; Δt = 1 diverged on all 3 seeds)" in text
    assert "missing" not in text
    assert "is Δt = 0.1 with 0.79" in text and "the heuristic loses to the best grid point" in text
    assert "costs 3 runs of one seed, about 550 CPU-s" in text  # the diverged run's half second counts too


def test_the_header_says_how_far_wall_seconds_are_from_cpu_seconds():
    # ratios of records that carry both; rows without records (a study not finished) carry none
    frames = [pd.DataFrame({"cpu_ratios": [[0.99, 0.82], math.nan]}), pd.DataFrame({"cpu_ratios": [[1.0]]})]
    note = tuning_verdict.cpu_wall_note(frames)
    assert "The 3 records" in note and "0.99 median (0.82–1.00)" in note
    assert "not measured" in tuning_verdict.cpu_wall_note([pd.DataFrame({"cpu_ratios": [[]]})])


def test_lr_only_study_fixes_every_other_searched_key():
    spec = tuning_table.studies("adding-T100")[0]
    assert spec.study_name == "adding-T100-hrnn-lr"
    assert study.search_space("hrnn", spec.sets) == {"lr": ("log", 1e-4, 1e-2)}
    assert "model.dt=heuristic" in spec.sets


def test_table_runs_every_arm_and_a_rerun_trains_nothing(tiny, monkeypatch, capsys):
    assert tuning_verdict.run_table(None, out=tiny) == 0
    frame = pd.read_csv(tiny / "table.csv")
    expected = {("hrnn", "heuristic"), ("hrnn", "heuristic Δt, Optuna lr (2 trials)"), ("hdnn-h2", "heuristic"),
                ("gru", "defaults"), ("gru", "Optuna (2 trials)"), ("cornn", "authors' recipe cornn-adding-T100"),
                ("hrnn", "fixed Δt = 0.05"), ("hrnn", "fixed Δt = 0.5")}
    assert set(zip(frame.model, frame.chosen)) == expected
    assert (frame.n + frame.diverged == 3).all() and (frame.planned == 3).all()
    heuristic = frame[frame.role == "heuristic"]
    for verdict in heuristic.verdict:
        for part in verdict.split("; "):
            assert re.fullmatch(r"(beats|ties|loses to|no verdict yet) (gru|cornn)(, (gru|cornn))?", part), verdict
    check_verdicts(frame)
    tuned = frame[frame.chosen.str.startswith("Optuna")].iloc[0]
    assert tuned.choose_s > 0  # trial compute is counted
    text = (tiny / "table.md").read_text()
    assert "## tiny: adding" in text and "Regret of the heuristic: its Δt =" in text
    assert (tiny / "figures" / "regret_tiny.png").is_file()

    # a rerun from a fresh clone (no Optuna database, no checkpoints): nothing is trained again
    journals = list((tiny / "records").glob("*/study.journal"))
    assert len(journals) == 2  # one per study
    for path in journals:
        path.unlink()
    monkeypatch.setattr(tune, "tune", lambda spec: pytest.fail(f"study {spec.study_name} searched again"))
    before = {p: p.stat().st_mtime_ns for p in tiny.rglob("record.json")}
    assert len(before) == 3 * len(frame)
    capsys.readouterr()
    assert tuning_verdict.run_table(None, out=tiny) == 0
    out = capsys.readouterr().out
    assert "searching" not in out and "\n[1/3]" not in out  # no study searched, no cell line printed
    assert {p: p.stat().st_mtime_ns for p in tiny.rglob("record.json")} == before
    again = pd.read_csv(tiny / "table.csv")
    pd.testing.assert_frame_equal(frame.drop(columns=["run_s", "total_s"]), again.drop(columns=["run_s", "total_s"]))


def check_verdicts(frame: pd.DataFrame) -> None:
    """Each heuristic row's verdict against each tuned or recipe row is the stated rule,
    worked out here: lower MSE is better, and a difference within two standard errors of
    the difference, sqrt(s1^2/3 + s2^2/3), is a tie. Every row ran its 3 seeds (nothing
    diverges at this size), so every pair has a verdict."""
    baselines = frame[frame.role.isin(["tuned", "recipe"])]
    assert set(baselines.model) == {"gru", "cornn"}
    for _, h in frame[frame.role == "heuristic"].iterrows():
        said = {}
        for part in h.verdict.split("; "):
            words = re.fullmatch(r"(beats|ties|loses to|no verdict yet) (.+)", part)
            said.update(dict.fromkeys(words[2].split(", "), words[1]))
        for _, b in baselines.iterrows():
            assert h.n == 3 and b.n == 3, (h.chosen, h.n, b.chosen, b.n)
            d, se = b["mean"] - h["mean"], math.sqrt(h["std"] ** 2 / 3 + b["std"] ** 2 / 3)
            expected = "ties" if abs(d) <= 2 * se else ("beats" if d > 0 else "loses to")
            assert said[b.model] == expected, (h.model, h.chosen, b.model, h["mean"], b["mean"], se, h.verdict)


def test_bad_input_is_one_line(capsys):
    assert main(["paper", "smnist", "--profile", "medium"]) == 2
    assert "table 'smnist' has no profile 'medium' (valid: quick, full)" in capsys.readouterr().err
    assert main(["paper", "tuning", "--profile", "medium", "--cells", "adding-T7"]) == 2
    assert "unknown cell 'adding-T7'" in capsys.readouterr().err
    assert main(["paper", "adding", "--cells", "adding-T100"]) == 2
    err = capsys.readouterr().err
    assert "table 'adding' (quick profile, grid) takes no --cells (it takes --models, --set, --runs, --launcher)" in err
    assert main(["paper", "tuning", "--profile", "medium", "--models", "gru"]) == 2
    assert "takes no --models (it takes --cells)" in capsys.readouterr().err
    assert main(["paper", "hdnn", "--launcher", "local"]) == 2
    assert "takes no --launcher (it takes no option beyond --out and --data-dir)" in capsys.readouterr().err


def test_missing_study_shows_as_not_run(tiny):
    frame = tuning_verdict.cell_rows("tiny", tiny)
    assert set(frame[frame.n == 0].chosen) >= {"Optuna (2 trials)", "heuristic Δt, Optuna lr (2 trials)"}
    assert all(math.isnan(v) for v in frame[frame.n == 0]["mean"])


def test_a_cell_splits_between_processes(tiny):
    """``only``: one study, or the plain runs, so that several processes share a cell."""
    records = tiny / tuning_table.RECORDS
    assert tuning_table.run_cell("tiny", tiny, only="runs") == 0
    assert not list(records.glob("*/study.journal"))  # no study touched
    plain = [p.parent.parent.name for p in (records / "tiny").rglob("record.json")]
    assert sorted(plain) == ["cornn"] * 3 + ["hdnn-h2"] * 3 + ["hrnn-dt0.05"] * 3 + ["hrnn-dt0.5"] * 3
    assert tuning_table.run_cell("tiny", tiny, only="tiny-gru") == 0
    assert [p.parent.name for p in records.glob("*/study.journal")] == ["tiny-gru"]


def test_committed_medium_table_is_what_its_committed_records_give(tmp_path):
    # the table under results/tables/tuning-medium is rebuilt from the records and study
    # summaries committed beside it (a copy, so that nothing committed is rewritten)
    import shutil

    committed = tuning_table.OUT
    if not (committed / "table.md").is_file():
        pytest.skip("no committed medium tuning table in this checkout")
    copy = tmp_path / "tuning-medium"
    shutil.copytree(committed, copy, ignore=shutil.ignore_patterns("*.png", "*.journal", ".*"))
    tuning_verdict.write_table(list(tuning_table.CELLS), copy)
    for name in ("table.md", tuning_verdict.IN_PROGRESS):
        assert (copy / name).is_file() == (committed / name).is_file(), name
        if (committed / name).is_file():
            assert (copy / name).read_text() == (committed / name).read_text(), name
    def cell_sections(text: str) -> list[str]:  # "## NAME: task, ..."; "## Across cells" sums them up
        return [s for s in text.split("## ")[1:] if ":" in s.splitlines()[0]]

    sections = cell_sections((committed / "table.md").read_text())
    running = (committed / tuning_verdict.IN_PROGRESS)
    in_progress = cell_sections(running.read_text()) if running.is_file() else []
    # one section per cell: each cell in exactly one of the two files
    assert len(sections) + len(in_progress) == len(tuning_table.CELLS)
    assert all("not run yet" not in section and "not measured yet" not in section
               for section in sections)  # every cell of table.md complete: each row and the regret line


@pytest.mark.parametrize("name", list(tuning_table.CELLS))
def test_every_cell_resolves_and_its_target_beats_the_trivial_score(name):
    # every run of the cell is a valid configuration before anything trains, and "solved"
    # lies on the far side of the trivial strategy from where training starts
    from suite.core.build import resolve
    from suite.core.registry import TASKS
    from suite.tuning.tune import study_definition

    cell = tuning_table.CELLS[name]
    for spec in tuning_table.studies(name):
        study_definition(spec)
    configs = [cfg for arm in tuning_table.plain_arms(name) for cfg in arm.configs]
    task_cls = TASKS.get(cell.task)
    params = [resolve(cfg).config["task_params"] for cfg in configs]
    tasks = [task_cls(task_cls.Config(**p)) for p in params]
    # the cell's name gives task.T, or for a task without one (psmnist) the sequence length
    assert {p.get("T", task.seq_len) for p, task in zip(params, tasks)} == {int(name.split("-T")[1])}
    trivial = tasks[0].describe()["trivial_baseline"]
    assert trivial["metric"] == task_cls.metric
    assert (cell.target > trivial["value"]) if task_cls.higher_is_better else (cell.target < trivial["value"])
    assert cell.budget_note
