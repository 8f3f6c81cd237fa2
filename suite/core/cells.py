"""Running a list of cells as one worker among any number sharing an output folder."""

from __future__ import annotations

from pathlib import Path

from suite.core.claims import CellBusy
from suite.core.config import RunConfig
from suite.core.harness import run
from suite.core.progress import CellProgress
from suite.core.records import DiskError
from suite.core.registry import SuiteError


def run_cells(configs: list[RunConfig], out: str | Path, *, label: str, **run_kwargs) -> dict[str, int]:
    """Run the cells under ``out`` as one worker among any number sharing it: a cell
    found finished is skipped, one claimed by a live worker is left to it, a failed one
    is counted and the next one run (a failed write stops them all: the next would fail
    too). Prints one line per cell (with the counts so far and the time left; an overall
    bar on a terminal, unless ``quiet``) and the counts at the end; returns the counts."""
    import time


    # "diverged": of the cells done here, those whose record says so (records.STATES)
    counts = {"done here": 0, "skipped as complete": 0, "left to other workers": 0, "failed": 0, "diverged": 0}
    progress = CellProgress(len(configs), label, quiet=run_kwargs.get("quiet", False))

    def summary() -> None:
        progress.close()
        print(f"{label}: " + ", ".join(f"{n} {what}" for what, n in counts.items()) + f"; records under {out}")

    for i, cfg in enumerate(configs, 1):
        cell = f"[{i}/{len(configs)}] {cfg.task}/{cfg.model} seed {cfg.seed}"
        start = time.monotonic()
        try:
            record = run(cfg, out=out, **run_kwargs)
        except CellBusy as exc:
            counts["left to other workers"] += 1
            progress.line(f"{cell}: left to another worker: {exc}", "left")
            continue
        except DiskError:
            counts["failed"] += 1
            summary()
            raise
        except Exception as exc:  # one bad cell must not abandon the others
            counts["failed"] += 1
            detail = str(exc) if isinstance(exc, SuiteError) else f"{type(exc).__name__}: {exc}"
            progress.line(f"{cell}: failed: {detail.splitlines()[0] if detail.strip() else type(exc).__name__}",
                          "failed", time.monotonic() - start)
            continue
        if record["outcome"] == "complete":
            counts["skipped as complete"] += 1
            progress.advance("skipped")
            continue
        counts["done here"] += 1
        if record["status"] == "diverged":
            counts["diverged"] += 1
            shown = f"diverged at step {record['metrics']['diverged_step']}"
        else:
            shown = f"test {record['task_info']['metric']} = {record['metrics']['test']:.5g}"
        progress.line(f"{cell}: {shown}", "done", time.monotonic() - start)
    summary()
    return counts
