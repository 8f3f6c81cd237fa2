"""Paper (b)'s own experiments: 64-layer H-DNNs as deep classifiers of 2-D point sets.

Galimberti, Furieri, Xu & Ferrari-Trecate 2021 (arXiv:2104.13166, 2105.13205) train
H1-J1, H1-J2, H2 and the special cases MS1–MS3 on "swiss roll", "double moons" and
"double circles", and show that H2's backward sensitivity ‖∂y_N/∂y_{N−ℓ}‖ never falls
below 1. This module reruns that comparison, adds a plain residual network of the same
depth, and draws the sensitivity figure.

    rnnsuite paper hdnn --profile full       # 50 epochs: results/tables/hdnn-full/ (committed)
    python -m suite.studies.deep_hdnn --out /tmp/hdnn --epochs 1       # smoke run

Writes one record per network under ``records/classify2d/<network>/s<seed>-<hash>/record.json``
(its configuration and hash, accuracies, sensitivity, timing, commit; a network whose
record exists is not retrained) and, from those records alone, ``table.md`` / ``table.csv``
(train and test accuracy per dataset and network), ``sensitivity.csv`` and
``figures/sensitivity.png`` (‖∂y_N/∂y_{N−ℓ}‖₂ against ℓ, mean over the test points, with
the bound 1 drawn). About six minutes on two CPU cores for the full 50 epochs, seven
networks, three datasets (the table's header gives the measured cost).

The networks (per-layer weights K_j, b_j; the layer updates are the cells' own, from
:data:`suite.hamiltonian.hdnn.FORMS`, with the layer bias as the drive a = b_j):
    y_0 = the point, zero-padded to 4 dimensions; y_{j+1} = layer_j(y_j), j < N = 64;
    logit = wᵀ y_N + c.
The residual network: y_{j+1} = y_j + h tanh(K_j y_j + b_j).

Setup. From the paper: 8000 points per dataset, even/odd split into 4000 train and
4000 test points, features padded to 4, N = 64 layers, Adam with learning rate 0.05,
batch 125, 50 epochs, the weight-smoothness regularizer
    R = α h Σ_{j<N−1} (½‖K_{j+1} − K_j‖²_F + ½‖b_{j+1} − b_j‖²)
over every weight tensor of the layer (for MS2 its parameter W, for MS3 K₁ and K₂).
Where the paper is silent we follow the authors' released code (DecodEPFL/HamiltonianNet):
the point's two coordinates go to positions 0 and 3 (one in each half [p; q]);
α = 5·10⁻⁴; K and b ~ N(0, 1); the loss is binary cross-entropy on the logit; the
datasets' geometry (below). Our own choices, kept here:
  * the classifier (w, c), zero-initialized, is trained jointly with the network by
    the same Adam (the authors' script instead refits a fresh classifier for ten
    inner steps before every network step, and once more at the end);
  * t_end = N h = ``T_END`` = 4, the same for every network (h = 1/16): the paper's
    value for these runs is not in our sources; pilot runs (t_end ∈ {1, 4, 16}, 15
    epochs, H1-J1, H2, MS1 and the residual network, on these data) did best overall
    at 4, and a common h keeps the comparison about the form;
  * the data are shuffled (seed 0) before the even/odd split; one training seed (0)
    per network, the same batch order for every network.
Datasets (numpy, seeded; labels 0/1, 4000 points per label):
  swiss roll — two interleaved spirals, r ∈ [0, 1] and r ∈ [0.2, 1.2], θ ∈ [0, 4π), no noise;
  double moons — four half-circle arcs of radius 1 side by side, labels alternating,
                 each coordinate + U(−0.15, 0.15);
  double circles — four concentric rings of radii 1, 2, 3, 4, labels alternating,
                 each coordinate + U(−0.3, 0.3).

Speed: the three datasets are trained at once, as an ensemble along a leading weight
dimension (independent parameters and losses, so each member is trained exactly as
alone: Adam is elementwise); one thread, as the matrices are 2×2 to 4×4.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from suite.analysis import evidence, hdnn_report
from suite.core import records
from suite.core.config import config_hash
from suite.core.registry import MODELS
from suite.hamiltonian import update
from suite.hamiltonian.hdnn import FORMS, Form, block_sizes
from suite.hamiltonian.update import Shear

N_POINTS = 8000
DIM = 4
INPUT_POSITIONS = (0, 3)  # where the two coordinates go in the padded state (authors' code)
LAYERS = 64
T_END = 4.0
ALPHA = 5e-4
LR = 0.05
BATCH = 125
EPOCHS = 50
DATASETS = ("swiss_roll", "double_moons", "double_circles")
NETWORKS = ("h1-j1", "h1-j2", "h2", "ms1", "ms2", "ms3", "resnet")
LABELS = {"h1-j1": "H1-J1", "h1-j2": "H1-J2", "h2": "H2", "ms1": "MS1", "ms2": "MS2", "ms3": "MS3",
          "resnet": "ResNet"}
SENSITIVITY_POINTS = 256  # test points the sensitivity is averaged over
TASK = "classify2d"  # the records' task folder: records/classify2d/<network>/s<seed>-<hash>/
VERSION = 1  # of this study's definition (data, training, sensitivity): bump on any change, as a model's


def _resnet(w, h, gamma):
    return [Shear(0, 0, w_in=w["K"], scale=h)]  # y ← y + h tanh(K y + b)


RESNET = Form(lambda d: {"K": (d, d)}, _resnet, split=False, symplectic=False, invertible=False, even=False)


def form_of(name: str) -> Form:
    return RESNET if name == "resnet" else FORMS[name]


# -- data ----------------------------------------------------------------------------------------


def make_dataset(name: str, seed: int = 0, n: int = N_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Points ``[n, 2]`` and labels ``[n]`` (0/1), shuffled with ``seed``."""
    rng = np.random.default_rng(seed)
    if name == "swiss_roll":
        half = n // 2
        theta = np.linspace(0, 4 * math.pi, half, endpoint=False)
        inner, outer = np.linspace(0, 1, half), np.linspace(0.2, 1.2, half)
        pts = np.concatenate([_polar(inner, theta), _polar(outer, theta)])
        labels = np.repeat([1, 0], half)
    elif name == "double_moons":
        quarter = n // 4
        theta = np.linspace(0, math.pi, quarter, endpoint=False)
        arc = np.stack([np.cos(theta), np.sin(theta)], 1)
        flipped = np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], 1)
        shift = np.array([2.0, 0.0])
        pts = np.concatenate([arc, flipped, arc + shift, flipped + shift])
        pts = pts + rng.uniform(-0.15, 0.15, pts.shape)
        labels = np.tile(np.repeat([0, 1], quarter), 2)
    elif name == "double_circles":
        quarter = n // 4
        theta = np.linspace(0, 4 * math.pi, quarter, endpoint=False)  # two turns per ring
        pts = np.concatenate([_polar(np.full(quarter, r), theta) for r in (1.0, 2.0, 3.0, 4.0)])
        pts = pts + rng.uniform(-0.3, 0.3, pts.shape)
        labels = np.tile(np.repeat([0, 1], quarter), 2)
    else:
        raise ValueError(f"unknown dataset {name!r} (valid: {', '.join(DATASETS)})")
    order = rng.permutation(len(pts))
    return pts[order].astype(np.float32), labels[order].astype(np.float32)


def _polar(r: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.stack([r * np.cos(theta), r * np.sin(theta)], 1)


def split(points: np.ndarray, labels: np.ndarray) -> dict[str, tuple[Tensor, Tensor]]:
    """Even indices train, odd test; points zero-padded to ``DIM``."""
    padded = np.zeros((len(points), DIM), dtype=np.float32)
    padded[:, list(INPUT_POSITIONS)] = points
    x, y = torch.from_numpy(padded), torch.from_numpy(labels)
    return {"train": (x[0::2], y[0::2]), "test": (x[1::2], y[1::2])}


# -- the networks ----------------------------------------------------------------------------------


class DeepNetwork(nn.Module):
    """``members`` independent networks of one form, ``layers`` layers each, trained at once."""

    def __init__(self, name: str, *, members: int, layers: int = LAYERS, dim: int = DIM, t_end: float = T_END):
        super().__init__()
        self.name, self.form, self.layers, self.h = name, form_of(name), layers, t_end / layers
        self.sizes = block_sizes(self.form, dim)
        shapes = self.form.weights(dim)
        self.K = nn.ParameterDict({k: nn.Parameter(torch.randn(members, layers, *s)) for k, s in shapes.items()})
        width = sum(update.drive_widths(self.layer_shears(0)))
        self.b = nn.Parameter(torch.randn(members, layers, width))
        self.classifier = nn.Parameter(torch.zeros(members, dim))
        self.offset = nn.Parameter(torch.zeros(members))

    def layer_shears(self, j: int, member: int | None = None) -> list[Shear]:
        pick = (lambda w: w[:, j]) if member is None else (lambda w: w[member, j])
        return self.form.shears({k: pick(w) for k, w in self.K.items()}, self.h, 0.0)

    def layer(self, y: Tensor, j: int, member: int | None = None) -> Tensor:
        """y_{j+1} from y_j: ``[members, B, d]`` (or ``[d]`` for one member)."""
        bias = self.b[:, j, None] if member is None else self.b[member, j]
        blocks = update.step(y.split(self.sizes, dim=-1), self.layer_shears(j, member), bias)
        return torch.cat(blocks, dim=-1)

    def forward(self, y0: Tensor) -> Tensor:
        """Logits ``[members, B]`` of points ``y0: [members, B, d]``."""
        y = y0
        for j in range(self.layers):
            y = self.layer(y, j)
        return (y * self.classifier[:, None]).sum(-1) + self.offset[:, None]

    def regularizer(self) -> Tensor:
        """α h Σ_j (½‖K_{j+1} − K_j‖² + ½‖b_{j+1} − b_j‖²) per member, ``[members]``."""
        total = 0.0
        for w in (*self.K.values(), self.b):
            total = total + 0.5 * (w[:, 1:] - w[:, :-1]).pow(2).flatten(1).sum(1)
        return ALPHA * self.h * total


def train(name: str, data: list[dict], *, epochs: int = EPOCHS, seed: int = 0, t_end: float = T_END) -> dict:
    """Train one network per dataset in ``data``; train/test accuracy per member."""
    torch.manual_seed(seed)
    members = len(data)
    net = DeepNetwork(name, members=members, t_end=t_end)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    xs = torch.stack([d["train"][0] for d in data])
    ys = torch.stack([d["train"][1] for d in data])
    n_train = xs.shape[1]
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.stack([torch.randperm(n_train, generator=gen) for _ in range(members)])
        for i in range(n_train // BATCH):
            idx = order[:, i * BATCH:(i + 1) * BATCH]
            xb = torch.gather(xs, 1, idx[..., None].expand(-1, -1, DIM))
            yb = torch.gather(ys, 1, idx)
            bce = nn.functional.binary_cross_entropy_with_logits(net(xb), yb, reduction="none").mean(1)
            loss = (bce + net.regularizer()).sum()  # members are independent: the sum trains each alone
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    out = {"net": net, "seconds": seconds, "accuracy": []}
    with torch.no_grad():
        for split_name in ("train", "test"):
            x = torch.stack([d[split_name][0] for d in data])
            y = torch.stack([d[split_name][1] for d in data])
            acc = ((net(x) > 0).float() == y).float().mean(1)
            out["accuracy"].append(acc.tolist())
    out["train_acc"], out["test_acc"] = out.pop("accuracy")
    return out


# -- backward sensitivity ---------------------------------------------------------------------------


def sensitivity(net: DeepNetwork, member: int, points: Tensor) -> Tensor:
    """‖∂y_N/∂y_{N−ℓ}‖₂ for ℓ = 0..N at every point: ``[len(points), N + 1]`` (float64).

    Per-layer Jacobians by ``torch.func``; ∂y_N/∂y_{N−ℓ} = J_{N−1} ⋯ J_{N−ℓ}."""
    net = _double(net)
    y = points.double()
    states = [y]
    with torch.no_grad():
        for j in range(net.layers):
            y = torch.func.vmap(lambda v, j=j: net.layer(v, j, member))(y)
            states.append(y)
    jac = []
    for j in range(net.layers):
        fn = lambda v, j=j: net.layer(v, j, member)
        jac.append(torch.func.vmap(torch.func.jacrev(fn))(states[j]).detach())
    prod = torch.eye(points.shape[-1], dtype=torch.float64).expand(len(points), -1, -1)
    norms = [torch.linalg.matrix_norm(prod, ord=2)]
    for ell in range(1, net.layers + 1):
        prod = prod @ jac[net.layers - ell]
        norms.append(torch.linalg.matrix_norm(prod, ord=2))
    return torch.stack(norms, dim=1)


def _double(net: DeepNetwork) -> DeepNetwork:
    import copy
    return copy.deepcopy(net).double()


# -- the run ---------------------------------------------------------------------------------------------


def cell_config(name: str, *, epochs: int = EPOCHS, datasets=DATASETS, seed: int = 0,
                t_end: float = T_END) -> tuple[dict, str]:
    """The configuration of one network's run (all datasets at once) and its hash: every
    setting of this study, its ``VERSION`` and the version of the suite's cell of the
    same form (``hdnn-<form>``), so that a changed form or study shows as a changed hash."""
    cell = None if name == "resnet" else f"hdnn-{name}"
    config = {"study": "deep_hdnn", "study_version": VERSION, "network": name, "model": cell,
              "model_version": MODELS.get(cell).version if cell else None, "datasets": list(datasets),
              "epochs": epochs, "layers": LAYERS, "t_end": t_end, "lr": LR, "batch": BATCH, "alpha": ALPHA,
              "n_points": N_POINTS, "dim": DIM, "input_positions": list(INPUT_POSITIONS),
              "sensitivity_points": SENSITIVITY_POINTS, "seed": seed}
    return config, config_hash(config)


def record_path(root: Path, config: dict, chash: str) -> Path:
    return records.run_dir(root, TASK, config["network"], config["seed"], chash) / records.RECORD


def run_network(name: str, data: list[dict], config: dict, chash: str) -> dict:
    """Train one network on every dataset at once and measure its sensitivity: its record."""
    cpu_start = time.process_time()
    result = train(name, data, epochs=config["epochs"], seed=config["seed"], t_end=config["t_end"])
    sens = {}
    for m, dataset in enumerate(config["datasets"]):
        norms = sensitivity(result["net"], m, data[m]["test"][0][:config["sensitivity_points"]])
        sens[dataset] = {"mean": norms.mean(0).tolist(), "min": norms.amin(0).tolist(), "max": norms.amax(0).tolist()}
    return {
        "schema": records.SCHEMA_VERSION, "config_hash": chash, "task": TASK, "model": name, "seed": config["seed"],
        "status": "ok", "config": config,
        "metrics": {"train_acc": dict(zip(config["datasets"], result["train_acc"])),
                    "test_acc": dict(zip(config["datasets"], result["test_acc"]))},
        "sensitivity": sens,
        "timing": {"train_seconds": result["seconds"], "cpu_seconds": time.process_time() - cpu_start,
                   "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")},
        "environment": records.environment(torch.device("cpu")),
    }


def run_all(root: Path, *, networks=NETWORKS, quiet: bool = False, **settings) -> list[dict]:
    """Every network's record under ``root`` (``<task>/<network>/s<seed>-<hash>/``): read back
    when it exists, else trained and written."""
    found, data = [], None
    for name in networks:
        config, chash = cell_config(name, **settings)
        path = record_path(root, config, chash)
        if path.is_file():
            found.append(json.loads(path.read_text()))
            continue
        if data is None:
            data = [split(*make_dataset(d, seed=config["seed"])) for d in config["datasets"]]
        records.write_json_atomic(path, run_network(name, data, config, chash))
        rec = json.loads(path.read_text())  # as a rebuild reads it (non-finite values are stored as null)
        found.append(rec)
        if not quiet:
            accs = ", ".join(f"{d} {rec['metrics']['train_acc'][d]:.3f}/{rec['metrics']['test_acc'][d]:.3f}"
                             for d in config["datasets"])
            print(f"{LABELS[name]:7s} train/test: {accs}   ({rec['timing']['train_seconds']:.0f} s)", flush=True)
    return found


def tables(recs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy table (long form) and sensitivity table (mean, min, max over test points, per ℓ)."""
    rows, sens_rows = [], []
    for rec in recs:
        c, label = rec["config"], LABELS[rec["config"]["network"]]
        for dataset in c["datasets"]:
            rows.append({"dataset": dataset, "network": label, "train_acc": rec["metrics"]["train_acc"][dataset],
                         "test_acc": rec["metrics"]["test_acc"][dataset], "epochs": c["epochs"],
                         "layers": c["layers"], "h": c["t_end"] / c["layers"],
                         "train_seconds_all_datasets": rec["timing"]["train_seconds"]})
            s = rec["sensitivity"][dataset]
            sens_rows += [{"dataset": dataset, "network": label, "ell": ell, "mean": mean, "min": low, "max": high}
                          for ell, (mean, low, high) in enumerate(zip(s["mean"], s["min"], s["max"]))]
    return pd.DataFrame(rows), pd.DataFrame(sens_rows)


def write(recs: list[dict], out: Path, *, draw: bool = True) -> None:
    """Every output from the records alone (tests/test_evidence.py rebuilds it so)."""
    table, sens = tables(recs)
    header = "# Paper (b): 64-layer H-DNNs classifying 2-D point sets\n\n" + evidence.header_line(recs) + "\n\n"
    hdnn_report.write_table(table, out, order=[LABELS[n] for n in NETWORKS], layers=LAYERS, header=header)
    records.write_text_atomic(out / "sensitivity.csv", sens.to_csv(index=False))
    if draw:
        hdnn_report.plot_sensitivity(sens, out / "figures" / "sensitivity.png")


def build(out: Path, *, epochs: int = EPOCHS, t_end: float = T_END, networks=NETWORKS, datasets=DATASETS,
          seed: int = 0) -> Path:
    """Train every network (finished records are skipped) and write the table under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 4×4 matrices: more threads only add synchronization
    try:
        start = time.perf_counter()
        recs = run_all(out / "records", networks=list(networks), epochs=epochs, datasets=list(datasets), seed=seed,
                       t_end=t_end)
        write(recs, out)
    finally:
        torch.set_num_threads(threads)
    print((out / "table.md").read_text())
    print(f"wrote {out}/table.md, table.csv, sensitivity.csv, figures/sensitivity.png and records/ "
          f"in {time.perf_counter() - start:.0f} s")
    return out / "table.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/hdnn")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--t-end", type=float, default=T_END, help="N·h, the same for every network")
    parser.add_argument("--networks", default=",".join(NETWORKS))
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    build(Path(args.out), epochs=args.epochs, t_end=args.t_end, networks=args.networks.split(","),
          datasets=args.datasets.split(","), seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
