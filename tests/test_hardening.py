"""Hostile but realistic input: every impossible value is one line and exit code 2 with
nothing written; disk faults are found before the work and cleaned after it; a cell
held by a live worker is left to it; `report` skips what it cannot read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import suite
from suite.cli.main import main
from suite.core import claims, harness, probes, records
from suite.core.registry import SuiteError

TINY = ["--set", "steps=12", "--set", "hidden_size=4", "--set", "task.T=5", "--set", "task.n_val=8",
        "--set", "task.n_test=8", "--set", "eval_every=4", "--set", "probes=1", "--set", "probe_batch=8",
        "--device", "cpu", "-q"]
RUN = ["run", "--task", "adding", "--model", "gru", *TINY]


def tiny(**kw) -> suite.RunConfig:
    fields = dict(task="adding", model="gru", steps=12, hidden_size=4, eval_every=4, probes=1, probe_batch=8,
                  device="cpu", task_params={"T": 5, "n_val": 8, "n_test": 8})
    return suite.RunConfig(**{**fields, **kw})


def one_line_error(capsys, argv: list[str], expected: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnsuite: error:") and err.count("\n") == 1, err
    assert expected in err, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["--set", "lr=inf"], "lr='inf' is not a finite number"),
    (["--set", "lr=1e400"], "lr='1e400' is not a finite number"),
    (["--set", "clip=inf"], "clip='inf' is not a finite number"),
    (["--set", "weight_decay=inf"], "weight_decay='inf' is not a finite number"),
    (["--set", "task.target=nan"], "task.target='nan' is not a finite number"),
    (["--model", "antisymmetric", "--set", "model.eps=inf"], "model.eps='inf' is not a finite number"),
    (["--model", "hrnn", "--set", "model.dt=inf"], "model.dt='inf' is not a finite number"),
    (["--set", "val_batches=0"], "val_batches=0 must be >= 1"),
    (["--set", "val_batches=-1"], "val_batches=-1 must be >= 1"),
    (["--seed", "-1"], "seed=-1 is not a valid seed (use 0 .. 4294967295)"),
    (["--seed", str(2**32)], "seed=4294967296 is not a valid seed"),
    (["--set", "task.data_seed=-5"], "task.data_seed=-5 is not a valid seed"),
    (["--set", "hidden_size=1000000"], "needs at least 54.6 TiB of memory"),
    (["--checkpoint-every", "-1"], "--checkpoint-every -1 must be >= 0"),
    (["--set", "probe_batch=9"], "probe_batch=9 exceeds the 8 validation examples of adding"),
    (["--set", "probes=13"], "probes=13 exceeds the run's steps=12"),
    (["--set", "milestones=1,inf", "--set", "schedule=milestones"], "milestones='inf' is not a finite number"),
])
def test_impossible_values_are_one_line_and_write_nothing(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(harness, "_train", lambda *a, **k: pytest.fail("trained on an impossible value"))
    out = tmp_path / "runs"
    one_line_error(capsys, [*RUN, *argv, "--out", str(out)], message)  # a second --model wins
    assert not out.exists()


def test_batches_larger_than_a_split_are_refused_before_any_data(capsys, tmp_path):
    one_line_error(capsys, ["run", "--task", "smnist", "--model", "gru", "--set", "task.n_train=64",
                            "--set", "batch_size=100", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")],
                   "batch_size=100 exceeds the 64 training examples of smnist")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("toml, message", [
    ('tasks = ["adding"]\nmodels = ["gru"]\n[task_params]\nadding = 5\n', "task_params.adding must be a table"),
    ('tasks = ["adding"]\nmodels = ["gru"]\ntask_params = 5\n', "[task_params] must hold one table per name"),
    ('tasks = ["adding"]\nmodels = ["gru"]\n[model_params]\ngru = "fast"\n', "model_params.gru must be a table"),
    ('tasks = ["adding"]\nmodels = ["gru"]\nseeds = [0, "x"]\n', "seeds must be a list of integers"),
    ('tasks = "adding"\nmodels = ["gru"]\n', "tasks must be a list of names"),
    ('tasks = ["adding"]\nmodels = ["gru"]\nset = 3\n', "[set] must be a table of run keys"),
    ('tasks = ["adding"]\nmodels = ["gru"]\n[set]\nlr = inf\n', "lr='inf' is not a finite number"),
])
def test_bad_sweep_files_are_one_line(toml, message, tmp_path, capsys):
    path = tmp_path / "grid.toml"
    path.write_text(toml)
    one_line_error(capsys, ["sweep", "--config", str(path), "--out", str(tmp_path / "runs")], message)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("seeds, message", [("0,x", "--seeds '0,x': 'x' is not an integer"),
                                            ("", "--seeds '': '' is not an integer"),
                                            ("0,4294967296", "seed=4294967296 is not a valid seed")])
def test_bad_seed_list_is_one_line(seeds, message, tmp_path, capsys):
    one_line_error(capsys, ["sweep", "--tasks", "adding", "--models", "gru", "--seeds", seeds,
                            "--out", str(tmp_path / "runs")], message)
    assert not (tmp_path / "runs").exists()


# -- disk faults ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [RUN, ["sweep", "--tasks", "adding", "--models", "gru", *TINY]])
def test_output_under_a_regular_file_fails_before_training(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(harness, "_train", lambda *a, **k: pytest.fail("trained although the output is unwritable"))
    blocker = tmp_path / "file"
    blocker.write_text("in the way\n")
    err = one_line_error(capsys, [*command, "--out", str(blocker / "runs")], f": {blocker} is a file, not a directory")
    assert err.startswith(f"rnnsuite: error: cannot write under {blocker / 'runs'}")


def test_tune_output_under_a_regular_file_fails_before_any_trial(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(harness, "_train", lambda *a, **k: pytest.fail("a trial ran"))
    blocker = tmp_path / "file"
    blocker.write_text("in the way\n")
    one_line_error(capsys, ["tune", "--task", "adding", "--model", "gru", "--trials", "2", *TINY,
                            "--storage", f"sqlite:///{tmp_path / 'db.sqlite'}", "--out", str(blocker / "t")],
                   "is a file, not a directory")


def test_failed_checkpoint_save_keeps_the_last_good_one(tmp_path):
    path = tmp_path / ".cell.checkpoint.pt"
    ckpt = harness.Checkpoint(path, 5, fresh=False, config_hash="abc")
    ckpt.save({"step": 5, "config_hash": "abc"})
    ckpt.tmp.symlink_to("/dev/full")  # every write into the temporary file: ENOSPC, from the kernel
    with pytest.raises(records.DiskError) as err:
        ckpt.save({"step": 10, "config_hash": "abc"})
    assert str(err.value) == (f"cannot write the checkpoint {ckpt.tmp}: disk full (no space left on device); "
                              f"the last good checkpoint {path.name} is kept")
    assert not ckpt.tmp.exists() and not ckpt.tmp.is_symlink()  # the temporary file removed
    assert ckpt.load()["step"] == 5


def test_unreadable_checkpoint_is_removed_and_the_run_starts_over(tmp_path, capsys):
    cfg = tiny()
    target = records.run_dir(tmp_path, "adding", "gru", 0, suite.resolve(cfg).hash)
    records.checkpoint_path(target).parent.mkdir(parents=True)
    records.checkpoint_path(target).write_bytes(b"PK\x03\x04 truncated")
    rec = suite.run(cfg, out=tmp_path, quiet=True, checkpoint_every=5)
    assert rec["timing"]["resumed_at_steps"] == [] and "is unreadable" in capsys.readouterr().err


def test_failed_record_write_names_the_cause_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    cfg = tiny()
    real = records.tempfile.mkstemp

    def full_in_staging(dir=None, **kw):  # the record's files go to a disk that is full
        if str(dir).endswith(".staging"):
            return os.open("/dev/full", os.O_WRONLY), str(Path(dir) / "fake.tmp")
        return real(dir=dir, **kw)

    monkeypatch.setattr(records.tempfile, "mkstemp", full_in_staging)
    with pytest.raises(records.DiskError, match=r"cannot write the record .*: disk full \(no space left on device\)"):
        suite.run(cfg, out=tmp_path, quiet=True, checkpoint_every=5)
    target = records.run_dir(tmp_path, "adding", "gru", 0, suite.resolve(cfg).hash)
    assert sorted(p.name for p in target.parent.iterdir()) == [records.checkpoint_path(target).name]  # kept
    monkeypatch.undo()
    rec = suite.run(cfg, out=tmp_path, quiet=True, checkpoint_every=5)  # once there is room: resumes
    assert rec["timing"]["resumed_at_steps"] == [10]
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_a_new_run_removes_what_killed_writes_left(tmp_path, capsys):
    cfg = tiny()
    target = records.run_dir(tmp_path, "adding", "gru", 0, suite.resolve(cfg).hash)
    target.parent.mkdir(parents=True)
    (target.parent / f".{target.name}.1234abcd.staging").mkdir()
    (target.parent / f".{target.name}.1234abcd.staging" / "curves.csv").write_text("step\n")
    (target.parent / f".{target.name}.checkpoint.pt.tmp").write_bytes(b"half")
    suite.run(cfg, out=tmp_path, quiet=False, checkpoint_every=5)
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    assert "removed what an interrupted write left" in capsys.readouterr().err


def _can_mount() -> str | None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare(1) to mount a private tmpfs"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs here: {probe.stderr.strip()}"


@pytest.mark.skipif(_can_mount() is not None, reason=str(_can_mount()))
@pytest.mark.slow
def test_read_only_and_full_disks_give_one_line(tmp_path):
    """Real faults on private tmpfs mounts (gone with the mount namespace): read-only, and
    so full that the first checkpoint cannot be written."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cli = f"{sys.executable} -m suite.cli.main {' '.join(RUN)} --set steps=40 --set hidden_size=64 --checkpoint-every 5"
    script = (f"mount -t tmpfs -o size=1m,ro tmpfs {mnt} && {cli} --out {mnt}/runs; echo rc=$?; "
              f"mount -o remount,rw {mnt} && head -c 900k /dev/zero > {mnt}/filler; "
              f"{cli} --out {mnt}/runs; echo rc=$?; find {mnt}/runs -name '*.tmp' | wc -l")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = proc.stdout.split()
    errors = proc.stderr.strip().splitlines()
    assert lines[0] == "rc=2" and errors[0].startswith(f"rnnsuite: error: cannot write under {mnt}/runs")
    assert errors[0].endswith(": read-only file system"), errors
    assert lines[1] == "rc=2", proc.stderr
    assert errors[1].startswith("rnnsuite: error: cannot write the checkpoint ") and errors[1].endswith(
        "disk full (no space left on device)"), errors
    assert lines[2] == "0" and len(errors) == 2  # no temporary file left; nothing else printed


# -- a cell held by a live worker ----------------------------------------------------------------

def hold(target: Path, host: str = os.uname().nodename, pid: int = 1, age: float = 0.0) -> Path:
    path = claims.claim_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "token": "other", "started": "earlier"}))
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_a_cell_held_by_a_live_worker_is_left_to_it(tmp_path, capsys):
    cfg = tiny()
    target = records.run_dir(tmp_path, "adding", "gru", 0, suite.resolve(cfg).hash)
    hold(target)  # pid 1 lives
    one_line_error(capsys, [*RUN, "--out", str(tmp_path)], f"{target} is being run by")
    assert main(["sweep", "--tasks", "adding", "--models", "gru", "--seeds", "0,1", *TINY, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sweep: 1 done here, 0 skipped as complete, 1 left to other workers, 0 failed" in out


def test_a_stale_claim_is_taken_over_and_the_run_resumes(tmp_path, monkeypatch):
    cfg = tiny()
    target = records.run_dir(tmp_path, "adding", "gru", 0, suite.resolve(cfg).hash)
    norm = probes.total_grad_norm
    calls = []

    def interrupted(params):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt  # a worker stopped at step 7, its checkpoint at step 5 kept
        return norm(params)

    monkeypatch.setattr(probes, "total_grad_norm", interrupted)
    with pytest.raises(KeyboardInterrupt):
        suite.run(cfg, out=tmp_path, quiet=True, checkpoint_every=5)
    monkeypatch.undo()
    hold(target, host="another-machine", pid=12345, age=claims.STALE_S + 60)  # its machine was lost
    rec = suite.run(cfg, out=tmp_path, quiet=True, checkpoint_every=5)
    assert rec["outcome"] == "ran" and rec["timing"]["resumed_at_steps"] == [5]
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_a_failed_cell_does_not_abandon_the_sweep(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('tasks = ["smnist", "adding"]\nmodels = ["gru"]\n'
                    '[set]\nsteps = 4\nhidden_size = 4\neval_every = 2\nprobes = 1\nprobe_batch = 8\n'
                    '[task_params.adding]\nT = 5\nn_val = 8\nn_test = 8\n'
                    '[task_params.smnist]\nn_train = 64\npixels_per_step = 49\n')
    code = main(["sweep", "--config", str(grid), "--device", "cpu", "-q", "--data-dir", str(tmp_path / "no-mnist"),
                 "--out", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 1 and "smnist/gru seed 0: failed: MNIST file" in out
    assert "sweep: 1 done here, 0 skipped as complete, 0 left to other workers, 1 failed" in out


# -- reports skip what they cannot read ------------------------------------------------------------

def test_report_skips_unreadable_records_and_names_them(tmp_path, capsys):
    for seed in (0, 1):
        suite.run(tiny(seed=seed), out=tmp_path, quiet=True)
    good = next(tmp_path.rglob("record.json")).read_text()
    bad = {"truncated": good[: len(good) // 2], "empty-object": "{}", "binary": "\udcff",
           "future": json.dumps({**json.loads(good), "schema": 99}), "list": "[1, 2]",
           "no-metrics": json.dumps({k: v for k, v in json.loads(good).items() if k != "metrics"}),
           "bad-metric": json.dumps({**json.loads(good), "metrics": {**json.loads(good)["metrics"], "test": "x"}})}
    for name, text in bad.items():
        (tmp_path / "adding" / "gru" / name).mkdir()
        (tmp_path / "adding" / "gru" / name / "record.json").write_bytes(text.encode(errors="surrogateescape"))
    curves = next(tmp_path.rglob("curves.csv"))
    curves.write_bytes(b"\x00\x01 not a csv")
    capsys.readouterr()
    assert main(["report", "--runs", str(tmp_path), "--out", str(tmp_path / "report")]) == 0
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if line.startswith("| adding")]
    assert len(rows) == 1 and "|       2 |" in rows[0]  # both good seeds, nothing of the bad ones
    warnings = captured.err.splitlines()
    for name in bad:
        assert sum(f"/{name}/record.json" in w for w in warnings) == 1, (name, warnings)
    assert "schema version 99; this suite reads schema version 1" in captured.err
    assert all(w.startswith("rnnsuite: warning: ") for w in warnings)
    assert (tmp_path / "report" / "report.md").exists()

    only_bad = tmp_path / "only-bad"
    shutil.copytree(tmp_path / "adding" / "gru" / "truncated", only_bad / "adding" / "gru" / "truncated")
    capsys.readouterr()
    assert main(["report", "--runs", str(only_bad)]) == 2
    assert "rnnsuite: error: no usable run records" in capsys.readouterr().err


def test_report_out_under_a_regular_file_is_one_line_and_prints_no_table(tmp_path, capsys):
    suite.run(tiny(), out=tmp_path / "runs", quiet=True)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(capsys, ["report", "--runs", str(tmp_path / "runs"), "--out", str(blocker / "report")],
                   "is a file, not a directory")
    capsys.readouterr()
    assert main(["report", "--runs", str(tmp_path / "runs"), "--out", str(blocker / "report")]) == 2
    assert capsys.readouterr().out == ""


def test_load_record_says_why(tmp_path):
    (tmp_path / "record.json").write_text('{"schema": 1}')
    with pytest.raises(records.RecordError, match="keys missing: config_hash, task"):
        records.load_record(tmp_path)
    assert issubclass(records.RecordError, SuiteError)


def test_tuned_file_checks(tmp_path):
    from suite.core.tuned import load_tuned

    assert load_tuned(None, "adding", "gru") is None
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"task": "adding", "model": "gru", "sets": ["lr=0.01"]}))
    with pytest.raises(SuiteError, match="records no fixed settings"):
        load_tuned(path, "adding", "gru")
    path.write_text(json.dumps({"task": "adding", "model": "gru", "sets": ["lr=0.01"], "fixed": {}}))
    with pytest.raises(SuiteError, match="was tuned for task 'adding', not 'copy'"):
        load_tuned(path, "copy", "gru")
    assert load_tuned(path, "adding", "gru")["sets"] == ["lr=0.01"]
