"""Full paper tables from recipes: one row per published number, run with its own recipe.

A full table runs every recipe of its tasks (``results/reference/recipes``) with three
seeds, and the suite's own Hamiltonian models at the recipes stated for them there
(no published number). Each row shows the published value, ours (test, mean ± std),
the difference, how the published number was selected and how ours was, and what of
the recipe is unknown (every key a recipe marks ``unknown``, with the value chosen):
a difference means something only beside those.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from suite.analysis import stats
from suite.core import records
from suite.core.recipes import get_recipe, load_recipes, overridden, recipe_config


def recipe_cells(profile, extra_sets: list[str], models: list[str] | None):
    """Every recipe of the profile (:class:`suite.studies.catalog.Recipes`) with every seed."""
    names = [n for n in profile.names() if models is None or get_recipe(n).model in models]
    return [recipe_config(n, extra_sets, seed=seed) for n in names for seed in profile.seeds]


def _scaled(value: float | None, metric: str) -> float:
    if value is None:
        return math.nan
    return value * 100 if metric == "accuracy" else value


def recipe_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per recipe with records among ``runs`` (already filtered to the table's cells)."""
    by_recipe: dict[str, list[dict]] = {}
    for path in runs.path:
        rec = records.load_record(Path(path))
        name = (rec.get("provenance") or {}).get("recipe")
        if name:
            by_recipe.setdefault(name, []).append(rec)
    rows = []
    for name, recs in sorted(by_recipe.items()):
        recipe = get_recipe(name)
        metric = recs[0]["task_info"]["metric"]
        ok = [r for r in recs if records.outcome(r["status"], r["metrics"]) == "ok"]  # the one rule
        tests = [_scaled(r["metrics"]["test"], metric) for r in ok]
        mean, std = stats.mean_std(tests)
        comparable = recipe.published is not None and recipe.metric == metric
        changed = sorted({k for r in recs for k in overridden(r["provenance"])})
        rows.append({
            "recipe": name, "task": recipe.task, "model": recipe.model, "variant": recs[0]["task_info"]["variant"],
            "units": recipe.hidden_size, "metric": metric,
            "published": "—" if recipe.published is None else f"{recipe.published:g} {recipe.units}".strip(),
            "ours": stats.plus_minus(mean, std),
            "seeds": len(tests), "diverged": len(recs) - len(ok),
            "difference": f"{mean - recipe.published:+.2f}" if comparable and tests else "—",
            "published selection": recipe.selection,
            "our selection": recs[0]["config"]["selection"],
            "checked": "yes" if recipe.checked else "NO",
            "unknown in the recipe": ", ".join(recipe.unknowns) or "—",
            "changed from the recipe": ", ".join(changed) or "—",
            "source": recipe.source,
        })
    return pd.DataFrame(rows)


def reference_for(task: str, model: str, hidden_size: int | None):
    """The published accuracy of (task, model) at this width, and the widths published."""
    candidates = [r for r in load_recipes().values()
                  if r.task == task and r.model == model and r.metric == "accuracy" and r.published is not None]
    exact = [r for r in candidates if r.hidden_size == hidden_size]
    return (exact[0] if exact else None), sorted({r.hidden_size for r in candidates if r.hidden_size})
