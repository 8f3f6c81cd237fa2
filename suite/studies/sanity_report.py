"""The sanity table written from its records: the rows of :mod:`suite.studies.sanity`
rendered with the rule in the header, a line per anchor (what its log is, what we found
out), the escape-time section of an anchor that has that study, and the figures.

    python -c "from suite.studies import sanity_report; sanity_report.write_all()"

rebuilds ``results/tables/sanity-full/`` from the committed records (``rnnsuite paper
sanity`` does so after its runs).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from suite.analysis import plotting, stats
from suite.core.recipes import get_recipe
from suite.core.records import write_text_atomic
from suite.core.registry import TASKS
from suite.studies.sanity import (
    ANCHORS,
    FLOOR,
    OUT,
    REFERENCE,
    RUNS,
    build_rows,
    escape_rows,
    escape_runs,
    load_log,
)

HEADER = """# Sanity table: published recipes for their first epochs against the authors' logs

Each row: one point the authors logged for the run behind a published number, their
value, ours (mean ± std over our seeds, each seed listed), the difference and the
verdict. Every anchor is a single run of the authors' (two of them called their best;
each anchor's line below says what is known of its seed). So a row asks only whether
their one run could be a draw from the spread of our seeds: no run of ours replays
theirs (other hardware, other data order), and a best-of-several run sits high in that spread, so ours
trailing it within the tolerance is expected and a failure where ours trails may be that
selection as much as a fault. Verdict: pass when |ours − theirs| ≤ 2·σ·√(1 + 1/n), with σ the
seed-to-seed standard deviation we measured at that point (3 seeds of the anchor
itself, or of `{reference}` at the same epoch for the accuracy anchors run with fewer
seeds; IndRNN's evaluations, every 1700 iterations, borrow it at the nearest epoch) and n
our number of seeds; never below {floor:g} pp for accuracy. For the adding anchor the
authors tested on 1000 fresh random sequences at each point and we on a fixed set of
1000: each side's sampling error, √2·MSE/√1000, joins σ in quadrature. A row with no
measured σ says so instead of passing, and a point that a run halfway between chance
({chance}) and the log would pass as well is
**uninformative**, not a pass: the check cannot tell a faithful run from a broken one
there. Runs: the recipe as published except its budget (cut to the logged points);
`rnnsuite recipes NAME` prints each recipe with its sources,
`rnnsuite paper sanity --anchors NAME` reruns a row's cells.

"""


def chance_phrase() -> str:
    """The anchors' chance scores (their ``chance`` data) by task, e.g. "accuracy 10 % on smnist"."""
    tasks: dict[tuple[str, float], list[str]] = {}
    for name, anchor in ANCHORS.items():
        task = get_recipe(name).task
        found = tasks.setdefault((TASKS.get(task).metric, anchor.chance), [])
        if task not in found:
            found.append(task)
    return ", ".join(f"{m} {chance:g}{' %' if m == 'accuracy' else ''} on {' and '.join(names)}"
                     for (m, chance), names in tasks.items())


def render(frame: pd.DataFrame) -> pd.DataFrame:
    def num(v, fmt):
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    return pd.DataFrame({
        "anchor": frame.anchor, "point": frame.point_kind + " " + frame.point.map(lambda p: f"{p:g}"),
        "metric": frame.metric, "theirs": frame.theirs.map(lambda v: f"{v:g}"),
        "ours (mean ± std)": [f"{m:.2f} ± {num(s, '.2f')}" if n else "—"
                              for m, s, n in zip(frame.ours_mean, frame.ours_std, frame.n)],
        "seeds": frame.ours_seeds.map(lambda v: ", ".join(f"{x:.2f}" for x in v) or "—"),
        "difference": frame.difference.map(lambda v: num(v, "+.2f")),
        "σ": frame.sigma.map(lambda v: num(v, ".2f")),
        "tolerance": frame.tolerance.map(lambda v: num(v, ".2f")),
        "verdict": frame.verdict,
    })


def notes(frame: pd.DataFrame) -> str:
    """Per anchor: how many of its points pass, and what we found out where some fail."""
    lines = ["", "## Per anchor", ""]
    for name, g in frame.groupby("anchor", sort=False):
        run = g[g.n > 0]
        passed = int((run.verdict == "pass").sum())
        blind = int(run.verdict.str.startswith("uninformative").sum())
        line = f"- **{name}** (authors' log: {ANCHORS[name].log}): {passed} of {len(run)} points run pass"
        if blind:
            line += f", {blind} uninformative (a run halfway from chance to the log would pass them too)"
        if ANCHORS[name].note:
            line += f". {ANCHORS[name].note[0].upper()}{ANCHORS[name].note[1:]}."
        lines.append(line)
    return "\n".join(lines) + "\n"


def figures(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    plt = plotting.pyplot()

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, g in frame.groupby("anchor"):
        fig, axis = plt.subplots(figsize=(6, 4))
        axis.plot(g.point, g.theirs, "k-o", label="authors' log (one run)")
        n = max(g.n.max(), 0)
        for i in range(n):
            ours = [(p, v[i]) for p, v in zip(g.point, g.ours_seeds) if len(v) > i]
            axis.plot([p for p, _ in ours], [v for _, v in ours], "--s", alpha=0.8, label=f"ours, seed {i + 1}")
        axis.set_xlabel(g.point_kind.iloc[0])
        axis.set_ylabel(f"validation {g.metric.iloc[0]}")
        axis.set_title(f"{name}: first {len(g)} logged points")
        axis.legend()
        fig.tight_layout()
        written.append(plotting.save(fig, out_dir / f"{name}.png"))
        plt.close(fig)
    return written


def escape_figure(name: str, runs: list, out_dir: Path) -> Path:
    """Every run of the escape study (``runs`` from :func:`escape_runs`) against the authors'
    whole log, on a log scale."""
    plt = plotting.pyplot()
    study, log = ANCHORS[name].escape, load_log(name)
    log = log[log.point <= study.steps]
    fig, axis = plt.subplots(figsize=(7, 4))
    axis.plot(log.point, log.value, "k-", label="authors' log (one run)")
    for _, cfg, val in runs:
        if val is not None:
            axis.plot(val.point, val.metric, "--", alpha=0.8, label=f"ours, seed {cfg.seed}")
    axis.axhline(study.below, color=plotting.BASELINE, linestyle=":", label=f"escape: below {study.below:g}")
    axis.set(xlim=(0, study.steps), yscale="log", xlabel="iteration", ylabel=f"validation {log.metric.iloc[0]}",
             title=f"{name}: leaving the plateau")
    plotting.legend_outside(fig, *axis.get_legend_handles_labels())
    written = plotting.save(fig, out_dir / f"{name}-escape.png")
    plt.close(fig)
    return written


def write_table(names: list[str], runs_root: Path, out: Path) -> Path:
    frame = build_rows(names, runs_root)
    table = render(frame)
    text = HEADER.format(reference=REFERENCE, floor=FLOOR, chance=chance_phrase())
    text += table.to_markdown(index=False) + "\n" + notes(frame)
    escapes = {n: escape_runs(n, runs_root) for n in names if ANCHORS[n].escape is not None}
    text += "".join(escape_section(n, runs) for n, runs in escapes.items())
    write_text_atomic(out / "table.md", text)
    flat = frame.assign(ours_seeds=frame.ours_seeds.map(lambda v: ";".join(f"{x!r}" for x in v)),
                        note=frame.anchor.map(lambda a: ANCHORS[a].note))
    write_text_atomic(out / "table.csv", flat.to_csv(index=False))
    drawn = [escape_figure(n, runs, out / "figures") for n, runs in escapes.items()]
    for path in figures(frame, out / "figures") + drawn:
        print(f"figure: {path}")
    print(text)
    return out / "table.md"


def escape_section(name: str, runs: list) -> str:
    """The escape study's paragraph from ``runs`` (:func:`escape_runs`)."""
    study = ANCHORS[name].escape
    log = load_log(name)
    theirs = stats.first_below(log.point, log.value, study.below)
    ours = escape_rows(name, runs)
    seeds = ", ".join(f"seed {r.seed} " + ("not run" if r.escaped is None else f"{r.point:g}" if r.escaped
                                           else f"> {r.point:g} (censored)") for r in ours.itertuples())
    done = ours[ours.escaped.notna()]
    verdict = stats.one_run_among(theirs, list(zip(done.point, done.escaped.astype(bool))))
    missing = f" ({len(ours) - len(done)} of {len(ours)} runs not run yet)" if len(done) < len(ours) else ""
    anchor_steps = ours.steps[ours.source == "anchor run"].iloc[0]
    return (f"\n## {name}: when the runs leave the plateau\n\n"
            f"The first validation point below {study.below:g} (the log's iterations). The authors' log: "
            f"{theirs:g} ({ANCHORS[name].log}). Ours, the anchor's runs ({anchor_steps} steps) "
            f"and the escape runs ({study.steps} steps): {seeds}. Verdict{missing}: {verdict}.\n")


def write_all() -> Path:
    """Every anchor's rows from the committed records, into the committed table."""
    return write_table(list(ANCHORS), RUNS, OUT)
