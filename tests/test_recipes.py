"""Recipes (results/reference/recipes): every one resolves, cites a source or says why
not for every value, and trains a few steps at tiny scale; the options recipes need
(parameter groups, value clipping, milestones, per-epoch validation, pixel scalings,
the published permutations) do what their sources do."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import suite
from suite.cli.main import main
from suite.core import recipes
from suite.core.config import run_config
from suite.core.registry import SuiteError
from tests.conftest import MNIST_TASKS, mnist_dir

ALL = list(recipes.load_recipes())


def test_there_are_recipes_for_every_model_family_with_a_published_number():
    models = {r.model for r in recipes.load_recipes().values()}
    assert {"cornn", "unicornn", "lem"} <= models


@pytest.mark.parametrize("name", ALL)
def test_recipe_resolves_and_every_value_has_a_source_or_a_reason(name):
    recipe = recipes.get_recipe(name)
    assert name.startswith(f"{recipe.model}-{recipe.task}")
    resolved = suite.resolve(recipes.recipe_config(name))
    flat = {**{k: v for k, v in resolved.config.items()},
            **{f"task.{k}": v for k, v in resolved.config["task_params"].items()},
            **{f"model.{k}": v for k, v in resolved.config["model_params"].items()}}
    for key, value in recipe.values.items():
        kind, text = recipe.cites[key]
        assert kind in ("source", "unknown") and len(text) > 5, f"{name}: {key} cites nothing"
        resolved_value = flat[key]
        expected = tuple(value) if isinstance(value, list) else (None if value == "none" else value)
        assert resolved_value == pytest.approx(expected), f"{name}: {key} resolved to {resolved_value!r}"
    assert resolved.provenance["recipe"] == name
    assert all(o == "recipe" for o in resolved.provenance["origins"].values())


def _tiny(recipe) -> list[str]:
    sets = ["epochs=none", "steps=2", "batch_size=4", "hidden_size=6", "eval_every=2", "probes=1",
            "probe_batch=2", "eval_every_epochs=none", "schedule=constant", "milestones="]
    if recipe.task in MNIST_TASKS:
        sets += ["task.pixels_per_step=49", "task.n_train=64", "task.val_size=32"]
    else:
        sets += ["task.T=6", "task.n_val=8", "task.n_test=8"]
    return sets


@pytest.mark.parametrize("name", ALL)
def test_recipe_trains_a_few_steps_at_tiny_scale(name, tmp_path):
    recipe = recipes.get_recipe(name)
    if recipe.task in MNIST_TASKS and mnist_dir() is None:
        pytest.skip("MNIST files not found in $RNNSUITE_DATA or ../shared/data/mnist")
    cfg = recipes.recipe_config(name, _tiny(recipe), device="cpu")
    record = suite.run(cfg, out=tmp_path, quiet=True, data_dir=str(mnist_dir()) if recipe.task in MNIST_TASKS else None)
    assert record["status"] == "ok" and record["metrics"]["steps_done"] == 2
    assert record["provenance"]["recipe"] == name
    tiny_keys = {pair.split("=")[0] for pair in _tiny(recipe)}
    assert recipes.overridden(record["provenance"]) == sorted(tiny_keys & set(recipe.values))
    saved = json.loads((tmp_path / recipe.task / recipe.model).glob("*/record.json").__next__().read_text())
    assert saved["provenance"] == record["provenance"]


def test_set_overrides_a_recipe_and_the_record_says_so():
    cfg = recipes.recipe_config("cornn-smnist", ["lr=0.01"])
    assert cfg.lr == 0.01 and cfg.origins["lr"] == "set (overrides recipe)"
    assert recipes.overridden({"origins": cfg.origins}) == ["lr"]
    assert cfg.origins["hidden_size"] == "recipe"
    # a tuned layer between the recipe and --set: the chain is kept, the recipe still overridden
    layered = recipes.recipe_config("cornn-smnist", ["lr=0.02"], layers=(("tuned", ["lr=0.03", "clip=2.0"]),))
    assert layered.lr == 0.02 and layered.origins["lr"] == "set (overrides tuned, recipe)"
    assert layered.origins["clip"] == "tuned" and recipes.overridden({"origins": layered.origins}) == ["lr"]


def test_recipe_errors_are_one_line(tmp_path, capsys):
    assert main(["run", "--recipe", "cornn-smnsit"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown recipe 'cornn-smnsit'" in err and "cornn-smnist" in err
    assert main(["run", "--recipe", "cornn-smnist", "--model", "lem"]) == 2
    assert "contradicts recipe" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[x-adding]\ntask = "adding"\nmodel = "gru"\nmetric = "mse"\npublished = 1\nunits = ""\n'
                   'source = "s"\nselection = "last"\nchecked = "yes"\n[x-adding.set]\nlr = 0.1\n')
    with pytest.raises(SuiteError, match="must be { value"):
        recipes.load_recipes(str(tmp_path))
    bad.write_text(bad.read_text().replace("lr = 0.1", 'lr = { value = "fast", source = "s" }'))
    recipes.load_recipes.cache_clear()
    loaded = recipes.load_recipes(str(tmp_path))
    with pytest.raises(SuiteError, match="lr='fast' is not a number"):
        run_config("adding", "gru", [], layers=(("recipe", loaded["x-adding"].sets()),))


def test_recipes_command_lists_and_resolves(capsys):
    assert main(["recipes"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ALL)
    assert main(["recipes", "cornn-smnist"]) == 0
    shown = capsys.readouterr().out
    assert "model.damping = 'explicit'  <- " in shown and "task.split_seed = 0  <- UNKNOWN" in shown


# -- the options recipes need --------------------------------------------------------------


def _train(sets, model="gru", task="adding", **kw):
    cfg = run_config(task, model, ["steps=4", "batch_size=4", "hidden_size=4", "task.T=5", "task.n_val=8",
                                   "task.n_test=8", "probes=1", "probe_batch=2", *sets], "cpu")
    return suite.run(cfg, quiet=True, **kw)


def test_milestones_divide_the_learning_rate_at_the_stated_steps(tmp_path):
    record = _train(["schedule=milestones", "milestones=2", "lr_decay=0.5", "lr=0.1", "log_every=1"],
                    out=tmp_path)
    curves = (tmp_path / "adding" / "gru").glob("*/curves.csv").__next__().read_text().splitlines()
    lrs = [float(row.split(",")[5]) for row in curves[1:] if row.split(",")[1] == "train"]
    # the logged lr is the one for the next step: ×0.5 once two steps are done
    assert record["status"] == "ok" and lrs == pytest.approx([0.1, 0.05, 0.05, 0.05])


def test_milestone_schedule_in_steps_and_epochs():
    from suite.core.training import make_schedule

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = {"schedule": "milestones", "milestones": (2.0,), "lr_decay": 0.1, "epochs": 3.0}
    sched = make_schedule(cfg, opt, total_steps=30, per_epoch=10)
    lrs = []
    for _ in range(30):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[19] == 1.0 and lrs[20] == pytest.approx(0.1)  # after epoch 2 = step 20


def test_model_param_groups_get_their_learning_rate():
    from suite.core.training import make_optimizer

    model = suite.build_model("exprnn", input_size=1, output_size=2, hidden_size=4)
    opt = make_optimizer({"lr": 7e-4, "optimizer": "rmsprop", "weight_decay": 0.0, "momentum": 0.0}, model)
    skew = model.recurrent.parametrizations.weight.original
    by_param = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    assert by_param[id(skew)] == pytest.approx(7e-5)
    assert by_param[id(model.W_in.weight)] == pytest.approx(7e-4)
    assert isinstance(opt, torch.optim.RMSprop)


def test_value_clipping_bounds_every_gradient_element():
    params = [torch.nn.Parameter(torch.zeros(3))]
    params[0].grad = torch.tensor([5.0, -0.2, -7.0])
    torch.nn.utils.clip_grad_value_(params, 1.0)  # what the harness calls with clip_value
    assert params[0].grad.tolist() == pytest.approx([1.0, -0.2, -1.0])
    assert _train(["clip_value=0.01"])["config"]["clip_value"] == 0.01


def test_impossible_recipe_options_are_refused():
    for sets, message in ((["schedule=milestones"], "milestones go"), (["milestones=5"], "milestones go"),
                          (["schedule=milestones", "milestones=5,2"], "increasing"),
                          (["momentum=0.9"], "adam has its own betas"), (["eval_every_epochs=1"], "epochs budget"),
                          (["clip_value=0"], "clip_value")):
        with pytest.raises(SuiteError, match=message):
            suite.resolve(run_config("adding", "gru", sets))


# -- the published permutations and pixel scalings, against independent constructions ------


def _mt19937(seed: int) -> np.random.MT19937:
    bits = np.random.MT19937(0)
    bits._legacy_seeding(seed)  # the classic init_genrand(seed) that torch's and NumPy's legacy seeding use
    return bits


def test_torch_permutation_is_fisher_yates_on_mt19937():
    # torch.randperm on the CPU: for i = 0..n-2, swap i with i + (32-bit draw mod (n - i))
    for seed in (12008, 5544):
        bits, perm = _mt19937(seed), np.arange(784)
        for i in range(783):
            j = i + int(bits.random_raw()) % (784 - i)
            perm[i], perm[j] = perm[j], perm[i]
        task = suite.build_task("psmnist", perm="torch", perm_seed=seed)
        assert (task.permutation == perm).all()
    torch.manual_seed(12008)
    assert (suite.build_task("psmnist", perm="torch", perm_seed=12008).permutation == torch.randperm(784).numpy()).all()


def test_numpy_legacy_permutation_is_the_randomstate_shuffle():
    # RandomState.permutation: for i = n-1..1, swap i with a masked-rejection draw in 0..i
    bits, perm = _mt19937(92916), np.arange(784)
    for i in range(783, 0, -1):
        mask = (1 << i.bit_length()) - 1
        while (j := int(bits.random_raw()) & mask) > i:
            pass
        perm[i], perm[j] = perm[j], perm[i]
    assert (suite.build_task("psmnist", perm="numpy-legacy", perm_seed=92916).permutation == perm).all()


def test_bit_reversal_permutation_by_repeated_halving():
    # positions 0..1023 as a column, split into halves and laid side by side ten times
    perm = np.arange(1024).reshape(1024, 1)
    for _ in range(10):
        half = perm.shape[0] // 2
        perm = np.hstack((perm[:half], perm[half:]))
    expected = perm.ravel()[perm.ravel() < 784]
    task = suite.build_task("psmnist", perm="bit-reversal")
    assert (task.permutation == expected).all() and sorted(task.permutation) == list(range(784))


def test_permutation_is_named_in_the_task_description():
    info = suite.build_task("psmnist", perm="torch", perm_seed=5544).describe()["permutation"]
    assert info["name"] == "torch" and info["seed"] == 5544 and len(info["sha256"]) == 64
    other = suite.build_task("psmnist", perm="suite", perm_seed=5544).describe()["permutation"]
    assert other["sha256"] != info["sha256"]


@pytest.mark.parametrize(("rule", "lo", "hi"), [("unit", 0.0, 1.0), ("signed", -1.0, 127 / 128),
                                                  ("standardized", -0.1307 / 0.3081, (1 - 0.1307) / 0.3081)])
def test_pixel_scalings(rule, lo, hi):
    from tasks.mnist import scale_pixels

    out = scale_pixels(torch.tensor([0.0, 255.0]), rule)
    assert out.tolist() == pytest.approx([lo, hi])
    assert math.isfinite(out.sum().item())
