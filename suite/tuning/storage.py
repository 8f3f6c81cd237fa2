"""The storage layer of ``rnnsuite tune``: where a study lives and how its workers share it.

SQLite for one worker, a journal file for several on one machine, or any SQLAlchemy
server URL; a journal storage given the heartbeat Optuna's RDB storage has, so a dead
worker's trial is failed and retried there too; the file lock that keeps workers on one
machine from starting more trials than are missing. Kept apart from the search loop
(:mod:`suite.tuning.search`) because nothing here knows about trials' contents: it opens,
names, redacts and locks storages.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat  # JournalStorage has no heartbeat of its own (Optuna 5.0)
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from suite.core.registry import SuiteError

MAX_RETRY = 3  # a trial whose worker died this often is given up
HEARTBEAT_ATTR = "rnnsuite:heartbeat"


# -- storage -------------------------------------------------------------------------------------

class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal storage with the heartbeat its RDB storage has: a running trial
    writes a timestamp every ``interval`` seconds; one silent for ``grace`` seconds is
    stale, and Optuna's own loop fails it and calls ``callback`` (which retries it)."""

    def __init__(self, backend, *, interval: int, grace: int, callback) -> None:
        super().__init__(backend)
        self._interval, self._grace, self._callback = interval, grace, callback

    def record_heartbeat(self, trial_id: int) -> None:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.system_attrs.get(HEARTBEAT_ATTR)
            if beat is None and t.datetime_start is not None:
                beat = t.datetime_start.timestamp()  # naive local time, as the journal replays it
            if beat is not None and now - beat > self._grace:
                stale.append(t._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int:
        return self._interval

    def get_heartbeat_stale_trial_callback(self):
        return self._callback


def journal_path(out: str | Path, study: str) -> Path:
    """A study's journal file: in the study's folder, beside its records and ``study.json``."""
    return Path(out) / study / "study.journal"


def default_storage(out: str | Path, study: str, workers: int) -> str:
    """SQLite for one worker; a journal file for several (SQLite is unsafe under parallel
    writers), and also for one worker resuming a study that has a journal already."""
    journal = journal_path(out, study)
    if workers > 1 or journal.exists():
        return f"journal:{journal}"
    return f"sqlite:///{Path(out) / 'optuna.db'}"


def redact(url: str) -> str:
    """The URL without its password, for printing and for files."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def open_storage(url: str, heartbeat: int = 10) -> BaseStorage:
    """``journal:PATH`` or a SQLAlchemy URL, with heartbeats and retry of dead trials;
    any failure to open it is one line."""
    grace = 3 * heartbeat
    retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        if not path.name:
            raise SuiteError(f"--storage {url!r}: journal: needs a file path (journal:results/tuning/x.journal)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return HeartbeatJournalStorage(JournalFileBackend(str(path)), interval=heartbeat, grace=grace,
                                           callback=retry)
        except (OSError, ValueError) as exc:
            raise SuiteError(f"cannot open storage {url!r}: {first_line(exc)}") from None
    if "://" not in url:
        raise SuiteError(f"--storage {url!r} is neither a SQLAlchemy URL (sqlite:///results/tuning/optuna.db, "
                         f"postgresql+psycopg://user:password@host:5432/db) nor journal:PATH")
    sqlite = url.startswith("sqlite:")
    if sqlite and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    # a busy SQLite file waits instead of failing; a server connection is checked before use
    engine = {"connect_args": {"timeout": 60}} if sqlite else {"pool_pre_ping": True}
    try:
        return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=grace,
                          heartbeat_stale_trial_callback=retry)
    except Exception as exc:  # SQLAlchemy's errors: bad URL, unknown dialect, missing driver, refused
        raise SuiteError(f"cannot open storage {redact(url)!r}: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class AskLock:
    """A file lock held from "how many trials are left?" until the next trial exists, so
    workers on one machine never start more than the missing trials. Workers on other
    machines are not covered: for them a trial started beyond N is failed at once
    (``SurplusTrial``), before any training."""

    def __init__(self, path: Path):
        self.path, self.fd = path, None

    def acquire(self) -> None:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def ask_lock_path(spec) -> Path:
    """Beside the storage file; for a server, under ``--out`` (it covers this machine's workers)."""
    url = spec.storage_url
    for prefix in ("journal:", "sqlite:///"):
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = Path(url[len(prefix):])
            return path.with_name(f".{path.name}.ask-lock")
    Path(spec.out).mkdir(parents=True, exist_ok=True)
    return Path(spec.out) / f".{spec.study_name}.ask-lock"


def refuse_parallel_sqlite(spec) -> None:
    """A study begun in the default SQLite file is not continued by parallel writers,
    nor silently restarted in a journal beside it."""
    db = Path(spec.out) / "optuna.db"
    journal = journal_path(spec.out, spec.study_name)
    if journal.exists() or not db.exists():
        return
    if spec.study_name in optuna.study.get_all_study_names(storage=f"sqlite:///{db}"):
        raise SuiteError(f"study {spec.study_name!r} is in sqlite:///{db}, which is unsafe under parallel writers: "
                         f"continue it with --workers 1, or give it a PostgreSQL --storage (optuna.copy_study)")
