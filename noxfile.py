"""nox sessions: the entry points of the suite.

    nox -s demo     embedded default: the adding problem at T = 100, one model of each family,
                    2000 steps on the CPU (a few minutes), then the table and figures under results/demo
    nox -s tests    the test suite on CPU (MNIST tests read ../shared/data/mnist or $RNNSUITE_DATA)
    nox -s lint     ruff
    nox -s paper -- TABLE [--profile quick|medium|full]   run a table's cells, write the table
                    TABLE: smnist, adding, copy, gradients, tuning, hdnn, sanity; each is a file
                    of suite/experiments/ with its profiles and what each costs (docs/tables.md)
    nox -s bench [-- --compare]                    pytest-benchmark; --compare fails on a slowdown
    nox -s slurm    the cluster launcher against a throwaway single-node SLURM (root; apt-get)
    nox -s site     the results site from the committed records into results/site/, then its
                    browser test (Debian's chromium, installed with apt-get if missing; root)

Every session installs the project with the pinned versions of constraints.txt (torch
included), so results do not drift with new releases. Sessions use the interpreter nox
runs under; `nox -r` reuses the environments between runs.
"""

from __future__ import annotations

import os
import shutil
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
    install(session, "test", "trackers")  # trackers: the export tests read back what each library wrote
    session.run("pytest", *session.posargs, env=data_env())


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-c", CONSTRAINTS, "ruff")
    session.run("ruff", "check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """The adding problem at T = 100 with one model of each family (suite/presets/demo.toml):
    per-cell progress, then the table, the figures and results/demo/overview.png, the one to
    look at first (each model's test MSE against the trivial baseline, beside its gradient ratio)."""
    install(session)
    out = "results/demo"
    # One torch thread: the demo's operations (64 units, batch 50) are too small to share
    # between two cores, and on a machine running anything else two threads wait on each
    # other. Measured on the 2-core machine under load: GRU at 50 ms a step on one thread,
    # above 1 s a step on two.
    env = {"OMP_NUM_THREADS": "1"}
    session.run("rnnsuite", "sweep", "--config", "demo", "--out", out, *session.posargs, env=env)
    session.run("rnnsuite", "report", "--runs", out, "--out", out, env=env)


@nox.session
def paper(session: nox.Session) -> None:
    """Reproduce a paper table: `nox -s paper -- smnist --profile quick`.

    The tables, their profiles and what each costs: suite/experiments/<table>.toml.
    """
    if not session.posargs:
        session.error("name a table: nox -s paper -- smnist|adding|copy|gradients|tuning|hdnn|sanity "
                      "[--profile quick|medium|full]")
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


@nox.session
def slurm(session: nox.Session) -> None:
    """The launcher against a real SLURM: a throwaway single-node cluster (Debian's slurm-wlm
    and munge, installed with apt-get if missing; needs root), then tests/test_slurm.py."""
    install(session, "test")
    state = Path(session.create_tmp()) / "slurm"
    script = str(ROOT / "tests" / "slurm" / "single-node.sh")
    session.run("bash", script, "start", str(state), external=True)
    try:
        session.run("pytest", "tests/test_slurm.py", "-o", "addopts=", "-v", *session.posargs,
                    env={"SLURM_CONF": str(state / "slurm.conf")})
    finally:
        session.run("bash", script, "stop", str(state), external=True)


@nox.session
def site(session: nox.Session) -> None:
    """The results site (`rnnsuite site`) from the committed tables and records into
    results/site/, then tests/test_site.py against it in chromium (Selenium), which also
    saves screenshots of two pages under results/site-screenshots/."""
    install(session, "test", "site")
    session.run("rnnsuite", "site", "--out", "results/site")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", "chromium-driver", external=True,
                    env={"DEBIAN_FRONTEND": "noninteractive"})
    session.run("pytest", "tests/test_site.py", "-o", "addopts=-ra", "-v", *session.posargs,
                env={"RNNSUITE_SITE": str(ROOT / "results" / "site"),
                     "RNNSUITE_SCREENSHOTS": str(ROOT / "results" / "site-screenshots")})
