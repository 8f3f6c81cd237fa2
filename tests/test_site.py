"""The results site (`rnnsuite site`): every link and image resolves on disk, a table's page
equals the CSV it was built from, a run's page shows its configuration with provenance
and its recipe's source, and the browser test (`tests/test_site_browser.py`) loads it."""

from __future__ import annotations

import csv
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from suite.analysis.site import build_site
from suite.cli.main import main
from suite.studies import sanity

SANITY = sorted(sanity.RUNS.glob("*/*/s*-*"))


class Page(HTMLParser):
    """The links, images and tables (rows of cell texts) of one HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.links, self.images, self.tables = [], [], {}
        self._table = self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("a", "link") and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.images.append(attrs["src"])
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def small_site(tmp_path: Path) -> tuple[Path, Path]:
    """A site from a table of two models with a figure and their records, and the sanity
    table with its reference records; returns (index, the table's CSV)."""
    plt = pytest.importorskip("matplotlib.pyplot")
    tables, runs = tmp_path / "tables", tmp_path / "runs" / "sanity"
    folder = tables / "demo-quick"
    for run in SANITY[:2]:
        shutil.copytree(run, folder / "records" / run.relative_to(sanity.RUNS))
    shutil.copytree(SANITY[-1], runs / SANITY[-1].relative_to(sanity.RUNS))
    rows = [["task", "variant", "model", "ours"]] + [[r.parts[-3], "T=784", r.parts[-2], f"9{i}.5 ± 0.1"]
                                                        for i, r in enumerate(SANITY[:2])]
    with (folder / "table.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    (folder / "table.md").write_text("# Demo table, quick profile\n")
    (folder / "figures").mkdir()
    fig = plt.figure(figsize=(2, 1))
    fig.savefig(folder / "figures" / "curves.png")
    plt.close(fig)
    shutil.copyfile(sanity.OUT / "table.csv", tables / "sanity.csv")
    index = build_site(tmp_path / "site", tables=[tables], runs=[runs])
    return index, folder / "table.csv"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return small_site(tmp_path_factory.mktemp("site"))


def test_every_link_and_image_resolves_on_disk(site):
    index, _ = site
    pages = sorted(index.parent.rglob("*.html"))
    assert len(pages) >= 1 + 2 + 3  # the index, two tables, three runs
    for page in pages:
        parsed = Page(page.read_text())
        for target in parsed.links + parsed.images:
            assert "://" not in target, f"{page.name}: {target} is not a relative link (the site works offline)"
            assert (page.parent / target.split("#")[0]).resolve().is_file(), f"{page.name}: {target}"


def test_a_tables_page_equals_its_csv(site):
    index, source = site
    with source.open(newline="") as f:
        expected = list(csv.reader(f))
    page = Page((index.parent / "tables" / "tables-demo-quick-table.html").read_text())
    assert page.tables["table"] == expected
    page = Page((index.parent / "tables" / "tables-sanity.html").read_text())
    with (sanity.OUT / "table.csv").open(newline="") as f:
        assert page.tables["table"] == list(csv.reader(f))
    assert len(page.tables["runs"]) == 2  # the header and the one reference run attached by name


def test_a_model_links_to_its_run_and_the_run_page_says_where_values_came_from(site):
    index, _ = site
    text = (index.parent / "tables" / "tables-demo-quick-table.html").read_text()
    run_link = next(link for link in Page(text).links if link.startswith("../runs/"))
    run_page = Page((index.parent / "tables" / run_link).read_text())
    config = {row[0]: row[1:] for row in run_page.tables["config"][1:]}
    assert config["seed"][1] == "default" or config["seed"][1].startswith("set")
    recipe_keys = [k for k, (_, origin, _) in config.items() if origin == "recipe"]
    assert recipe_keys and all(config[k][2] for k in recipe_keys if not config[k][2].startswith("UNKNOWN"))
    environment = {row[0]: row[1] for row in run_page.tables["environment"][1:]}
    assert environment["torch_threads"].isdigit() and "versions.torch" in environment


def test_the_command_writes_the_site(tmp_path, capsys):
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "t.csv").write_text("model,score\ngru,1\n")
    assert main(["site", "--tables", str(tables), "--runs", str(tmp_path / "none"),
                 "--out", str(tmp_path / "site")]) == 0
    assert "site:" in capsys.readouterr().out
    assert Page((tmp_path / "site" / "tables" / "tables-t.html").read_text()).tables["table"] == \
        [["model", "score"], ["gru", "1"]]


# -- in a real browser: Debian's chromium driven by Selenium ------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no chromium and chromedriver on PATH (apt-get install chromium chromium-driver; "
                    "`nox -s site` installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the [site] extra)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--allow-file-access-from-files"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The site `nox -s site` built ($RNNSUITE_SITE: its folder), else a small one."""
    import os

    given = os.environ.get("RNNSUITE_SITE")
    if given:
        return Path(given).resolve() / "index.html", None  # resolved: a file:// address needs it
    return small_site(tmp_path_factory.mktemp("browser-site"))


TABLE_JS = "return Array.from(document.getElementById(arguments[0]).rows)" \
           ".map(r => Array.from(r.cells).map(c => c.textContent.trim()));"


def test_every_page_loads_in_chromium_without_console_errors(browser, built):
    from urllib.parse import unquote, urlparse

    index, _ = built
    pages = sorted(index.parent.rglob("*.html"))
    for page in pages:
        browser.get(page.as_uri())
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, f"{page}: {errors}"
        broken = browser.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);")
        assert not broken, f"{page}: images that did not load: {broken}"
        for href in browser.execute_script("return Array.from(document.links).map(a => a.href);"):
            url = urlparse(href)
            assert url.scheme == "file" and Path(unquote(url.path)).is_file(), f"{page}: {href}"


def test_a_table_in_chromium_equals_its_csv_and_sorts(browser, built):
    index, source = built
    if source is None:  # the full site: the sanity table, built from results/tables/sanity-full/table.csv
        source, page = sanity.OUT / "table.csv", index.parent / "tables" / "tables-sanity-full-table.html"
    else:
        page = index.parent / "tables" / "tables-demo-quick-table.html"
    with source.open(newline="") as f:
        expected = list(csv.reader(f))
    browser.get(page.as_uri())
    assert browser.execute_script(TABLE_JS, "table") == expected
    header = browser.find_elements("css selector", "#table th")
    column = expected[0].index("model") if "model" in expected[0] else 0
    header[column].click()
    shown = [row[column] for row in browser.execute_script(TABLE_JS, "table")[1:]]
    assert shown == sorted(shown, key=str.lower)
    header[column].click()
    assert [row[column] for row in browser.execute_script(TABLE_JS, "table")[1:]] == shown[::-1]


def test_screenshots_for_the_notes(browser, built):
    """Two pages as a reader sees them, under $RNNSUITE_SCREENSHOTS when it is set."""
    import os

    where = os.environ.get("RNNSUITE_SCREENSHOTS")
    if not where:
        pytest.skip("RNNSUITE_SCREENSHOTS is not set (nox -s site sets it)")
    index, _ = built
    tables = sorted((index.parent / "tables").glob("*.html"))
    # the table whose own rows link most runs (the list of runs under it not counted)
    table = max(tables, key=lambda p: p.read_text().split('id="runs"')[0].count('href="../runs/'))
    run_page = next(iter(sorted((index.parent / "runs").glob("*.html"))))
    browser.set_window_size(1400, 1000)
    for page, name in ((table, "site-table.png"), (run_page, "site-run.png")):
        browser.get(page.as_uri())
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1400, min(height + 100, 4000))
        Path(where).mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(Path(where) / name))


def test_a_csv_with_a_trailing_blank_line_is_its_rows_only(tmp_path):
    # the tuning tables' CSVs end in a blank line: it is no row (it once stopped the whole build)
    tables = tmp_path / "tables"
    (tables / "t-quick").mkdir(parents=True)
    (tables / "t-quick" / "table.csv").write_text("task,model,score\nadding,gru,1\n\n")
    index = build_site(tmp_path / "site", tables=[tables], runs=[])
    page = Page((index.parent / "tables" / "tables-t-quick-table.html").read_text())
    assert page.tables["table"] == [["task", "model", "score"], ["adding", "gru", "1"]]
