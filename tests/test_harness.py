"""The harness: determinism, the record's fields, divergence, probes, selection."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

import suite
from suite.core import probes, records
from suite.core.registry import MODELS
from suite.core.spec import RecurrentModel

TINY = dict(hidden_size=8, batch_size=8, steps=12, eval_every=5, log_every=2, probe_batch=4, device="cpu")


def tiny(task="adding", model="gru", **kw):
    params = {"adding": {"T": 8, "n_val": 32, "n_test": 32}, "copy": {"T": 4, "n_val": 32, "n_test": 32}}
    return suite.RunConfig(task=task, model=model, **{**TINY, "task_params": params[task], **kw})


def strip_volatile(rec: dict) -> dict:
    rec = json.loads(json.dumps(records.sanitize(rec)))
    for key in ("timing", "environment", "memory", "path"):
        rec.pop(key, None)
    return rec


def test_same_seed_same_record_except_timings():
    a = suite.run(tiny(model="lstm"), quiet=True)
    b = suite.run(tiny(model="lstm"), quiet=True)
    c = suite.run(tiny(model="lstm", seed=1), quiet=True)
    assert strip_volatile(a) == strip_volatile(b)
    assert strip_volatile(a)["metrics"] != strip_volatile(c)["metrics"]


def test_record_has_every_field(tmp_path):
    rec = suite.run(tiny(task="copy", model="hrnn", probes=2), out=tmp_path, quiet=True)
    on_disk = records.load_record(records.run_dir(tmp_path, "copy", "hrnn", 0, rec["config_hash"]))
    for key in ("schema", "config_hash", "task", "model", "seed", "status", "config", "task_info",
                "model_info", "metrics", "gradients", "timing", "memory", "environment"):
        assert key in on_disk, key
    cfg = on_disk["config"]
    assert cfg["task_params"] == {"T": 4, "n_val": 32, "n_test": 32, "data_seed": 1234}  # defaults resolved
    assert cfg["model_params"]["dt"] == "heuristic" and cfg["device"] == "cpu"
    built = on_disk["model_info"]
    assert isinstance(built["resolved_params"]["dt"], float) and built["resolved_params"]["dt"] > 0
    assert built["extra"]["step_size"]["rule"] == "hamiltonian-dt-v1"
    info = on_disk["task_info"]
    assert info["version"] == 1 and info["metric"] == "xent" and info["higher_is_better"] is False
    assert info["trivial_baseline"]["value"] == pytest.approx(10 * math.log(8) / 24)
    m = on_disk["metrics"]
    assert {"val_best", "test", "test_metrics", "final_train_loss", "selection"} <= set(m)
    assert "recall_acc" in m["test_metrics"]
    g = on_disk["gradients"]
    assert sorted(g["hidden_profile"], key=int) == ["0", "6", "12"]
    assert all(len(p) == 24 for p in g["hidden_profile"].values())  # T + 20 steps
    assert g["ratio_init"] == pytest.approx(math.log10(g["hidden_profile"]["0"][0] / g["hidden_profile"]["0"][-1]))
    t = on_disk["timing"]
    for key in ("total_seconds", "train_seconds", "eval_seconds", "data_seconds", "probe_log_seconds",
                "median_step_seconds", "time_to_target"):
        assert key in t
    assert t["train_seconds"] > 0 and t["total_seconds"] >= t["train_seconds"] + t["eval_seconds"]
    assert on_disk["memory"]["peak_bytes"] > 0
    env = on_disk["environment"]
    assert env["versions"]["torch"] == torch.__version__ and "git" in env and env["device"] == "cpu"
    assert on_disk["model_info"]["n_params"] == sum(
        p.numel() for p in suite.build_model("hrnn", input_size=10, output_size=10, hidden_size=8).parameters())
    curves = (records.run_dir(tmp_path, "copy", "hrnn", 0, rec["config_hash"]) / "curves.csv").read_text()
    assert curves.splitlines()[0] == "step,split,loss,metric,grad_norm,lr,train_seconds"
    assert sum(1 for line in curves.splitlines() if ",val," in line) == 3  # steps 5, 10, 12


def test_existing_record_is_skipped_not_overwritten(tmp_path, capsys):
    first = suite.run(tiny(), out=tmp_path, quiet=True)
    path = records.run_dir(tmp_path, "adding", "gru", 0, first["config_hash"])
    stamp = (path / "record.json").stat().st_mtime_ns
    again = suite.run(tiny(), out=tmp_path, quiet=False)
    assert "skip" in capsys.readouterr().out
    assert (path / "record.json").stat().st_mtime_ns == stamp and again["config_hash"] == first["config_hash"]
    suite.run(tiny(), out=tmp_path, quiet=True, overwrite=True)
    assert (path / "record.json").stat().st_mtime_ns != stamp
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging debris


class Exploding(RecurrentModel):
    """h_t = 30 h_{t-1} + W x_t: overflows float32 within 40 steps, on the first batch."""

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.inp = nn.Linear(input_size, hidden_size)
        self.gain = nn.Parameter(torch.tensor(30.0))

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def step(self, x_t, h):
        return self.gain * h + self.inp(x_t)

    def features(self, h):
        return h


class Linear(RecurrentModel):
    """h_t = a h_{t-1} + x_t, scalar a: ∂L/∂h_t = a^{T-t} ∂L/∂h_T exactly."""

    def __init__(self, input_size, hidden_size, cfg):
        super().__init__(input_size, hidden_size, cfg)
        self.a = nn.Parameter(torch.tensor(0.5))
        self.inp = nn.Linear(input_size, hidden_size)

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)

    def step(self, x_t, h):
        return self.a * h + self.inp(x_t)

    def features(self, h):
        return h


@pytest.fixture
def register(monkeypatch):
    def add(name, cls):
        monkeypatch.setitem(MODELS._entries, name, cls)
        cls.registry_name = name
    return add


def test_divergence_is_recorded_not_raised(register, tmp_path):
    register("exploding-test", Exploding)
    rec = suite.run(tiny(model="exploding-test", task_params={"T": 40, "n_val": 8, "n_test": 8}),
                    out=tmp_path, quiet=True)
    assert rec["status"] == "diverged" and rec["metrics"]["diverged_step"] == 1
    assert rec["metrics"]["test"] is None
    assert json.loads((tmp_path / "adding" / "exploding-test").rglob("record.json").__next__().read_text())


def test_hidden_gradient_profile_is_the_total_derivative(register):
    register("linear-test", Linear)
    task = suite.build_task("adding", T=10, n_val=4)
    model = suite.build_model("linear-test", input_size=2, output_size=1, hidden_size=3)
    x, y = task.batch("val", 0, 4, seed=0)
    profile = probes.hidden_gradient_profile(model, task, x, y)
    assert len(profile) == 10
    for t in range(9):  # each step back multiplies the gradient by a = 0.5
        assert profile[t] / profile[t + 1] == pytest.approx(0.5, rel=1e-12)
    assert probes.gradient_ratio(profile) == pytest.approx(9 * math.log10(0.5))
    # the direct term at T: per example |2 (w·h_T + c − y)| ‖w‖, averaged
    with torch.no_grad():
        h = torch.zeros(4, 3, dtype=torch.float64)
        m = model.double()
        for t in range(10):
            h = m.step(x[:, t].double(), h)
        resid = m.readout(h) - y.double()
        expected = (2 * resid.abs().squeeze(-1) * m.readout.weight.norm()).mean().item()
    assert profile[-1] == pytest.approx(expected, rel=1e-10)


def test_total_grad_norm_is_a_norm():
    p = nn.Parameter(torch.zeros(3))
    q = nn.Parameter(torch.zeros(2))
    p.grad, q.grad = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 4.0])
    assert probes.total_grad_norm([p, q]) == pytest.approx(5.0)


def test_best_val_selection_differs_from_last():
    best = suite.run(tiny(steps=30, eval_every=3, lr=0.05), quiet=True)
    last = suite.run(tiny(steps=30, eval_every=3, lr=0.05, selection="last"), quiet=True)
    assert best["metrics"]["val_best"] <= last["metrics"]["val_final"]
    assert last["metrics"]["selected_step"] == 30


def test_time_to_target_is_recorded_when_reached():
    rec = suite.run(tiny(steps=10, eval_every=5, task_params={"T": 8, "n_val": 32, "n_test": 32, "target": 10.0}),
                    quiet=True)
    assert rec["timing"]["time_to_target"]["step"] == 5


def test_bad_run_values_rejected_before_work():
    with pytest.raises(suite.SuiteError, match="lr=-0.1 must be > 0"):
        suite.resolve(tiny(lr=-0.1))
    with pytest.raises(suite.SuiteError, match="epochs is only for tasks with a finite"):
        suite.resolve(dataclasses.replace(tiny(), epochs=1.0))
    with pytest.raises(suite.SuiteError, match="unknown model"):
        suite.resolve(tiny(model="lstn"))


def test_short_smnist_run_learns_above_chance(mnist):
    cfg = suite.RunConfig(task="smnist", model="gru", hidden_size=32, batch_size=32, steps=150, lr=0.01,
                          eval_every=50, device="cpu", probes=1,
                          task_params={"pixels_per_step": 16, "n_train": 4800, "val_size": 1000})
    rec = suite.run(cfg, quiet=True, data_dir=mnist)
    # chance is 0.1; 150 steps on 4800 images reach about 0.47 here: 0.3 is "clearly learned"
    assert rec["metrics"]["test"] > 0.3, rec["metrics"]
    assert rec["task_info"]["split_sizes"] == {"train": 4800, "val": 1000, "test": 10000}


def test_profile_does_not_underflow_before_float64(register):
    """a = 1e-20 per step: after 20 steps the gradient is 1e-400 (below float64) but at
    10 steps back it is 1e-200, which a naive sqrt(sum of squares) would flush to 0."""
    register("linear-test", Linear)
    task = suite.build_task("adding", T=12, n_val=4)
    model = suite.build_model("linear-test", input_size=2, output_size=1, hidden_size=3)
    with torch.no_grad():
        model.a.fill_(1e-20)
    x, y = task.batch("val", 0, 4, seed=0)
    profile = probes.hidden_gradient_profile(model, task, x, y)
    assert profile[1] > 0 and profile[1] / profile[-1] == pytest.approx(1e-200, rel=1e-9)
