"""What a committed table says about its evidence, and whether that evidence is still current.

Every table the suite commits lives in ``results/tables/<table>-<profile>/`` with the
records it was built from in ``records/`` beside it. Its header carries one line made by
:func:`header_line` from those records alone (when they finished, the commit of the code
that made them, their measured CPU time), never from the clock of the writing, so a table
rebuilt from the same records is the same text.

A record is current when today's code resolves its cell to the same configuration hash
(which covers every default and the task and model versions); :func:`stale` names every
cell whose record is not, and why (a version bumped, a default changed, a cell gone).
``tests/test_evidence.py`` applies both to every committed table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable


def header_line(recs: Iterable[dict], *, extra: str = "") -> str:
    """``Built from N records finished A – B UTC by the code at commit C; measured cost S CPU-seconds ...``.

    ``extra`` names compute that no record holds (the Optuna trials of a tuning study),
    said beside the records' CPU time, not added to it: it is measured by another clock."""
    recs = list(recs)
    finished = sorted(r["timing"].get("finished") or "" for r in recs)
    finished = [f for f in finished if f]
    span = sorted({_utc(finished[0]), _utc(finished[-1])}) if finished else []
    when = f"finished {' – '.join(span)} UTC" if span else "finished at times not recorded"
    code = _code(recs)
    cpu = [r["timing"].get("cpu_seconds") for r in recs]
    measured = sum(c for c in cpu if c is not None)
    missing = sum(c is None for c in cpu)
    scale = f"{measured / 3600:.2f} CPU-hours" if measured >= 3600 else f"{measured / 60:.1f} CPU-minutes"
    cost = f"measured cost {measured:.0f} CPU-seconds ({scale}), the records' `timing.cpu_seconds` summed"
    if missing:
        cost += f" ({missing} record(s) without a CPU time not counted)"
    extra = f"; {extra}" if extra else ""
    return f"Built from {len(recs)} records {when} by the code at {code}; {cost}{extra}."


def _utc(stamp: str) -> str:
    return stamp.replace("T", " ")[:16]  # 2026-12-04T23:50:12+00:00 -> 2026-12-04 23:50


def _code(recs: list[dict]) -> str:
    """``commit abc (with uncommitted changes)``, or the commits in the order their records finished."""
    gits = [(r["timing"].get("finished") or "", r.get("environment", {}).get("git") or {}) for r in recs]
    commits = list(dict.fromkeys((g.get("commit") or "unknown")[:10] for _, g in sorted(gits, key=lambda x: x[0])))
    dirty = sum(bool(g.get("dirty")) for _, g in gits)
    text = f"commit {commits[0]}" if len(commits) == 1 else f"commits {', '.join(commits)}"
    if dirty:
        text += (" (with uncommitted changes)" if dirty == len(recs)
                 else f" (with uncommitted changes in {dirty} of {len(recs)} records)")
    return text


def config_difference(recorded: dict, today: dict) -> str:
    """The keys whose values differ between a record's configuration and today's, in words."""
    # as hashed: through JSON, where a tuple is a list
    recorded, today = (json.loads(json.dumps(c, sort_keys=True, default=str)) for c in (recorded, today))
    changed = []
    for key in sorted(set(recorded) | set(today)):
        a, b = recorded.get(key), today.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
                        if a.get(k) != b.get(k)]
        elif a != b:
            changed.append(f"{key}: {a!r} -> {b!r}")
    return "; ".join(changed) or "the same configuration under another hash (hash rule changed)"


def stale(found: Iterable[tuple[str, dict]], today: dict[str, tuple[dict, str]]) -> list[str]:
    """Every cell whose record is not what today's code gives.

    ``found``: (cell name, record) per committed record. ``today``: cell name -> (today's
    resolved configuration, its hash). A record whose cell today's definition no longer
    has, one whose hash differs (the keys that changed named) and a cell with two
    records are each one line."""
    lines, seen = [], set()
    for cell, rec in found:
        if cell in seen:
            lines.append(f"{cell}: more than one record")
            continue
        seen.add(cell)
        if cell not in today:
            lines.append(f"{cell}: no such cell in today's definition of the table")
            continue
        config, chash = today[cell]
        if rec["config_hash"] != chash:
            lines.append(f"{cell}: {config_difference(rec['config'], config)}")
    return lines
