"""Where the suite reads and writes: the one rule for every path.

- What the project ships and commits, the published numbers with their recipes and
  anchors (``results/reference/``) and the committed tables with their records
  (``results/tables/``), is found relative to the checkout, so any working directory
  reads and rebuilds the same evidence.
- What a user's command writes goes under ``results/`` of the working directory, one
  folder per kind (``RUNS``, ``TUNING``, ``GRADIENTS``, ``EXPORT``), unless ``--out`` names
  another.
"""

from __future__ import annotations

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]  # suite/core/paths.py -> the repository root
REFERENCE = CHECKOUT / "results" / "reference"  # published numbers: recipes/ and anchors/
RECIPES = REFERENCE / "recipes"
ANCHORS = REFERENCE / "anchors"
TABLES = CHECKOUT / "results" / "tables"  # committed tables, each beside its records
TUNED_FILES = CHECKOUT / "baselines" / "tuned"  # tuned files published by `tune --publish`
PRESETS = CHECKOUT / "suite" / "presets"  # sweep files shipped with the suite (`--config demo`)
EXPERIMENTS = CHECKOUT / "suite" / "experiments"  # every table as data (suite/studies/catalog.py)

# a user's own output, relative to the working directory
RUNS = "results/runs"  # `run`, `sweep`, and `report` by default
TABLES_OUT = "results/tables"  # `paper`: each table in <table>-<profile>/ with its records/ beside it
TUNING = "results/tuning"  # `tune`, and `report --tuning` by default
GRADIENTS = "results/gradients"  # `gradients`
EXPORT = "results/export"  # `export`
SITE = "results/site"  # `site`: the static website of the results
