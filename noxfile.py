"""nox sessions: the entry points of the suite.

    nox -s demo     embedded default: short CPU runs of adding and copy with every model
                    family, then the report table and figures under results/demo
    nox -s tests    the test suite on CPU (MNIST tests read ../shared/data/mnist or $RNNSUITE_DATA)
    nox -s lint     ruff
    nox -s paper -- TABLE [--profile quick|full]   run a paper table's cells, write the table
        TABLE      what                                      quick (2 CPU cores) / full
        smnist     sMNIST and psMNIST accuracy, every model  ~6 min / hours per model on a GPU
        adding     adding problem, MSE against steps         ~10 min / hours per model on a GPU
        copy       copy task against the memoryless baseline ~5 min / ~1 h per model on a GPU
        gradients  gradient control (rnnsuite gradients)     ~5 min / ~10 CPU-hours (estimated)
        tuning     heuristic against Optuna-tuned, with cost ~30 s / days of GPU time
        hdnn       paper (b)'s H-DNN 2D classification       ~40 s / ~6 min on CPU
    nox -s bench [-- --compare]                    pytest-benchmark; --compare fails on a slowdown

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


@nox.session
def paper(session: nox.Session) -> None:
    """Reproduce a paper table: `nox -s paper -- smnist --profile quick`.

    The tables and what each costs are listed by `nox -l` (this file's docstring).
    """
    if not session.posargs:
        session.error("name a table: nox -s paper -- smnist|adding|copy|gradients|tuning|hdnn "
                      "[--profile quick|full]")
    install(session)
    session.run("rnnsuite", "paper", *session.posargs, env=data_env())


# A slowdown beyond this fails `bench -- --compare`. Measured on the 2-core CPU machine:
# three back-to-back runs of unchanged code differed per benchmark by up to 16% in the
# minimum of 20 rounds and up to 30% in the median, so the minimum is compared, with
# about twice the observed noise as margin; a lost fused path or a doubled forward
# (2x and more) is still caught.
BENCH_THRESHOLD = "min:35%"


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (pytest-benchmark), saved under .benchmarks/.

    `nox -s bench -- --compare` compares with the last saved run of this machine and
    fails on a slowdown beyond BENCH_THRESHOLD."""
    install(session, "test")
    args = ["pytest", "tests/benchmarks", "-o", "addopts=", "--benchmark-only", "--benchmark-autosave",
            "--benchmark-columns=median,iqr,rounds"]
    extra = list(session.posargs)
    if "--compare" in extra:
        extra.remove("--compare")
        args += ["--benchmark-compare", f"--benchmark-compare-fail={BENCH_THRESHOLD}"]
    session.run(*args, *extra, env=data_env())
