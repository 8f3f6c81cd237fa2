"""The results as a static website, built from the records and the committed tables:

    rnnsuite site                      # results/site/index.html, from results/tables,
                                       # results/gradients, results/hdnn and results/runs/sanity
    python3 -m nox -s site             # the same from a fresh environment, then the browser test

A page per table (each CSV under the table roots, or a Markdown table without one),
sortable by a click on a column's header (a few lines of plain JavaScript), with the
table's figures and the runs behind it; a page per run with its resolved configuration
and where each value came from, its curves and gradient profiles at initialization and
after training, its environment and, for a published recipe, the authors' source. Plain
HTML files with relative links and copied images: no server, works offline and on any
static host. Nothing is recomputed: the numbers are those of the files and records.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from suite.analysis.site.sources import Run, Table, find_runs, find_tables, shown

HERE = Path(__file__).parent
RUN_COLUMNS = ["run", "task", "variant", "model", "seed", "status", "metric", "test", "grad ratio init",
               "grad ratio end"]


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def _number(value, fmt: str = ".4g") -> str:
    return "—" if value is None else format(value, fmt)


def run_row(run: Run) -> list:
    rec = run.record
    info, grads = rec["task_info"], rec["gradients"]
    return [(run.slug, f"runs/{run.slug}.html"), rec["task"], info["variant"], rec["model"], str(rec["seed"]),
            rec["status"], info["metric"], _number(rec["metrics"]["test"]), _number(grads["ratio_init"], ".2f"),
            _number(grads["ratio_end"], ".2f")]


def _linked_rows(table: Table, runs: list[Run]) -> list[list]:
    """The table's rows, cells as in the file; where the table has task and model columns
    and a run behind it matches (and its variant, where the table has one), the model's
    cell links to that run's page. Without a task column no row is linked: a model alone
    would pick a run of another task."""
    if not {"task", "model"} <= set(table.columns) or not runs:
        return table.rows
    at = {c: table.columns.index(c) for c in ("task", "model", "variant") if c in table.columns}
    out = []
    for row in table.rows:
        if len(row) != len(table.columns):  # a ragged row links nothing rather than the wrong run
            out.append(row)
            continue
        match = next((r for r in runs if r.record["model"] == row[at["model"]]
                      and r.record["task"] == row[at["task"]]
                      and ("variant" not in at or r.record["task_info"]["variant"] == row[at["variant"]])), None)
        out.append([(cell, f"runs/{match.slug}.html") if match and i == at["model"] else cell
                    for i, cell in enumerate(row)])
    return out


def _clear(out: Path, keep: set[str]) -> None:
    """Remove what a previous build wrote, except the run figures in ``keep`` (drawing them
    is most of a build's time; each is redrawn when its record is newer)."""
    for name in ("tables", "figures", "static"):
        shutil.rmtree(out / name, ignore_errors=True)
    (out / "index.html").unlink(missing_ok=True)
    for page in (out / "runs").glob("*") if (out / "runs").is_dir() else []:
        if page.name not in keep:
            page.unlink()


def build_site(out: Path, *, tables: list[Path], runs: list[Path]) -> Path:
    """Write the site under ``out`` (replacing what a previous build wrote there) and return
    its index page."""
    from suite.analysis.site import pages

    env = _environment()
    found = find_tables(tables, runs)
    attached = {d.resolve() for t in found for d in t.runs_dirs}
    # a runs root no table names is a table of its own: its runs
    for root in runs:
        if root.is_dir() and root.resolve() not in attached:
            found.append(Table(f"runs-{root.name}", f"Runs under {root}", root, [], [], [], [root]))
    all_runs = find_runs([d for t in found for d in t.runs_dirs])
    _clear(out, keep={f"{r.slug}.png" for r in all_runs.values()})
    (out / "tables").mkdir(parents=True)
    (out / "runs").mkdir(exist_ok=True)
    shutil.copytree(HERE / "static", out / "static")
    index_rows = []
    for table in found:
        behind = [r for d in table.runs_dirs for p, r in all_runs.items() if p.is_relative_to(d.resolve())]
        figures = pages.copy_figures(table, out)
        env.get_template("table.html").stream(
            title=table.title, root="../", crumbs=[], source=shown(table.source), note="", about=table.about,
            columns=table.columns or RUN_COLUMNS, rows=_linked_rows(table, behind) if table.columns else
            [run_row(r) for r in behind], figures=figures,
            run_columns=RUN_COLUMNS, run_rows=[run_row(r) for r in behind] if table.columns else [],
        ).dump(str(out / "tables" / f"{table.slug}.html"))
        index_rows.append([(table.title, f"tables/{table.slug}.html"), str(len(table.rows) or len(behind)),
                           str(len(behind)), shown(table.source)])
    for run in all_runs.values():
        pages.write_run(env, run, out)
    env.get_template("index.html").stream(
        title="rnnsuite results", root="", crumbs=[], columns=["table", "rows", "runs", "source"],
        rows=index_rows).dump(str(out / "index.html"))
    return out / "index.html"
