"""The tuning table of Optuna studies, one per model: the quick and full profiles.

    rnnsuite paper tuning --profile quick           (or: python -m suite.studies.tuning_quick)

The profile (``suite/experiments/tuning.toml``, kind ``studies``) names the task, the
models, the trials and the settings every trial shares; every study's best and untuned
configuration then trains on 3 fresh seeds, and ``hrnn``'s untuned row is its heuristic
Δt. The quick profile (adding T = 20, 4 trials of 150 steps) takes about a minute on two
CPU cores and shows the pipeline, not the claim: the medium profile
(:mod:`suite.studies.tuning_table`) tests that.

Writes ``<out>/table.md``, ``table.csv`` and ``figures/`` (:mod:`suite.tuning.report`'s
table, built from the records alone) and keeps the evidence beside them in ``records/``:
per study ``<study>/study.json``, its Optuna journal ``<study>/study.journal`` and its
evaluation records under ``<study>/heuristic/`` and ``<study>/optuna-trial-<best>/``.
Finished studies and records are skipped on a rerun.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from suite.analysis import evidence, report
from suite.core import paths, records
from suite.core.build import resolve
from suite.core.config import normal
from suite.studies import catalog
from suite.studies.catalog import Studies
from suite.tuning import report as tune_report
from suite.tuning.storage import journal_path
from suite.tuning.study import TuneSpec, study_definition
from suite.tuning.tune import evaluation_runs, tune

OUT = paths.TABLES / "tuning-quick"
TABLE = catalog.table("tuning")
QUICK: Studies = TABLE.profiles["quick"]


def studies(out: Path = OUT, data_dir: str | None = None, quiet: bool = True,
            profile: Studies = QUICK) -> list[TuneSpec]:
    root = Path(out) / "records"
    # one journal per study, beside its records: committed with them, readable by Optuna again
    return [TuneSpec(task=profile.task, model=m, trials=profile.trials, sets=list(profile.sets), out=str(root),
                     storage=f"journal:{journal_path(root, f'{profile.task}-{m}')}", data_dir=data_dir, quiet=quiet)
            for m in profile.models]


def run_table(out: Path = OUT, data_dir: str | None = None, quiet: bool = True, profile_name: str = "quick") -> int:
    profile = TABLE.profiles[profile_name]
    for spec in studies(out, data_dir, quiet, profile):
        tune(spec)
    write_table(out, profile_name=profile_name)
    return 0


def write_table(out: Path = OUT, *, figures: bool = True, profile_name: str = "quick") -> Path:
    """``table.md`` / ``table.csv`` (and the figure) from ``<out>/records`` alone."""
    root = Path(out) / "records"
    summary = tune_report.summarize(tune_report.load_rows(root))
    table = tune_report.format_table(summary)
    recs = [rec for _, rec in records.iter_records(root)]
    trials = sum(json.loads(f.read_text())["summary"]["trial_compute_seconds"] for f in root.glob("*/study.json"))
    note = TABLE.profiles[profile_name].note
    header = (f"# {TABLE.title} ({profile_name} profile)\n\n"
              + evidence.header_line(recs, extra=f"besides, {trials:.0f} s (wall clock) of Optuna trials, "
                                                  "which write no records (the studies' `trial_compute_seconds`)")
              + "\n\n" + (f"{note}\n\n" if note else ""))
    records.write_text_atomic(out / "table.md", header + report.render(table, "md") + "\n")
    records.write_text_atomic(out / "table.csv", report.render(table, "csv") + "\n")
    if figures:
        tune_report.figures(summary, out / "figures")
    return out / "table.md"


def today_cells(out: Path = OUT) -> tuple[dict[str, tuple[dict, str]], list[str]]:
    """Today's resolved configuration of every evaluation run of every study (named
    ``<study> <arm> seed <s>``), and the studies whose committed definition is not today's
    (their search space, fixed settings or pruner changed) or that are missing."""
    cells, changed = {}, []
    for spec in studies(out):
        file = Path(spec.out) / spec.study_name / "study.json"
        if not file.is_file():
            changed.append(f"{spec.study_name}: no study.json")
            continue
        summary = json.loads(file.read_text())
        definition = study_definition(spec)
        for key in ("fixed", "search_space", "pruner"):
            if normal(summary[key]) != definition[key]:
                changed.append(f"{spec.study_name}: its {key} is not today's: "
                               + evidence.config_difference(normal(summary[key]), definition[key]))
        for arm, _, cfg in evaluation_runs(spec, definition, summary):
            resolved = resolve(cfg)
            cells[f"{spec.study_name} {arm} seed {cfg.seed}"] = (resolved.config, resolved.hash)
    return cells, changed


def found_cells(out: Path = OUT) -> list[tuple[str, dict]]:
    """(cell name, record) of every committed evaluation record."""
    found = []
    for spec in studies(out):
        study_dir = Path(spec.out) / spec.study_name
        for arm, folder in (("heuristic", study_dir / "heuristic"), *(("optuna", d) for d in
                                                                     study_dir.glob("optuna-trial-*"))):
            for _, rec in records.iter_records(folder):
                found.append((f"{spec.study_name} {arm} seed {rec['seed']}", rec))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    return run_table(Path(args.out), args.data_dir)


if __name__ == "__main__":
    raise SystemExit(main())
