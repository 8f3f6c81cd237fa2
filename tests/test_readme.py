"""The worked model example of docs/extending.md is the real plug-in's model file, and it runs as
printed: registered, built, trained (tests/test_plugin.py installs the whole package)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import torch

import suite
from suite.core.build import build_model
from suite.core.registry import MODELS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "docs" / "extending.md"  # where the worked model example lives
EXAMPLE = ROOT / "examples" / "plugin-model" / "rnnsuite_elman" / "elman.py"


def _example_source() -> str:
    text = README.read_text()
    section = text[text.index("The worked\nexample is a real package, `examples/plugin-model/`"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_is_an_excerpt_of_the_plugin_file():
    shown, real = _example_source().strip(), EXAMPLE.read_text()
    assert shown in real, "docs/extending.md's model example differs from examples/plugin-model/rnnsuite_elman/elman.py"


def test_readme_model_example_registers_builds_and_trains(monkeypatch, tmp_path):
    MODELS.names()  # the built-ins registered before the registry is copied
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))  # registration undone after the test
    (tmp_path / "readme_elman.py").write_text(_example_source())  # a module, as baselines/elman.py would be
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("readme_elman")
    monkeypatch.delitem(sys.modules, "readme_elman")
    assert MODELS.get("elman") is module.Elman
    model = build_model("elman", input_size=2, output_size=1, hidden_size=4, w_gain=0.5)
    x = torch.randn(3, 5, 2)
    out = model(x)  # the default forward: the step loop
    h = model.initial_state(3, "cpu", torch.float32)
    for t in range(5):
        h = model.step(x[:, t], h)
    torch.testing.assert_close(out[:, -1], model.features(h))
    singular = torch.linalg.svdvals(model.W.weight.detach())
    torch.testing.assert_close(singular, torch.full_like(singular, 0.5))  # the config reached the model
    cfg = suite.RunConfig(task="adding", model="elman", steps=3, hidden_size=4, eval_every=3, probes=1,
                          probe_batch=8, device="cpu", task_params={"T": 5, "n_val": 8, "n_test": 8})
    record = suite.run(cfg, out=tmp_path / "runs", quiet=True)
    assert record["status"] == "ok" and record["model"] == "elman"
