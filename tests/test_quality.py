"""Quality regression: seeded short runs must keep learning as well as they did.

Each case's final test metric is compared with its stored golden value in
``tests/golden/quality.json``. What is held is the *improvement over the task's
trivial baseline* (e.g. 0.167 − MSE on adding): a change may lose at most
``TOLERANCE`` of it. Runs are deterministic on one machine; across CPUs and BLAS
builds the last digits differ and a few hundred steps of training amplify that, so
the tolerance is a fraction of the improvement rather than an exact match.

Regenerate after an intended change, and say why in the commit:
    python -m tests.test_quality --update
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import suite
from tests.conftest import mnist_dir

GOLDEN = Path(__file__).parent / "golden" / "quality.json"
TOLERANCE = 0.25  # fraction of the improvement over the trivial baseline that may be lost

COMMON = {"hidden_size": 32, "batch_size": 32, "eval_every": 100, "probes": 1, "device": "cpu", "lr": 0.01}
CASES = {
    "adding-gru": dict(task="adding", model="gru", steps=400, task_params={"T": 20, "n_val": 200, "n_test": 500}),
    "adding-hrnn": dict(task="adding", model="hrnn", steps=400, task_params={"T": 20, "n_val": 200, "n_test": 500}),
    "copy-hrnn": dict(task="copy", model="hrnn", steps=400, task_params={"T": 5, "n_val": 200, "n_test": 500}),
    "copy-antisymmetric": dict(task="copy", model="antisymmetric", steps=400, model_params={"eps": 0.5},
                               task_params={"T": 5, "n_val": 200, "n_test": 500}),
    "smnist-gru": dict(task="smnist", model="gru", steps=200,
                       task_params={"pixels_per_step": 16, "n_train": 6400, "val_size": 1000}),
}


def run_case(name: str) -> dict:
    spec = CASES[name]
    cfg = suite.RunConfig(**{**COMMON, **spec})
    rec = suite.run(cfg, quiet=True, data_dir=str(mnist_dir()) if spec["task"] == "smnist" else None)
    return {"test": rec["metrics"]["test"], "baseline": rec["task_info"]["trivial_baseline"]["value"],
            "higher_is_better": rec["task_info"]["higher_is_better"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_quality_holds(name):
    if CASES[name]["task"] == "smnist" and mnist_dir() is None:
        pytest.skip("MNIST files not found in $RNNSUITE_DATA or ../shared/data/mnist")
    golden = json.loads(GOLDEN.read_text())[name]
    now = run_case(name)
    sign = 1 if now["higher_is_better"] else -1
    gain_golden = sign * (golden["test"] - golden["baseline"])
    gain_now = sign * (now["test"] - now["baseline"])
    assert gain_golden > 0, f"golden {name} does not beat its trivial baseline; fix the case"
    assert gain_now >= (1 - TOLERANCE) * gain_golden, (
        f"{name}: test {now['test']:.4g} keeps {gain_now / gain_golden:.0%} of the golden improvement over "
        f"the trivial baseline {now['baseline']:.4g} (golden test {golden['test']:.4g})")


if __name__ == "__main__":
    if "--update" not in sys.argv:
        sys.exit("usage: python -m tests.test_quality --update")
    values = {name: run_case(name) for name in sorted(CASES)}
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(values, indent=1) + "\n")
    print(json.dumps(values, indent=1))
