"""Task definitions: statistics, reference points, determinism, data errors."""

from __future__ import annotations

import gzip
import math
import shutil

import numpy as np
import pytest
import torch

import suite
from suite.core.registry import SuiteError
from tasks.copy_memory import memoryless_xent


def test_adding_structure_and_trivial_baseline():
    task = suite.build_task("adding", T=40, n_test=4000)
    x, y = next(iter(task.batches("test", 4000, seed=0)))
    marker = x[..., 1]
    assert torch.all(marker.sum(1) == 2)
    assert torch.all(marker[:, :20].sum(1) == 1) and torch.all(marker[:, 20:].sum(1) == 1)
    torch.testing.assert_close(y.squeeze(-1), (x[..., 0] * marker).sum(1))
    mse_of_one = task.metrics(torch.ones_like(y), y)["mse"].mean().item()
    assert mse_of_one == pytest.approx(1 / 6, abs=0.01)  # the trivial baseline ~0.167
    assert task.describe()["trivial_baseline"]["value"] == pytest.approx(1 / 6)


def test_adding_train_batches_fresh_and_seeded():
    task = suite.build_task("adding", T=10)
    a0, _ = task.batch("train", 0, 8, seed=1)
    a1, _ = task.batch("train", 1, 8, seed=1)
    b0, _ = task.batch("train", 0, 8, seed=1)
    c0, _ = task.batch("train", 0, 8, seed=2)
    assert torch.equal(a0, b0) and not torch.equal(a0, a1) and not torch.equal(a0, c0)
    # the test set is fixed by the task, not by the run's seed
    assert torch.equal(task.batch("test", 0, 8, seed=0)[0], task.batch("test", 0, 8, seed=99)[0])


@pytest.mark.parametrize("T", [1, 5, 100])
def test_copy_layout(T):
    task = suite.build_task("copy", T=T, n_test=50)
    x, y = task.batch("test", 0, 50, seed=0)
    seq = x.argmax(-1)
    assert x.shape == (50, T + 20, 10) and y.shape == (50, T + 20)
    assert torch.all((seq[:, :10] >= 1) & (seq[:, :10] <= 8))
    assert torch.all(seq[:, 10 : T + 9] == 0) and torch.all(seq[:, T + 9] == 9) and torch.all(seq[:, T + 10 :] == 0)
    assert torch.all(y[:, : T + 10] == 0) and torch.equal(y[:, T + 10 :], seq[:, :10])


def test_copy_memoryless_baseline_matches_formula():
    T = 30
    task = suite.build_task("copy", T=T, n_test=20)
    x, y = task.batch("test", 0, 20, seed=0)
    # the memoryless strategy: certain blank for T + 10 steps, then uniform over symbols 1..8
    logits = torch.full((20, T + 20, 10), -1e4)
    logits[:, : T + 10, 0] = 0.0
    logits[:, T + 10 :, 1:9] = 0.0
    xent = task.metrics(logits, y)["xent"].mean().item()
    assert xent == pytest.approx(memoryless_xent(T), rel=1e-5)
    assert memoryless_xent(T) == pytest.approx(10 * math.log(8) / (T + 20))


def test_task_parameters_are_checked():
    with pytest.raises(SuiteError, match="task.T=0"):
        suite.build_task("adding", T=0)
    with pytest.raises(SuiteError, match="did you mean 'task.T'"):
        suite.build_task("copy", t=5)
    with pytest.raises(SuiteError, match="not an integer"):
        suite.build_task("adding", T="ten")


def test_permutation_stable_for_seed_and_different_across_seeds():
    a = suite.build_task("psmnist", perm_seed=3)
    b = suite.build_task("psmnist", perm_seed=3)
    c = suite.build_task("psmnist", perm_seed=4)
    assert np.array_equal(a.permutation, b.permutation)
    assert sorted(a.permutation.tolist()) == list(range(784))
    assert not np.array_equal(a.permutation, c.permutation)
    assert a.describe()["permutation"]["sha256"] == b.describe()["permutation"]["sha256"]
    assert a.describe()["permutation"]["sha256"] != c.describe()["permutation"]["sha256"]
    assert a.variant != c.variant


def test_smnist_batches(mnist):
    task = suite.build_task("smnist", data_dir=mnist, val_size=1000)
    x, y = task.batch("test", 0, 16, seed=0)
    assert x.shape == (16, 784, 1) and y.dtype == torch.int64
    assert task.split_size("train") == 59000 and task.split_size("test") == 10000
    permuted = suite.build_task("psmnist", data_dir=mnist, val_size=1000, perm_seed=0)
    px, py = permuted.batch("test", 0, 16, seed=0)
    assert torch.equal(py, y)
    assert torch.equal(px[:, :, 0], x[:, permuted.permutation, 0])


def test_smnist_pixels_are_standardized_with_the_training_set_statistics(mnist):
    """Standardized: (p/255 - 0.1307)/0.3081. On 10k training images the mean is 0.001 and
    the std 1.0015 (measured); [0, 1] pixels give 0.13 and 0.31, a wrong std constant (0.30
    for 0.3081) gives 1.03, so the tolerances of 0.01 tell them apart."""
    x, _ = suite.build_task("smnist", data_dir=mnist, val_size=1000).batch("train", 0, 10000, seed=0)
    assert abs(x.mean().item()) < 0.01 and abs(x.std().item() - 1) < 0.01, (x.mean().item(), x.std().item())
    assert x.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)  # a black pixel
    unit, _ = suite.build_task("smnist", data_dir=mnist, val_size=1000, pixels="unit").batch("test", 0, 512, seed=0)
    assert unit.min().item() == 0.0 and unit.max().item() == 1.0


def test_missing_mnist_is_a_one_line_error(tmp_path):
    task = suite.build_task("smnist", data_dir=str(tmp_path))
    with pytest.raises(SuiteError, match="not found") as err:
        task.batch("test", 0, 4, seed=0)
    assert "\n" not in str(err.value) and "--data-dir" in str(err.value)


def test_corrupt_mnist_is_detected(mnist, tmp_path):
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        shutil.copy(f"{mnist}/{f}", tmp_path / f)
    with gzip.open(f"{mnist}/t10k-labels-idx1-ubyte.gz", "rb") as fh:
        content = bytearray(fh.read())
    content[100] ^= 0xFF  # one flipped label byte
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(bytes(content))
    task = suite.build_task("smnist", data_dir=str(tmp_path))
    with pytest.raises(SuiteError, match="corrupt"):
        task.batch("test", 0, 4, seed=0)


def test_mnist_data_dir_from_environment(mnist, monkeypatch):
    monkeypatch.setenv("RNNSUITE_DATA", mnist)
    task = suite.build_task("smnist")
    assert task.batch("val", 0, 2, seed=0)[0].shape == (2, 784, 1)
