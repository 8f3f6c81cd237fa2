"""How many torch CPU threads a run uses: one rule for ``run``, ``sweep``, ``paper`` and
``tune``, set once by the command line before any work.

``--threads N`` wins, then the environment variable ``RNNSUITE_THREADS``, then
``DEFAULT``. Every record keeps the count it ran with (``environment.torch_threads``),
outside the hashed configuration: the thread count changes the time, not the experiment.

Why one thread by default: measured on the shared 2-core machine (docs/usage.md, "Threads"), a
training step on two threads was 2.4–31 times slower than on one while other work ran
(the two threads wait on each other), and 1.1–1.6 times faster when it was idle.
"""

from __future__ import annotations

import os

from suite.core.registry import SuiteError

DEFAULT = 1
ENV = "RNNSUITE_THREADS"


def chosen(flag: int | None = None) -> int:
    """The thread count: ``flag``, else ``$RNNSUITE_THREADS``, else DEFAULT."""
    if flag is not None:
        if flag < 1:
            raise SuiteError(f"--threads {flag} must be >= 1")
        return flag
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT
    try:
        value = int(text)
    except ValueError:
        raise SuiteError(f"{ENV}={text!r} is not a thread count (a positive integer; or unset it)") from None
    if value < 1:
        raise SuiteError(f"{ENV}={value} must be >= 1 (or unset it)")
    return value


def apply(flag: int | None = None) -> int:
    """Set torch's CPU threads to the chosen count, and ``$RNNSUITE_THREADS`` to it, so
    worker processes started later (``tune --workers``, the local launcher) use it too."""
    import torch

    count = chosen(flag)
    torch.set_num_threads(count)
    os.environ[ENV] = str(count)
    return count
