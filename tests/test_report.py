"""The HTML quality report (credit/report.py), loaded in a real headless Chromium.

The sample city ran through every DAG once (fixture ``demo_city``); the report DAG wrote
``reports/latest.html``. Chromium parses it (``--dump-dom``) and takes a screenshot; the DOM
is checked against the ground truth (every rate's numerator and denominator), for department
names, for external resources (none) and for resident IDs (never unmasked).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import unicodedata
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from conftest import credit_cli
from test_scorecard import expected_scorecard

from credit.report import collect, render
from foundation.catalog import Disclosure, FieldType, get_catalog
from foundation.settings import PROJECT_ROOT, Settings
from foundation.sql_names import ident, table
from warehouse.scorecard import METRICS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
RESOURCE_ATTRS = {"src", "href", "xlink:href", "action", "data", "poster", "srcset", "formaction", "background"}


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        pytest.fail("Chromium is not installed: apt-get install -y chromium fonts-noto-cjk (as .ci/run does)")
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
         *args],
        capture_output=True, text=True, timeout=180, check=True,
    )


class Dom(HTMLParser):
    """Rate cells with the data-* attributes of their ancestors, every attribute, SVGs and their text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.cells: list[dict] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.svg_texts: list[list[str]] = []
        self.svgs: list[dict[str, str]] = []  # each chart's attributes (data-kind, data-key, data-series ...)
        self.examples: list[list[str]] = []
        self._text: list[str] | None = None
        self._cell: dict | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes += [(tag, k, v or "") for k, v in attrs.items()]
        if tag == "svg":
            self.svg_texts.append([])
            self.svgs.append({k: v or "" for k, v in attrs.items()})
        if "data-metric" in attrs and tag in ("td", "div"):
            context: dict[str, str] = {}
            for _, a in self.stack:
                context |= {k: v or "" for k, v in a.items() if k.startswith("data-") or k in ("id", "class")}
            self._cell = {"tag": tag, "ctx": context, **attrs, "text": []}
        if tag == "tr" and any(a.get("class") == "examples" for _, a in self.stack):
            self._row = []
        if tag in VOID:
            return
        self.stack.append((tag, attrs))

    def handle_endtag(self, tag):
        while self.stack:
            open_tag, attrs = self.stack.pop()
            if self._cell is not None and "data-metric" in attrs and open_tag == self._cell["tag"]:
                self._cell["text"] = " ".join("".join(self._cell["text"]).split())
                self.cells.append(self._cell)
                self._cell = None
            if open_tag == "tr" and self._row is not None:
                if self._row:
                    self.examples.append(self._row)
                self._row = None
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"].append(data)
        if any(t == "text" for t, _ in self.stack) and self.svg_texts:
            self.svg_texts[-1].append(data)
        if self._row is not None and self.stack and self.stack[-1][0] == "td":
            self._row.append(data.strip())


def _parse(html: str) -> Dom:
    dom = Dom()
    dom.feed(html)
    dom.close()
    return dom


@pytest.fixture(scope="module")
def dom_html(demo_city, tmp_path_factory) -> str:
    latest = demo_city / "reports" / "latest.html"
    assert latest.exists(), "the quality report DAG wrote no report"
    done = chromium(["--dump-dom", latest.as_uri()], tmp_path_factory.mktemp("chromium"))
    assert "<html" in done.stdout
    return done.stdout


@pytest.fixture(scope="module")
def dom(dom_html) -> Dom:
    return _parse(dom_html)


MONTHLY = ("city_month", "city_ytd")


def _is_monthly(cell: dict) -> bool:
    """A cell of the latest month or the year to date (checked against mart.scorecard's monthly levels)."""
    ctx = cell["ctx"]
    return (cell.get("data-level") in (*MONTHLY, "department_month") or ctx.get("data-level") in MONTHLY
            or ctx.get("id") == "monthly-ranking")


def _shown_key(cell: dict) -> tuple | None:
    """(level, department, dataset) of a cumulative rate cell (everything received up to the as-of date),
    from where it sits in the page; None for a cell of a month (``_is_monthly``)."""
    ctx = cell["ctx"]
    if _is_monthly(cell):
        return None
    if cell.get("data-level") == "city" or ctx.get("data-level") == "city":
        return ("city", None, None)
    if ctx.get("id") == "department-ranking":
        return ("department", ctx["data-department"], None)
    if ctx.get("id") == "dataset-table":
        return ("dataset", None, ctx["data-dataset"])
    if "pairs" in ctx.get("class", "").split():
        return ("department_dataset", ctx["data-department"], ctx["data-dataset"])
    return None


def _percent(metric: str, num: int, den: int) -> str:
    """The page shows 重错码率 in ‱ (its target is 万分之一), the other rates in %."""
    return f"{num / den * 10000:.2f}‱" if metric == "code_error" else f"{num / den:.2%}"


def test_every_rate_in_the_report_equals_the_truth(demo_city, dom):
    expected = {(k[0], k[1], k[2], k[4]): v for k, v in expected_scorecard(demo_city).items() if k[0] != "batch"}
    shown = {}
    for cell in dom.cells:
        key = _shown_key(cell)
        if key is None:
            assert _is_monthly(cell), cell  # checked in test_monthly_figures_equal_the_scorecard
            continue
        if "data-numerator" not in cell:  # not applicable
            assert "—" in cell["text"], cell
            continue
        num, den = int(cell["data-numerator"]), int(cell["data-denominator"])
        shown[(*key, cell["data-metric"])] = (num, den)
        assert _percent(cell["data-metric"], num, den) in cell["text"], cell  # the figure printed is the rate
        assert f"{num}/{den}" in cell["text"].replace(" ", ""), cell
    assert shown == expected
    assert {k[3] for k in shown if k[0] == "city"} == set(METRICS)


def test_below_target_is_red_and_met_is_not(demo_city, dom):
    con = duckdb.connect(str(demo_city / "warehouse.duckdb"), read_only=True)
    verdicts = {(lvl, d, ds, m): meets for lvl, d, ds, m, meets in con.execute(
        "SELECT level, department, dataset_id, metric, meets_target FROM mart.scorecard "
        "WHERE level IN ('city', 'department', 'dataset', 'department_dataset')"
    ).fetchall()}
    con.close()
    checked = 0
    for cell in dom.cells:
        if "data-numerator" in cell and not _is_monthly(cell):
            meets = verdicts[(*_shown_key(cell), cell["data-metric"])]
            assert ("bad" in cell["class"].split()) == (meets is False), cell
            checked += 1
    assert checked == len(verdicts) and False in verdicts.values() and True in verdicts.values()


def test_departments_are_named_and_ranked(demo_city, dom, dom_html):
    catalog = get_catalog()
    con = duckdb.connect(str(demo_city / "warehouse.duckdb"), read_only=True)
    senders = {d for (d,) in con.execute("SELECT DISTINCT department FROM audit.batches WHERE dataset_id IS NOT NULL"
                                         ).fetchall()}
    con.close()
    ranked = list(dict.fromkeys(c["ctx"]["data-department"] for c in dom.cells
                                if c["ctx"].get("id") == "department-ranking"))
    assert set(ranked) == senders and len(ranked) == len(senders)
    for code in senders:
        assert catalog.department(code).name_zh in dom_html
    assert "乳山市公共信用信息数据质量报告" in dom_html and "全市概况" in dom_html
    cells = [c for c in dom.cells if c["ctx"].get("id") == "department-ranking" and "data-numerator" in c]
    met = {d: sum("bad" not in c["class"] for c in cells if c["ctx"]["data-department"] == d) for d in ranked}
    applicable = {d: sum(c["ctx"]["data-department"] == d for c in cells) for d in ranked}
    order = [met[d] / applicable[d] for d in ranked]
    assert order == sorted(order, reverse=True)  # best first


def test_nothing_is_loaded_from_the_network(dom, dom_html, demo_city):
    raw = (demo_city / "reports" / "latest.html").read_text(encoding="utf-8")
    for text in (raw, dom_html):
        assert "http://" not in text and "https://" not in text
        assert "@import" not in text
    for tag, name, value in dom.attributes:
        if name in RESOURCE_ATTRS:
            assert not re.match(r"^\s*([a-z][a-z0-9+.-]*:|//)", value, re.I) or value.startswith("#"), (tag, value)
        if name == "style":
            assert "url(" not in value
    assert "script" not in dom.tags and "link" not in dom.tags and "iframe" not in dom.tags


def _as_of(dom_html: str) -> date:
    return date.fromisoformat(re.search(r"报告日期 (\d{4}-\d{2}-\d{2})", dom_html).group(1))


def _monthly_rows(demo_city: Path, as_of: date) -> list[tuple]:
    con = duckdb.connect(str(demo_city / "warehouse.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT level, department, dataset_id, month, metric, numerator, denominator, meets_target "
        "FROM mart.scorecard WHERE level IN ('city_month', 'department_month', 'dataset_month', "
        "'department_dataset_month') AND month <= date_trunc('month', ?::DATE)",
        [as_of]).fetchall()
    con.close()
    return rows


def test_charts_are_inline_svg_with_text_labels(demo_city, dom, dom_html):
    rows = _monthly_rows(demo_city, _as_of(dom_html))
    expected = ({("department", d) for lvl, d, *_ in rows if lvl == "department_month"}
                | {("dataset", ds) for lvl, _, ds, *_ in rows if lvl == "dataset_month"})
    assert expected, "the demo has no monthly scorecard rows"
    assert sorted((svg["data-kind"], svg["data-key"]) for svg in dom.svgs) == sorted(expected)
    assert len(dom.svg_texts) == len(expected)  # one SVG per department and per dataset, nothing else
    for texts in dom.svg_texts:
        joined = "".join(texts)
        assert "合规率" in joined and "%" in joined  # labels stay text, in Chinese
    assert "image" not in dom.tags and "img" not in dom.tags


def test_each_chart_has_a_point_per_month_with_data_and_gaps_elsewhere(demo_city, dom, dom_html):
    """A chart's data-series holds the group's rate of every month shown, null for a month without a
    scorecard row (a gap, never a zero); data-points counts the months with a rate."""
    rows = _monthly_rows(demo_city, _as_of(dom_html))
    truth = {}
    for lvl, dept, ds, month, metric, num, den, _ in rows:
        if lvl in ("department_month", "dataset_month"):
            kind, key = ("department", dept) if lvl == "department_month" else ("dataset", ds)
            truth[(kind, key, metric, f"{month:%Y-%m}")] = num / den
    latest = max(f"{r[3]:%Y-%m}" for r in rows)
    for svg in dom.svgs:
        kind, key = svg["data-kind"], svg["data-key"]
        series = json.loads(svg["data-series"])
        months = series["months"]
        assert months[-1] == latest and len(months) == len(set(months)) <= 24
        counts = dict(item.split(":") for item in svg["data-points"].split())
        assert set(counts) == set(METRICS)
        for metric in METRICS:
            values = series[metric]
            assert len(values) == len(months)
            for month, value in zip(months, values, strict=True):
                rate = truth.get((kind, key, metric, month))
                assert (value is None) == (rate is None), (kind, key, metric, month)
                if rate is not None:
                    assert value == pytest.approx(rate, abs=1e-6)
            assert int(counts[metric]) == sum(v is not None for v in values)
            if int(counts[metric]):
                lo, hi = series["ylim"][metric]
                shown = [v for v in values if v is not None]
                assert lo <= min(shown) and max(shown) <= hi


def test_monthly_figures_equal_the_scorecard(demo_city, dom, dom_html):
    rows = _monthly_rows(demo_city, _as_of(dom_html))
    latest = max(r[3] for r in rows if r[0] == "city_month")
    db = {(lvl, dept, metric): (num, den) for lvl, dept, _, month, metric, num, den, _ in rows
          if month == latest and lvl in ("city_month", "department_month")}
    ytd: dict[str, list[int]] = {}
    for lvl, _, _, month, metric, num, den, _ in rows:
        if lvl == "city_month" and month.year == _as_of(dom_html).year:
            ytd.setdefault(metric, [0, 0])
            ytd[metric][0] += num
            ytd[metric][1] += den
    checked = 0
    for cell in dom.cells:
        if not _is_monthly(cell) or "data-numerator" not in cell:
            continue
        metric, shown = cell["data-metric"], (int(cell["data-numerator"]), int(cell["data-denominator"]))
        if cell.get("data-level") == "city_ytd":
            assert shown == tuple(ytd[metric]), cell
        elif cell["ctx"].get("id") == "monthly-ranking":
            assert cell["data-month"] == latest.isoformat()
            assert shown == db[("department_month", cell["ctx"]["data-department"], metric)], cell
        else:
            assert shown == db[("city_month", None, metric)], cell
        assert _percent(metric, *shown) in cell["text"], cell
        checked += 1
    assert checked >= len([k for k in db if k[0] == "department_month"])


def test_data_docs_are_linked(dom):
    links = [v for tag, k, v in dom.attributes if tag == "a" and k == "href"]
    assert "../gx/uncommitted/data_docs/local_site/index.html" in links


def _resident_ids(data_root: Path) -> set[str]:
    """Every value of a resident-ID field the sample city sent, from the restricted raw layer and quarantine."""
    ids: set[str] = set()
    con = duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True)
    for ds in get_catalog().datasets.values():
        for spec in ds.fields:
            if spec.type is FieldType.RESIDENT_ID:
                ids |= {v for (v,) in con.execute(f"SELECT {ident(spec.code)} FROM {table('raw', ds.id)}").fetchall()
                        if v}
    con.close()
    return {re.sub(r"\s", "", unicodedata.normalize("NFKC", v)).upper() for v in ids}


def _assert_no_id(html: str, ids: set[str]) -> None:
    folded = re.sub(r"\s", "", unicodedata.normalize("NFKC", html)).upper()
    leaked = [i for i in ids if len(i) >= 15 and i in folded]
    assert leaked == []


def test_no_resident_id_in_the_report_and_examples_masked(demo_city, dom_html, tmp_path):
    ids = _resident_ids(demo_city)
    assert len(ids) > 100
    _assert_no_id(dom_html, ids)
    # The same report with every reason's examples: invalid IDs (rid_check_digit) show masked, nothing else.
    settings = Settings(demo_city, PROJECT_ROOT / "catalogs", "1GB", 1)
    con = duckdb.connect(str(demo_city / "warehouse.duckdb"), read_only=True)
    data = collect(con, settings, get_catalog(), date(2026, 3, 2), top_reasons=100)
    con.close()
    html = render(data, get_catalog(), demo_city / "reports")
    _assert_no_id(html, ids)
    rid = next(r for r in data.reasons if r.code == "rid_check_digit")
    assert rid.examples and all(re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", e.value) for e in rid.examples), rid.examples


def test_examples_come_only_from_public_datasets(dom, demo_city):
    catalog = get_catalog()
    restricted = {d.name_zh for d in catalog.datasets.values() if d.disclosure is Disclosure.AUTHORIZED}
    public = {d.name_zh for d in catalog.datasets.values() if d.disclosure is not Disclosure.AUTHORIZED}
    assert dom.examples
    for row in dom.examples:
        assert row[1] in public and row[1] not in restricted, row


def test_screenshot_in_chromium(demo_city, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    chromium(["--window-size=1280,2000", f"--screenshot={shot}", (demo_city / "reports" / "latest.html").as_uri()],
             tmp_path / "profile")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    colours = set(image.resize((320, 500)).getdata())
    assert len(colours) > 50  # drawn, not blank
    assert any(r > 180 and g < 80 and b < 80 for r, g, b in colours)  # red figures below target


def test_credit_report_cli_writes_the_dated_file_and_latest(demo_copy):
    done = credit_cli(["report", "--date", "2026-03-02"], demo_copy)
    dated = demo_copy / "reports" / "quality-report-2026-03-02.html"
    latest = demo_copy / "reports" / "latest.html"
    assert dated.read_bytes() == latest.read_bytes()
    assert "报告日期 2026-03-02" in dated.read_text(encoding="utf-8")
    assert "合规率" in done.stdout and str(dated) in done.stdout.replace("\n", "")
    assert not [p for p in dated.parent.iterdir() if p.name.startswith(".")]  # no temp file left


def test_the_report_dag_ran_in_the_demo(demo_city):
    db = sqlite3.connect(demo_city / "airflow" / "airflow.db")
    states = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'credit_quality_report'"
                             ).fetchall())
    db.close()
    assert states == {"scorecard": "success", "report": "success"}
    assert list((demo_city / "reports").glob("quality-report-*.html"))


DAG_CHECK = """
import json, os, sys
sys.path.insert(0, {root!r})
from credit.airflow_env import apply_airflow_environ
from foundation.settings import get_settings
apply_airflow_environ(get_settings())
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={dag!r})
dag = bag.dags["credit_quality_report"]
timetable = dag.timetable
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "schedule": type(timetable).__name__,
    "assets": sorted(a.uri for a in timetable.asset_condition.objects),
    "cron": timetable.timetable._expression,
    "timezone": str(timetable.timetable._timezone),
    "tasks": {{t.task_id: [t.pool, t.retries] for t in dag.tasks}},
    "tags": sorted(dag.tags),
}}))
"""


def test_the_report_dag_runs_daily_and_on_every_clean_asset_and_new_scores(tmp_path):
    from credit.airflow_env import WRITER_POOL

    code = DAG_CHECK.format(root=str(PROJECT_ROOT), dag=str(PROJECT_ROOT / "dags" / "credit_quality_report.py"))
    env = {**os.environ, "CREDIT_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["errors"] == {} and info["schedule"] == "AssetOrTimeSchedule"
    assert info["assets"] == sorted([f"credit://warehouse/clean/{d}" for d in get_catalog().datasets]
                                    + ["credit://warehouse/mart/scores"])
    assert info["cron"] == "0 7 * * *" and info["timezone"] == "Asia/Shanghai"
    assert info["tasks"] == {"scorecard": [WRITER_POOL, 2], "report": [WRITER_POOL, 2]}
