"""nox sessions: the entry points of the suite.

    nox -s demo     embedded default: short CPU runs of adding and copy with every model
                    family, then the report table and figures under results/demo
    nox -s tests    the test suite on CPU (MNIST tests read ../shared/data/mnist or $RNNSUITE_DATA)
    nox -s lint     ruff

Every session installs the project with the pinned versions of constraints.txt (torch
included), so results do not drift with new releases. Sessions use the interpreter nox
runs under; `nox -r` reuses the environments between runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = str(ROOT / "constraints.txt")
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

# pip, not uv: torch's CPU wheel is found through pip's configuration on these machines
nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint"]


def install(session: nox.Session, *extras: str) -> None:
    target = f".[{','.join(extras)}]" if extras else "."
    session.install("-c", CONSTRAINTS, "-e", target)


def data_env() -> dict[str, str]:
    if "RNNSUITE_DATA" not in os.environ and SHARED_MNIST.is_dir():
        return {"RNNSUITE_DATA": str(SHARED_MNIST)}
    return {}


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (CPU, a few minutes on 2 cores)."""
    install(session, "test")
    session.run("pytest", *session.posargs, env=data_env())


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-c", CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """Short CPU runs of adding and copy with every model family; report and figures."""
    install(session)
    out = "results/demo"
    session.run("rnnsuite", "sweep", "--config", "demo", "--out", out, "--quiet")
    session.run("rnnsuite", "report", "--runs", out, "--out", out)
