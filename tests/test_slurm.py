"""`rnnsuite sweep --launcher slurm` against a real SLURM controller: the cells run as
one job array, a task sent SIGUSR2 (SLURM's warning before a time limit or preemption)
is requeued and resumes from its checkpoint, and every record equals an uninterrupted
run's, timings aside. Needs a running SLURM: `nox -s slurm` starts a single-node one
(tests/slurm/single-node.sh) and runs this file; the default test run skips it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from suite.core import records
from suite.core.configure import make_config
from suite.core.harness import run

pytestmark = pytest.mark.skipif(
    not os.environ.get("SLURM_CONF") or shutil.which("sbatch") is None,
    reason="needs a running SLURM controller (nox -s slurm starts a single-node one and sets SLURM_CONF)")

SETS = ["steps=300", "task.T=5", "hidden_size=8", "batch_size=8", "task.n_val=16", "task.n_test=16",
        "eval_every=50", "probes=2"]


def comparable(rec: dict) -> dict:
    rec = {k: v for k, v in rec.items() if k not in ("timing", "environment", "memory", "launcher")}
    rec["model_info"]["extra"].get("step_size", {}).pop("seconds", None)
    return rec


def test_a_job_array_with_a_preempted_task(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the jobs inherit it (sbatch exports the environment)
    out = tmp_path / "shared"
    cmd = [sys.executable, "-m", "suite.cli.main", "sweep", "--tasks", "adding", "--models", "gru,lstm", "--seeds", "0",
           "--checkpoint-every", "10", "--out", str(out), "--launcher", "slurm", "--cpus-per-task", "1",
           "--time", "30", "-q", *[a for s in SETS for a in ("--set", s)]]
    submitted = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    array = re.search(r"as slurm job array (\d+)", submitted.stdout).group(1)
    deadline = time.monotonic() + 120
    while not list((out / "adding" / "gru").glob(".*.checkpoint.pt")):
        assert time.monotonic() < deadline, subprocess.run(["squeue"], capture_output=True, text=True).stdout
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", f"{array}_0"], check=True)  # the gru cell's task

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the jobs run
    try:
        expected = {m: records.load_record(Path(run(make_config("adding", m, 0, SETS, "cpu"), out=tmp_path / "ref",
                                                    quiet=True)["path"])) for m in ("gru", "lstm")}
    finally:
        torch.set_num_threads(threads)
    deadline = time.monotonic() + 420  # SLURM holds a requeued job back for a while (BeginTime)
    while len(list(out.rglob("record.json"))) < 2:
        assert time.monotonic() < deadline, subprocess.run(["squeue"], capture_output=True, text=True).stdout
        time.sleep(2)
    for task_id, model in enumerate(("gru", "lstm")):
        rec = records.load_record(next((out / "adding" / model).glob("s0-*")))
        assert comparable(rec) == comparable(expected[model])
        assert rec["launcher"] == {"name": "slurm", "job_id": f"{array}_{task_id}", "array_job_id": array,
                                   "array_task_id": str(task_id), "node": rec["launcher"]["node"]}
    gru = records.load_record(next((out / "adding" / "gru").glob("s0-*")))
    assert gru["timing"]["resumed_at_steps"], "the signalled task was not requeued and resumed"
    log = next(out.glob(f".submitit/{array}_0/{array}_0_0_log.out")).read_text()
    assert "Requeued job" in log, log
