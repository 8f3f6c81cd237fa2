"""``rnnsuite recipes``: the published recipes with their sources (:mod:`suite.core.recipes`)."""

from __future__ import annotations

from suite.core import recipes
from suite.core.recipes import get_recipe, load_recipes, recipe_config


def cmd_recipes(args) -> int:
    if args.name is None:
        for recipe in load_recipes().values():
            checked = "" if recipe.checked else " [unchecked]"
            value = "—" if recipe.published is None else f"{recipe.published:g} {recipe.units}"
            print(f"{recipe.name:28s} {recipe.task:8s} {recipe.model:20s} {value} {recipe.metric}{checked}  "
                  f"({recipe.source})")
        return 0
    from suite.core.build import resolve

    recipe = get_recipe(args.name)
    resolved = resolve(recipe_config(args.name))
    value = "no published number" if recipe.published is None else \
        f"published {recipe.metric} {recipe.published:g} {recipe.units}"
    print(f"{recipe.name}: {recipe.task} / {recipe.model}; {value} ({recipe.source}; "
          f"{'checked' if recipe.checked else 'NOT checked'} against it"
          f"{': ' + recipe.checked_note if recipe.checked_note else ''})")
    print(f"  selection of the published number: {recipe.selection}"
          f"{' (' + recipe.selection_source + ')' if recipe.selection_source else ''}")
    if recipe.code:
        print(f"  code: {recipe.code}")
    print(f"  file: {recipe.file}")
    print("  resolved configuration (recipe keys with their source; the rest are defaults):")
    flat = {k: v for k, v in resolved.config.items() if k not in ("task_params", "model_params")}
    flat.update({f"task.{k}": v for k, v in resolved.config["task_params"].items()})
    flat.update({f"model.{k}": v for k, v in resolved.config["model_params"].items()})
    for key, value in flat.items():
        kind, text = recipe.cites.get(key, ("default", ""))
        note = {"source": f"  <- {text}", "unknown": f"  <- UNKNOWN: {text}", "default": ""}[kind]
        print(f"    {key} = {value!r}{note}")
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("recipes", help="published numbers with the recipes that produced them",
                       description=recipes.__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", help="a recipe to print resolved (default: list them all)")
    p.set_defaults(func=cmd_recipes)
