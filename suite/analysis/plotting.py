"""The one place figures are made and saved: every figure of the suite goes through
:func:`pyplot` (matplotlib's non-interactive backend, so that no command needs a
display) and :func:`save` (written atomically: a killed report leaves the old figure or
none, never half of one)."""

from __future__ import annotations

from pathlib import Path

from suite.core import records


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported on first use (matplotlib is slow to
    import, and most commands draw nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` through a temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix or '.png'}")
    try:
        fig.savefig(tmp, dpi=dpi)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise records.write_error("the figure", path, exc) from None
    return path
