"""``rnnsuite recipes``: the published recipes with their sources (:mod:`suite.core.recipes`)."""

from __future__ import annotations

import textwrap

WIDTH = 100
COLUMNS = ("recipe", "model", "published", "metric", "checked")  # the task is in the recipe's name


def published(recipe) -> str:
    """The number with its units, the units left out where the metric's name says them
    (``1901`` for iterations_to_mse_below_0.01, ``99.45 %`` for accuracy)."""
    if recipe.published is None:
        return "—"
    units = "" if not recipe.units or recipe.metric.startswith(recipe.units) else f" {recipe.units}"
    return f"{recipe.published:g}{units}"


def table(all_recipes) -> list[str]:
    """One row per recipe under a header, its source wrapped beneath it: WIDTH columns at most."""
    rows = [(r.name, r.model, published(r), r.metric, "yes" if r.checked else "no") for r in all_recipes]
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]
    line = "  ".join(f"{{:{w}s}}" for w in widths)
    lines = [line.format(*COLUMNS).rstrip(), line.format(*("-" * w for w in widths))]
    for recipe, row in zip(all_recipes, rows, strict=True):
        lines.append(line.format(*row).rstrip())
        lines += textwrap.wrap(f"source: {recipe.source}", WIDTH, initial_indent="    ", subsequent_indent="      ")
    return lines


def cmd_recipes(args) -> int:
    from suite.core.recipes import get_recipe, load_recipes, recipe_config

    if args.name is None:
        print("\n".join(table(list(load_recipes().values()))))
        print("(checked: the number was compared with its source; `rnnsuite recipes NAME` resolves one recipe)")
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
    from suite.core import recipes  # its description: built only for `recipes`

    p = sub.add_parser("recipes", help="published numbers with the recipes that produced them",
                       description=recipes.__doc__.split("\n\n")[0])
    p.add_argument("name", nargs="?", help="a recipe to print resolved (default: list them all)")
    p.set_defaults(func=cmd_recipes)
