"""The command line: bad input gives one line, exit code 2 and no files; good input works."""

from __future__ import annotations

import subprocess
import sys

import pytest

from suite.cli.main import PRESETS, build_parser, load_sweep, main
from suite.core.build import resolve

RUN = ["run", "--task", "adding", "--model", "gru", "--set", "steps=6", "--set", "hidden_size=4",
       "--set", "task.T=5", "--set", "task.n_val=8", "--set", "task.n_test=8", "--set", "eval_every=3",
       "--set", "probes=1", "--set", "probe_batch=8", "-q"]


@pytest.mark.parametrize("argv, message", [
    (["run", "--task", "addding", "--model", "gru"], "unknown task 'addding'; did you mean 'adding'?"),
    (["run", "--task", "adding", "--model", "lstn"], "unknown model 'lstn'; did you mean 'lstm'?"),
    (["run", "--task", "adding", "--model", "gru", "--set", "stepz=5"], "unknown key 'stepz'; did you mean 'steps'?"),
    (["run", "--task", "adding", "--model", "gru", "--set", "steps=ten"], "steps='ten' is not an integer"),
    (["run", "--task", "adding", "--model", "gru", "--set", "task.T=0"], "task.T=0 must be >= 2"),
    (["run", "--task", "adding", "--model", "gru", "--set", "lr=-1"], "lr=-1.0 must be > 0"),
    (["run", "--task", "adding", "--model", "gru", "--set", "model.eps=0.1"], "unknown key 'model.eps'"),
    (["run", "--task", "adding", "--model", "antisymmetric", "--set", "model.eps=abc"],
     "model.eps='abc' is not a number"),
    (["run", "--task", "adding", "--model", "gru", "--set", "selection=first"], "not one of: best_val, last"),
    (["run", "--task", "adding", "--model", "gru", "--set", "lr"], "is not key=value"),
    (["run", "--task", "smnist", "--model", "gru", "--data-dir", "/nonexistent/mnist"], "not found in /nonexistent"),
    (["sweep", "--tasks", "adding", "--models", "gru,nope"], "unknown model 'nope'"),
    (["sweep", "--config", "no-such-preset"], "neither a file nor a preset"),
])
def test_bad_input_exit_2_one_line_nothing_written(argv, message, tmp_path, capsys):
    out = tmp_path / "runs"
    code = main([*argv, "--out", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("rnnsuite: error:") and "\n" not in err and message in err, err
    assert not out.exists()


def test_run_writes_a_record_and_rerun_skips(tmp_path, capsys):
    assert main([*RUN, "--out", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "test mse" in first and "record: " in first
    records = list(tmp_path.rglob("record.json"))
    assert len(records) == 1
    assert main([*RUN, "--out", str(tmp_path)]) == 0
    assert "skip" in capsys.readouterr().out


def test_sweep_then_report(tmp_path, capsys):
    config = tmp_path / "grid.toml"
    config.write_text(
        'tasks = ["adding", "copy"]\nmodels = ["gru", "antisymmetric"]\nseeds = [0, 1]\n'
        '[set]\nsteps = 4\nhidden_size = 4\neval_every = 2\nprobes = 1\nprobe_batch = 8\n'
        '[task_params.adding]\nT = 5\nn_val = 8\nn_test = 8\n'
        '[task_params.copy]\nT = 2\nn_val = 8\nn_test = 8\n'
        '[model_params.antisymmetric]\neps = 0.5\n')
    runs = tmp_path / "runs"
    assert main(["sweep", "--config", str(config), "--out", str(runs), "-q"]) == 0
    assert len(list(runs.rglob("record.json"))) == 8
    assert main(["sweep", "--config", str(config), "--out", str(runs), "-q"]) == 0
    assert "sweep: 0 done here, 8 skipped as complete, 0 left to other workers, 0 failed" in capsys.readouterr().out
    report_dir = tmp_path / "report"
    assert main(["report", "--runs", str(runs), "--out", str(report_dir)]) == 0
    table = capsys.readouterr().out
    header = table.splitlines()[0]
    for column in ("test (mean ± std)", "grad ratio init", "grad ratio end", "step ms (median)", "params",
                   "trivial baseline"):
        assert column in header
    assert sum(1 for line in table.splitlines() if line.startswith("| adding") or line.startswith("| copy")) == 4
    assert (report_dir / "report.md").exists()
    assert len(list((report_dir / "figures").glob("*.png"))) == 4
    assert main(["report", "--runs", str(runs), "--format", "latex"]) == 0
    assert "\\begin{tabular}" in capsys.readouterr().out


def test_report_without_records_is_an_error(tmp_path, capsys):
    assert main(["report", "--runs", str(tmp_path)]) == 2
    assert "no run records" in capsys.readouterr().err


def test_list_shows_tasks_models_and_defaults(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("adding", "copy", "smnist", "psmnist", "lstm", "gru", "antisymmetric", "hrnn", "eps: float = 0.01"):
        assert word in out


def test_console_script_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "suite.cli.main", "run", "--task", "adding", "--model", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_report_orders_variants_by_number():
    import pandas as pd

    from suite.analysis import report

    runs = pd.DataFrame([
        {"task": "adding", "variant": f"T={T}", "model": model, "status": "ok", "test": 0.1,
         "higher_is_better": False, "metric": "mse", "ratio_init": 0.0, "ratio_end": 0.0,
         "median_step_s": 0.01, "params": 10, "baseline": 0.167}
        for T in (1000, 50, 200) for model in ("lstm", "gru")])
    summary = report.summarize(runs)
    assert list(summary.variant) == ["T=50", "T=50", "T=200", "T=200", "T=1000", "T=1000"]
    assert list(summary.model[:2]) == ["gru", "lstm"]


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESETS.glob("*.toml")))
def test_every_preset_resolves_every_cell(preset):
    args = build_parser().parse_args(["sweep", "--config", preset])
    configs = load_sweep(args)
    assert configs and all(resolve(c).hash for c in configs)  # resolve raises on any bad key or value


def test_demo_covers_every_model_family():
    args = build_parser().parse_args(["sweep", "--config", "demo"])
    models = {c.model for c in load_sweep(args)}
    for family in (("lstm", "gru"), ("antisymmetric",), ("hrnn",), ("hdnn-",), ("cornn", "unicornn", "lem"),
                   ("exprnn",)):
        assert any(m.startswith(family) for m in models), family


def test_report_never_mixes_settings_of_one_model(tmp_path, capsys):
    for lr in ("0.001", "0.01"):
        for seed in ("0", "1"):
            assert main([*RUN, "--set", f"lr={lr}", "--seed", seed, "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["report", "--runs", str(tmp_path)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| adding")]
    assert len(rows) == 2 and "gru [lr=0.001]" in rows[0] and "gru [lr=0.01]" in rows[1]
    assert all("|       2 |" in row for row in rows)  # two seeds each, not four in one mean
