"""Cells claimed, not raced: many workers (``sweep``, ``paper``, array jobs of a cluster
launcher) on one results directory, on one machine or on several sharing a filesystem.

Rules (:func:`suite.core.harness.run` keeps them for every run written under ``out``):
- before a cell runs, its worker creates ``.<run>.claim`` beside the run directory,
  atomically (a hard link of a complete file: it either appears whole or not at all,
  also on NFS); the claim names the host, the process and the start time;
- while the cell runs, a heartbeat thread touches the claim every ``BEAT_S`` seconds
  and checks that it is still its own;
- a claim is live while it was touched within ``STALE_S`` seconds and, on its own
  host, its process exists; a worker skips a cell with a live claim (left to that
  worker) and takes over a stale one (its owner was killed or lost its machine),
  resuming from the cell's checkpoint. One taker per stale claim: the takeover is an
  atomic link of a marker named after the stale claim's token;
- a worker whose claim was taken over (it was suspended past ``STALE_S``) stops at its
  next checkpoint or before writing its record, and leaves the cell to the taker;
- after taking a claim the worker looks again for a finished record, so a finished
  cell is never computed twice; the claim is removed once the record is written.

Several machines compare a claim's modification time with their own clocks: keep them
synchronized (NTP), as any cluster does; ``STALE_S`` is far above NFS's attribute
cache (60 s at most by default) and any sane clock skew.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from suite.core.registry import SuiteError

BEAT_S = 15.0  # how often a running cell touches its claim
STALE_S = 180.0  # a claim untouched this long belongs to a dead worker


class CellBusy(SuiteError):
    """The cell is claimed by a live worker: left to it."""


class ClaimLost(CellBusy):
    """Another worker took over this worker's claim (it had gone stale)."""


def claim_path(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.claim"


def _read(path: Path) -> dict | None:
    """The claim's content; None if there is no claim; {} if it cannot be parsed."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _age(path: Path) -> float | None:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


def is_live(holder: dict, path: Path, stale_s: float) -> bool:
    age = _age(path)
    if age is None:
        return False
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and pid != os.getpid() \
            and not _alive(pid):
        return False  # its process is gone: no need to wait for the timeout
    return age < stale_s


def describe(holder: dict, path: Path) -> str:
    age = _age(path)
    who = f"{holder.get('host', '?')} pid {holder.get('pid', '?')}" if holder else "an unreadable claim"
    beat = f", last heartbeat {age:.0f} s ago" if age is not None else ""
    return f"{who} (since {holder.get('started', '?')}{beat})"


class Claim:
    """A held claim on one cell; release it with :meth:`release` (or use ``with``)."""

    def __init__(self, run_dir: Path, token: str, beat_s: float, marker: Path | None):
        self.run_dir, self.path, self.token, self.marker = run_dir, claim_path(run_dir), token, marker
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(beat_s,), daemon=True,
                                        name=f"claim-{run_dir.name}")
        self._thread.start()

    @classmethod
    def acquire(cls, run_dir: Path, *, stale_s: float | None = None, beat_s: float | None = None) -> Claim:
        """Claim ``run_dir``'s cell, taking over a stale claim; CellBusy if a live worker has it."""
        stale_s = STALE_S if stale_s is None else stale_s
        beat_s = BEAT_S if beat_s is None else beat_s
        path = claim_path(run_dir)
        token = uuid.uuid4().hex
        me = {"host": socket.gethostname(), "pid": os.getpid(), "token": token,
              "started": datetime.now(UTC).isoformat(timespec="seconds"), "cell": run_dir.name}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{token}.tmp")
        tmp.write_text(json.dumps(me) + "\n")
        try:
            for _ in range(5):  # a claim released between two looks: look again
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
                    return cls(run_dir, token, beat_s, None)
                holder = _read(path)
                if holder is None:
                    continue
                if is_live(holder, path, stale_s):
                    raise CellBusy(f"{run_dir} is being run by {describe(holder, path)}")
                stale = holder.get("token") or f"unreadable-{_mtime_ns(path)}"
                marker = path.with_name(f"{path.name}.takeover-{stale}")
                try:
                    os.link(tmp, marker)
                except FileExistsError:
                    raise CellBusy(f"{run_dir}: another worker is taking over its stale claim") from None
                if _read(path) != holder:  # changed since we looked: not the stale claim any more
                    marker.unlink(missing_ok=True)
                    continue
                os.replace(tmp, path)
                return cls(run_dir, token, beat_s, marker)
            raise CellBusy(f"{run_dir}: its claim keeps changing hands; left to the other workers")
        finally:
            tmp.unlink(missing_ok=True)

    def _beat(self, beat_s: float) -> None:
        while not self._stop.wait(beat_s):
            holder = _read(self.path)
            if holder is None or (holder and holder.get("token") != self.token):
                self.lost = True
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def check(self) -> None:
        """Raise ClaimLost if another worker has taken the cell over."""
        if not self.lost:
            holder = _read(self.path)
            self.lost = holder is None or holder.get("token") != self.token
        if self.lost:
            raise ClaimLost(f"{self.run_dir}: another worker took this cell over (this worker's claim had gone "
                            f"stale); left to it")

    def finished(self) -> None:
        """The cell's record is written: remove every takeover marker of the cell, dead
        takers' included (a taker still on its way finds the record and stops)."""
        self.marker = None
        for marker in self.path.parent.glob(f"{self.path.name}.takeover-*"):
            marker.unlink(missing_ok=True)

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        if (_read(self.path) or {}).get("token") == self.token:
            self.path.unlink(missing_ok=True)
        if self.marker is not None:
            self.marker.unlink(missing_ok=True)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
