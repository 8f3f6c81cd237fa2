"""Progress of commands that run many cells (``sweep``, ``paper``, ``export``, launcher
waits): one line per cell with what it gave, how long it took, the counts so far and the
time left, and, on a terminal, an overall bar with the same counts under the lines.

    progress = CellProgress(len(cells), "sweep", quiet=args.quiet)
    for cell in cells:
        start = time.monotonic()
        ...
        progress.line(f"[{i}/{n}] {cell}: test mse = 0.01", "done", time.monotonic() - start)
    progress.close()

The time left is the mean time of the cells computed so far (done or failed) times the
cells still to come: cells found complete or left to other workers take no time and do
not enter the mean. ``quiet`` removes the bar; the lines stay, they are the command's
log (a log file or a non-terminal gets the lines only).
"""

from __future__ import annotations

import sys

from tqdm import tqdm

KINDS = ("done", "skipped", "left", "failed")  # done here, skipped as complete, left to others, failed


def bars_shown(quiet: bool) -> bool:
    """Progress bars go to a terminal only: in a log file they are kilobytes of carriage
    returns (a run's step bar, a sweep's cell bar); ``quiet`` removes them there too."""
    return not quiet and sys.stderr.isatty()


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class CellProgress:
    def __init__(self, total: int, label: str, *, quiet: bool = False):
        self.total, self.label = total, label
        self.counts = dict.fromkeys(KINDS, 0)
        self.computed_s = 0.0
        interactive = bars_shown(quiet)
        self.bar = tqdm(total=total, desc=label, unit="cell", file=sys.stderr, leave=False, dynamic_ncols=True,
                        bar_format="{desc}: {n}/{total} {bar} {postfix}") if interactive else None

    @property
    def seen(self) -> int:
        return sum(self.counts.values())

    def left_s(self) -> float | None:
        computed = self.counts["done"] + self.counts["failed"]
        return None if computed == 0 else self.computed_s / computed * (self.total - self.seen)

    def status(self) -> str:
        """``2 done, 1 skipped, 0 failed; ~5 min left`` (left to other workers only when some are)."""
        c = self.counts
        parts = [f"{c['done']} done", f"{c['skipped']} skipped"]
        if c["left"]:
            parts.append(f"{c['left']} left to others")
        parts.append(f"{c['failed']} failed")
        left = self.left_s()
        when = "" if self.seen == self.total else \
            f"; ~{duration(left)} left" if left is not None else "; time left unknown"
        return ", ".join(parts) + when

    def advance(self, kind: str, seconds: float = 0.0) -> str:
        """Count one cell of ``kind`` (one of KINDS) that took ``seconds``; returns the status."""
        self.counts[kind] += 1
        if kind in ("done", "failed"):
            self.computed_s += seconds
        text = self.status()
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        return text

    def line(self, text: str, kind: str, seconds: float = 0.0) -> None:
        """Count the cell and print its line with its time and the status."""
        status = self.advance(kind, seconds)
        took = f"{duration(seconds)}; " if kind in ("done", "failed") else ""
        self.write(f"{text}  ({took}{status})")

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
