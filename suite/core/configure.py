"""One run's configuration from its layers, in one order everywhere (``run``, ``sweep``,
``paper``, ``tune``): the suite's defaults < a recipe's values < a tuned file's < a
sweep file's (or a paper profile's) < ``--set``. A later layer wins, for run keys,
``task.*`` and ``model.*`` alike, and the configuration names each key's origin (its
provenance): the layer its final value really came from."""

from __future__ import annotations

import dataclasses

from suite.core.build import resolve
from suite.core.config import RunConfig, run_config
from suite.core.registry import SuiteError
from suite.core.tuned import describe_differences, load_tuned, tuned_differences


def make_config(task: str | None, model: str | None, seed: int, sets: list[str], device: str | None, *,
                recipe: str | None = None, tuned: str | None = None,
                sweep: tuple[str, list[str]] | None = None) -> RunConfig:
    """Defaults, then a recipe's values, then a tuned file's, then ``sweep`` (``(origin,
    sets)``: a sweep file's or a paper profile's values), then ``--set``. A tuned file
    applies only to the task and model it was tuned for (a recipe's, when a recipe is
    given) and under the settings it was tuned under; any other is refused."""
    if recipe is not None:
        from suite.core.recipes import get_recipe

        named = get_recipe(recipe)
        data = load_tuned(tuned, task or named.task, model or named.model)
    else:
        data = load_tuned(tuned, task, model)
    if data:
        try:  # the file's own values checked alone first, so that an error names the file
            run_config(data["task"], data["model"], [], None, seed, layers=(("tuned", data["sets"]),))
        except SuiteError as exc:
            raise SuiteError(f"--tuned {data['path']}: {exc}") from None
    layers = (("tuned", data["sets"]),) if data else ()
    if sweep is not None and sweep[1]:
        layers += (sweep,)
    if recipe is not None:
        from suite.core.recipes import recipe_config

        cfg = recipe_config(recipe, sets, task=task, model=model, seed=seed, device=device, layers=layers)
    elif task is None or model is None:
        raise SuiteError("name --task and --model, or a --recipe (see `rnnsuite recipes`)")
    else:
        cfg = run_config(task, model, list(sets), device, seed, layers=layers)
    if data:
        _check_tuned_applies(data, cfg)
    return dataclasses.replace(cfg, tuned=data["path"] if data else None)


def _check_tuned_applies(data: dict, cfg: RunConfig) -> None:
    diff = tuned_differences(data, resolve(cfg).config)
    if diff:
        raise SuiteError(f"--tuned {data['path']} does not apply to this run: {describe_differences(diff)} "
                         f"(tune under these settings, or pass the values you want with --set)")
