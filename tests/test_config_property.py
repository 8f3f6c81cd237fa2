"""Property: whatever keys and values a user gives, the configuration layer returns a
valid configuration or raises a SuiteError with a one-line message, never another
exception. Checked on ``--set`` strings through ``run_config`` and ``resolve`` (every
check before a run: types, ranges, finiteness, seeds, sizes against the task and the
machine), and on Python values through ``build_config`` of every registered config.

Examples are random in a developer's run (new cases each time) and fixed under CI=true,
so that a CI run never fails on a case nobody has seen before."""

from __future__ import annotations

import dataclasses
import math
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import suite  # noqa: F401  (registers the built-in tasks and models)
from suite.core.build import resolve
from suite.core.config import RUN_KEYS, RunConfig, build_config, run_config
from suite.core.registry import MODELS, TASKS, SuiteError

SETTINGS = settings(max_examples=300, deadline=None, derandomize=bool(os.environ.get("CI")), database=None,
                    suppress_health_check=[HealthCheck.too_slow])

TASK_NAMES, MODEL_NAMES = TASKS.names(), MODELS.names()
FIXED = {"task", "model"}


def fields_of(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


KEY_POOL = sorted({k for k in RUN_KEYS if k not in FIXED}
                  | {f"task.{f}" for name in TASK_NAMES for f in fields_of(TASKS.get(name).Config)}
                  | {f"model.{f}" for name in MODEL_NAMES for f in fields_of(MODELS.get(name).Config)})
# words the parsers know, and the edges of every number type
WORDS = ["none", "null", "true", "false", "inf", "-inf", "nan", "1e400", "-0", "0", "1", "-1", "2", "4294967295",
         "4294967296", "18446744073709551616", "heuristic", "adam", "sgd", "rmsprop", "cosine", "step", "milestones",
         "best_val", "last", "cpu", "auto", "float64", "0.5,1.5", "1,inf", "", " ", "1e-320", "0x10", "1_000"]

numbers = st.one_of(st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(min_value=0, max_value=40), st.floats(min_value=1e-6, max_value=10))
values = st.one_of(st.sampled_from(WORDS), numbers.map(str), st.text(max_size=12),
                   st.lists(numbers.map(str), min_size=1, max_size=3).map(",".join))
seeds = st.one_of(st.integers(min_value=0, max_value=9), st.integers(min_value=-2**40, max_value=2**40))


def keys_for(task: str, model: str):
    """Mostly the keys this task and model take, sometimes any known key, a near miss or noise."""
    own = sorted({k for k in RUN_KEYS if k not in FIXED} | {f"task.{f}" for f in fields_of(TASKS.get(task).Config)}
                 | {f"model.{f}" for f in fields_of(MODELS.get(model).Config)})
    return st.one_of(st.sampled_from(own), st.sampled_from(own), st.sampled_from(own), st.sampled_from(KEY_POOL),
                     st.sampled_from(own).map(lambda k: k + "x"), st.text(max_size=10))


def one_line(exc: SuiteError) -> bool:
    text = str(exc)
    return bool(text.strip()) and "\n" not in text and "\r" not in text


@SETTINGS
@given(task=st.sampled_from(TASK_NAMES), model=st.sampled_from(MODEL_NAMES), seed=seeds, data=st.data())
def test_set_strings_give_a_config_or_a_one_line_error(task, model, seed, data):
    pair = st.tuples(keys_for(task, model), values).map(lambda kv: f"{kv[0]}={kv[1]}")
    sets = data.draw(st.lists(st.one_of(pair, pair, pair, st.text(max_size=10)), max_size=4))
    try:
        resolved = resolve(run_config(task, model, ["device=cpu", *sets], seed=seed))
    except SuiteError as exc:
        assert one_line(exc), repr(str(exc))
        return
    cfg = resolved.config
    assert 0 <= cfg["seed"] < 2**32
    for value in (*cfg.values(), *cfg["task_params"].values(), *cfg["model_params"].values()):
        if isinstance(value, float):
            assert math.isfinite(value), cfg


python_values = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**80, max_value=2**80),
                          st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                          st.lists(st.floats(allow_nan=True), max_size=3), st.dictionaries(st.text(max_size=3),
                                                                                            st.integers(), max_size=2))
CONFIGS = [RunConfig, *(TASKS.get(n).Config for n in TASK_NAMES), *(MODELS.get(n).Config for n in MODEL_NAMES)]


@SETTINGS
@given(cls=st.sampled_from(CONFIGS), data=st.data())
def test_python_values_give_a_config_or_a_one_line_error(cls, data):
    names = fields_of(cls) + ["not_a_field"]
    overrides = data.draw(st.dictionaries(st.sampled_from(names), python_values, max_size=4))
    if cls is RunConfig:
        overrides = {"task": data.draw(st.sampled_from(TASK_NAMES)), "model": data.draw(st.sampled_from(MODEL_NAMES)),
                     **{k: v for k, v in overrides.items() if k not in FIXED}}
    try:
        cfg = build_config(cls, overrides)
    except SuiteError as exc:
        assert one_line(exc), repr(str(exc))
        return
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        assert not (isinstance(value, float) and not math.isfinite(value)), (f.name, value)
