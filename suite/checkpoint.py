"""A run's checkpoint: everything the training loop needs to continue as if never
stopped, written atomically beside the run's future directory (``records.checkpoint_path``).

A run killed at any moment and started again resumes from its last checkpoint to the
same final record, timings aside (``tests/test_resume.py`` kills it at several).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import torch

from suite import claims, records


class Checkpoint:
    """Everything the loop needs to continue as if never stopped, saved atomically.

    The training data need no state of their own: batch i is a pure function of
    (seed, i), so the step counter is the data generator's state. A checkpoint that
    cannot be read, or is of another configuration, is removed and the run starts
    over; a failed save is a one-line error that keeps the last good checkpoint."""

    def __init__(self, path: Path, every: int, *, fresh: bool, config_hash: str | None = None,
                 claim: claims.Claim | None = None):
        self.path, self.every, self.config_hash, self.claim = path, every, config_hash, claim
        self.tmp = path.with_name(path.name + ".tmp")
        if fresh:
            self.remove()

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
            problem = None if self.config_hash in (None, state.get("config_hash")) else "another configuration's"
        except Exception as exc:  # truncated or corrupt: torch raises several kinds
            problem = f"unreadable ({records.cause(exc)})"
        if problem is None:
            return state
        print(f"checkpoint {self.path} is {problem}: removed, the run starts from step 0", file=sys.stderr)
        self.remove()
        return None

    def save(self, state: dict) -> None:
        if self.claim is not None:
            self.claim.check()  # taken over by another worker: stop before writing over its files
        buffer = io.BytesIO()  # serialized first, so that a failed write keeps its errno
        torch.save(state, buffer)
        try:
            records.write_bytes_atomic(self.path, buffer.getbuffer(), tmp=self.tmp)
        except OSError as exc:
            kept = f"; the last good checkpoint {self.path.name} is kept" if self.path.exists() else ""
            raise records.DiskError(f"cannot write the checkpoint {self.tmp}: {records.cause(exc)}{kept}") from None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.tmp.unlink(missing_ok=True)
