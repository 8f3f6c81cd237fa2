"""The demo's preset (per-model run keys of a sweep file), the overview figure of
`rnnsuite report`, and the progress lines of long commands."""

from __future__ import annotations

import re

from PIL import Image

from suite.cli.main import build_parser, load_sweep, main
from suite.core import progress

TINY = ["--set", "steps=10", "--set", "task.T=5", "--set", "hidden_size=8", "--set", "batch_size=8",
        "--set", "task.n_val=16", "--set", "task.n_test=16", "--set", "eval_every=5"]


def test_a_sweep_file_sets_run_keys_per_model_and_the_command_line_wins(tmp_path):
    lrs = {c.model: c.lr for c in load_sweep(build_parser().parse_args(["sweep", "--config", "demo"]))}
    assert lrs["cornn"] == 0.02 and {v for m, v in lrs.items() if m != "cornn"} == {0.003}
    args = build_parser().parse_args(["sweep", "--config", "demo", "--set", "lr=0.01"])
    assert {c.lr for c in load_sweep(args)} == {0.01}
    bad = tmp_path / "bad.toml"
    bad.write_text('tasks = ["adding"]\nmodels = ["gru"]\nmodel_set = { gru = 3 }\n')
    assert main(["sweep", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2


def test_report_writes_the_overview_figure(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["sweep", "--tasks", "adding,copy", "--models", "gru,lstm", "--out", str(runs), "-q", *TINY]) == 0
    capsys.readouterr()
    assert main(["report", "--runs", str(runs), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert f"figure: {tmp_path / 'report' / 'overview.png'}" in out
    with Image.open(tmp_path / "report" / "overview.png") as image:  # one row of two panels per task
        assert image.width > 1000 and image.height > 300


def test_progress_lines_count_cells_and_estimate_the_time_left(capsys):
    bar = progress.CellProgress(4, "sweep", quiet=True)
    bar.line("[1/4] a", "done", 30.0)
    bar.advance("skipped")
    bar.line("[3/4] c", "failed", 90.0)
    bar.line("[4/4] d", "done", 60.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1/4] a  (30 s; 1 done, 0 skipped, 0 failed; ~90 s left)"  # 30 s a cell, 3 to go
    assert lines[1] == "[3/4] c  (90 s; 1 done, 1 skipped, 1 failed; ~60 s left)"  # (30 + 90) / 2 for 1 left
    assert re.fullmatch(r"\[4/4\] d  \(60 s; 2 done, 1 skipped, 1 failed\)", lines[2])
    assert bar.bar is None  # quiet (and not a terminal): no bar, the lines stay
