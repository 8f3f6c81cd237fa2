"""A run killed at any point and started again resumes to the same final record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from suite import records

ARGS = ["run", "--task", "copy", "--model", "hrnn", "--seed", "3", "-q", "--checkpoint-every", "10",
        "--set", "steps=300", "--set", "hidden_size=16", "--set", "batch_size=16", "--set", "task.T=20",
        "--set", "task.n_val=64", "--set", "task.n_test=64", "--set", "eval_every=25", "--set", "probes=3",
        "--set", "schedule=cosine", "--set", "lr=0.01"]


def cli(out: Path) -> list[str]:
    return [sys.executable, "-m", "suite.cli", *ARGS, "--out", str(out)]


def comparable(path: Path) -> dict:
    rec = json.loads(next(path.rglob("record.json")).read_text())
    for key in ("timing", "environment", "memory"):
        rec.pop(key)
    rec["model_info"]["extra"].get("step_size", {}).pop("seconds", None)  # the heuristic's own timing
    return rec


def test_killed_run_resumes_to_the_same_record(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(cli(reference), check=True, capture_output=True)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cli(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    checkpoint = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(killed.rglob(".*.checkpoint.pt"))
        if found and os.path.getsize(found[0]) > 0:
            checkpoint = found[0]
            break
        time.sleep(0.005)
    assert checkpoint is not None, "the run finished or stalled before its first checkpoint"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not list(killed.rglob("record.json"))  # no half-written record

    resumed = subprocess.run(cli(killed), check=True, capture_output=True, text=True)
    assert "record:" in resumed.stdout
    rec = json.loads(next(killed.rglob("record.json")).read_text())
    assert rec["timing"]["resumed_at_steps"] and rec["timing"]["resumed_at_steps"][0] % 10 == 0
    assert comparable(killed) == comparable(reference)
    assert not list(killed.rglob(".*.checkpoint.pt"))  # removed once the record is written
    assert not list(killed.rglob("*.tmp"))


def test_checkpoint_path_is_hidden_from_reports(tmp_path):
    path = records.checkpoint_path(tmp_path / "copy" / "hrnn" / "s0-abc")
    assert path.name.startswith(".") and path.parent == tmp_path / "copy" / "hrnn"
