"""The medium tuning table from its records alone: rows, verdicts, the heuristic's regret.

Each row is one configuration of :mod:`suite.studies.tuning_table` (a model and how its
hyperparameters were chosen) over the eval seeds: test mean ± std, seeds that reached the
cell's target, what choosing the hyperparameters cost (Optuna's trial compute; the
heuristic's probe) and what one run costs, both in CPU-seconds as measured. A record is
used only if its configuration hash is the one the profile asks for now, so a record of an
older setting never mixes in.

Verdict of a heuristic row against a baseline row (each tuned and each recipe row): with
d the difference of the means (positive when the heuristic is better, in the task's
direction) and se = √(s_h²/n_h + s_b²/n_b) the standard error of that difference from the
seed spreads, the heuristic **ties** when |d| ≤ 2·se, else it **beats** or **loses to**
the baseline. Two seeds or fewer on either side: no verdict.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pandas as pd

from suite.analysis import plotting, stats
from suite.core import records
from suite.core.build import resolve
from suite.core.records import check_writable, write_text_atomic
from suite.core.registry import MODELS
from suite.studies.tuning_table import (
    CELLS,
    OUT,
    PROFILE,
    Arm,
    arms,
    chosen_cells,
    finished_summary,
    is_lr_only,
    plain_arms,
    run_cell,
    studies,
)
from suite.tuning.report import fmt_value, record_value
from suite.tuning.study import study_definition


def _record(arm: Arm, cfg) -> dict | None:
    path = records.run_dir(arm.out, cfg.task, cfg.model, cfg.seed, resolve(cfg).hash, nested=False)
    if not records.is_complete(path):
        return None
    try:
        return records.load_record(path)
    except records.RecordError as exc:
        from suite.analysis.report import warn

        warn(f"skipped {path}: {exc}")
        return None


def _values(rec: dict, arm: Arm) -> str:
    keys = [k for k in MODELS.get(arm.model).search_space if k != "clip" or rec["config"]["clip"] is not None]
    return ", ".join(f"{k}={fmt_value(record_value(rec, k))}" for k in keys)


def arm_row(name: str, arm: Arm) -> dict:
    recs = [r for r in (_record(arm, cfg) for cfg in arm.configs) if r is not None]
    ok = [r["metrics"]["test"] for r in recs if records.outcome(r["status"], r["metrics"]) == "ok"]
    cell = CELLS[name]
    higher = recs[0]["task_info"]["higher_is_better"] if recs else False
    reached = sum(stats.reaches(v, cell.target, higher) for v in ok)
    mean, std = stats.mean_std(ok)
    probe = [((r["model_info"].get("extra") or {}).get("step_size") or {}).get("seconds") for r in recs]
    choose = arm.tuning_seconds + (statistics.median(p for p in probe if p) if any(probe) else 0.0)
    dts = [r["model_info"]["resolved_params"].get("dt") for r in recs]
    return {
        "cell": name, "model": arm.model, "role": arm.role, "chosen": arm.chosen,
        "values": _values(recs[0], arm) if recs else "—",
        "metric": recs[0]["task_info"]["metric"] if recs else "", "higher_is_better": higher,
        "mean": mean, "std": std,
        "n": len(ok), "runs": len(recs), "planned": len(arm.configs), "diverged": len(recs) - len(ok),
        "reached": reached, "choose_s": choose,
        "run_s": statistics.median(r["timing"]["total_seconds"] for r in recs) if recs else math.nan,
        "total_s": sum(r["timing"]["total_seconds"] for r in recs),
        "cpu_ratios": [t["cpu_seconds"] / t["total_seconds"] for t in (r["timing"] for r in recs)
                       if t.get("cpu_seconds") and t.get("total_seconds")],
        "dt": arm.dt if arm.dt is not None else (dts[0] if dts and dts[0] is not None else math.nan),
        "params": recs[0]["model_info"]["n_params"] if recs else None,
    }


def compare(h: pd.Series, b: pd.Series) -> str | None:
    """The heuristic row ``h`` against the baseline row ``b``: beats, ties, loses to, or None."""
    return stats.verdict(h["mean"], h["std"], h.n, b["mean"], b["std"], b.n, bool(h.higher_is_better))


def cell_rows(name: str, root: Path = OUT) -> pd.DataFrame:
    rows = [arm_row(name, arm) for arm in arms(name, root)]
    for spec in studies(name, root):  # a study not finished yet still shows, as a row not run
        if finished_summary(spec) is None:
            lr_only = is_lr_only(spec)
            rows.append({"cell": name, "model": spec.model, "role": "heuristic" if lr_only else "tuned",
                         "chosen": (f"heuristic Δt, Optuna lr ({spec.trials} trials)" if lr_only
                                    else f"Optuna ({spec.trials} trials)"),
                         "n": 0, "runs": 0, "planned": PROFILE.eval_seeds, "mean": math.nan, "std": math.nan})
    frame = pd.DataFrame(rows)
    baselines = frame[frame.role.isin(["tuned", "recipe"])]
    verdicts = []
    for _, h in frame.iterrows():
        if h.role != "heuristic":
            verdicts.append("")
            continue
        by = {}
        for _, b in baselines.iterrows():
            v = compare(h, b)
            by.setdefault(v or "no verdict yet", []).append(b.model)
        verdicts.append("; ".join(f"{v} {', '.join(ms)}" for v, ms in by.items()))
    return frame.assign(verdict=verdicts)


def heuristic_row(frame: pd.DataFrame) -> pd.Series | None:
    """The row the claim is about: hrnn at its heuristic Δt, everything else at the defaults
    (None until it has runs)."""
    rows = frame[(frame.role == "heuristic") & (frame.model == "hrnn") & (frame.chosen == "heuristic")]
    return rows.iloc[0] if not rows.empty and rows.iloc[0].n else None


def sweep_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The Δt sweep's rows that have a scored run (a grid point whose every run diverged has none)."""
    return frame[(frame.role == "sweep") & (frame.n > 0)]


def sweep_tried(frame: pd.DataFrame) -> pd.DataFrame:
    """The Δt sweep's rows that ran, scored or diverged: their seconds were spent."""
    return frame[(frame.role == "sweep") & (frame.runs > 0)]


def sweep_diverged(frame: pd.DataFrame) -> pd.DataFrame:
    """The Δt sweep's rows that ran but diverged on every seed: run, and failed, not missing."""
    tried = sweep_tried(frame)
    return tried[tried.n == 0]


def sweep_best(sweep: pd.DataFrame, higher_is_better: bool) -> pd.Series | None:
    return sweep.iloc[stats.best_index(list(sweep["mean"]), higher_is_better)] if not sweep.empty else None


def regret(frame: pd.DataFrame) -> str:
    """The hrnn heuristic's Δt against the sweep's best fixed Δt, in words."""
    sweep, h = sweep_rows(frame), heuristic_row(frame)
    if sweep.empty or h is None:
        return "Regret of the heuristic: not measured yet (the Δt sweep or the heuristic runs are missing)."
    best = sweep_best(sweep, bool(h.higher_is_better))
    gap = stats.gain(best["mean"], h["mean"], bool(h.higher_is_better))
    tried, failed = sweep_tried(frame), sweep_diverged(frame)
    ran, grid_s = len(tried), tried.run_s.sum()
    missing = len(PROFILE.dt_grid) - ran
    return (f"Regret of the heuristic: its Δt = {h['dt']:.3g} gives {h['mean']:.4g} ± {h['std']:.2g}; the best "
            f"fixed Δt of the sweep ({ran} of {len(PROFILE.dt_grid)} grid points run"
            + "".join(f"; Δt = {dt:g} diverged on all {runs} seeds" for dt, runs in zip(failed.dt, failed.runs))
            + (f", {missing} missing" if missing else "")
            + f") is Δt = {best['dt']:g} with {best['mean']:.4g} ± {best['std']:.2g}: the heuristic "
            f"{compare(h, best) or 'is not comparable with'} the best grid point (a gap of {gap:.3g} in "
            f"{h.metric}). Finding that point by grid search costs {ran} runs of one seed, about "
            f"{grid_s:.0f} CPU-s at the measured median run time; the heuristic cost {h.choose_s:.2f} s.")


def _num(v, fmt):
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def render(frame: pd.DataFrame) -> pd.DataFrame:
    shown = frame[frame.role != "sweep"]
    return pd.DataFrame({
        "model": shown.model, "hyperparameters by": shown.chosen, "values": shown["values"].fillna("—"),
        "choosing them (CPU-s)": shown.choose_s.map(lambda v: _num(v, ".3g")),
        "test (mean ± std)": [f"{m:.4g} ± {_num(s, '.2g')}" if n else "not run yet"
                              for m, s, n in zip(shown["mean"], shown["std"], shown.n)],
        "seeds": [f"{n}/{p}" + (f" ({d} diverged)" if d else "") for n, p, d in
                  zip(shown.n, shown.planned, shown.diverged.fillna(0).astype(int))],
        "reached target": [f"{int(r)}/{n}" if n else "—" for r, n in zip(shown.reached.fillna(0), shown.n)],
        "one run (CPU-s)": shown.run_s.map(lambda v: _num(v, ".0f")),
        "verdict (heuristic against each tuned or recipe baseline)": shown.verdict,
    })


HEADER = """# Medium tuning table: the heuristic step size against Optuna-tuned baselines

Does the Hamiltonian RNN with its step-size heuristic beat tuned recurrent networks
without a hyperparameter search? Per cell, every configuration is trained on the same
fresh seeds 1–{last} (Optuna's trials train on seed 0 and see validation only) and
scored on the test set. **heuristic**: the step size from the heuristic (docs/heuristic.md),
everything else at the suite's defaults; "heuristic Δt, Optuna lr": the same with only
the learning rate tuned. **Optuna (N trials)**: the model's declared search space
(docs/tuning.md), N trials of the cell's budget each, TPE sampler (its first 10 trials
random), {pruner} pruner; "defaults" beside it is the same model untuned. **authors'
recipe**: the authors' settings for the task, untuned, at the cell's length, width and
budget. "choosing them": Optuna's trial compute, or the heuristic's probe. CPU-s and
CPU-hours here are seconds of one-thread processes on this machine (2-core CPU, at most
two runs at once), timed as wall time: each record's `timing.total_seconds` and each
trial's `compute_seconds`. {cpu_wall} Verdict: the heuristic **ties** a baseline
when the means differ by at most {tie:g} standard errors of their difference
(√(s₁²/n₁ + s₂²/n₂), from the seed spreads), else it **beats** or **loses to** it.
Command: `rnnsuite paper tuning --profile medium` (records committed beside this table;
finished runs and studies are skipped on a rerun). Measured cost so far: {cost}.

"""


def _cost_s(frame: pd.DataFrame) -> float:
    """CPU-seconds the records of a cell measured: its runs and its studies' trials."""
    return frame.total_s.fillna(0).sum() + frame.choose_s.fillna(0).sum()


def cell_section(name: str, frame: pd.DataFrame) -> str:
    cell = CELLS[name]
    metric = next((m for m in frame.metric.dropna() if m), "")
    head = (f"## {name}: {cell.task}, " + ", ".join(cell.sets) + f"\n\nTarget: test {metric} "
            f"{'≥' if frame.higher_is_better.any() else '≤'} {cell.target:g}. Budget: {cell.budget_note}. "
            f"Measured cost of this cell so far: {_cost_s(frame) / 3600:.2f} CPU-hours.\n\n")
    return head + render(frame).to_markdown(index=False) + "\n\n" + regret(frame) + "\n\n" \
        + f"![test {metric} against Δt](figures/regret_{name}.png)\n"


def regret_figure(name: str, frame: pd.DataFrame, out_dir: Path) -> Path | None:
    """Test metric against hrnn's fixed Δt (mean ± std over seeds), the heuristic's pick
    marked, each tuned and recipe baseline as a horizontal band (mean ± std)."""
    plt = plotting.pyplot()

    sweep = sweep_rows(frame).sort_values("dt")
    if sweep.empty:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.errorbar(sweep["dt"], sweep["mean"], yerr=sweep["std"].fillna(0), fmt="-o", color="k", capsize=3,
                label="hrnn, fixed Δt (default lr)")
    for i, (_, b) in enumerate(frame[frame.role.isin(["tuned", "recipe"]) & (frame.n > 0)].iterrows()):
        color = f"C{i + 2}"
        std = 0.0 if math.isnan(b["std"]) else b["std"]
        ax.axhspan(b["mean"] - std, b["mean"] + std, color=color, alpha=0.15)
        ax.axhline(b["mean"], color=color, ls="-" if b.role == "tuned" else "--", lw=1,
                   label=f"{b.model}: {b.chosen}")
    for marker, color, (_, h) in zip("*P", ("C0", "C1"), frame[(frame.model == "hrnn") & (frame.role == "heuristic")
                                                            & (frame.n > 0)].iterrows()):
        ax.errorbar([h["dt"]], [h["mean"]], yerr=[0 if math.isnan(h["std"]) else h["std"]], fmt=marker, color=color,
                    markersize=14, capsize=3, label=f"hrnn: {h.chosen} (Δt = {h['dt']:.3g})")
    higher = bool(sweep.higher_is_better.iloc[0])
    for _, row in sweep[sweep.diverged > 0].iterrows():  # a mean over the seeds that survived says so
        ax.annotate(f"{row.diverged} of {row.runs} diverged", (row["dt"], row["mean"]), textcoords="offset points",
                    xytext=(6, 4), color="red", fontsize=7)
    for dt in sweep_diverged(frame).dt:  # drawn at the axis' worst edge, so a failed Δt stays on the plot
        ax.annotate("diverged", (dt, 0.0 if higher else 1.0), xycoords=("data", "axes fraction"),
                    ha="center", va="bottom" if higher else "top", color="red", fontsize=8)
        ax.axvline(dt, color="red", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("linear" if higher else "log")  # accuracy is bounded; errors span decades
    metric = sweep.metric.iloc[0]
    ax.set_xlabel("Δt")
    ax.set_ylabel(f"test {metric} (mean ± std over seeds)")
    ax.set_title(f"{name}: the heuristic's Δt against a sweep and tuned baselines")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = plotting.save(fig, out_dir / f"regret_{name}.png")
    plt.close(fig)
    return path


def row_label(row: pd.Series) -> str:
    """A row in a few words: "tuned gru", "untuned lstm", "lem, authors' recipe", ..."""
    if row.role == "heuristic":
        return f"{row.model}, heuristic" + ("" if row.chosen == "heuristic" else " Δt and tuned lr")
    return {"tuned": f"tuned {row.model}", "defaults": f"untuned {row.model}",
            "recipe": f"{row.model}, authors' recipe"}.get(row.role, f"{row.model}, {row.chosen}")


def _cpu_s(seconds: float) -> str:
    return f"{seconds:.0f}" if seconds >= 10 or seconds == 0 else f"{seconds:.2g}"


def across_cells(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The answer per cell: where the heuristic hrnn ranks by mean among the rows (the Δt
    sweep aside), every row ahead of it with what choosing its hyperparameters cost and
    whether the gap exceeds the tie rule, and how its Δt fares against the sweep's best."""
    rows = []
    gap = {"loses to": f"beyond {stats.TIE_SE:g} SE", "ties": "a tie"}
    for name, frame in frames.items():
        h = heuristic_row(frame)
        if h is None:
            continue
        higher = bool(h.higher_is_better)
        run = frame[(frame.role != "sweep") & (frame.n > 0)]
        ahead = run[[stats.gain(m, h["mean"], higher) > 0 for m in run["mean"]]]
        ahead = ahead.sort_values("mean", ascending=not higher, kind="stable")
        best = sweep_best(sweep_rows(frame), higher)
        rows.append({
            "cell": name,
            "heuristic hrnn (test mean ± std)": f"{h['mean']:.4g} ± {_num(h['std'], '.2g')}",
            "rank by mean": f"{len(ahead) + 1} of {len(run)}" + ("" if is_complete(frame) else " (rows missing)"),
            "ahead of it (choosing its hyperparameters, CPU-s; the gap)": "; ".join(
                f"{row_label(b)} ({_cpu_s(b.choose_s)}; {gap.get(compare(h, b), 'no verdict')})"
                for _, b in ahead.iterrows()) or "none",
            "the heuristic's probe (CPU-s)": _cpu_s(h.choose_s),
            "its Δt against the sweep's best": "—" if best is None else
            f"{compare(h, best) or 'no verdict against'} Δt = {best['dt']:g}",
        })
    return pd.DataFrame(rows)


def across_section(frames: dict[str, pd.DataFrame]) -> str:
    table = across_cells(frames)
    if table.empty:
        return ""
    return ("## Across cells\n\nThe heuristic hrnn (step size from the heuristic, everything else at "
            "the defaults) in each cell: its rank by test mean among the rows (the Δt sweep aside), "
            "every row ahead of it with what choosing that row's hyperparameters cost and whether the "
            f"gap is beyond {stats.TIE_SE:g} standard errors of the difference (the verdict rule above), "
            "and its Δt against the best fixed Δt of the sweep.\n\n" + table.to_markdown(index=False) + "\n\n")


def is_complete(frame: pd.DataFrame) -> bool:
    """Every row of the cell has all its planned runs (a study not finished has none)."""
    return bool((frame.runs >= frame.planned).all())


IN_PROGRESS = "table-in-progress.md"
IN_PROGRESS_HEADER = """# Medium tuning table: cells in progress

These cells are being run (`rnnsuite paper tuning --profile medium --cells NAME` completes
them over several sessions; finished runs and studies are skipped). Their rows fill in as
records land in `records/` beside this file, and a cell moves into `table.md` once every row has its
seeds. The rules, verdicts and costs are those of `table.md`.

"""


def cpu_wall_note(frames: list[pd.DataFrame]) -> str:
    """How far the tables' wall-time seconds are from CPU time, from the records that carry both."""
    ratios = sorted(x for f in frames for xs in f.get("cpu_ratios", pd.Series(dtype=object))
                    if isinstance(xs, list) for x in xs)
    if not ratios:
        return "No record here carries its CPU time, so how far the two differ is not measured."
    return (f"The {len(ratios)} records (of every cell, complete or in progress) that also carry "
            "their CPU time (`timing.cpu_seconds`; older records lack it) give CPU / wall = "
            f"{statistics.median(ratios):.2f} median ({ratios[0]:.2f}–{ratios[-1]:.2f}); where the two "
            "differ, the wall time counted here is the larger.")


def write_table(names: list[str], out: Path = OUT) -> Path:
    """``table.md`` with the complete cells (the table as evidence), and beside it
    ``table-in-progress.md`` with the cells still running, so that a partial cell is never
    read as a finished one."""
    frames = {name: cell_rows(name, out) for name in names}
    done = {name: f for name, f in frames.items() if is_complete(f)}
    running = {name: f for name, f in frames.items() if name not in done}
    total = sum(_cost_s(f) for f in done.values())
    text = HEADER.format(last=PROFILE.eval_seeds, pruner=PROFILE.pruner, tie=stats.TIE_SE,
                         cost=f"{total / 3600:.2f} CPU-hours", cpu_wall=cpu_wall_note(list(frames.values())))
    text += across_section(done) + "\n".join(cell_section(name, f) for name, f in done.items())
    write_text_atomic(out / "table.md", text)
    if done:
        write_text_atomic(out / "table.csv", pd.concat(done.values()).drop(columns="cpu_ratios").to_csv(index=False))
    if running:
        write_text_atomic(out / IN_PROGRESS, IN_PROGRESS_HEADER + across_section(running)
                          + "\n".join(cell_section(name, f) for name, f in running.items()))
    else:
        (out / IN_PROGRESS).unlink(missing_ok=True)
    for name, frame in frames.items():
        path = regret_figure(name, frame, out / "figures")
        if path:
            print(f"figure: {path}")
    print(text)
    return out / "table.md"


def run_table(cells: str | None, *, out: Path = OUT, data_dir: str | None = None, quiet: bool = False) -> int:
    """Run the named cells (every cell by default; finished parts are skipped), then write the table."""
    names = chosen_cells(cells)
    for name in names:  # every configuration checked before the first runs
        for spec in studies(name, out):
            study_definition(spec)
        for arm in plain_arms(name, out):
            for cfg in arm.configs:
                resolve(cfg)
    check_writable(out)
    failed = sum(run_cell(name, out, data_dir, quiet) for name in names)
    write_table(list(CELLS), out)
    return 1 if failed else 0
