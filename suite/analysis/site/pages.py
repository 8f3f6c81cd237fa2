"""The site's run pages and copied figures (:mod:`suite.analysis.site`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from suite.analysis import figures, plotting
from suite.analysis.site.sources import Run, Table, shown
from suite.core import records
from suite.core.config import flatten
from suite.core.recipes import get_recipe
from suite.core.registry import SuiteError


def copy_figures(table: Table, out: Path) -> list[tuple[str, str]]:
    """The table's PNGs copied under ``out/figures/<slug>/``: (path from the site's root, caption)."""
    shown = []
    base = table.source.parent
    for png in table.figures:
        rel = png.relative_to(base) if png.is_relative_to(base) else Path(png.name)
        dest = out / "figures" / table.slug / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, dest)
        shown.append((dest.relative_to(out).as_posix(), rel.as_posix()))
    return shown


def _text(value) -> str:
    return "none" if value is None else str(value)


def _recipe(name: str | None):
    """The recipe's facts for the page, or None (no recipe, or none of that name here)."""
    if not name:
        return None, {}

    try:
        recipe = get_recipe(name)
    except SuiteError:
        return {"name": name, "published": "—", "source": "not among this checkout's recipes", "code": "",
                "checked": "—", "file": "—"}, {}
    published = "none" if recipe.published is None else f"{recipe.published:g} {recipe.units} {recipe.metric}"
    facts = {"name": recipe.name, "published": published, "source": recipe.source, "code": recipe.code,
             "checked": "yes" if recipe.checked else "no", "file": recipe.file}
    return facts, recipe.cites


def config_rows(rec: dict, cites: dict) -> list[list[str]]:
    """Every configuration key with its value, its origin (unlisted keys are defaults) and,
    for a recipe's value, where the recipe read it."""
    origins = (rec.get("provenance") or {}).get("origins") or {}
    rows = []
    for key, value in flatten(rec["config"]).items():
        kind, text = cites.get(key, ("", ""))
        origin = origins.get(key, "default")
        note = f"UNKNOWN: {text}" if kind == "unknown" else text if "recipe" in origin else ""
        rows.append([key, _text(value), origin, note])
    return rows


def facts(rec: dict) -> list[tuple[str, str]]:
    info, metrics, grads, timing = rec["task_info"], rec["metrics"], rec["gradients"], rec["timing"]
    baseline = info.get("trivial_baseline") or {}
    return [
        ("task", f"{rec['task']} {info['variant']} (version {info['version']})"),
        ("model", f"{rec['model']} ({rec['model_info'].get('n_params', '?')} parameters)"),
        ("seed", str(rec["seed"])), ("status", rec["status"]),
        (f"test {info['metric']}", _text(metrics.get("test"))),
        (f"best validation {info['metric']}", _text(metrics.get("val_best"))),
        ("trivial baseline", f"{_text(baseline.get('value'))} ({baseline.get('rule', '—')})"),
        ("gradient ratio at init → end", f"{_text(grads.get('ratio_init'))} → {_text(grads.get('ratio_end'))}"),
        ("median step", f"{_text(timing.get('median_step_seconds'))} s"),
        ("training time", f"{_text(timing.get('train_seconds'))} s"),
    ]


def _figure(run: Run, dest: Path) -> None:
    """The run's figure, drawn unless one newer than its record is there (a rebuild redraws
    only changed runs)."""
    record_file = run.path / records.RECORD
    if dest.exists() and dest.stat().st_mtime >= record_file.stat().st_mtime:
        return
    plt = plotting.pyplot()
    fig = figures.draw_run(run.record, pd.read_csv(run.path / records.CURVES))
    try:
        plotting.save(fig, dest, dpi=70)
    finally:
        plt.close(fig)


def write_run(env, run: Run, out: Path) -> None:
    rec = run.record
    _figure(run, out / "runs" / f"{run.slug}.png")
    recipe, cites = _recipe((rec.get("provenance") or {}).get("recipe"))
    env.get_template("run.html").stream(
        title=f"{rec['task']} / {rec['model']} seed {rec['seed']}", root="../", crumbs=[],
        source=shown(run.path), config_hash=rec["config_hash"], facts=facts(rec), figure=f"runs/{run.slug}.png",
        metric=rec["task_info"]["metric"], recipe=recipe, config_rows=config_rows(rec, cites),
        environment_rows=[[k, _text(v)] for k, v in flatten(rec["environment"]).items()],
    ).dump(str(out / "runs" / f"{run.slug}.html"))
