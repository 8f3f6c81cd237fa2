"""The command line a new user meets: a start-up without torch, --version, a readable
`list` and `recipes`, help on every option, errors that name every key to change, bars
only on a terminal, `report` reading the user's own records, and the thread count."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from suite.cli import listing
from suite.cli.main import COMMANDS, build_parser, main
from suite.core import threads
from suite.core.progress import bars_shown
from suite.core.registry import SuiteError

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "pandas", "matplotlib", "optuna")
TINY = ["--task", "adding", "--model", "gru", "--set", "steps=4", "--set", "hidden_size=4", "--set", "task.T=5",
        "--set", "task.n_val=8", "--set", "task.n_test=8", "--set", "eval_every=2", "--set", "probes=1",
        "--set", "probe_batch=8", "--device", "cpu", "-q"]


def _python(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=True)


def test_help_and_every_command_module_import_no_torch(tmp_path):
    modules = ", ".join(f"'suite.cli.{m}'" for m in ("main", "listing", "recipes", "paper", "tune", "gradients",
                                                      "export", "site"))
    code = ("import importlib, sys\n"
            f"[importlib.import_module(m) for m in ({modules})]\n"
            "from suite.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = _python(code, tmp_path)
    assert "list" in proc.stdout and "site" in proc.stdout  # the help was printed
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout


def test_a_second_list_prints_the_same_text_without_importing_torch(tmp_path):
    code = ("import sys\nfrom suite.cli.main import main\nmain(['list'])\n"
            "print('IMPORTED', sorted(m for m in ('torch',) if m in sys.modules))")
    first, second = _python(code, tmp_path), _python(code, tmp_path)
    assert first.stdout.splitlines()[-1] == "IMPORTED ['torch']"  # the first builds the text from the models
    assert second.stdout.splitlines()[-1] == "IMPORTED []"  # the second reads it from the cache
    assert first.stdout.splitlines()[:-1] == second.stdout.splitlines()[:-1]
    assert first.stdout.splitlines()[:-1] == listing.render().splitlines()


def test_the_list_cache_key_follows_the_sources(tmp_path):
    (tmp_path / "m.py").write_text("x = 1\n")
    key = listing.cache_key([tmp_path])
    assert listing.cache_key([tmp_path]) == key
    (tmp_path / "m.py").write_text("x = 22\n")  # another size: another key
    assert listing.cache_key([tmp_path]) != key


def test_version_is_the_installed_metadata(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnnsuite {metadata.version('rnnsuite')}"


def test_list_shows_choices_unions_and_whole_descriptions_in_100_columns():
    text = listing.render()
    assert "optimizer: 'adam' | 'rmsprop' | 'sgd' = 'adam'" in text
    assert "clip: float | None = None" in text and "milestones: tuple of float = ()" in text
    assert "Literal" not in text and "Union" not in text and "Optional" not in text
    assert max(len(line) for line in text.splitlines()) <= listing.WIDTH
    flat = " ".join(text.split())  # the cornn docstring's first paragraph ends with the paper's title
    assert "learning long time dependencies\")." in flat


def test_recipes_is_a_table_of_100_columns_with_a_header(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["recipe", "model", "published", "metric", "checked"]
    assert max(len(line) for line in lines) <= 100
    row = next(line for line in lines if line.startswith("lem-adding-T2000 "))
    assert row.split()[1:4] == ["lem", "1901", "iterations_to_mse_below_0.01"]  # units said once


def _options(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{prefix}{name} ")
        elif not isinstance(action, argparse._HelpAction):
            yield f"{prefix}{'/'.join(action.option_strings) or action.dest}", action.help


def test_every_option_of_every_command_has_help():
    parser = build_parser()
    missing = [name for name, text in _options(parser) if not text]
    assert not missing, f"options without help: {missing}"
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(subparsers.choices) == sorted(COMMANDS)


def test_an_error_about_probes_and_steps_names_probes_to_set(tmp_path, capsys):
    assert main(["run", *TINY, "--set", "steps=2", "--set", "probes=3", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "probes=3 exceeds the run's steps=2" in err and "--set probes=2" in err


def test_bars_only_on_a_terminal(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(sys, "stderr", Stream(False))
    assert not bars_shown(quiet=False)
    monkeypatch.setattr(sys, "stderr", Stream(True))
    assert bars_shown(quiet=False) and not bars_shown(quiet=True)


def test_a_run_into_a_log_writes_no_bar(tmp_path, capsys):
    argv = [a for a in TINY if a != "-q"]  # not quiet: only the missing terminal keeps the bar away
    assert main(["run", *argv, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err, err


def test_report_reads_the_users_records_and_the_committed_ones_only_when_named(tmp_path, monkeypatch, capsys):
    # a checkout's committed records lie beside their tables (results/tables/<table>/records),
    # never in results/runs, where `report` looks by default
    from suite.studies import sanity

    reference = sorted(sanity.RUNS.glob("*/*/s0-*"))
    adding = next(p for p in reference if p.parts[-3] == "adding")
    mnist = next(p for p in reference if p.parts[-3] != "adding")
    user_root, committed = tmp_path / "results" / "runs", tmp_path / "results" / "tables" / "sanity-full" / "records"
    shutil.copytree(adding, user_root / adding.relative_to(sanity.RUNS))
    shutil.copytree(mnist, committed / mnist.relative_to(sanity.RUNS))
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 0
    out = capsys.readouterr().out
    assert "adding" in out and mnist.parts[-3] not in out
    assert main(["report", "--runs", "results/tables/sanity-full/records"]) == 0
    out = capsys.readouterr().out
    assert mnist.parts[-3] in out and "adding" not in out


def test_thread_count_flag_then_environment_then_default(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.chosen() == threads.DEFAULT
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.chosen() == 2 and threads.chosen(3) == 3
    monkeypatch.setenv(threads.ENV, "two")
    with pytest.raises(SuiteError, match="RNNSUITE_THREADS='two' is not a thread count"):
        threads.chosen()
    with pytest.raises(SuiteError, match="--threads 0 must be >= 1"):
        threads.chosen(0)


def test_the_thread_count_is_recorded_outside_the_configuration_hash(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv(threads.ENV, "1")  # restored after the test; main sets it
    before = torch.get_num_threads()
    try:
        seen = []
        for count in ("1", "2"):
            assert main(["run", *TINY, "--threads", count, "--out", str(tmp_path), "--overwrite"]) == 0
            record = json.loads(next(tmp_path.rglob("record.json")).read_text())
            seen.append((record["environment"]["torch_threads"], record["config_hash"]))
    finally:
        torch.set_num_threads(before)
    assert [t for t, _ in seen] == [1, 2]
    assert seen[0][1] == seen[1][1]  # the same experiment: the same hash, the same run directory
