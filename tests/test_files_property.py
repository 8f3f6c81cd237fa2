"""Property: no file the suite reads can crash it. Malformed versions of every kind of file
— run records, recipe files, tuned files, sweep files, anchor logs — drawn by Hypothesis
as mutations of real ones (keys deleted, values replaced by any JSON or TOML value, bytes
cut), give a result, a warning naming the file, or a :class:`SuiteError` with a one-line
message naming it; never another exception, and never a record dropped in silence.

Examples are random in a developer's run and fixed under CI=true (as in
tests/test_config_property.py); ``pytest --hypothesis-show-statistics`` prints how many
each test ran."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import suite
from suite.analysis import report
from suite.cli.main import build_parser, load_sweep
from suite.core import paths, recipes, records
from suite.core.build import resolve
from suite.core.config import run_config
from suite.core.configure import make_config
from suite.core.registry import SuiteError
from suite.studies import sanity

SETTINGS = settings(max_examples=150, deadline=None, derandomize=bool(os.environ.get("CI")), database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
json_values = st.recursive(st.one_of(st.none(), scalars), lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)
toml_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


def one_line(exc: BaseException) -> bool:
    text = str(exc)
    return bool(text.strip()) and "\n" not in text and "\r" not in text


def paths_of(obj, prefix=(), depth=3):
    """Every (nested) key or index of ``obj``, to depth ``depth``."""
    if depth == 0:
        return []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    out = []
    for key, value in items:
        out.append((*prefix, key))
        out += paths_of(value, (*prefix, key), depth - 1)
    return out


@st.composite
def mutated(draw, original, values):
    """``original`` with one to three of its keys deleted or given another value."""
    obj = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        where = paths_of(obj)
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(values)
    return obj


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    return '""'  # None: TOML has none


def toml_text(doc: dict) -> str:
    return "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in doc.items())


def _check(call, what: str = "file"):
    """``call()``'s result, or None after a one-line SuiteError; any other exception fails."""
    try:
        out = call()
    except SuiteError as exc:
        assert one_line(exc), repr(str(exc))
        event(f"{what}: one-line SuiteError")
        return None
    event(f"{what}: accepted")
    return out


# -- run records ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def a_record(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("records")
    cfg = suite.RunConfig(task="adding", model="gru", steps=4, hidden_size=4, eval_every=2, probes=1, probe_batch=4,
                          device="cpu", task_params={"T": 5, "n_val": 8, "n_test": 8})
    return Path(suite.run(cfg, out=root, quiet=True, checkpoint_every=0)["path"])


@SETTINGS
@given(data=st.data())
def test_malformed_records_give_a_table_a_warning_or_one_line(a_record, data):
    original = json.loads((a_record / records.RECORD).read_text())
    kind = data.draw(st.sampled_from(["mutated", "mutated", "mutated", "cut", "bytes"]))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(a_record, root / "adding" / "gru" / "good")
        bad = root / "adding" / "gru" / "bad"
        shutil.copytree(a_record, bad)
        if kind == "mutated":
            (bad / records.RECORD).write_text(json.dumps(data.draw(mutated(original, json_values))))
        elif kind == "cut":
            text = (a_record / records.RECORD).read_bytes()
            (bad / records.RECORD).write_bytes(text[: data.draw(st.integers(0, len(text) - 1))])
        else:
            (bad / records.RECORD).write_bytes(data.draw(st.binary(max_size=64)))
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            runs = _check(lambda: report.load_runs(root))
            if runs is not None:
                table = report.render(report.format_table(report.summarize(runs)), "md")
                assert table
        read = set(runs.path) if runs is not None else set()
        # never a silent drop: each record is in the table or named in a warning
        for folder in (bad, root / "adding" / "gru" / "good"):
            assert str(folder) in read or str(folder) in err.getvalue(), (kind, err.getvalue())
        event(f"{kind} record: " + ("in the table" if str(bad) in read else "named in a warning"))
        skipped: list[str] = []
        assert len(list(records.iter_records(root, skipped))) + len(skipped) == 2  # what export reads
        assert all(one_line(s) for s in skipped)


# -- recipe files ----------------------------------------------------------------------------------------

RECIPE = tomllib.loads((paths.RECIPES / "lem.toml").read_text())["lem-adding-T2000"]


@contextlib.contextmanager
def recipes_in(directory: Path):
    before = recipes.RECIPES
    recipes.RECIPES = directory
    recipes.load_recipes.cache_clear()
    try:
        yield
    finally:
        recipes.RECIPES = before
        recipes.load_recipes.cache_clear()


@SETTINGS
@given(data=st.data())
def test_malformed_recipe_files_give_recipes_or_one_line(data):
    doc = data.draw(st.one_of(mutated({"x-adding": RECIPE}, toml_values),
                              st.dictionaries(st.text(max_size=6), toml_values, max_size=2)))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "r.toml").write_text(toml_text(doc))
        if data.draw(st.booleans()):
            (Path(tmp) / "folder.toml").mkdir()
        with recipes_in(Path(tmp)):
            found = _check(recipes.load_recipes)
            for name in found or {}:
                cfg = _check(lambda name=name: recipes.recipe_config(name, ["device=cpu"]), "recipe")
                if cfg is not None:
                    _check(lambda cfg=cfg: resolve(cfg), "resolved recipe")
                assert isinstance(found[name].published, (float, type(None)))


# -- tuned files ------------------------------------------------------------------------------------------

TUNED_SETS = ["steps=6", "hidden_size=4", "task.T=5", "task.n_val=8", "task.n_test=8", "probes=1", "probe_batch=4"]


def a_tuned_file() -> dict:
    fixed = resolve(run_config("adding", "gru", TUNED_SETS, "cpu")).config
    fixed = {k: v for k, v in fixed.items() if k not in ("device", "lr")}
    return {"task": "adding", "model": "gru", "sets": ["lr=0.01"], "fixed": fixed,
            "search_space": {"lr": ["log", 1e-4, 1e-2]}, "best": {"trial": 0, "value": 0.1}}


@SETTINGS
@given(data=st.data())
def test_malformed_tuned_files_apply_or_give_one_line_naming_the_file(data):
    doc = data.draw(mutated(a_tuned_file(), json_values))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.json"
        path.write_text(json.dumps(doc))
        try:
            make_config("adding", "gru", 0, TUNED_SETS, "cpu", tuned=str(path))
        except SuiteError as exc:
            assert one_line(exc) and str(path) in str(exc), str(exc)
            event("tuned file: one-line SuiteError naming it")
        else:
            event("tuned file: applied")


# -- sweep files --------------------------------------------------------------------------------------------

SWEEP = tomllib.loads((paths.PRESETS / "demo.toml").read_text())


@SETTINGS
@given(data=st.data())
def test_malformed_sweep_files_give_cells_or_one_line(data):
    doc = data.draw(st.one_of(mutated(SWEEP, toml_values), st.dictionaries(st.text(max_size=6), toml_values,
                                                                            max_size=2)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "grid.toml"
        path.write_text(toml_text(doc))
        args = build_parser().parse_args(["sweep", "--config", str(path), "-q"])
        configs = _check(lambda: load_sweep(args))
        if configs:
            _check(lambda: resolve(configs[0]), "first cell")


# -- anchor logs ------------------------------------------------------------------------------------------

ANCHOR = (sanity.ANCHORS_DIR / "lem-adding-T2000.csv").read_text().splitlines()[:8]
cells = st.one_of(st.text(alphabet=st.characters(blacklist_characters="\r\n,\""), max_size=6),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr), st.just(""))


@SETTINGS
@given(data=st.data())
def test_malformed_anchor_logs_give_a_log_or_one_line_naming_the_file(data):
    rows = [line.split(",") for line in ANCHOR]
    for _ in range(data.draw(st.integers(1, 4))):
        r = data.draw(st.integers(0, len(rows) - 1))
        c = data.draw(st.integers(0, len(rows[r]) - 1))
        if data.draw(st.booleans()):
            rows[r][c] = data.draw(cells)
        else:
            del rows[r][c]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "lem-adding-T2000.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
        before = sanity.ANCHORS_DIR
        sanity.ANCHORS_DIR = Path(tmp)
        try:
            sanity.validation_steps("lem-adding-T2000", sanity.ANCHORS["lem-adding-T2000"])
            event("anchor log: accepted")
        except SuiteError as exc:
            assert one_line(exc) and ("lem-adding-T2000" in str(exc)), str(exc)
            event("anchor log: one-line SuiteError naming it")
        finally:
            sanity.ANCHORS_DIR = before
