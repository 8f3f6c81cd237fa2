"""Shared fixtures. MNIST is read from $RNNSUITE_DATA or ../shared/data/mnist."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import suite  # noqa: F401  (registers the built-in tasks and models)

ROOT = Path(__file__).resolve().parent.parent


def mnist_dir() -> Path | None:
    for candidate in (os.environ.get("RNNSUITE_DATA"), ROOT.parent / "shared" / "data" / "mnist"):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").exists():
            return Path(candidate)
    return None


@pytest.fixture
def mnist():
    path = mnist_dir()
    if path is None:
        pytest.skip("MNIST files not found in $RNNSUITE_DATA or ../shared/data/mnist")
    return str(path)


# Tiny variants of every registered task, for contract tests: a few CPU steps each.
TINY_TASK_PARAMS = {
    "adding": {"T": 6, "n_val": 16, "n_test": 16},
    "copy": {"T": 3, "n_val": 16, "n_test": 16},
    "smnist": {"pixels_per_step": 49, "n_train": 64, "val_size": 32},
    "psmnist": {"pixels_per_step": 49, "n_train": 64, "val_size": 32},
}
MNIST_TASKS = {"smnist", "psmnist"}


def tiny_task_params(name: str) -> dict:
    """Tiny parameters for a registered task; tasks registered later fall back to defaults
    with a small ``T`` when they have one."""
    if name in TINY_TASK_PARAMS:
        return dict(TINY_TASK_PARAMS[name])
    cls = suite.core.registry.TASKS.get(name)
    fields = getattr(cls.Config, "__dataclass_fields__", {})
    return {"T": 6} if "T" in fields else {}


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread(request):
    """Every test on one torch thread, and the processes it starts too, unless
    OMP_NUM_THREADS is set: the tests' operations are tiny, and two threads of them wait on
    each other when anything else runs. Measured on the 2-core machine under load
    (2026-12-04): the adding-GRU quality case took 124 s on torch's two threads and 8 s on
    one. Benchmarks (--benchmark-only) keep torch's own count, the one their numbers state."""
    if "OMP_NUM_THREADS" in os.environ or request.config.getoption("benchmark_only", False):
        yield
        return
    import torch

    threads = torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    del os.environ["OMP_NUM_THREADS"]


@pytest.fixture(autouse=True)
def _no_tuned_files(tmp_path_factory, monkeypatch):
    """Tests see no tuned hyperparameter files unless they make their own: a file in
    baselines/tuned/ must not change what the other tests run."""
    monkeypatch.setenv("RNNSUITE_TUNED_DIR", str(tmp_path_factory.mktemp("tuned")))
