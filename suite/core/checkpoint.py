"""A run's checkpoint: everything the training loop needs to continue as if never
stopped, written atomically beside the run's future directory (``records.checkpoint_path``).

A run killed at any moment and started again resumes from its last checkpoint to the
same final record, timings aside (``tests/test_resume.py`` kills it at several).

On disk a checkpoint is a header line and the state torch serialized::

    rnnsuite-checkpoint
    {"config_hash": ..., "digest": <sha256 of the state's bytes>, "format": 1, "size": ..., "versions": {...}}
    <torch.save bytes>

A checkpoint is resumed only if its header is intact, its bytes match the digest, it
was written under the same versions (Python, torch, NumPy, rnnsuite) for the same
configuration, torch can load it, and (checked by the harness) it fits the model,
optimizer and schedule being built. Any other is set aside, renamed and not deleted,
with one line saying why, and the run starts from step 0: a damaged checkpoint is
never resumed (``tests/test_records_trust.py`` damages them at random offsets).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import sys
import uuid
from pathlib import Path

import torch

from suite.core import claims, records

MAGIC = b"rnnsuite-checkpoint\n"
FORMAT = 1


def versions() -> dict[str, str | None]:
    """The versions a checkpoint is written under; another set refuses it (a RNG state or
    a state dict need not mean the same under other versions)."""
    import platform

    import numpy

    try:
        from importlib.metadata import version

        suite_version = version("rnnsuite")
    except Exception:  # not installed: run from a checkout
        suite_version = None
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "rnnsuite": suite_version}


def _canonical(header: dict) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode()


class Checkpoint:
    """Everything the loop needs to continue as if never stopped, saved atomically.

    The training data need no state of their own: batch i is a pure function of
    (seed, i), so the step counter is the data generator's state. A checkpoint that
    cannot be trusted (see the module's docstring) is set aside and the run starts
    over; a failed save is a one-line error that keeps the last good checkpoint."""

    def __init__(self, path: Path, every: int, *, fresh: bool, config_hash: str | None = None,
                 claim: claims.Claim | None = None):
        self.path, self.every, self.config_hash, self.claim = path, every, config_hash, claim
        self.tmp = path.with_name(path.name + ".tmp")
        if fresh:
            self.remove()

    def load(self) -> dict | None:
        """The saved state, or None: no checkpoint, or one set aside (one line on stderr)."""
        if not self.path.exists():
            return None
        state, problem = self._read()
        if problem is None:
            return state
        self.set_aside(problem)
        return None

    def _read(self) -> tuple[dict | None, str | None]:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            return None, f"is unreadable ({records.cause(exc)})"
        if not data.startswith(MAGIC):
            return None, "is unreadable (no rnnsuite checkpoint header: damaged, or written by an older suite)"
        line, sep, payload = data[len(MAGIC):].partition(b"\n")
        try:
            header = json.loads(line)
            ok = sep == b"\n" and isinstance(header, dict) and _canonical(header) == line
        except (ValueError, RecursionError):
            ok = False
        if not ok or header.get("format") != FORMAT:
            return None, "is damaged (its header does not read back)"
        if header.get("size") != len(payload):
            return None, (f"is truncated or damaged ({len(payload)} bytes of state where "
                          f"{header.get('size')} were written)")
        if hashlib.sha256(payload).hexdigest() != header.get("digest"):
            return None, "is damaged (its content does not match its digest)"
        if header.get("versions") != versions():
            theirs = header.get("versions") or {}
            changed = ", ".join(f"{k} {theirs.get(k)} then, {v} now" for k, v in versions().items()
                                if theirs.get(k) != v)
            return None, f"was written under other versions ({changed})"
        if self.config_hash is not None and header.get("config_hash") != self.config_hash:
            return None, "is another configuration's"
        try:
            state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)
        except Exception as exc:  # torch raises several kinds
            return None, f"is unreadable ({records.cause(exc)})"
        if not isinstance(state, dict):
            return None, "is unreadable (not a saved state)"
        return state, None

    def save(self, state: dict) -> None:
        if self.claim is not None:
            self.claim.check()  # taken over by another worker: stop before writing over its files
        buffer = io.BytesIO()  # serialized first, so that a failed write keeps its errno
        torch.save(state, buffer)
        payload = buffer.getvalue()
        header = {"format": FORMAT, "digest": hashlib.sha256(payload).hexdigest(), "size": len(payload),
                  "versions": versions(), "config_hash": state.get("config_hash", self.config_hash)}
        try:
            records.write_bytes_atomic(self.path, MAGIC + _canonical(header) + b"\n" + payload, tmp=self.tmp)
        except OSError as exc:
            kept = f"; the last good checkpoint {self.path.name} is kept" if self.path.exists() else ""
            raise records.DiskError(f"cannot write the checkpoint {self.tmp}: {records.cause(exc)}{kept}") from None

    def set_aside(self, why: str) -> Path | None:
        """Rename the checkpoint out of the way (never deleted: it may be looked at) and say
        so in one line; the run then starts from step 0."""
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.set-aside-{stamp}-{uuid.uuid4().hex[:6]}")
        try:
            self.path.rename(aside)
        except OSError as exc:  # cannot rename: it must still never be resumed
            self.path.unlink(missing_ok=True)
            print(f"checkpoint {self.path} {why}: removed (could not set it aside: {records.cause(exc)}); "
                  f"the run starts from step 0", file=sys.stderr)
            return None
        print(f"checkpoint {self.path} {why}: set aside as {aside.name}; the run starts from step 0",
              file=sys.stderr)
        return aside

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.tmp.unlink(missing_ok=True)
