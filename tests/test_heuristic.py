"""The step-size heuristic: its statistic and classes, and that Δt* lands in the stable
band, checked by an independent measurement on a real task."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import suite
from suite.core import probes
from suite.core.registry import SuiteError
from suite.hamiltonian import heuristic
from suite.hamiltonian.heuristic import classify, deviation, heuristic_dt


@pytest.mark.parametrize("profile, expected, klass", [
    ([1.0, 1.0, 1.0], 0.0, "stable"),
    ([10.0, 3.0, 1.0], 1.0, "stable"),  # exactly one decade: still stable (|D| <= 1)
    ([100.0, 10.0, 1.0], 2.0, "exploding"),
    ([0.01, 0.1, 1.0], -2.0, "vanishing"),
    ([1.0, 50.0, 1.0], math.log10(50), "exploding"),  # a swing in the middle counts
    ([0.5, 1e-3, 2.0, 1.0], -3.0, "vanishing"),  # the larger magnitude wins
    ([float("inf"), 1.0, 1.0], math.inf, "exploding"),
    ([float("nan"), 1.0, 1.0], math.inf, "exploding"),
    ([0.0, 1.0, 1.0], -math.inf, "vanishing"),  # underflow to 0 in float64
])
def test_deviation_and_classes(profile, expected, klass):
    value = deviation(profile)
    assert value == pytest.approx(expected)
    assert classify(value) == klass


def test_undefined_when_the_output_gradient_is_zero():
    assert math.isnan(deviation([1.0, 0.0]))
    assert classify(deviation([1.0, 0.0])) == "undefined"


def test_threshold_is_one_decade_and_symmetric():
    assert heuristic.STABLE_DECADES == 1.0
    assert classify(1.0001) == "exploding" and classify(-1.0001) == "vanishing"
    assert classify(0.999) == classify(-0.999) == "stable"


def test_deviation_contains_the_endpoint_ratio():
    profile = [3.0, 20.0, 0.7, 1.0]
    assert abs(deviation(profile)) >= abs(probes.gradient_ratio(profile))


def test_step_size_fields():
    assert heuristic.step_size_field(suite.core.registry.MODELS.get("hrnn")) == "dt"
    assert heuristic.step_size_field(suite.core.registry.MODELS.get("antisymmetric")) == "eps"
    assert heuristic.step_size_field(suite.core.registry.MODELS.get("lstm")) is None
    with pytest.raises(SuiteError, match="no step-size field"):
        heuristic_dt("lstm", input_size=1, hidden_size=4, seq_len=10)


def _independent_class(dt: float, T: int, hidden: int, seed: int) -> str:
    """Class of hrnn's profile at Δt on the adding task's own data and loss, another init."""
    task = suite.build_task("adding", T=T, n_val=8, n_test=8)
    torch.manual_seed(seed)
    model = suite.build_model("hrnn", input_size=2, output_size=1, hidden_size=hidden, dt=dt)
    x, y = task.batch("val", 0, 8, seed=0)
    return classify(deviation(probes.hidden_gradient_profile(model, task, x, y)))


def test_heuristic_lands_in_the_stable_band_on_a_small_case():
    T, hidden = 300, 16
    dt, info = heuristic_dt("hrnn", input_size=2, hidden_size=hidden, seq_len=T, alpha=1.0)
    assert math.isfinite(dt) and dt > 0
    assert info["rule"] == heuristic.RULE and info["target_met"] and abs(info["deviation"]) <= info["target_decades"]
    assert dt <= info["cap"] * (1 + 1e-3)
    # independent measurement: the task's inputs and loss, and two other initializations
    for seed in (1, 2):
        assert _independent_class(dt, T, hidden, seed) == "stable"
    # and it is near the band's upper edge, not a trivially tiny step: 5 Δt* explodes
    assert _independent_class(5 * dt, T, hidden, 1) == "exploding"


def test_heuristic_shrinks_with_the_sequence_length():
    short, _ = heuristic_dt("hrnn", input_size=1, hidden_size=8, seq_len=30)
    long, _ = heuristic_dt("hrnn", input_size=1, hidden_size=8, seq_len=600)
    assert long < short


def test_heuristic_is_deterministic_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    first, _ = heuristic_dt("antisymmetric", input_size=2, hidden_size=8, seq_len=50)
    assert torch.equal(torch.get_rng_state(), state)
    heuristic._cached.cache_clear()
    again, _ = heuristic_dt("antisymmetric", input_size=2, hidden_size=8, seq_len=50)
    assert first == again


@pytest.mark.parametrize("name", ["hrnn", "hdnn-h1-j2", "hdnn-h2"])
def test_heuristic_is_the_default_and_resolves_to_a_float_with_its_rule(name):
    cls = suite.core.registry.MODELS.get(name)
    field = heuristic.step_size_field(cls)
    default = cls.Config()
    assert getattr(default, field) == "heuristic"
    cfg, notes = cls.resolve_config(default, input_size=2, hidden_size=8, seq_len=40)
    others = {k: v for k, v in dataclasses.asdict(default).items() if k != field}
    expected, _ = heuristic_dt(cls, input_size=2, hidden_size=8, seq_len=40, **others)
    assert isinstance(getattr(cfg, field), float) and getattr(cfg, field) == expected
    assert dataclasses.asdict(cfg) == {**others, field: expected}  # no extra keys in the config
    built = suite.build_model(name, input_size=2, output_size=1, hidden_size=8, seq_len=40)
    assert built.resolution == notes and getattr(built.cfg, field) == expected
    record = built.extra_record()["step_size"]
    assert record["rule"] == heuristic.RULE and record["value"] == expected and record["field"] == field
    given = dataclasses.replace(default, **{field: 0.05})
    assert cls.resolve_config(given, input_size=2, hidden_size=8, seq_len=40) == (given, {})
    assert cls(2, 8, given).extra_record()["step_size"] == {"field": field, "value": 0.05, "rule": "given"}
    with pytest.raises(SuiteError, match="heuristic"):
        cls(2, 8, default).step(torch.zeros(1, 2), cls(2, 8, given).initial_state(1, "cpu", torch.float32))
