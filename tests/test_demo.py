"""The demo's preset (per-model run keys of a sweep file), the demo itself at a tiny size
(its sweep and report, and what the overview figure draws), and the progress lines of
long commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from matplotlib.colors import to_hex
from PIL import Image

from suite.analysis import plotting
from suite.cli.main import build_parser, load_sweep, main
from suite.core import progress, records


def test_a_sweep_file_sets_run_keys_per_model_and_the_command_line_wins(tmp_path):
    lrs = {c.model: c.lr for c in load_sweep(build_parser().parse_args(["sweep", "--config", "demo"]))}
    assert lrs["cornn"] == 0.02 and {v for m, v in lrs.items() if m != "cornn"} == {0.003}
    args = build_parser().parse_args(["sweep", "--config", "demo", "--set", "lr=0.01"])
    assert {c.lr for c in load_sweep(args)} == {0.01}
    bad = tmp_path / "bad.toml"
    bad.write_text('tasks = ["adding"]\nmodels = ["gru"]\nmodel_set = { gru = 3 }\n')
    assert main(["sweep", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2


# The demo's own preset (one model of each family) at a tiny size where some models
# learn and some do not (seed 0, measured: gru 0.012 and hdnn-h2 0.076 below half the
# baseline, cornn 0.19 and antisymmetric 0.19 above it), so both colours are drawn.
DEMO_TINY = ["--set", "steps=80", "--set", "task.T=5", "--set", "hidden_size=8", "--set", "batch_size=16",
             "--set", "task.n_val=32", "--set", "task.n_test=64", "--set", "eval_every=40", "--set", "lr=0.03"]


def test_the_demo_draws_each_model_against_the_baseline_beside_its_gradient_ratio(tmp_path, capsys, monkeypatch):
    saved, save = {}, plotting.save

    def keep(fig, path, **kw):  # the figures as drawn, to read their artists back
        saved[Path(path).name] = fig
        return save(fig, path, **kw)

    monkeypatch.setattr(plotting, "save", keep)
    out = tmp_path / "demo"  # what `nox -s demo` runs: the sweep of the preset, then the report
    assert main(["sweep", "--config", "demo", "--out", str(out), "-q", *DEMO_TINY]) == 0
    assert main(["report", "--runs", str(out), "--out", str(out)]) == 0
    assert f"figure: {out / 'overview.png'}" in capsys.readouterr().out
    recs = {rec["model"]: rec for _, rec in records.iter_records(out, skipped=[])}
    preset = {c.model for c in load_sweep(build_parser().parse_args(["sweep", "--config", "demo"]))}
    assert set(recs) == preset and len(preset) >= 8  # one record per model of the preset
    with Image.open(out / "overview.png") as image:
        assert image.width > 0 and image.height > 0

    ax_metric, ax_ratio = saved["overview.png"].axes  # one task: one row of two panels
    order = sorted(recs, key=lambda m: recs[m]["metrics"]["test"])  # best first: lower MSE is better
    assert [t.get_text() for t in ax_metric.get_yticklabels()] == order
    baseline = recs["gru"]["task_info"]["trivial_baseline"]["value"]
    (line,) = [ln for ln in ax_metric.get_lines() if ln.get_linestyle() == "--"]
    assert list(line.get_xdata()) == [baseline, baseline] and baseline == pytest.approx(1 / 6)
    dots = [ln for ln in ax_metric.get_lines() if ln.get_marker() == "o"]
    assert [ln.get_xdata()[0] for ln in dots] == pytest.approx([recs[m]["metrics"]["test"] for m in order])
    assert [ln.get_ydata()[0] for ln in dots] == list(range(len(order)))
    # colour: one for the models that learned (an MSE below half the baseline), another for
    # the rest; both kinds occur here
    learned = [recs[m]["metrics"]["test"] < baseline / 2 for m in order]
    assert any(learned) and not all(learned)
    colours = {ok: {to_hex(ln.get_color()) for ln, k in zip(dots, learned) if k == ok} for ok in (True, False)}
    assert len(colours[True]) == len(colours[False]) == 1 and colours[True] != colours[False], colours

    bars = ax_ratio.patches  # at initialization (one per model), then after training
    assert [b.get_width() for b in bars] == pytest.approx(
        [recs[m]["gradients"]["ratio_init"] for m in order] + [recs[m]["gradients"]["ratio_end"] for m in order])


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
