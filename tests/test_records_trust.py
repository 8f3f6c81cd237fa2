"""Every record trustworthy (issue 24): what the command line says wins, a diverged run is
never "ok", a damaged checkpoint is never resumed, and no file the suite reads can crash
it. One test (or a few) per numbered case of the issue; the property tests of the files
the suite reads are in tests/test_files_property.py."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import suite
from suite.analysis import report
from suite.cli import launch
from suite.cli.main import build_parser, load_sweep, main
from suite.core import build, harness, records, sizes
from suite.core.checkpoint import Checkpoint
from suite.core.configure import make_config
from suite.core.registry import MODELS, SuiteError

ROOT = Path(__file__).resolve().parent.parent

TINY = ["--set", "steps=12", "--set", "hidden_size=4", "--set", "task.T=5", "--set", "task.n_val=8",
        "--set", "task.n_test=8", "--set", "eval_every=4", "--set", "probes=1", "--set", "probe_batch=8",
        "--device", "cpu", "-q"]


def tiny(**kw) -> suite.RunConfig:
    fields = dict(task="adding", model="gru", steps=12, hidden_size=4, eval_every=4, probes=1, probe_batch=8,
                  device="cpu", task_params={"T": 5, "n_val": 8, "n_test": 8})
    return suite.RunConfig(**{**fields, **kw})


def one_line_error(capsys, argv: list[str], *expected: str) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnnsuite: error:") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err
    return err


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- 1 and 4: one rule of precedence; a sweep-file table names a cell of the grid ---------------

def sweep_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_on_sweep_the_command_line_beats_the_sweep_file_for_task_and_model_keys(tmp_path):
    grid = sweep_file(tmp_path, 'tasks = ["adding"]\nmodels = ["gru", "lem"]\n[set]\nlr = 0.003\nsteps = 50\n'
                                '[task_params.adding]\nT = 100\n[model_params.lem]\ndt = 0.1\n')
    args = build_parser().parse_args(["sweep", "--config", str(grid), "--set", "task.T=20", "--set", "model.dt=0.5",
                                      "--set", "lr=0.01", "--models", "lem"])
    (cfg,) = load_sweep(args)
    assert (cfg.task_params["T"], cfg.model_params["dt"], cfg.lr, cfg.steps) == ("20", "0.5", 0.01, 50)
    assert cfg.origins["task.T"] == "set (overrides sweep file)"
    assert cfg.origins["model.dt"] == "set (overrides sweep file)"
    assert cfg.origins["lr"] == "set (overrides sweep file)" and cfg.origins["steps"] == "sweep file"
    assert suite.resolve(cfg).config["task_params"]["T"] == 20


def test_the_layers_apply_in_one_order_recipe_tuned_sweep_set(tmp_path):
    cfg = make_config(None, None, 0, ["lr=0.3"], "cpu", recipe="cornn-smnist",
                      sweep=("sweep file", ["lr=0.2", "steps=7", "task.val_size=100"]))
    assert cfg.lr == 0.3 and cfg.origins["lr"] == "set (overrides sweep file, recipe)"
    assert cfg.steps == 7 and cfg.origins["steps"] == "sweep file"
    assert cfg.origins["task.val_size"] == "sweep file (overrides recipe)"


def test_paper_profile_is_a_layer_under_the_command_line():
    from suite.studies.paper import TABLES, cell_configs

    cfgs = cell_configs(TABLES["adding"].profiles["quick"], ["task.T=7", "lr=0.2"], ["gru"])
    assert {c.task_params["T"] for c in cfgs} == {"7"} and {c.lr for c in cfgs} == {0.2}
    assert cfgs[0].origins["task.T"] == "set (overrides paper profile)"
    assert cfgs[0].origins["hidden_size"] == "paper profile"


@pytest.mark.parametrize("table, message", [
    ("[task_params.adidng]\nT = 20\n", "[task_params.adidng] names a task not in the sweep's grid (valid: adding)"),
    ("[model_params.lstm]\nhidden = 3\n", "[model_params.lstm] names a model not in the sweep's grid (valid: gru)"),
    ("[model_set.lstm]\nlr = 0.1\n", "[model_set.lstm] names a model not in the sweep's grid (valid: gru)"),
])
def test_a_sweep_table_for_a_name_not_in_the_grid_is_an_error(table, message, tmp_path, capsys):
    grid = sweep_file(tmp_path, 'tasks = ["adding"]\nmodels = ["gru"]\n' + table)
    one_line_error(capsys, ["sweep", "--config", str(grid), "--out", str(tmp_path / "runs")], message)
    assert not (tmp_path / "runs").exists()


def test_a_folder_given_as_the_sweep_file_is_one_line(tmp_path, capsys):
    (tmp_path / "grid.toml").mkdir()
    one_line_error(capsys, ["sweep", "--config", str(tmp_path / "grid.toml"), "--out", str(tmp_path / "runs")],
                   f"{tmp_path / 'grid.toml'}: cannot read the sweep file")


def test_tune_evaluation_records_say_the_searched_values_are_tuned():
    from suite.core.config import run_config

    cfg = run_config("adding", "gru", ["steps=5", "seed=1"], "cpu", layers=(("tuned", ["lr=0.02"]),))
    assert cfg.origins == {"lr": "tuned", "seed": "set", "steps": "set"}


# -- 2: a run's outcome is one of a few declared states ---------------------------------------------

BLOW_UP = ["--set", "optimizer=sgd", "--set", "lr=9e18", "--set", "steps=1", "--set", "eval_every=1",
           "--set", "hidden_size=16", "--set", "task.T=20"]  # the case: test mse = inf after one step


def test_non_finite_final_metric_is_diverged_never_ok(tmp_path, capsys):
    assert main(["run", "--task", "adding", "--model", "gru", *TINY, *BLOW_UP, "--out", str(tmp_path)]) == 0
    assert "diverged at step 1" in capsys.readouterr().out
    (path,) = tmp_path.rglob("record.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "diverged" and rec["metrics"]["diverged_step"] == 1


def test_outcome_is_decided_by_one_rule():
    assert set(records.STATES) == {"ok", "diverged", "failed"}
    assert records.outcome("ok", {"val_final": 0.1, "test": 0.2}) == "ok"
    assert records.outcome("ok", {"val_final": 0.1, "test": None}) == "diverged"
    assert records.outcome("ok", {"val_final": float("inf"), "test": 0.2}) == "diverged"
    assert records.outcome("diverged", {"val_final": 0.1, "test": 0.2}) == "diverged"


def _runs(tmp_path: Path, seeds=(0, 1, 2)) -> Path:
    root = tmp_path / "runs"
    for seed in seeds:
        suite.run(tiny(seed=seed), out=root, quiet=True, checkpoint_every=0)
    return root


def _edit(root: Path, seed: int, change) -> Path:
    path = next(p for p in root.rglob("record.json") if json.loads(p.read_text())["seed"] == seed)
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))
    return path


def test_report_counts_a_diverged_run_apart_and_never_as_a_seed(tmp_path, capsys):
    root = _runs(tmp_path)
    path = _edit(root, 2, lambda r: r["metrics"].update(test=None))  # what the old suite wrote as "ok"
    summary = report.summarize(report.load_runs(root)).iloc[0]
    assert (summary.seeds, summary.diverged) == (2, 1)
    assert f"{path}: recorded as 'ok', but its final validation or test metric is not finite" in capsys.readouterr().err
    table = report.format_table(report.summarize(report.load_runs(root)))
    assert list(table[["seeds", "diverged"]].iloc[0]) == [2, 1]


def test_sweep_counts_diverged_cells_apart(tmp_path, capsys):
    assert main(["sweep", "--tasks", "adding", "--models", "gru", *TINY, *BLOW_UP, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "diverged at step 1" in out and "0 failed, 1 diverged" in out


# -- 5: records checked on read: each bad record named, never a traceback, never a silent drop ----

@pytest.mark.parametrize("change, problem", [
    (lambda r: r.update(task=None), "task=None is not a name"),
    (lambda r: r.update(model=None), "model=None is not a name"),
    (lambda r: r["task_info"].update(variant=None), "task_info.variant=None is not a name"),
    (lambda r: r["metrics"].update(test=-0.5), "metrics.test=-0.5 is not a possible mse"),
    (lambda r: r.update(status="great"), "status='great' is not one of ok, diverged"),
    (lambda r: r["model_info"].update(n_params="many"), "model_info.n_params='many' is not a count"),
    (lambda r: r.update(seed="zero"), "seed='zero' is not a seed"),
])
def test_report_names_every_bad_record_in_a_warning(change, problem, tmp_path, capsys):
    root = _runs(tmp_path)
    path = _edit(root, 1, change)
    capsys.readouterr()
    assert main(["report", "--runs", str(root)]) == 0
    captured = capsys.readouterr()
    assert f"rnnsuite: warning: skipped {path}: {problem}" in captured.err
    assert "Traceback" not in captured.err
    assert report.summarize(report.load_runs(root)).iloc[0].seeds == 2


def test_export_names_every_bad_record_too(tmp_path):
    root = _runs(tmp_path, seeds=(0, 1))
    path = _edit(root, 1, lambda r: r["model_info"].update(n_params="many"))
    skipped: list[str] = []
    assert len(list(records.iter_records(root, skipped))) == 1
    assert skipped == [f"{path}: model_info.n_params='many' is not a count"]


def test_a_duplicate_seed_counts_once_with_a_warning(tmp_path, capsys):
    root = _runs(tmp_path, seeds=(0, 1))
    source = next(root.rglob("record.json")).parent
    copy = source.parent / "copy-of-a-run"
    shutil.copytree(source, copy)
    summary = report.summarize(report.load_runs(root)).iloc[0]
    assert summary.seeds == 2
    assert "again (first in" in capsys.readouterr().err


# -- 3 and 6: checkpoints carry a digest; a damaged or unfitting one is set aside, never resumed ----

def _kept_checkpoint(tmp_path: Path, monkeypatch) -> tuple[bytes, suite.RunConfig]:
    """The checkpoint at step 10 of a 12-step run (kept: its removal switched off)."""
    cfg = tiny()
    with monkeypatch.context() as m:
        m.setattr(Checkpoint, "remove", lambda self: None)
        suite.run(cfg, out=tmp_path / "source", quiet=True, checkpoint_every=5)
    (path,) = (tmp_path / "source").rglob(".*.checkpoint.pt")
    return path.read_bytes(), cfg


def _resume_from(data: bytes, cfg, out: Path) -> dict:
    target = records.run_dir(out, cfg.task, cfg.model, cfg.seed, suite.resolve(cfg).hash)
    target.parent.mkdir(parents=True, exist_ok=True)
    records.checkpoint_path(target).write_bytes(data)
    return suite.run(cfg, out=out, quiet=True, checkpoint_every=5)


def damage(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["truncate", "zero", "flip"])
    at = rng.randrange(len(data))
    if kind == "truncate":
        return kind, data[:at]
    if kind == "zero":
        n = rng.randint(1, 400)
        zeroed = data[:at] + bytes(min(n, len(data) - at)) + data[at + n:]
        return (kind, zeroed) if zeroed != data else damage(data, rng)  # a range already zero is no damage
    buf = bytearray(data)
    buf[at] ^= 1 << rng.randrange(8)
    return kind, bytes(buf)


def test_no_damaged_checkpoint_is_ever_resumed(tmp_path, monkeypatch, capsys):
    good, cfg = _kept_checkpoint(tmp_path, monkeypatch)
    reference = suite.run(cfg, out=tmp_path / "reference", quiet=True, checkpoint_every=0)
    # the undamaged checkpoint resumes (so that the damaged ones could have)
    assert _resume_from(good, cfg, tmp_path / "good")["timing"]["resumed_at_steps"] == [10]
    rng = random.Random(24)
    path = tmp_path / "one" / ".checkpoint.pt"
    path.parent.mkdir()
    kinds = {"truncate": 0, "zero": 0, "flip": 0}
    for _ in range(300):  # the check alone, at random offsets
        kind, bad = damage(good, rng)
        kinds[kind] += 1
        path.write_bytes(bad)
        assert Checkpoint(path, 5, fresh=False, config_hash=suite.resolve(cfg).hash).load() is None, kind
        assert not path.exists()  # set aside
    assert min(kinds.values()) > 50
    for i in range(3):  # whole runs: started from step 0, the same record as an uninterrupted run
        kind, bad = damage(good, rng)
        capsys.readouterr()
        rec = _resume_from(bad, cfg, tmp_path / f"run{i}")
        assert rec["timing"]["resumed_at_steps"] == [], kind
        assert rec["metrics"]["test"] == reference["metrics"]["test"]
        err = capsys.readouterr().err
        assert "set aside as" in err and "the run starts from step 0" in err, err
        (aside,) = (tmp_path / f"run{i}").rglob("*.set-aside-*")
        assert aside.read_bytes() == bad  # renamed, not deleted


def _resaved(good: bytes, tmp_path: Path, change) -> bytes:
    path = tmp_path / "resave" / ".checkpoint.pt"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(good)
    state = Checkpoint(path, 5, fresh=False).load()
    change(state)
    Checkpoint(path, 5, fresh=False).save(state)  # a valid digest: what another suite version wrote
    return path.read_bytes()


@pytest.mark.parametrize("change", [
    lambda s: s["progress"].update(new_field=1),  # an extra field in its progress
    lambda s: s["model"].update({k: torch.zeros(3, 3) for k in list(s["model"])[:1]}),  # a wrong tensor shape
    lambda s: s["optimizer"]["param_groups"].append(dict(s["optimizer"]["param_groups"][0])),
    lambda s: s["progress"].update(step=10**6),
], ids=["extra-field", "wrong-shape", "other-optimizer", "step-beyond-the-run"])
def test_a_checkpoint_that_does_not_fit_is_set_aside_with_one_line(change, tmp_path, monkeypatch, capsys):
    good, cfg = _kept_checkpoint(tmp_path, monkeypatch)
    reference = suite.run(cfg, out=tmp_path / "reference", quiet=True, checkpoint_every=0)
    capsys.readouterr()
    rec = _resume_from(_resaved(good, tmp_path, change), cfg, tmp_path / "run")
    assert rec["timing"]["resumed_at_steps"] == [] and rec["metrics"]["test"] == reference["metrics"]["test"]
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "does not fit this run" in err[0] and "set aside as" in err[0], err


def test_a_checkpoint_of_other_versions_is_set_aside(tmp_path, monkeypatch, capsys):
    good, cfg = _kept_checkpoint(tmp_path, monkeypatch)
    monkeypatch.setattr("suite.core.checkpoint.versions", lambda: {"torch": "0.0.1"})
    rec = _resume_from(good, cfg, tmp_path / "run")
    assert rec["timing"]["resumed_at_steps"] == []
    assert "was written under other versions" in capsys.readouterr().err


# -- 8, 9: recipe and tuned files ----------------------------------------------------------------------

RECIPE = '''[x-adding]
task = "adding"
model = "gru"
metric = "mse"
units = ""
source = "here"
selection = "last"
checked = "no"
'''


@pytest.mark.parametrize("extra, message", [
    ("set = 5\n", "set must be a table"),
    ("published = true\n", "published=True is not a number"),
    ("code = 5\n", "code=5 must be text"),
])
def test_malformed_recipes_are_one_line_naming_the_file(extra, message, tmp_path):
    from suite.core.recipes import load_recipes

    (tmp_path / "bad.toml").write_text(RECIPE + extra)
    with pytest.raises(SuiteError, match="bad.toml") as err:
        load_recipes(str(tmp_path))
    assert message in str(err.value)


def test_a_recipe_with_a_task_that_is_not_text_is_one_line(tmp_path):
    from suite.core.recipes import load_recipes

    (tmp_path / "bad.toml").write_text(RECIPE.replace('task = "adding"', "task = 5"))
    with pytest.raises(SuiteError, match=r"bad.toml: \[x-adding\] task=5 must be text"):
        load_recipes(str(tmp_path))


def test_a_folder_named_like_a_recipe_file_is_skipped(tmp_path):
    from suite.core.recipes import load_recipes

    (tmp_path / "x.toml").mkdir()
    (tmp_path / "ok.toml").write_text(RECIPE)
    assert list(load_recipes(str(tmp_path))) == ["x-adding"]


def _tuned(tmp_path: Path, **change) -> Path:
    path = tmp_path / "study.json"
    path.write_text(json.dumps({"task": "psmnist", "model": "gru", "sets": ["lr=0.01"], "fixed": {},
                                "search_space": {"lr": ["log", 1e-4, 1e-2]}, **change}))
    return path


def test_a_gru_tuned_file_with_a_lem_recipe_says_so_in_one_short_line(tmp_path, capsys):
    err = one_line_error(capsys, ["run", "--recipe", "lem-psmnist", "--tuned", str(_tuned(tmp_path)),
                                  "--out", str(tmp_path / "runs")], "tuned for model 'gru'")
    assert len(err) < 200, err


def test_tuned_file_errors_name_the_file(tmp_path):
    from suite.core.tuned import load_tuned

    with pytest.raises(SuiteError, match=f"--tuned {_tuned(tmp_path, search_space=[1])}: search_space must be"):
        load_tuned(tmp_path / "study.json", "psmnist", "gru")
    with pytest.raises(SuiteError, match="study.json: unknown key 'lrr'"):
        make_config("adding", "gru", 0, [], "cpu", tuned=str(_tuned(tmp_path, task="adding", sets=["lrr=0.1"])))


def test_differences_of_a_tuned_file_are_one_short_line():
    from suite.core.tuned import describe_differences

    diff = {f"task.k{i}": (list(range(100)), i) for i in range(30)}
    line = describe_differences(diff)
    assert len(line) < 500 and "(and 26 more settings)" in line


# -- 7, 11: sizes ----------------------------------------------------------------------------------------

def test_a_huge_batch_is_refused_before_anything_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(harness, "_train", lambda *a, **k: pytest.fail("trained on a batch that cannot fit"))
    one_line_error(capsys, ["run", "--task", "adding", "--model", "gru", "--set", "task.T=20", "--set", "steps=20",
                            "--set", "hidden_size=16", "--set", "batch_size=10000000", "--device", "cpu",
                            "--out", str(tmp_path / "runs")], "of memory", "use smaller sizes")
    assert not (tmp_path / "runs").exists()


def test_a_sweep_too_large_is_refused_before_it_resolves_a_cell(tmp_path, capsys, monkeypatch):
    import suite.cli.main as cli
    import suite.core.configure

    # the command imports make_config when it runs: patched where it is defined
    monkeypatch.setattr(suite.core.configure, "make_config",
                        lambda *a, **k: pytest.fail("resolved a cell of a sweep too large"))
    seeds = ",".join(map(str, range(cli.MAX_CELLS // 2 + 1)))
    one_line_error(capsys, ["sweep", "--tasks", "adding", "--models", "gru,lstm", "--seeds", seeds,
                            "--out", str(tmp_path)], f"more than the {cli.MAX_CELLS} one command resolves")


def test_a_large_sweep_shows_progress_while_it_resolves(tmp_path, capsys, monkeypatch):
    import suite.cli.main as cli

    monkeypatch.setattr(cli._ResolveProgress, "EVERY_S", 0.0)
    args = build_parser().parse_args(["sweep", "--tasks", "adding", "--models", "gru", "--seeds", "0,1,2"])
    load_sweep(args)
    assert "resolving the sweep's cells: 2/3" in capsys.readouterr().err


def _peak_and_estimate(model: str, T: int = 48, B: int = 256, H: int = 64) -> tuple[int, int]:
    """In a forked child: the peak resident memory one training step adds (batch drawn,
    forward, backward, optimizer step), against the estimate for the same step."""
    from suite.core import training
    from suite.core.config import run_config

    def rss(field: str) -> int:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(field))

    cfg = run_config("adding", model, [f"task.T={T}", f"hidden_size={H}", f"batch_size={B}", "task.n_val=16",
                                       "task.n_test=16"], "cpu")
    resolved = suite.resolve(cfg)
    task = build.build_task("adding", **resolved.config["task_params"])
    net = build.build_model(model, input_size=task.input_size, output_size=task.output_size, hidden_size=H,
                            seq_len=task.seq_len, **resolved.config["model_params"])
    opt = training.make_optimizer(resolved.config, net)
    x, y = task.batch("train", 0, 2, seed=0)  # a warm-up step: lazy allocations out of the window
    task.loss(training.predict(net, task, x), y).mean().backward()
    opt.zero_grad(set_to_none=True)
    base = rss("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # the peak resident size starts again from here
    x, y = task.batch("train", 1, B, seed=0)
    task.loss(training.predict(net, task, x), y).mean().backward()
    opt.step()
    peak = rss("VmHWM") - base
    need = sizes.memory_floor(cfg, task, build.count_parameters(cfg, task))
    return peak, sum(v for k, v in need.items() if k != "validation and test inputs")


def _in_child(fn, *args):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.close(read)
        try:
            out = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            out = repr(exc)
        os.write(write, pickle.dumps(out))
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    os.waitpid(pid, 0)
    return pickle.loads(data)


def all_peaks() -> dict:
    """Every model's step measured in a forked child of this process."""
    return {model: _in_child(_peak_and_estimate, model) for model in MODELS.names()}


@pytest.fixture(scope="module")
def peaks():
    """:func:`all_peaks` run in a new interpreter: a child forked from the test session, which
    has run other tests, reuses its parent's freed heap, and its resident size then misses
    most of what a step allocates (measured: 0.4-5 MB for a step of 30-90 MB)."""
    code = ("import pickle, sys; import tests.test_records_trust as t; "
            "sys.stdout.buffer.write(pickle.dumps(t.all_peaks()))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, timeout=1200)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return pickle.loads(done.stdout)


def _can_measure_peaks() -> str | None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError as exc:
        return f"needs Linux's /proc/self/clear_refs to measure peak memory ({exc.strerror})"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_can_measure_peaks() is not None, reason=str(_can_measure_peaks()))
@pytest.mark.parametrize("model", MODELS.names())
def test_memory_estimate_covers_the_measured_peak(model, peaks):
    out = peaks[model]
    assert not isinstance(out, str), out
    peak, estimate = out
    # a margin of 20% for the allocator; and an estimate within 5x, so that it refuses no run that fits
    assert peak <= 1.2 * estimate, (model, peak / 2**20, estimate / 2**20)
    assert estimate <= 5 * peak, (model, peak / 2**20, estimate / 2**20)


def test_the_estimate_grows_with_the_batch_for_every_model():
    from suite.core.config import run_config

    for model in MODELS.names():
        cfg = run_config("adding", model, ["task.T=20", "hidden_size=16"], "cpu")
        task = build.build_task("adding", T=20)
        counts = build.count_parameters(cfg, task)
        small, large = (sum(sizes.memory_floor(suite.RunConfig(**{**cfg.__dict__, "batch_size": b}), task,
                                               counts).values()) for b in (64, 10**7))
        assert large > 10**5 * small / 64 / 2, model  # linear in the batch size, for every model


# -- 12, 10, 13: the launcher, Ctrl-C, a corrupt record in the way --------------------------------------

class FakeJob:
    def __init__(self, ex, cfg):
        self.ex, self.cfg, self.polls = ex, cfg, 0
        self.job_id = f"{len(ex.jobs)}"
        self.paths = SimpleNamespace(stderr="log")

    def done(self) -> bool:
        self.polls += 1
        return self.polls > 2

    def result(self) -> dict:
        return {"outcome": "done", "metric": "mse", "test": 0.1, "status": "ok", "path": "p"}


class FakeExecutor:
    """submitit's local executor as far as launch_cells uses it; it notes how many of its
    jobs were running whenever it started another."""

    def __init__(self):
        self.jobs, self.running_at_start = [], []

    def _start(self, cfg) -> FakeJob:
        self.running_at_start.append(sum(j.polls <= 2 for j in self.jobs))
        job = FakeJob(self, cfg)
        self.jobs.append(job)
        return job

    def map_array(self, fn, cfgs, outs, kwargs):
        return [self._start(c) for c in cfgs]

    def submit(self, fn, cfg, out, kwargs):
        return self._start(cfg)


def test_local_launcher_honours_array_parallelism(tmp_path, monkeypatch, capsys):
    ex = FakeExecutor()
    monkeypatch.setattr(launch, "executor", lambda *a, **k: ex)
    monkeypatch.setattr(launch.time, "sleep", lambda s: None)
    args = build_parser().parse_args(["sweep", "--tasks", "adding", "--models", "gru,lstm,lem", "--seeds", "0,1",
                                      *TINY, "--launcher", "local", "--array-parallelism", "2",
                                      "--out", str(tmp_path)])
    counts = launch.launch_cells(load_sweep(args), tmp_path, args, label="sweep", run_kwargs={})
    assert len(ex.jobs) == 6 and counts["done here"] == 6
    assert max(ex.running_at_start) <= 1  # a job starts only where fewer than 2 run
    assert "runs 2 cell(s) at a time" in capsys.readouterr().out


def test_ctrl_c_during_tune_is_one_line_and_exit_130(tmp_path, capfd, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    from suite.tuning import search

    monkeypatch.setattr(search, "run", interrupted)  # where a trial calls the harness
    code = main(["tune", "--task", "adding", "--model", "gru", "--trials", "2", *TINY,
                 "--storage", f"sqlite:///{tmp_path / 'db.sqlite'}", "--out", str(tmp_path / "t"),
                 "--eval-seeds", "0"])
    err = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert code == 130
    assert err == ["rnnsuite: interrupted; finished records are kept, the unfinished run left none"], err


def test_a_corrupt_record_in_the_way_says_how_out(tmp_path, capsys):
    cfg = tiny()
    target = records.run_dir(tmp_path, "adding", "gru", 0, suite.resolve(cfg).hash)
    target.mkdir(parents=True)
    (target / "record.json").write_text('{"schema": 1, "trunc')
    one_line_error(capsys, ["run", "--task", "adding", "--model", "gru", *TINY, "--out", str(tmp_path)],
                   "not a valid JSON record", "rerun with --overwrite to replace it", f"or remove {target}")
    assert main(["run", "--task", "adding", "--model", "gru", *TINY, "--out", str(tmp_path), "--overwrite"]) == 0


# -- anchors ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("", "is unreadable"),
    ("point_kind,point,value,metric,split\nepoch,one,0.5,accuracy,val\n", "column point holds a value"),
    ("point_kind,point,value,metric,split\nepoch,1,inf,accuracy,val\n", "column value holds a value"),
    ("point_kind,point,value,metric,split\nminute,1,0.5,accuracy,val\n", "'minute' is not epoch or iteration"),
    ("point_kind,point,value,metric,split\nepoch,1,0.5,accuracy,val\nepoch,1,0.6,accuracy,val\n",
     "must be positive and distinct"),
])
def test_malformed_anchor_logs_are_one_line_naming_the_file(text, message, tmp_path):
    from suite.studies.sanity import check_log

    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(SuiteError, match="x.csv") as err:
        check_log(path)
    assert message in str(err.value) and "\n" not in str(err.value)
