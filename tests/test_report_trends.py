"""The report's monthly trends, latest-month ranking, city summary, overdue deliveries and alerts
(credit/report.py, credit/report_charts.py), on synthetic rows.

A warehouse made by ``ensure_schema`` gets a hand-written ``mart.scorecard`` with the monthly levels
(``city_month``, ``department_month``, ``dataset_month``, ``department_dataset_month``: one row per
month with deliveries, none for a month without) for 14 months, 2025-01 .. 2026-02, plus
``audit.deliveries`` and ``audit.alerts`` rows for several as-of dates. The departments are built
for the checks:

- ``market_regulation``: steady, meets every target;
- ``tax``: misses by far in 2025-09 .. 2025-11, by little in 2025-12 .. 2026-02: the most improved;
- ``transport``: close to its targets until 2025-11, misses by far in the last three months (合规率
  99.50% in 2026-01, 97.50% in 2026-02): the most deteriorated;
- ``emergency``: no deliveries in 2025-06 (a gap: no row), otherwise steady.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from decimal import Decimal
from html import unescape
from pathlib import Path

import duckdb
import pytest

from credit.report import (
    SHORT_NAMES,
    Change,
    Movement,
    _movers,
    add_months,
    collect,
    render,
)
from credit.report_charts import monthly_svg, rate_unit, y_limits
from foundation.settings import PROJECT_ROOT, Settings
from warehouse.schema import ensure_schema
from warehouse.scorecard import METRICS

pytestmark = pytest.mark.integration

AS_OF = date(2026, 3, 31)
FIRST = date(2025, 1, 1)
MONTHS = [add_months(FIRST, i) for i in range(14)]  # 2025-01 .. 2026-02
GAP = date(2025, 6, 1)
DEPARTMENTS = ("market_regulation", "tax", "transport", "emergency")
DATASETS = ("admin_penalty", "admin_license", "tax_payment")
TARGETS = {"compliance": ("min", 0.99), "completeness": ("min", 0.99), "timeliness": ("min", 0.95),
           "code_error": ("max", 0.0001), "correction": ("min", 0.95)}
DENOMINATORS = {"compliance": 1000, "completeness": 4000, "timeliness": 800, "code_error": 20000, "correction": 20}

SCORECARD_DDL = """
CREATE OR REPLACE TABLE mart.scorecard (
    level VARCHAR, department VARCHAR, dataset_id VARCHAR, batch_id VARCHAR, received_date DATE, month DATE,
    metric VARCHAR, numerator BIGINT, denominator BIGINT, rate DOUBLE, target DOUBLE, direction VARCHAR,
    meets_target BOOLEAN, undated BIGINT, outside_calendar BIGINT)"""


def _wave(seed: int, i: int) -> float:
    """A deterministic wobble in [-1, 1]."""
    return math.sin(0.8 * i + 0.9 * seed)


def _rate(dept: str, metric: str, i: int, month: date, latest: date = MONTHS[-1]) -> float:
    """The synthetic rate of a department (or dataset) in month number ``i``; ``latest`` is the last month."""
    seed = sum(map(ord, dept)) % 13
    good = {"compliance": 0.994, "completeness": 0.996, "timeliness": 0.975, "code_error": 0.00004,
            "correction": 0.97}[metric]
    wobble = {"compliance": 0.003, "completeness": 0.002, "timeliness": 0.015, "code_error": 0.00004,
              "correction": 0.02}[metric]
    value = good + wobble * _wave(seed, i)
    bad = {"compliance": -0.02, "completeness": -0.015, "timeliness": -0.12, "code_error": 0.0004,
           "correction": -0.15}[metric]
    recent = add_months(latest, -2) <= month  # the last three months
    prior = add_months(latest, -5) <= month < add_months(latest, -2)  # the three before them
    if dept == "tax" and prior:
        value = good + bad
    elif dept == "tax" and recent:
        value = good + bad * 0.2
    elif dept == "transport" and recent:
        value = good + bad * 1.5
    if dept == "transport" and metric == "compliance" and month == add_months(latest, -1):
        value = 0.995  # the month before the latest: a round MoM change of -2.00 points
    if dept == "transport" and metric == "compliance" and month == latest:
        value = 0.975
    return min(max(value, 0.0), 1.0)


def _counts(dept: str, metric: str, i: int, month: date, latest: date = MONTHS[-1]) -> tuple[int, int]:
    den = DENOMINATORS[metric]
    return round(_rate(dept, metric, i, month, latest) * den), den


def _row(level: str, dept: str | None, ds: str | None, month: date | None, metric: str, num: int, den: int) -> list:
    direction, target = TARGETS[metric]
    goal = Decimal(repr(target)) * den
    meets = num >= goal if direction == "min" else num <= goal
    return [level, dept, ds, None, None, month, metric, num, den, num / den, target, direction, meets, None, None]


def scorecard_rows(departments=DEPARTMENTS, datasets=DATASETS, months=MONTHS) -> list[list]:
    rows = []
    totals: dict[tuple, list[int]] = {}

    def add(key: tuple, num: int, den: int) -> None:
        totals.setdefault(key, [0, 0])
        totals[key][0] += num
        totals[key][1] += den

    for i, month in enumerate(months):
        for dept in departments:
            if dept == "emergency" and month == GAP:
                continue  # no deliveries that month: no row at all
            for metric in METRICS:
                num, den = _counts(dept, metric, i, month, months[-1])
                rows.append(_row("department_month", dept, None, month, metric, num, den))
                add(("city_month", None, None, month, metric), num, den)
                add(("city", None, None, None, metric), num, den)
                add(("department", dept, None, None, metric), num, den)
        for ds in datasets:
            for metric in METRICS:
                num, den = _counts(ds, metric, i, month, months[-1])
                rows.append(_row("dataset_month", None, ds, month, metric, num, den))
                rows.append(_row("department_dataset_month", departments[0], ds, month, metric, num, den))
                add(("dataset", None, ds, None, metric), num, den)
                add(("department_dataset", departments[0], ds, None, metric), num, den)
    rows += [_row(level, dept, ds, month, metric, num, den) for (level, dept, ds, month, metric), (num, den)
             in totals.items()]
    return rows


DELIVERIES = [
    # as_of, department, dataset, period, month, deadline, first received, files, status, days overdue
    (AS_OF, "tax", "tax_payment", "2026-02", date(2026, 2, 1), date(2026, 3, 10), None, 0, "missing", 21),
    (AS_OF, "transport", "admin_penalty", "2026-02", date(2026, 2, 1), date(2026, 3, 10),
     "2026-03-20 09:30:00+08", 1, "late", 10),
    (AS_OF, "emergency", "admin_penalty", "2026-01", date(2026, 1, 1), date(2026, 2, 9), None, 0, "missing", 50),
    (AS_OF, "market_regulation", "admin_license", "2026-02", date(2026, 2, 1), date(2026, 3, 10),
     "2026-03-05 10:00:00+08", 1, "on_time", 0),
    (date(2026, 3, 1), "health", "admin_penalty", "2026-01", date(2026, 1, 1), date(2026, 2, 9), None, 0,
     "missing", 20),  # an older as-of date: not shown
    (date(2026, 4, 5), "civil_affairs", "admin_penalty", "2026-03", date(2026, 3, 1), date(2026, 4, 9), None, 0,
     "missing", 1),  # after the report's date: never shown
]

ALERTS = [
    # as_of, severity, check, department, dataset, period, month, metric, value, previous, target, threshold, message
    (AS_OF, "warning", "rate", "market_regulation", "admin_license", "2026-02", date(2026, 2, 1), "timeliness",
     0.94, None, 0.95, 0.45, "及时率 94.00% 低于目标 95.00%"),
    (AS_OF, "error", "worsening", "transport", "admin_penalty", "2026-02", date(2026, 2, 1), "compliance",
     0.95, 0.995, 0.99, 0.03, "合规率较上月下降 4.50 个百分点 <script>alert(1)</script>"),
    (AS_OF, "error", "delivery", "tax", "tax_payment", "2026-02", date(2026, 2, 1), None, 21, None, None, 0,
     "2026-02 纳税信息未报送，已逾期 21 天"),
    (AS_OF, "warning", "delivery", "transport", "admin_penalty", "2026-02", date(2026, 2, 1), None, 10, None, None,
     0, "2026-02 行政处罚逾期 10 天报送"),
    (date(2026, 4, 2), "error", "rate", "civil_affairs", "admin_penalty", "2026-03", date(2026, 3, 1),
     "compliance", 0.5, None, 0.99, 0.05, "来自报告日期之后"),
]


def build_warehouse(path: Path, catalog, settings, rows=None, deliveries=DELIVERIES, alerts=ALERTS):
    con = duckdb.connect(str(path))
    ensure_schema(con, catalog, settings)
    con.execute(SCORECARD_DDL)
    con.executemany("INSERT INTO mart.scorecard VALUES (" + ", ".join("?" * 15) + ")",
                    scorecard_rows() if rows is None else rows)
    if deliveries:
        con.executemany("INSERT INTO audit.deliveries VALUES (?, ?, ?, ?, 'monthly', ?, ?, ?::TIMESTAMPTZ, ?, ?, ?)",
                        [list(d) for d in deliveries])
    if alerts:
        con.executemany("INSERT INTO audit.alerts VALUES (" + ", ".join("?" * 13) + ")", [list(a) for a in alerts])
    return con


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Settings:
    """A data root of this module's own (rendering the page once for all its tests)."""
    return Settings(tmp_path_factory.mktemp("trends") / "data", PROJECT_ROOT / "catalogs", "1GB", 1)


@pytest.fixture(scope="module")
def warehouse(env, catalog):
    con = build_warehouse(env.data_root.parent / "warehouse.duckdb", catalog, env)
    yield con
    con.close()


@pytest.fixture(scope="module")
def data(warehouse, env, catalog):
    return collect(warehouse, env, catalog, AS_OF)


@pytest.fixture(scope="module")
def html(data, catalog, env):
    return render(data, catalog, env.data_root / "reports")


def _svg(html: str, kind: str, key: str) -> str:
    match = re.search(rf'<svg[^>]*data-kind="{kind}" data-key="{key}".*?</svg>', html, re.S)
    assert match, (kind, key)
    return match.group()


def _series_json(svg: str) -> dict:
    return json.loads(unescape(re.search(r'data-series="([^"]*)"', svg).group(1)))


def _texts(fragment: str) -> list[str]:
    return [unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", fragment)]


# --- the series ---------------------------------------------------------------------------------------


def test_every_department_and_dataset_has_its_monthly_series(data):
    assert data.months == MONTHS and data.latest_month == date(2026, 2, 1)
    assert list(data.trends["department"]) == [r.group.key for r in data.monthly.ranking]
    assert set(data.trends["department"]) == set(DEPARTMENTS)
    assert list(data.trends["dataset"]) == sorted(DATASETS)
    for kind in ("department", "dataset"):
        for trend in data.trends[kind].values():
            assert list(trend.series) == list(METRICS)
            for s in trend.series.values():
                assert [m for m, _ in s.points] == MONTHS
    steady = data.trends["department"]["market_regulation"].series["compliance"]
    assert steady.count == 14 and steady.gaps == []
    assert steady.points[0] == (FIRST, _counts("market_regulation", "compliance", 0, FIRST)[0] / 1000)


def test_a_month_without_deliveries_is_a_gap_not_a_zero(data, html):
    for metric in METRICS:
        s = data.trends["department"]["emergency"].series[metric]
        assert s.count == 13 and dict(s.points)[GAP] is None and s.gaps == [GAP]
        assert all(v is None or v > 0 for _, v in s.points) or metric == "code_error"
    svg = _svg(html, "department", "emergency")
    assert 'data-points="compliance:13 completeness:13 timeliness:13 code_error:13 correction:13"' in svg
    series = _series_json(svg)
    assert series["months"][5] == "2025-06" and len(series["months"]) == 14
    assert series["compliance"][5] is None and series["compliance"][4] is not None
    assert sum(v is not None for v in series["compliance"]) == 13
    # matplotlib breaks the line at NaN: the series' path starts twice (M), it never drops to 0
    line = re.search(r'<g id="trend-department-emergency-compliance">\s*<path d="([^"]*)"', svg).group(1)
    assert line.count("M") == 2
    full = re.search(r'<g id="trend-department-market_regulation-compliance">\s*<path d="([^"]*)"',
                     _svg(html, "department", "market_regulation")).group(1)
    assert full.count("M") == 1


def test_the_y_axis_fits_the_values_and_the_target():
    lo, hi = y_limits("compliance", [0.97, 0.985, None, 1.0], 0.99)
    assert lo <= 0.97 and hi >= 1.0 and lo > 0.9 and hi < 1.01
    assert (lo, hi) != (0.0, 1.0)
    lo, hi = y_limits("timeliness", [0.99, 0.995], 0.95)  # the target below the values: still on the chart
    assert lo <= 0.95 < 0.995 <= hi and lo > 0.9
    lo, hi = y_limits("compliance", [1.0, 1.0], 0.99)
    assert lo < 0.99 and 1.0 <= hi <= 1.01
    lo, hi = y_limits("code_error", [0.0, 0.00003, 0.0002], 0.0001)
    assert lo <= 0 and hi >= 0.0002 and hi < 0.001
    assert rate_unit("code_error", [0.0, 0.0002], 0.0001) == (10000.0, "‱")
    assert rate_unit("code_error", [0.0, 0.02], 0.0001) == (100.0, "%")
    assert rate_unit("compliance", [0.97], 0.99) == (100.0, "%")


def test_the_charts_axes_are_scaled_in_the_page(html):
    svg = _svg(html, "department", "market_regulation")
    ylim = _series_json(svg)["ylim"]
    assert set(ylim) == set(METRICS)
    values = _series_json(svg)["compliance"]
    lo, hi = ylim["compliance"]
    assert lo <= min(values) and hi >= max(max(values), 0.99) and lo > 0.9  # not 0–100%
    labels = _texts(svg)
    assert any(re.fullmatch(r"9\d(\.\d+)?%", t) for t in labels)  # compliance ticks around 99%
    assert "0%" not in labels and "20%" not in labels
    assert any(t.endswith("‱") for t in labels)  # 重错码率 in ‱
    assert {"合规率", "完整率", "及时率", "重错码率", "纠正率"} <= set(labels)


def test_one_svg_per_department_and_per_dataset(html):
    kinds = re.findall(r'<svg[^>]*data-kind="(\w+)" data-key="(\w+)"', html)
    assert sorted(kinds) == sorted([("department", d) for d in DEPARTMENTS] + [("dataset", d) for d in DATASETS])
    assert len(re.findall(r"<svg\b", html)) == len(kinds)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # ids of every chart unique in the page


# --- ranking, movers, MoM ------------------------------------------------------------------------------


def test_the_most_improved_and_most_deteriorated(data, html):
    assert data.monthly.improved.department == "tax"
    assert data.monthly.deteriorated.department == "transport"
    assert data.monthly.improved.change < 0 < data.monthly.deteriorated.change
    improved = re.search(r'<li id="most-improved">(.*?)</li>', html, re.S).group(1)
    worse = re.search(r'<li id="most-deteriorated">(.*?)</li>', html, re.S).group(1)
    assert "国家税务总局乳山市税务局" in improved and "下降" in improved
    assert "乳山市交通运输局" in worse and "上升" in worse
    assert "衡量方法" in html and "未达标差距" in html


def test_ties_are_broken_by_department_code():
    a = Movement("b_dept", "乙", prior=0.02, recent=0.01, metrics=("compliance",))
    b = Movement("a_dept", "甲", prior=0.03, recent=0.02, metrics=("compliance",))
    c = Movement("c_dept", "丙", prior=0.01, recent=0.01, metrics=("compliance",))
    assert _movers([a, b, c]) == (b, None)
    assert _movers([c]) == (None, None)


def test_month_over_month_arrows_take_the_direction_into_account(data, html):
    transport = next(r for r in data.monthly.ranking if r.group.key == "transport")
    c = transport.changes["compliance"]
    assert (c.current, c.previous) == (0.975, 0.995)
    assert c.arrow == "▼" and c.better is False and c.shown == "▼2.00" and c.css == "worse"
    up = Change("code_error", 0.0003, 0.0001, "max")
    assert up.arrow == "▲" and up.better is False and up.shown == "▲2.00‱"
    down = Change("code_error", 0.0001, 0.0003, "max")
    assert down.arrow == "▼" and down.better is True and down.css == "good"
    assert Change("timeliness", 0.97, 0.95, "min").better is True
    assert Change("timeliness", 0.97, None, "min").shown == "—"
    assert Change("timeliness", 0.97, 0.97, "min").css == "same"
    row = re.search(r'<tr data-department="transport">.*?</tr>', html.split('id="monthly-ranking"')[1], re.S).group()
    cell = re.search(r'<td class="rate bad" data-metric="compliance".*?</td>', row, re.S).group()
    assert 'data-month="2026-02-01"' in cell and "97.50%" in cell
    assert re.search(r'class="chg worse"[^>]*>▼2.00<', cell)


def test_the_ranking_is_the_latest_month(data, html):
    ranking = data.monthly.ranking
    # both meet every target in 2026-02 (no shortfall): then by code; transport misses most
    assert [r.group.key for r in ranking] == ["emergency", "market_regulation", "tax", "transport"]
    assert [(r.group.met, r.group.applicable) for r in ranking[:2]] == [(5, 5), (5, 5)]
    assert all(r.group.rates["compliance"].rate == _counts(r.group.key, "compliance", 13, MONTHS[-1])[0] / 1000
               for r in ranking)
    table = html.split('id="monthly-ranking"')[1].split("</table>")[0]
    assert re.findall(r'<tr data-department="(\w+)"', table) == [r.group.key for r in ranking]


# --- the city --------------------------------------------------------------------------------------------


def test_year_to_date_is_the_sum_of_the_months(data, warehouse, html):
    rows = warehouse.execute(
        "SELECT metric, sum(numerator), sum(denominator) FROM mart.scorecard WHERE level = 'city_month' "
        "AND month BETWEEN DATE '2026-01-01' AND DATE '2026-02-01' GROUP BY metric").fetchall()
    assert len(rows) == 5
    for metric, num, den in rows:
        ytd = data.monthly.ytd[metric]
        assert (ytd.numerator, ytd.denominator) == (num, den) and ytd.rate == num / den
    by_hand = sum(_counts(d, "compliance", i, m)[0] for i, m in enumerate(MONTHS) if m.year == 2026
                  for d in DEPARTMENTS)
    assert data.monthly.ytd["compliance"].numerator == by_hand
    assert data.monthly.ytd_months == (date(2026, 1, 1), date(2026, 2, 1))
    cell = re.search(r'<td class="rate \w+" data-metric="compliance"\s*data-level="city_ytd".*?</td>', html, re.S)
    assert cell and f"{by_hand}/{len(DEPARTMENTS) * 2 * 1000}" in cell.group()
    latest = data.monthly.city["timeliness"]
    assert latest.numerator == sum(_counts(d, "timeliness", 13, MONTHS[-1])[0] for d in DEPARTMENTS)


# --- deliveries and alerts ------------------------------------------------------------------------------


def test_overdue_deliveries_newest_first(data, html):
    assert data.deliveries_as_of == AS_OF
    assert [(d.department, d.period, d.status) for d in data.overdue] == [
        ("tax", "2026-02", "missing"), ("transport", "2026-02", "late"), ("emergency", "2026-01", "missing")]
    assert data.delivery_counts == {"missing": 2, "late": 1, "on_time": 1}
    table = html.split('id="overdue"')[1].split("</table>")[0]
    assert re.findall(r'data-status="(\w+)" data-department="(\w+)"', table) == [
        ("missing", "tax"), ("late", "transport"), ("missing", "emergency")]
    assert "乳山市应急管理局" in table and "行政处罚" in table and "2026-02-09" in table and "未报送" in table
    assert "2026-03-20 09:30" in table  # the first receipt, Asia/Shanghai
    assert "civil_affairs" not in html and "来自报告日期之后" not in html  # nothing after the as-of date


def test_alerts_errors_first_then_by_department(data, html):
    assert [s.severity for s in data.alerts] == ["error", "warning"]
    assert [d.code for d in data.alerts[0].departments] == ["tax", "transport"]
    assert [d.code for d in data.alerts[1].departments] == ["market_regulation", "transport"]
    section = html.split('<h2 id="alerts">')[1].split("<h2")[0]
    assert re.findall(r'<h3 class="sev-\w+" data-severity="(\w+)"', section) == ["error", "warning"]
    groups = re.findall(r'<details class="alert-group" data-severity="(\w+)" data-department="(\w+)"', section)
    assert groups == [("error", "tax"), ("error", "transport"), ("warning", "market_regulation"),
                      ("warning", "transport")]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>" not in html  # escaped
    assert "逾期 21 天" in section and "94.00%" in section


def test_the_latest_operations_rows_before_the_date_are_used(warehouse, env, catalog):
    data = collect(warehouse, env, catalog, date(2026, 3, 20))
    assert data.deliveries_as_of == date(2026, 3, 1)
    assert [d.department for d in data.overdue] == ["health"]
    assert data.alerts_as_of is None and data.alerts == []
    page = render(data, catalog, env.data_root / "reports")
    assert "采用此前最近一次" in page and 'id="no-alerts"' in page


def test_months_after_the_as_of_date_are_left_out(tmp_path, catalog, settings):
    later = [_row("department_month", "tax", None, date(2026, 4, 1), m, 1, 2) for m in METRICS]
    con = build_warehouse(tmp_path / "w.duckdb", catalog, settings, rows=scorecard_rows() + later)
    data = collect(con, settings, catalog, AS_OF)
    con.close()
    assert data.latest_month == date(2026, 2, 1) and data.months[-1] == date(2026, 2, 1)


def test_without_monthly_rows_or_operations_the_sections_say_so(tmp_path, catalog, settings):
    cumulative = [r for r in scorecard_rows() if not r[0].endswith("_month")]
    con = build_warehouse(tmp_path / "w.duckdb", catalog, settings, rows=cumulative, deliveries=[], alerts=[])
    data = collect(con, settings, catalog, AS_OF)
    con.close()
    page = render(data, catalog, settings.data_root / "reports")
    assert data.latest_month is None and data.trends == {"department": {}, "dataset": {}}
    assert "暂无按月统计的数据" in page and 'id="no-deliveries"' in page and 'id="no-alerts"' in page
    assert "<svg" not in page
    assert 'data-level="city"' in page  # the cumulative figures stay


# --- the page as a whole --------------------------------------------------------------------------------


def test_the_page_loads_nothing_and_uses_no_date_but_the_as_of_date(html):
    assert "http://" not in html and "https://" not in html and "@import" not in html
    for name, value in re.findall(r'\b(src|href|xlink:href|action|poster|srcset)="([^"]*)"', html):
        assert value.startswith("#") or not re.match(r"^\s*([a-z][a-z0-9+.-]*:|//)", value, re.I), (name, value)
    assert "<script" not in html and "<link" not in html and "<img" not in html and "<image" not in html
    assert "报告日期 2026-03-31" in html
    from credit.report import today
    if today() != AS_OF:
        assert today().isoformat() not in html


def test_the_chart_alone_renders_its_attributes(data):
    trend = data.trends["dataset"]["admin_penalty"]
    svg = monthly_svg("dataset", "admin_penalty", trend.series, SHORT_NAMES)
    assert svg.startswith('<svg class="trend-chart" data-kind="dataset" data-key="admin_penalty"')
    assert "compliance:14" in svg
