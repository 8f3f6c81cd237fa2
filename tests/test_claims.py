"""Cells claimed, not raced: a claim is exclusive while its owner lives, a stale one is
taken over by exactly one worker, a taken-over worker stops, and two `rnnsuite sweep`
processes on one directory split the cells: each computed exactly once, both exit 0."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from suite.core import claims, records
from suite.core.claims import CellBusy, Claim, ClaimLost


def cell(tmp_path: Path) -> Path:
    return tmp_path / "adding" / "gru" / "s0-0123456789"


def test_a_live_claim_is_exclusive_and_released(tmp_path):
    run_dir = cell(tmp_path)
    with Claim.acquire(run_dir) as claim:
        holder = json.loads(claims.claim_path(run_dir).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] and holder["started"]
        with pytest.raises(CellBusy, match="is being run by"):
            Claim.acquire(run_dir)
        claim.check()  # still ours
    assert not claims.claim_path(run_dir).exists()
    assert sorted(p.name for p in run_dir.parent.iterdir()) == []  # no temporary file, no marker
    Claim.acquire(run_dir).release()  # free again


def test_a_stale_claim_is_taken_over_and_its_owner_stops(tmp_path):
    run_dir = cell(tmp_path)
    old = Claim.acquire(run_dir, beat_s=3600)  # a worker that stopped beating (suspended, or its machine lost)
    path = claims.claim_path(run_dir)
    past = time.time() - 60
    os.utime(path, (past, past))
    with pytest.raises(CellBusy):
        Claim.acquire(run_dir, stale_s=120)  # 60 s old: still live
    new = Claim.acquire(run_dir, stale_s=30)  # stale: taken over
    assert json.loads(path.read_text())["token"] == new.token
    with pytest.raises(ClaimLost, match="took this cell over"):
        old.check()
    old.release()  # the old owner's release leaves the new claim alone
    assert json.loads(path.read_text())["token"] == new.token
    new.check()
    new.release()
    assert not path.exists()


def test_a_claim_of_a_dead_process_on_this_host_is_stale_at_once(tmp_path):
    run_dir = cell(tmp_path)
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(proc.stdout)
    path = claims.claim_path(run_dir)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": os.uname().nodename, "pid": dead, "token": "x", "started": "then"}))
    with Claim.acquire(run_dir) as claim:  # fresh mtime, but its process is gone
        assert json.loads(path.read_text())["token"] == claim.token


def test_one_taker_per_stale_claim(tmp_path):
    run_dir = cell(tmp_path)
    path = claims.claim_path(run_dir)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "stale", "started": "then"}))
    past = time.time() - 3600
    os.utime(path, (past, past))
    won, lost, barrier = [], [], threading.Barrier(8)

    def worker():
        barrier.wait()
        try:
            won.append(Claim.acquire(run_dir, stale_s=60))
        except CellBusy:
            lost.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 7
    assert json.loads(path.read_text())["token"] == won[0].token
    won[0].release()
    assert not list(path.parent.iterdir())


def test_the_heartbeat_refreshes_the_claim(tmp_path):
    run_dir = cell(tmp_path)
    with Claim.acquire(run_dir, beat_s=0.05):
        path = claims.claim_path(run_dir)
        past = time.time() - 3600
        os.utime(path, (past, past))
        deadline = time.monotonic() + 10
        while time.time() - path.stat().st_mtime > 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert time.time() - path.stat().st_mtime < 60


SWEEP = ["sweep", "--tasks", "adding", "--models", "gru,lstm,antisymmetric", "--seeds", "0,1", "-q",
         "--set", "steps=30", "--set", "hidden_size=8", "--set", "batch_size=8", "--set", "task.T=20",
         "--set", "task.n_val=16", "--set", "task.n_test=16", "--set", "eval_every=10", "--set", "probes=1",
         "--set", "probe_batch=8", "--device", "cpu"]


@pytest.mark.slow
def test_two_sweeps_on_one_directory_split_the_cells(tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "suite.cli.main", *SWEEP, "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stdout + stderr
    ran = [set(re.findall(r"\] (adding/\w+ seed \d): test", stdout)) for stdout, _ in results]
    assert not ran[0] & ran[1], ran  # no cell computed by both
    assert len(ran[0] | ran[1]) == 6  # every cell computed by one of them
    counts = [re.search(r"sweep: (\d+) done here, (\d+) skipped as complete, (\d+) left to other workers, "
                        r"(\d+) failed", stdout).groups() for stdout, _ in results]
    assert sum(int(c[0]) for c in counts) == 6 and all(c[3] == "0" for c in counts), counts
    found = list(records.iter_records(out))  # each record complete: it loads and has every key
    assert len(found) == 6 and {r["status"] for _, r in found} == {"ok"}
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no claim, checkpoint or temporary file left
