"""The two-year city (2025-01 .. 2026-11, 3000 entities: every file of the catalog's cadence, 770 of
them) through Airflow as `make demo` runs it: every ingest DAG once, then the 23 monthly closes, each as
of its own last day. Checked against the generator's truth: the monthly rates per department, the
overdue list, the designed improving and worsening departments, red closes exactly where errors were
found and green ones where only warnings were, one digest per department per close.
"""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import TWO_YEAR_TIMEOUT, truth_monthly_rates, truth_rows

from foundation.catalog import get_catalog

pytestmark = [pytest.mark.e2e, pytest.mark.slow, TWO_YEAR_TIMEOUT]

SHANGHAI = ZoneInfo("Asia/Shanghai")
LAST_CLOSE = date(2026, 12, 31)  # the close of 2026-11


@pytest.fixture
def two_years(two_year_city) -> Path:
    return two_year_city


def _con(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)


def test_monthly_rates_per_department_equal_the_truth_for_every_month(two_years):
    """合规率 and 及时率 per department and month (the last close left mart.scorecard as of 2026-12-31)."""
    con = _con(two_years)
    got = {(d, f"{m:%Y-%m}", metric): [n, den] for d, m, metric, n, den in con.execute(
        """SELECT department, month, metric, numerator, denominator FROM mart.scorecard
           WHERE level = 'department_month' AND metric IN ('compliance', 'timeliness')""").fetchall()}
    assert got == truth_monthly_rates(two_years)
    months = {k[1] for k in got}
    assert len(months) == 23  # 2025-01 .. 2026-11


def test_the_overdue_list_equals_the_truths_missing_and_late_deliveries(two_years):
    truth: dict[tuple, str] = {}
    for d in truth_rows(two_years, "deliveries.csv"):  # a period's first arrival decides; re-sends do not
        key = (d["department"], d["dataset_id"], d["period"])
        if d["resent"] != "true" and date.fromisoformat(d["deadline"]) < LAST_CLOSE and key not in truth:
            truth[key] = d["status"]
    con = _con(two_years)
    found = {(d, ds, p): s for d, ds, p, s in con.execute(
        "SELECT department, dataset_id, period, status FROM audit.deliveries WHERE as_of = ? AND month <= ?",
        [LAST_CLOSE, date(2026, 11, 1)]).fetchall()}
    assert found == truth
    assert {k for k, s in found.items() if s == "missing"} == {
        ("transport", ds, p) for ds in ("admin_penalty",) for p in ("2025-07", "2025-08")}
    assert sum(s == "late" for s in found.values()) > 20


def test_the_improving_and_the_worsening_departments_come_out_as_designed(two_years, tmp_path, monkeypatch):
    from credit.period_close import state_as_of
    from credit.report import collect
    from foundation.settings import get_settings
    from warehouse.db import open_warehouse

    copy = tmp_path / "data"
    shutil.copytree(two_years, copy, symlinks=True)
    monkeypatch.setenv("CREDIT_DATA_DIR", str(copy))
    settings = get_settings()
    catalog = get_catalog()
    designs = {d["department"]: d for d in truth_rows(two_years, "quality_design.csv")}
    improving = next(d for d, v in designs.items() if v["design"] == "improving")
    worsening = next(d for d, v in designs.items() if v["design"] == "worsening")
    movers = {}
    with open_warehouse(settings, catalog) as con:
        for as_of in (date(2025, 12, 31), date(2026, 11, 30)):
            state_as_of(con, settings, catalog, as_of)
            monthly = collect(con, settings, catalog, as_of).monthly
            movers[as_of] = (monthly.improved.department, monthly.deteriorated.department)
    assert movers[date(2025, 12, 31)][0] == improving  # during its correction campaign
    assert movers[date(2026, 11, 30)][1] == worsening


def test_closes_are_red_exactly_where_errors_and_green_where_only_warnings(two_years):
    db = sqlite3.connect(two_years / "airflow" / "airflow.db")
    runs = db.execute("SELECT logical_date, state FROM dag_run WHERE dag_id = 'credit_period_close'").fetchall()
    db.close()
    states = {(datetime.fromisoformat(str(logical)).replace(tzinfo=UTC).astimezone(SHANGHAI) - timedelta(days=1))
              .date(): state for logical, state in runs}
    con = _con(two_years)
    kinds = dict(con.execute("SELECT as_of, list(DISTINCT severity) FROM audit.alerts GROUP BY as_of").fetchall())
    assert len(states) == 23
    assert states == {d: "failed" if "error" in kinds.get(d, []) else "success" for d in states}
    green = [d for d, s in states.items() if s == "success"]
    assert green and all("warning" in kinds[d] for d in green)  # green, with warnings recorded


def test_one_digest_per_department_per_close(two_years):
    con = _con(two_years)
    per_close = con.execute("SELECT as_of, list(DISTINCT department) FROM audit.alerts GROUP BY as_of").fetchall()
    catalog = get_catalog()
    expected = sorted(catalog.department(d).email for _, depts in per_close for d in depts)
    messages = [message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in sorted((two_years / "mail").glob("*.eml"))]
    assert sorted(str(m["to"]) for m in messages) == expected


def test_the_final_report_shows_two_years_of_monthly_points_with_gaps_where_nothing_came(two_years):
    """The last close's report (as of 2026-12-31): every department's chart has a point for each month it
    sent files (23 for most), and transport's missing 2025-07 and 2025-08 are gaps, not zeros."""
    import html
    import json
    import re

    page = (two_years / "reports" / "latest.html").read_text(encoding="utf-8")
    charts = {m["key"]: json.loads(html.unescape(m["series"])) for m in re.finditer(
        r'<svg[^>]*data-kind="department" data-key="(?P<key>[a-z_]+)"[^>]*data-series="(?P<series>[^"]*)"', page)}
    con = _con(two_years)
    months_with_files = dict(con.execute(
        """SELECT department, count(DISTINCT month) FROM mart.scorecard
           WHERE level = 'department_month' AND metric = 'compliance' GROUP BY department""").fetchall())
    assert set(charts) == set(months_with_files)
    for department, series in charts.items():
        assert len(series["months"]) == 23
        points = [v for v in series["compliance"] if v is not None]
        assert len(points) == months_with_files[department] >= 12, department
    transport = charts["transport"]
    gaps = [m for m, v in zip(transport["months"], transport["compliance"], strict=True) if v is None]
    assert gaps == ["2025-07", "2025-08"]
    assert sum(n == 23 for n in months_with_files.values()) >= 12
