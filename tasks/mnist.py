"""Sequential MNIST (Le, Jaitly & Hinton 2015) and its permuted form.

``smnist``: each 28×28 image is read one pixel per step in raster order (T = 784,
input size 1); the readout at the last step classifies the digit (cross-entropy;
metric: accuracy). ``pixels`` is the input scaling, one of the published runs' (see
``PIXELS``): standardized with the training-set mean 0.1307 and std 0.3081 (the
default), [0, 1] (coRNN, LEM, UnICORNN, expRNN), [−1, 1) (IndRNN) or raw
bytes 0..255 (the Lipschitz RNN's psMNIST code).
``pixels_per_step = k`` reads k pixels per step (T = 784 / k); it exists for quick
profiles and tests and makes a different task, so it is recorded and shown in the
variant label.

Splits: the 60k training images are split by ``split_seed`` into ``val_size``
validation images and the rest for training (``n_train`` may take a subset of that
rest, for quick runs). Model selection uses validation only; the metric reported is
on the official 10k test images. (coRNN, LEM and UnICORNN hold out 3000 images, with
a split of their own that no seed here reproduces; their recipes set the size.)

``psmnist``: the same with one fixed permutation of the 784 pixel positions; position
j of the sequence is pixel ``perm[j]``. Published psMNIST numbers use different
permutations, four different tasks under one name, so ``perm`` names the construction
(``PERMUTATIONS``): the suite's own ``default_rng(perm_seed)``, ``torch`` (coRNN seed
12008, LEM and UnICORNN 5544), ``numpy-legacy`` (expRNN seed 92916) or ``bit-reversal``
(s4). Every record carries the permutation's name, seed and SHA-256: results are
comparable only when it matches.

Version 2: ``pixels``, ``perm`` and ``last_batch`` added (version 1 is
``pixels="standardized"``, ``perm="suite"``, ``last_batch="drop"``).

Data: the standard IDX files (``train-images-idx3-ubyte`` etc., gzip or raw) in a
directory given by ``--data-dir`` or ``RNNSUITE_DATA``; each file's decompressed
content is checked against its SHA-256. ``--download`` (on ``run``, ``sweep``,
``tune``) fetches them into ``--data-dir`` from the standard mirrors.

Run: ``rnnsuite run --task smnist --model lstm --data-dir ../shared/data/mnist``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from suite.core.config import require
from suite.core.registry import SuiteError, register_task
from suite.core.spec import Task

# SHA-256 of the decompressed IDX files: the canonical hashes other projects pin.
FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MEAN, STD = 0.1307, 0.3081
ENV_VAR = "RNNSUITE_DATA"
FIX_HINT = (f"pass --data-dir DIR or set {ENV_VAR}=DIR; to fetch the files into DIR, add --download to "
            f"`rnnsuite run`, `rnnsuite sweep` or `rnnsuite tune`")


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is None:
        data_dir = os.environ.get(ENV_VAR)
    if not data_dir:
        raise SuiteError(f"MNIST needs a data directory: {FIX_HINT}")
    return Path(data_dir).expanduser()


def _read_verified(directory: Path, stem: str) -> bytes:
    for candidate, opener in ((directory / f"{stem}.gz", gzip.open), (directory / stem, open)):
        if candidate.exists():
            try:
                with opener(candidate, "rb") as fh:
                    content = fh.read()
            except (OSError, EOFError) as exc:
                raise SuiteError(f"{candidate} is unreadable ({exc}); replace it: {FIX_HINT}") from None
            digest = hashlib.sha256(content).hexdigest()
            if digest != FILES[stem]:
                raise SuiteError(f"{candidate} is corrupt: decompressed SHA-256 {digest[:16]}… "
                                 f"expected {FILES[stem][:16]}…; replace it: {FIX_HINT}")
            return content
    raise SuiteError(f"MNIST file {stem}(.gz) not found in {directory}: {FIX_HINT}")


def _parse_idx(content: bytes, stem: str) -> np.ndarray:
    ndim = content[3]
    dims = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * ndim)
    if content[2] != 0x08 or data.size != int(np.prod(dims)):
        raise SuiteError(f"{stem} is not a uint8 IDX file of shape {dims}")
    return data.reshape(dims)


@functools.lru_cache(maxsize=4)
def load_mnist(data_dir: str) -> dict[str, np.ndarray]:
    """The four arrays, verified: train/test images as ``[N, 784]`` uint8, labels ``[N]``."""
    directory = Path(data_dir)
    arrays = {stem: _parse_idx(_read_verified(directory, stem), stem) for stem in FILES}
    return {
        "train_x": arrays["train-images-idx3-ubyte"].reshape(-1, 784),
        "train_y": arrays["train-labels-idx1-ubyte"],
        "test_x": arrays["t10k-images-idx3-ubyte"].reshape(-1, 784),
        "test_y": arrays["t10k-labels-idx1-ubyte"],
    }


def download_mnist(data_dir: str | os.PathLike) -> Path:
    """Fetch the four files into ``data_dir`` (verified, written atomically)."""
    directory = Path(data_dir).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    for stem, sha in FILES.items():
        if (directory / f"{stem}.gz").exists() or (directory / stem).exists():
            _read_verified(directory, stem)
            continue
        errors = []
        for mirror in MIRRORS:
            try:
                with urllib.request.urlopen(mirror + stem + ".gz", timeout=60) as response:
                    blob = response.read()
                if hashlib.sha256(gzip.decompress(blob)).hexdigest() != sha:
                    raise ValueError("checksum mismatch")
                break
            except Exception as exc:  # network errors, bad gzip, wrong content: next mirror
                errors.append(f"{mirror}: {exc}")
        else:
            raise SuiteError(f"could not download {stem}.gz ({'; '.join(errors)})")
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, directory / f"{stem}.gz")
    return directory


# Input scalings of the published runs (task.pixels), from raw bytes p in 0..255
PIXELS = {
    "standardized": "(p/255 − 0.1307)/0.3081 (training-set mean and std)",
    "unit": "p/255 in [0, 1] (coRNN, LEM, UnICORNN, expRNN)",
    "signed": "(p − 128)/128 in [−1, 1) (IndRNN)",
    "raw": "p in [0, 255], unscaled (the Lipschitz RNN's psMNIST code)",
}


def scale_pixels(p: torch.Tensor, rule: str) -> torch.Tensor:
    if rule == "unit":
        return p / 255.0
    if rule == "signed":
        return (p - 128.0) / 128.0
    if rule == "raw":
        return p
    return (p / 255.0 - MEAN) / STD


def _bit_reversal(n: int) -> np.ndarray:
    """Positions 0..2^m−1 in bit-reversed order, those ≥ n dropped (2^m ≥ n)."""
    bits = max(1, (n - 1).bit_length())
    order = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(1 << bits)]
    return np.array([i for i in order if i < n])


def _torch_randperm(seed: int, n: int) -> np.ndarray:
    # torch.manual_seed(seed); torch.randperm(n): the global generator's state is kept
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator).numpy()


# The published psMNIST permutations (task.perm), each a function of (perm_seed, 784)
PERMUTATIONS = {
    "suite": ("numpy.random.default_rng(perm_seed).permutation(784)",
              lambda seed, n: np.random.default_rng(seed).permutation(n)),
    "torch": ("torch.manual_seed(perm_seed); torch.randperm(784) (coRNN seed 12008, LEM and UnICORNN 5544)",
              _torch_randperm),
    "numpy-legacy": ("numpy.random.RandomState(perm_seed).permutation(784) (expRNN seed 92916)",
                     lambda seed, n: np.random.RandomState(seed).permutation(n)),
    "bit-reversal": ("bit-reversed positions 0..1023, those >= 784 dropped (s4); perm_seed unused",
                     lambda seed, n: _bit_reversal(n)),
}


@dataclass
class SMNISTConfig:
    val_size: int = 5000
    split_seed: int = 0
    n_train: int | None = None  # subset of the training split (None: all of it)
    pixels_per_step: int = 1  # 1 is the published task; >1 only for quick profiles
    pixels: Literal["standardized", "unit", "signed", "raw"] = "standardized"  # input scaling (PIXELS)
    # an epoch's incomplete last batch: dropped, or kept as a smaller batch (PyTorch's
    # DataLoader default, which the coRNN, LEM and UnICORNN scripts use)
    last_batch: Literal["drop", "keep"] = "drop"

    def validate(self) -> None:
        require(0 < self.val_size < 60000, f"task.val_size={self.val_size} must be in 1..59999")
        require(self.n_train is None or self.n_train >= 1, f"task.n_train={self.n_train} must be >= 1")
        require(self.pixels_per_step >= 1 and 784 % self.pixels_per_step == 0,
                f"task.pixels_per_step={self.pixels_per_step} must divide 784 (1, 2, 4, 7, 8, 14, 16, 28, ...)")


@register_task("smnist")
class SMNIST(Task):
    Config = SMNISTConfig
    version = 2
    metric = "accuracy"
    higher_is_better = True
    output_at = "last"
    output_size = 10

    def __init__(self, cfg, **kwargs):
        super().__init__(cfg, **kwargs)
        self.input_size = cfg.pixels_per_step
        self.seq_len = 784 // cfg.pixels_per_step
        self.permutation = self._permutation()
        self._data = None

    def _permutation(self) -> np.ndarray | None:
        return None

    def _load(self):
        if self._data is None:
            arrays = load_mnist(str(resolve_data_dir(self.data_dir)))
            order = np.random.default_rng(self.cfg.split_seed).permutation(60000)
            val_idx, train_idx = order[: self.cfg.val_size], order[self.cfg.val_size :]
            if self.cfg.n_train is not None:
                train_idx = train_idx[: self.cfg.n_train]
            self._data = {
                "train": (arrays["train_x"][train_idx], arrays["train_y"][train_idx]),
                "val": (arrays["train_x"][val_idx], arrays["train_y"][val_idx]),
                "test": (arrays["test_x"], arrays["test_y"]),
            }
        return self._data

    def split_size(self, split):
        if split == "train":
            total = 60000 - self.cfg.val_size
            return min(total, self.cfg.n_train) if self.cfg.n_train else total
        return self.cfg.val_size if split == "val" else 10000

    def _to_sequence(self, pixels: np.ndarray) -> torch.Tensor:
        if self.permutation is not None:
            pixels = pixels[:, self.permutation]
        x = scale_pixels(torch.from_numpy(np.ascontiguousarray(pixels)).float(), self.cfg.pixels)
        return x.view(x.shape[0], self.seq_len, self.cfg.pixels_per_step)

    def batch(self, split, index, batch_size, *, seed):
        images, labels = self._load()[split]
        if split == "train":
            # epoch e is a fresh shuffle drawn from (seed, e); its incomplete last batch is
            # dropped or kept as task.last_batch says
            if batch_size > len(images):
                raise SuiteError(f"batch_size={batch_size} exceeds the {len(images)} training examples")
            per_epoch = self.steps_per_epoch(batch_size)
            epoch, pos = divmod(index, per_epoch)
            order = np.random.default_rng([seed, epoch]).permutation(len(images))
            idx = order[pos * batch_size : (pos + 1) * batch_size]
        else:
            idx = np.arange(index * batch_size, min((index + 1) * batch_size, len(images)))
            if idx.size == 0:
                raise IndexError(f"{split} batch {index} is past the end")
        return self._to_sequence(images[idx]), torch.from_numpy(labels[idx].astype(np.int64))

    def steps_per_epoch(self, batch_size):
        size = self.split_size("train")
        return max(1, -(-size // batch_size) if self.cfg.last_batch == "keep" else size // batch_size)

    def loss(self, output, target):
        return F.cross_entropy(output, target, reduction="none")

    def metrics(self, output, target):
        return {"accuracy": (output.argmax(-1) == target).float(), "xent": self.loss(output, target)}

    def describe(self):
        return {"split_sizes": {s: self.split_size(s) for s in ("train", "val", "test")},
                "trivial_baseline": {"metric": "accuracy", "value": 0.1, "rule": "chance"},
                "pixels": {"rule": self.cfg.pixels, "formula": PIXELS[self.cfg.pixels]}}

    @property
    def variant(self):
        return f"T={self.seq_len}"


@dataclass
class PSMNISTConfig(SMNISTConfig):
    perm: Literal["suite", "torch", "numpy-legacy", "bit-reversal"] = "suite"  # PERMUTATIONS
    perm_seed: int = 0


@register_task("psmnist")
class PSMNIST(SMNIST):
    Config = PSMNISTConfig
    version = 2

    def _permutation(self):
        return PERMUTATIONS[self.cfg.perm][1](self.cfg.perm_seed, 784)

    def describe(self):
        perm_hash = hashlib.sha256(self.permutation.astype(np.int64).tobytes()).hexdigest()
        return {**super().describe(), "permutation": {"name": self.cfg.perm, "seed": self.cfg.perm_seed,
                                                     "rule": PERMUTATIONS[self.cfg.perm][0],
                                                     "sha256": perm_hash}}

    @property
    def variant(self):
        perm_hash = self.describe()["permutation"]["sha256"][:8]
        return f"T={self.seq_len} perm={perm_hash}"
