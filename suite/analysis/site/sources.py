"""What the site is built from: the tables (each CSV, or a Markdown table without a CSV,
under the table roots) with their figures and the records behind them, and the runs."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path

from suite.core import paths, records

SKIP_DIRS = {"records", "runs", "sweep", "figures"}  # inside a table's folder: its runs and images, not tables


@dataclasses.dataclass
class Table:
    slug: str
    title: str
    source: Path  # the CSV (or Markdown) file the rows were read from
    columns: list[str]
    rows: list[list[str]]
    figures: list[Path]
    runs_dirs: list[Path]  # where the records behind the table lie (may be empty)
    about: list[str] = dataclasses.field(default_factory=list)  # how it was made: the paragraphs above it


@dataclasses.dataclass
class Run:
    slug: str
    path: Path  # the run directory
    record: dict


def shown(path: Path) -> str:
    """A path as a page shows it: from the checkout's root when it lies inside it."""
    path = Path(path).resolve()
    return path.relative_to(paths.CHECKOUT).as_posix() if path.is_relative_to(paths.CHECKOUT) else str(path)


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        rows = [row for row in csv.reader(f) if row]  # a blank line (a trailing one) is no row
    return (rows[0], rows[1:]) if rows else ([], [])


def read_markdown_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """The first pipe table of a Markdown file: its header and rows, cells as written."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    start = next((i for i, line in enumerate(lines[:-1]) if line.startswith("|")
                  and re.fullmatch(r"\|?[\s:|-]+\|?", lines[i + 1]) and "-" in lines[i + 1]), None)
    if start is None:
        return [], []

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip("|").split("|")]

    body = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        body.append(cells(line))
    return cells(lines[start]), body


def _title(path: Path, slug: str) -> str:
    """The first heading of the Markdown file beside the table, else its name."""
    md = path.with_suffix(".md")
    if md.exists():
        for line in md.read_text().splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return slug.replace("-", " ")


def _about(path: Path) -> list[str]:
    """The paragraphs of the Markdown file beside the table (or the table's own) between
    its title and its first table or section: when, how and from what it was made."""
    md = path.with_suffix(".md")
    if not md.exists():
        return []
    paragraphs, current = [], []
    for line in md.read_text().splitlines()[1:]:
        if line.startswith(("|", "## ")):
            break
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs + ([" ".join(current)] if current else [])


def _is_table(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts[:-1]
    if any(part in SKIP_DIRS or part.startswith(".") for part in parts):
        return False
    return not (path.parent / records.RECORD).exists() and path.name != records.CURVES


def find_tables(roots: list[Path], runs_roots: list[Path]) -> list[Table]:
    """Every table under ``roots``: each CSV, and each Markdown file with a pipe table and no
    CSV of the same name. A table's figures are the PNGs of its folder (for a table at a
    root: of ``<root>/<name>/`` and ``<root>/figures/<name>/``); its runs, the records
    there, and a runs root of the same name as the table (``sanity``)."""
    tables = []
    for root in roots:
        if not root.is_dir():
            continue
        files = sorted(p for p in root.rglob("*.csv") if _is_table(p, root))
        files += sorted(p for p in root.rglob("*.md") if _is_table(p, root) and not p.with_suffix(".csv").exists()
                        and p.name != "README.md")
        for path in files:
            columns, rows = read_csv(path) if path.suffix == ".csv" else read_markdown_table(path)
            if not columns:
                continue
            slug = "-".join([root.name, *path.relative_to(root).with_suffix("").parts])
            folder = path.parent if path.parent != root else None
            image_dirs = [folder] if folder else [root / path.stem, root / "figures" / path.stem]
            figures = sorted(p for d in image_dirs if d.is_dir() for p in d.rglob("*.png"))
            runs = [d for d in ([folder] if folder else [root / path.stem]) if d.is_dir()]
            runs += [r for r in runs_roots if r.name == path.stem and r.is_dir()]
            tables.append(Table(slug, _title(path, slug), path, columns, rows, figures, runs, _about(path)))
    return tables


def find_runs(dirs: list[Path]) -> dict[Path, Run]:
    """Every finished record under ``dirs`` (a record unreadable or of an unknown schema is
    left out), keyed by its run directory, each with a unique slug."""
    runs: dict[Path, Run] = {}
    taken: set[str] = set()
    for root in dirs:
        for path, rec in records.iter_records(root, []):
            path = Path(path).resolve()
            if path in runs:
                continue
            base = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{rec['task']}-{rec['model']}-{path.name}")
            slug, n = base, 1
            while slug in taken:
                n += 1
                slug = f"{base}-{n}"
            taken.add(slug)
            runs[path] = Run(slug, path, rec)
    return runs
