"""A run killed at any point and started again resumes to the same final record:
killed from outside at a checkpoint, and from inside at chosen moments (mid-training,
halfway through a checkpoint save, halfway through the record write, and between the
record and the clean-up); what the killed write left is removed by the resumed run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite.cli.main import main
from suite.core import records

ARGS = ["run", "--task", "copy", "--model", "hrnn", "--seed", "3", "-q", "--checkpoint-every", "10",
        "--set", "steps=150", "--set", "hidden_size=16", "--set", "batch_size=16", "--set", "task.T=20",
        "--set", "task.n_val=64", "--set", "task.n_test=64", "--set", "eval_every=25", "--set", "probes=3",
        "--set", "schedule=cosine", "--set", "lr=0.01"]


def cli(out: Path) -> list[str]:
    return [sys.executable, "-m", "suite.cli.main", *ARGS, "--out", str(out)]


def comparable(path: Path) -> dict:
    rec = json.loads(next(path.rglob("record.json")).read_text())
    for key in ("timing", "environment", "memory"):
        rec.pop(key)
    rec["model_info"]["extra"].get("step_size", {}).pop("seconds", None)  # the heuristic's own timing
    return rec


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_record(tmp_path):
    reference = tmp_path / "reference"  # in this process: only the killed run needs one of its own
    assert main([*ARGS, "--out", str(reference)]) == 0

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


# A child process that kills itself with SIGKILL at a chosen moment of a run: after the
# n-th training step, halfway through writing its n-th checkpoint or its record, or
# right after its record is in place (before the checkpoint and the claim are removed).
KILL_AT = r'''
import os, signal, sys
moment, n, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
from suite.core import probes, records
calls = [0]

def due():
    calls[0] += 1
    return calls[0] == n

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def half(path, data):
    with open(path, "wb") as fh:
        fh.write(bytes(data)[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())

if moment == "step":
    norm = probes.total_grad_norm
    probes.total_grad_norm = lambda params: die() if due() else norm(params)
elif moment == "checkpoint-save":
    write = records.write_bytes_atomic
    def partial(path, data, *, tmp=None):
        if tmp is not None and due():
            half(tmp, data)
            die()
        return write(path, data, tmp=tmp)
    records.write_bytes_atomic = partial
elif moment == "record-write":
    def partial_json(path, obj):
        half(path.with_name(f".{path.name}.partial.tmp"), records.json.dumps(records.sanitize(obj)).encode())
        die()
    records.write_json_atomic = partial_json
elif moment == "after-record":
    write_run = records.write_run
    records.write_run = lambda *a, **k: (write_run(*a, **k), die())
from suite.cli.main import main
sys.exit(main(argv))
'''

SHORT = ["run", "--task", "copy", "--model", "hrnn", "--seed", "5", "-q", "--checkpoint-every", "10",
         "--set", "steps=60", "--set", "hidden_size=8", "--set", "batch_size=8", "--set", "task.T=10",
         "--set", "task.n_val=32", "--set", "task.n_test=32", "--set", "eval_every=15", "--set", "probes=3",
         "--set", "probe_batch=8", "--set", "schedule=cosine", "--set", "lr=0.01", "--device", "cpu"]
# two moments drawn once (seeded) among the steps between checkpoints, and every write
MOMENTS = [("step", n) for n in sorted(random.Random(15).sample(range(2, 60), 2))] + [
    ("checkpoint-save", 1), ("checkpoint-save", 3), ("record-write", 1), ("after-record", 1)]


# the reference run and every resumed run in one process: one start-up instead of seven
RUN_ALL = r"""
import sys
from suite.cli.main import main
args, outs = sys.argv[1 : sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1 :]
sys.exit(max(main([*args, "--out", out]) for out in outs))
"""


@pytest.mark.slow
def test_killed_at_many_moments_resumes_to_the_same_record(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    dirs = {moment: tmp_path / f"{moment[0]}-{moment[1]}" for moment in MOMENTS}
    killed = {moment: subprocess.Popen([sys.executable, "-c", KILL_AT, moment[0], str(moment[1]), *SHORT, "--out",
                                        str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
              for moment, out in dirs.items()}  # all at once: their start-ups overlap
    for moment, proc in killed.items():
        assert proc.wait(timeout=300) == -signal.SIGKILL, (moment, proc.stderr.read())
        finished = list(dirs[moment].rglob("record.json"))
        assert len(finished) == (moment[0] == "after-record"), moment  # none half-written, hidden or not
    left = {moment: [p.name for p in out.rglob(".*")] for moment, out in dirs.items()}
    assert any(name.endswith(".checkpoint.pt.tmp") for name in left[("checkpoint-save", 3)])
    assert any(name.endswith(".staging") for name in left[("record-write", 1)])

    reference = tmp_path / "reference"
    subprocess.run([sys.executable, "-c", RUN_ALL, *SHORT, "--", str(reference), *map(str, dirs.values())],
                   env=env, check=True, capture_output=True, timeout=600)
    expected = comparable(reference)
    for moment, out in dirs.items():
        assert comparable(out) == expected, moment
        assert not list(out.rglob(".*")), (moment, list(out.rglob(".*")))  # nothing left behind
    steps = {m: json.loads(next(out.rglob("record.json")).read_text())["timing"]["resumed_at_steps"]
             for m, out in dirs.items()}
    assert steps[("checkpoint-save", 1)] == [] and steps[("checkpoint-save", 3)] == [20]  # the last good one
    assert steps[("record-write", 1)] == [50] and steps[("after-record", 1)] == []  # the record from the first
