"""The outputs of paper (b)'s study (:mod:`suite.studies.deep_hdnn`), built from its records:
``table.md`` / ``table.csv`` (train and test accuracy per dataset and network),
``sensitivity.csv`` and ``figures/sensitivity.png`` (‖∂y_N/∂y_{N−ℓ}‖₂ against ℓ)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from suite.analysis import plotting
from suite.core.records import write_text_atomic


def write_table(table: pd.DataFrame, out: Path, *, order: list[str], layers: int, header: str) -> None:
    """``table.md`` (``header`` first, networks in ``order``) and ``table.csv``."""
    write_text_atomic(out / "table.csv", table.to_csv(index=False))
    wide = table.pivot(index="network", columns="dataset", values=["train_acc", "test_acc"])
    datasets = list(dict.fromkeys(table["dataset"]))
    lines = ["| network | " + " | ".join(f"{d} train | {d} test" for d in datasets) + " |",
             "|---|" + "---:|" * (2 * len(datasets))]
    for net in [n for n in order if n in wide.index]:
        cells = [f"{100 * wide.loc[net, ('train_acc', d)]:.1f} | {100 * wide.loc[net, ('test_acc', d)]:.1f}"
                 for d in datasets]
        lines.append(f"| {net} | " + " | ".join(cells) + " |")
    epochs, h = table["epochs"].iloc[0], table["h"].iloc[0]
    note = (f"\nAccuracy (%) of {layers}-layer networks, {epochs} epochs, h = {h:g} (t_end = {h * layers:g}), "
            "Adam lr 0.05, batch 125, α = 5e-4; one seed. Written by `python -m suite.studies.deep_hdnn`.\n")
    write_text_atomic(out / "table.md", header + "\n".join(lines) + "\n" + note)


def plot_sensitivity(sens: pd.DataFrame, path: Path) -> None:
    """Top row: mean over test points; bottom row: minimum over test points (what the
    bound is about: for H2 no point falls below 1)."""
    plt = plotting.pyplot()

    datasets = list(dict.fromkeys(sens["dataset"]))
    fig, axes = plt.subplots(2, len(datasets), figsize=(5 * len(datasets), 7.5), squeeze=False, sharex=True)
    for col, dataset in enumerate(datasets):
        part = sens[sens["dataset"] == dataset]
        for row, stat in enumerate(("mean", "min")):
            ax = axes[row][col]
            for net in dict.fromkeys(part["network"]):
                rows = part[part["network"] == net]
                style = {"lw": 2.6, "color": "black", "zorder": 3} if net == "H2" else {"lw": 1.2, "alpha": 0.9}
                ax.plot(rows["ell"], rows[stat], label=net, **style)
            ax.axhline(1.0, color="red", ls="--", lw=1, label="lower bound 1 (H2)")
            ax.set_yscale("log")
            if row == 0:
                ax.set_title(dataset.replace("_", " "))
            else:
                ax.set_xlabel("ℓ (layers back from the output)")
        axes[0][col].set_ylabel("mean over test points" if col == 0 else "")
        axes[1][col].set_ylabel("minimum over test points" if col == 0 else "")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle("Backward sensitivity ‖∂y_N/∂y_{N−ℓ}‖₂ of the trained 64-layer networks")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
