"""`rnnsuite tune`: resuming adds exactly the missing trials, workers share one study,
a worker killed mid-trial loses no finished trial and its trial is retried, bad input
is one line and exit code 2, PostgreSQL where a server can be started, and the
heuristic-against-tuned report. Tiny budgets: the whole file takes about a minute."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from baselines.rnn import GRU
from suite.cli.main import main
from suite.core import records
from suite.core.build import resolve
from suite.core.configure import make_config
from suite.core.registry import SuiteError
from suite.core.tuned import load_tuned, tuned_differences
from suite.tuning import report as tune_report

TINY = ["--task", "adding", "--model", "gru", "--set", "task.T=6", "--set", "hidden_size=8", "--set", "steps=20",
        "--set", "eval_every=10", "--set", "task.n_val=50", "--set", "task.n_test=50", "--set", "batch_size=16",
        "--set", "probes=1", "-q"]
TINY_SETS = [TINY[i + 1] for i, arg in enumerate(TINY) if arg == "--set"]


@pytest.fixture(autouse=True)
def tuned_dir(tmp_path, monkeypatch):
    """Never write or read the repository's baselines/tuned from a test."""
    path = tmp_path / "tuned"
    monkeypatch.setenv("RNNSUITE_TUNED_DIR", str(path))
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and two threads per process on a shared
    2-core machine slow everything down many times over."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def one_thread_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # read when called: after the fixtures' setenv


def tune(out: Path, *extra: str) -> int:
    return main(["tune", *TINY, "--out", str(out), "--eval-seeds", "0", *extra])


def load(url: str, name: str = "adding-gru") -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(url[8:])) if url.startswith("journal:") else url
    return optuna.load_study(study_name=name, storage=storage)


def finished(study) -> list:
    return [t for t in study.get_trials() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def test_resume_adds_exactly_the_missing_trials(tmp_path, tuned_dir, capsys):
    out = tmp_path / "tuning"
    url = f"sqlite:///{out / 'optuna.db'}"
    assert tune(out, "--trials", "2") == 0
    first = [(t.number, t.params, t.value) for t in load(url).get_trials()]
    assert len(first) == 2 and all(t.state == TrialState.COMPLETE for t in load(url).get_trials())

    assert tune(out, "--trials", "4") == 0
    study = load(url)
    assert len(study.get_trials()) == 4 and len(finished(study)) == 4
    assert [(t.number, t.params, t.value) for t in study.get_trials()[:2]] == first  # nothing redone or lost
    assert len({tuple(sorted(t.params.items())) for t in study.get_trials()}) == 4  # resuming draws anew

    assert not tuned_dir.exists()  # nothing written into the source tree unless asked
    assert tune(out, "--trials", "4", "--publish") == 0  # complete: nothing to add, and published
    assert len(load(url).get_trials()) == 4

    # the study's summary and the tuned file: validation only, counts, compute, device
    summary = json.loads((out / "adding-gru" / "study.json").read_text())
    assert summary["direction"] == "minimize" and summary["metric"] == "mse"
    assert summary["summary"]["finished"] == 4 and summary["summary"]["trial_compute_seconds"] > 0
    assert summary["summary"]["device"] and summary["pruner"]["name"] == "MedianPruner"
    assert summary["best"]["value"] == min(t.value for t in study.get_trials())
    assert json.loads((tuned_dir / "adding-gru.json").read_text())["sets"] == summary["sets"]
    assert (out / "adding-gru" / "history.png").exists()

    # the tuned file records the settings it was tuned under; a run uses it only when named
    tuned = load_tuned(out / "adding-gru" / "study.json", "adding", "gru")
    sets = tuned["sets"]
    assert sorted(s.split("=")[0] for s in sets) == ["clip", "lr"]
    assert tuned["fixed"]["task_params"]["T"] == 6 and tuned["fixed"]["steps"] == 20
    assert tuned["fixed"]["hidden_size"] == 8 and "lr" not in tuned["fixed"]
    assert make_config("adding", "gru", 0, [], None).clip is None
    cfg = make_config("adding", "gru", 0, [*TINY_SETS, "lr=0.5"], None, tuned=tuned["path"])
    assert cfg.lr == 0.5 and cfg.clip == float(dict(s.split("=") for s in sets)["clip"])
    assert cfg.tuned == tuned["path"] and cfg.origins["clip"] == "tuned"
    assert cfg.origins["lr"] == "set (overrides tuned)"
    resolved = resolve(make_config("adding", "gru", 3, ["task.T=10", *TINY_SETS[1:]], None))
    assert tuned_differences(tuned, resolved.config) == {"task.T": (6, 10)}  # the seed is not a difference
    with pytest.raises(SuiteError, match=r"does not apply to this run: tuned under task.T=6; this run has task.T=10"):
        make_config("adding", "gru", 3, ["task.T=10", *TINY_SETS[1:]], None, tuned=tuned["path"])

    # the same study with another budget is refused, not mixed
    capsys.readouterr()
    assert tune(out, "--trials", "5", "--set", "steps=30") == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_on_one_journal_make_n_distinct_trials(tmp_path):
    out = tmp_path / "tuning"
    assert tune(out, "--trials", "4", "--workers", "2") == 0
    journal = out / "adding-gru" / "study.journal"
    assert journal.exists() and not (out / "optuna.db").exists()  # SQLite is not for parallel writers
    trials = load(f"journal:{journal}").get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4




def _started(path: Path) -> bool:
    """The worker has created its study and a trial. Read-only: opening the SQLite file
    through Optuna while the worker creates its tables would race with it."""
    if path.suffix == ".journal":
        return path.exists() and b'"op_code":4' in path.read_bytes()  # a CREATE_TRIAL line
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT count(*) FROM trials").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def test_evaluation_leaves_a_seed_another_worker_runs_and_runs_the_rest(tmp_path, capsys):
    # a second worker reaching the evaluation while the first runs a seed takes the
    # next seeds instead of stopping on the busy one (two workers share the evaluation)
    from suite.core.claims import Claim
    from suite.core.config import run_config
    from suite.tuning import tune as tune_mod

    out = tmp_path / "tuning"
    assert main(["tune", *TINY, "--out", str(out), "--eval-seeds", "2", "--trials", "2"]) == 0
    spec = tune_mod.TuneSpec(task="adding", model="gru", sets=TINY_SETS, trials=2, eval_seeds=2, out=str(out),
                             quiet=True)
    definition = tune_mod.study_definition(spec)
    summary = json.loads((out / "adding-gru" / "study.json").read_text())
    held_cfg = run_config("adding", "gru", [*TINY_SETS, "seed=1"])
    held_dir = records.run_dir(out / "adding-gru" / "heuristic", "adding", "gru", 1, resolve(held_cfg).hash,
                               nested=False)
    shutil.rmtree(held_dir)  # as if its run had not finished yet: another worker holds it
    capsys.readouterr()
    with Claim.acquire(held_dir):
        tune_mod.evaluate(spec, definition, summary)
    printed = capsys.readouterr().out
    assert "eval heuristic seed 1: left to another worker" in printed
    assert "eval heuristic seed 2: test mse" in printed  # the seed after the busy one still ran
    assert not records.is_complete(held_dir)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_killed_worker_trial_is_failed_by_heartbeat_and_retried(tmp_path, kind):
    out = tmp_path / "tuning"
    path = out / ("adding-gru.journal" if kind == "journal" else "optuna.db")
    url = f"journal:{path}" if kind == "journal" else f"sqlite:///{path}"
    cmd = [sys.executable, "-m", "suite.cli.main", "tune", *TINY, "--set", "steps=300", "--trials", "2",
           "--heartbeat", "1", "--eval-seeds", "0", "--out", str(out), "--storage", url]
    env = one_thread_env()
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline, killed, study = time.monotonic() + 120, None, None
    try:
        while time.monotonic() < deadline and worker.poll() is None:
            if study is None and _started(path):
                study = load(url)
            trials = study.get_trials() if study is not None else []
            # mid-training: it has reported a validation value
            running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
            if running and any(t.state == TrialState.COMPLETE for t in trials):
                os.kill(worker.pid, signal.SIGKILL)
                killed = running[0]
                break
            time.sleep(0.02)
    finally:
        if worker.poll() is None and killed is None:
            worker.kill()
        worker.wait()
        log.close()
    assert killed is not None, f"the worker ended or stalled first:\n{(tmp_path / 'worker.log').read_text()}"
    killed = load(url).get_trials()[killed.number]
    before = {t.number: t for t in load(url).get_trials() if t.state == TrialState.COMPLETE}
    assert load(url).get_trials()[killed.number].state == TrialState.RUNNING  # nobody has noticed yet

    subprocess.run(cmd, check=True, capture_output=True, timeout=180, env=env)
    trials = load(url).get_trials()
    assert trials[killed.number].state == TrialState.FAIL  # by the heartbeat
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == killed.params
    for number, t in before.items():  # no finished trial lost or changed
        assert trials[number].state == TrialState.COMPLETE and trials[number].value == t.value
    assert len(finished(load(url))) == 2


def _one_line_error(capsys, argv: list[str], expected: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rnnsuite: error:"), err
    assert expected in err, err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    out = tmp_path / "tuning"
    base = ["tune", *TINY, "--trials", "2", "--out", str(out)]
    _one_line_error(capsys, [*base, "--storage", "nosuchdialect://host/db"], "cannot open storage")
    _one_line_error(capsys, [*base, "--storage", "not-a-url"], "neither a SQLAlchemy URL")
    _one_line_error(capsys, [*base, "--workers", "2", "--storage", f"sqlite:///{tmp_path / 'x.db'}"], "SQLite")
    _one_line_error(capsys, [*base, "--space", "model.nonsense=log:0.1:1"], "unknown key 'model.nonsense'")
    _one_line_error(capsys, [*base, "--space", "hidden_size=int:8:16"], "never searched")
    _one_line_error(capsys, [*base, "--space", "lr=log:0:1"], "lo > 0")
    monkeypatch.setattr(GRU, "search_space", {"lr": ("log", 1e-4, 1e-2), "lrr": ("log", 1e-4, 1e-2)})
    _one_line_error(capsys, base, "did you mean 'lr'")
    assert not (out / "optuna.db").exists()  # checked before any storage was touched


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found or (candidates[-1] if candidates else None)


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL cluster on 127.0.0.1 and a random port; skipped with the reason
    where the server binaries, the driver, or a user to run the server as are missing."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    pytest.importorskip("psycopg", reason="no PostgreSQL driver: pip install 'psycopg[binary]'")
    as_user = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        as_user = {"user": pw.pw_uid, "group": pw.pw_gid}
    base = Path(tempfile.mkdtemp(prefix="rnnsuite-pg-"))
    if as_user:
        os.chown(base, as_user["user"], as_user["group"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = base / "data"
    try:
        subprocess.run([initdb, "-D", str(data), "-U", "rnnsuite", "--auth=trust", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True, cwd=base, timeout=120, **as_user)
        subprocess.run([pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                       check=True, capture_output=True, cwd=base, timeout=120, **as_user)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"could not start a PostgreSQL server: {exc}; {detail.decode(errors='replace')[:200]}")
    try:
        yield f"postgresql+psycopg://rnnsuite@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, cwd=base,
                       timeout=60, **as_user)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_postgresql_storage_with_two_workers(tmp_path, postgres_url):
    assert tune(tmp_path / "tuning", "--trials", "3", "--workers", "2", "--storage", postgres_url) == 0
    study = load(postgres_url)
    done = finished(study)
    assert len(done) == 3 and len({tuple(sorted(t.params.items())) for t in done}) == 3
    summary = json.loads((tmp_path / "tuning" / "adding-gru" / "study.json").read_text())
    assert summary["storage"].startswith("postgresql+psycopg://rnnsuite@127.0.0.1")


def test_report_puts_heuristic_against_tuned(tmp_path, capsys):
    out = tmp_path / "tuning"
    assert main(["tune", *TINY, "--trials", "2", "--out", str(out), "--eval-seeds", "3"]) == 0
    study = json.loads((out / "adding-gru" / "study.json").read_text())
    tuned_runs = [r for d in (out / "adding-gru").glob("optuna-trial-*") for r in records.iter_records(d)]
    untuned_runs = list(records.iter_records(out / "adding-gru" / "heuristic"))
    assert sorted(r["seed"] for _, r in tuned_runs) == [1, 2, 3]  # never the tuning seed 0
    assert all(r["config"]["lr"] == study["best"]["params"]["lr"] for _, r in tuned_runs)
    assert all(r["config"]["lr"] == 1e-3 and r["config"]["clip"] is None for _, r in untuned_runs)

    table = tune_report.summarize(tune_report.load_rows(out))
    assert list(table.chosen) == ["defaults", "Optuna, 2 trials"] and list(table.seeds) == [3, 3]
    assert table.compute_s.iloc[0] == 0 and table.compute_s.iloc[1] == study["summary"]["trial_compute_seconds"]
    assert table.params.nunique() == 1  # hidden size is never searched

    capsys.readouterr()
    assert main(["report", "--tuning", "--runs", str(out)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| adding")]
    assert len(rows) == 2 and "Optuna, 2 trials" in rows[1]
    assert (out / "tuning_report.md").exists() and (out / "figures" / "tuning_adding_T6.png").exists()
