"""The cluster launcher (suite.cli.launch): `rnnsuite sweep --launcher local` runs the cells
as submitit jobs (real subprocesses); a preempted job is requeued and resumes from the
cell's checkpoint, a killed one is resubmitted by rerunning the command, and both end
with the record of an uninterrupted run. `--launcher slurm` is checked up to sbatch:
the job array script it writes and the cells it pickles (a stand-in sbatch answers)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from suite.cli.main import main
from suite.core import claims, records
from suite.core.configure import make_config
from suite.core.harness import run

SETS = ["steps=300", "task.T=5", "hidden_size=8", "batch_size=8", "task.n_val=16", "task.n_test=16",
        "eval_every=100", "probes=2"]
SWEEP = ["sweep", "--tasks", "adding", "--models", "gru,lstm", "--seeds", "0", "--checkpoint-every", "10", "-q",
         *[a for s in SETS for a in ("--set", s)]]


@contextlib.contextmanager
def one_thread():
    """Every process of the test on one torch thread: on a loaded machine two threads of
    tiny operations wait on each other (measured: 20 s against 1 s for one of these runs),
    and the reference and the jobs must run alike."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield {**os.environ, "OMP_NUM_THREADS": "1"}
    finally:
        torch.set_num_threads(threads)


def comparable(rec: dict) -> dict:
    rec = {k: v for k, v in rec.items() if k not in ("timing", "environment", "memory", "launcher", "path",
                                                    "outcome")}
    rec["model_info"]["extra"].get("step_size", {}).pop("seconds", None)
    return rec


def cell_dir(out: Path, model: str) -> Path:
    (path,) = (out / "adding" / model).glob("s0-*")
    return path


def signal_at_first_checkpoint(out: Path, signals: dict[str, int], proc, timeout_s=120) -> None:
    """Send each model's cell worker its signal as soon as the cell's first checkpoint is on disk."""
    deadline, sent = time.monotonic() + timeout_s, set()
    while len(sent) < len(signals) and time.monotonic() < deadline and proc.poll() is None:
        for model, sig in signals.items():
            found = list((out / "adding" / model).glob(".*.checkpoint.pt"))
            claim = list((out / "adding" / model).glob(".*.claim"))
            if model not in sent and found and claim and found[0].stat().st_size > 0:
                os.kill(json.loads(claim[0].read_text())["pid"], sig)
                sent.add(model)
        time.sleep(0.01)
    assert len(sent) == len(signals), f"no checkpoint in time for {set(signals) - sent}"


@pytest.mark.slow
def test_local_jobs_preempted_and_killed_end_with_the_records_of_uninterrupted_runs(tmp_path, capsys, monkeypatch):
    with one_thread() as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)  # the jobs of the in-process reruns below inherit it
        check_preempted_and_killed(tmp_path, capsys, env)


def check_preempted_and_killed(tmp_path, capsys, env):
    reference = tmp_path / "reference"
    expected = {m: records.load_record(Path(run(make_config("adding", m, 0, SETS, "cpu"), out=reference,
                                                quiet=True)["path"])) for m in ("gru", "lstm")}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "suite.cli.main", *SWEEP, "--out", str(out), "--launcher", "local", "--wait"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # gru: SIGUSR2, what SLURM sends before preemption or a time limit (requeued);
    # lstm: SIGKILL, a lost node (the job ends without a result)
    signal_at_first_checkpoint(out, {"gru": signal.SIGUSR2, "lstm": signal.SIGKILL}, proc)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stdout + stderr
    assert re.search(r"submitted 2 cell\(s\) as local jobs \d+, \d+", stdout)
    assert "sweep: 1 done here, 0 skipped as complete, 0 left to other workers, 1 failed" in stdout
    assert "adding/lstm seed 0: failed" in stdout and "rerun the command to resubmit it" in stdout
    assert not list((out / "adding" / "lstm").glob("*/record.json"))

    argv = cmd[3:]  # the same command again, in this process: it resubmits the killed cell only
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "submitted 1 cell(s) as local job " in again and "(1 complete, not submitted)" in again
    for model in ("gru", "lstm"):
        rec = records.load_record(cell_dir(out, model))
        assert rec["config_hash"] == expected[model]["config_hash"]
        assert comparable(rec) == comparable(expected[model])
        assert rec["timing"]["resumed_at_steps"] and rec["timing"]["resumed_at_steps"][0] % 10 == 0, model
        assert rec["launcher"]["name"] == "local" and rec["launcher"]["node"] == socket.gethostname()
        assert rec["launcher"]["job_id"]
    assert not list(out.rglob(".*.checkpoint.pt")) and not list(out.rglob(".*.claim"))

    assert main(argv) == 0
    third = capsys.readouterr().out
    assert "all 2 cells are complete" in third and "nothing submitted" in third


FAKE_SBATCH = """#!/bin/sh
cp "$1" "{log}/sbatch-$(date +%s%N).sh"
echo "Submitted batch job 4242"
"""


def test_slurm_submission_writes_one_array_and_returns(tmp_path, monkeypatch, capsys):
    bin_dir, log = tmp_path / "bin", tmp_path / "sbatch"
    bin_dir.mkdir(), log.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(log=log))
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    grid = tmp_path / "grid.toml"
    grid.write_text('tasks = ["adding"]\nmodels = ["gru", "lstm", "hrnn"]\nseeds = [0]\n[set]\nsteps = 10\n'
                    '[task_params.adding]\nT = 5\n'
                    '[slurm]\npartition = "gpu"\ntime = 90\ncpus_per_task = 4\nsbatch = { account = "abc" }\n')
    out = tmp_path / "out"
    code = main(["sweep", "--config", str(grid), "--out", str(out), "--launcher", "slurm", "--time", "30",
                 "--gpus-per-task", "1", "--array-parallelism", "2", "--sbatch", "qos=high",
                 "--setup", "module load cuda"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "submitted 3 cell(s) as slurm job array 4242" in text and "squeue -j 4242" in text
    (script,) = log.iterdir()
    body = script.read_text()
    for line in ("--partition=gpu", "--time=30", "--gpus-per-task=1", "--cpus-per-task=4", "--array=0-2%2",
                 "--account=abc", "--qos=high", "--signal=USR2@120", "--job-name=rnnsuite-sweep"):
        assert f"#SBATCH {line}\n" in body, (line, body)
    assert "module load cuda" in body and "submitit.core._submit" in body
    import submitit

    pickled = sorted((out / ".submitit").glob("4242_*/4242_*_submitted.pkl"))
    assert len(pickled) == 3
    cells = [submitit.core.utils.DelayedSubmission.load(p) for p in pickled]
    assert {c.args[0].model for c in cells} == {"gru", "lstm", "hrnn"}
    assert {c.args[0].device for c in cells} == {"cuda"}  # pinned for the GPU jobs, though this machine has none
    assert not list(out.rglob("record.json"))  # nothing ran here


@pytest.mark.parametrize("argv, message", [
    (["--time", "0"], "--time 0 must be an integer >= 1"),
    (["--sbatch", "=x"], "--sbatch '=x': give KEY=VALUE"),
    (["--device", "cuda"], "--device cuda needs GPUs in the job: add --gpus-per-task 1"),
    (["--mem-gb", "-1"], "--mem-gb -1.0 must be a positive number"),
])
def test_bad_launcher_options_are_one_line_errors(tmp_path, capsys, argv, message):
    code = main(["sweep", "--tasks", "adding", "--models", "gru", "--set", "task.T=5", "--out", str(tmp_path),
                 "--launcher", "local", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.rglob("*.pkl"))


def test_an_unknown_slurm_key_is_refused(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('tasks = ["adding"]\nmodels = ["gru"]\n[slurm]\npartitoin = "gpu"\n')
    assert main(["sweep", "--config", str(grid), "--out", str(tmp_path / "o"), "--launcher", "local"]) == 2
    assert "[slurm]: unknown keys ['partitoin']" in capsys.readouterr().err


def test_a_requeued_task_waits_for_its_predecessors_claim(tmp_path, monkeypatch):
    """On another node a killed task's claim stays until it is stale; the requeued task
    waits for it instead of leaving the cell unfinished."""
    from suite.cli import launch

    cfg = make_config("adding", "gru", 0, ["steps=5", "task.T=5", "hidden_size=4", "batch_size=4",
                                           "task.n_val=16", "task.n_test=16"], "cpu")
    (_, chash), = launch.pinned([cfg], launch.LaunchOptions())
    target = records.run_dir(tmp_path, "adding", "gru", 0, chash)
    path = claims.claim_path(target)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "node-7", "pid": 1, "token": "old", "started": "then"}))
    monkeypatch.setattr(claims, "STALE_S", 0.5)
    monkeypatch.setattr(claims, "BEAT_S", 0.2)
    monkeypatch.setattr(launch, "job_info", lambda: {"name": "slurm", "job_id": "7_0", "node": "node-8"})
    result = launch.CellJob()(cfg, str(tmp_path), {"quiet": True})
    assert result["outcome"] == "done"
    assert records.load_record(target)["launcher"] == {"name": "slurm", "job_id": "7_0", "node": "node-8"}
