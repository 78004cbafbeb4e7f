"""Months of operation through Airflow: a strict backfill of the small two-year city, against its truth.

``credit demo-data --entities 300 --to 2025-04`` writes four months of periodic deliveries;
``credit run-dags --from 2025-01 --to 2025-03 --ingest-every-month`` runs, for each month, every
ingest DAG for the interval ending with that month's close (each takes only the files received by
then) and the monthly close (dags/credit_period_close.py) with the SQLite metadata database and a
local mail sink. Checked: the monthly rates per department against the truth's files, the overdue
list of every close against the truth's deliveries, red closes exactly where errors were found,
one digest per department per close, and a second backfill that adds nothing.
"""

from __future__ import annotations

import csv
import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import HISTORY_BACKFILL as BACKFILL
from conftest import credit_cli, truth_monthly_rates, truth_rows

from foundation.catalog import get_catalog
from foundation.settings import PROJECT_ROOT
from warehouse.alerts import load_alert_rules

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHANGHAI = ZoneInfo("Asia/Shanghai")
CLOSES = {date(2025, 2, 28): "2025-01", date(2025, 3, 31): "2025-02", date(2025, 4, 30): "2025-03"}


@pytest.fixture
def history(history_city) -> Path:
    return history_city


def _con(data_root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True)


def _submitted(row: dict) -> date | None:
    return datetime.fromisoformat(row["submitted_at"]).date() if row["submitted_at"] else None


def test_the_overdue_list_of_every_close_equals_the_truth(history):
    deliveries = truth_rows(history, "deliveries.csv")
    con = _con(history)
    for as_of in CLOSES:
        expected = set()
        for d in deliveries:
            due = date.fromisoformat(d["deadline"])
            if due >= as_of or d["resent"] == "true":
                continue
            got = _submitted(d)
            status = "missing" if got is None or got > as_of else ("late" if got > due else "on_time")
            expected.add((d["department"], d["dataset_id"], d["period"], status))
        found = set(con.execute("SELECT department, dataset_id, period, status FROM audit.deliveries WHERE as_of = ?",
                                [as_of]).fetchall())
        assert found == expected, (as_of, found ^ expected)
        assert any(s != "on_time" for *_, s in expected) or as_of == date(2025, 2, 28)


def test_monthly_compliance_and_timeliness_per_department_equal_the_truth(history):
    """The last close (as of 2025-04-30) left mart.scorecard as of then: every file of months 1-3 is in."""
    expected = {k: v for k, v in truth_monthly_rates(history, received_by=date(2025, 4, 30)).items()
                if k[1] <= "2025-03"}
    con = _con(history)
    got = {(d, f"{m:%Y-%m}", metric): [n, den] for d, m, metric, n, den in con.execute(
        """SELECT department, month, metric, numerator, denominator FROM mart.scorecard
           WHERE level = 'department_month' AND metric IN ('compliance', 'timeliness') AND month <= '2025-03-01'"""
    ).fetchall()}
    assert got == expected
    assert len({k[0] for k in got}) >= 12  # every department that delivers


def test_closes_are_red_exactly_where_errors_were_found_and_missing_feeds_are_errors(history):
    db = sqlite3.connect(history / "airflow" / "airflow.db")
    runs = db.execute("SELECT logical_date, state FROM dag_run WHERE dag_id = 'credit_period_close'").fetchall()
    db.close()
    assert len(runs) == len(CLOSES)
    con = _con(history)
    errors = dict(con.execute("SELECT as_of, count(*) FILTER (WHERE severity = 'error') FROM audit.alerts "
                              "GROUP BY as_of").fetchall())
    # A missing file of a period up to the month closed is a finding: an error in the close whose month
    # holds its deadline, a warning in later ones.
    missing = {(as_of, d, ds, p, "error" if due >= as_of.replace(day=1) else "warning")
               for as_of, d, ds, p, due, month in con.execute(
                   "SELECT as_of, department, dataset_id, period, deadline, month FROM audit.deliveries "
                   "WHERE status = 'missing'").fetchall()
               if month <= date.fromisoformat(CLOSES[as_of] + "-01")}
    found = set(con.execute(
        """SELECT a.as_of, a.department, a.dataset_id, a.period, a.severity FROM audit.alerts a
           JOIN audit.deliveries d USING (as_of, department, dataset_id, period)
           WHERE a.check_name = 'delivery' AND d.status = 'missing'""").fetchall())
    assert found == missing
    # The close's logical date is the end of its interval (UTC in the metadata database): as of the day before.
    states = {(datetime.fromisoformat(str(logical)).replace(tzinfo=UTC).astimezone(SHANGHAI) - timedelta(days=1))
              .date(): state for logical, state in runs}
    assert states == {as_of: "failed" if errors.get(as_of, 0) else "success" for as_of in CLOSES}


def test_compliance_and_timeliness_findings_equal_the_truth(history):
    """Each close judges its reported month's department x dataset rates with catalogs/alerts.yaml:
    recomputed here from the truth's files, the warnings and errors must be exactly the same."""
    rules = load_alert_rules(PROJECT_ROOT / "catalogs")
    targets = {"compliance": 0.99, "timeliness": 0.95}
    timely = {r["file"]: r for r in truth_rows(history, "timeliness.csv")}
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for f in truth_rows(history, "files.csv"):
        key = (f["department"], f["dataset_id"], f["month"])
        sums[key + ("compliance",)][0] += int(f["rows_loaded"])
        sums[key + ("compliance",)][1] += int(f["rows_in"])
        if timely[f["file"]].get("denominator"):
            sums[key + ("timeliness",)][0] += int(timely[f["file"]]["numerator"])
            sums[key + ("timeliness",)][1] += int(timely[f["file"]]["denominator"])
    expected = set()
    for (dept, dataset, month, metric), (num, den) in sums.items():
        if not den or month not in CLOSES.values() or num >= targets[metric] * den:
            continue
        error = num / den < targets[metric] - rules.rates.error_if_below_target_by[metric]
        expected.add((dept, dataset, month, metric, "error" if error else "warning"))
    con = _con(history)
    found = set(con.execute(
        """SELECT department, dataset_id, period, metric, severity FROM audit.alerts
           WHERE check_name = 'rate' AND metric IN ('compliance', 'timeliness')""").fetchall())
    assert found == expected
    assert any(s == "error" for *_, s in expected) and any(s == "warning" for *_, s in expected)


def test_one_digest_per_department_per_close(history):
    con = _con(history)
    per_close = con.execute("SELECT as_of, list(DISTINCT department ORDER BY department) FROM audit.alerts "
                            "GROUP BY as_of").fetchall()
    catalog = get_catalog()
    messages = [message_from_bytes(p.read_bytes(), policy=policy.default)
                for p in sorted((history / "mail").glob("*.eml"))]
    expected = sorted(catalog.department(d).email for _, depts in per_close for d in depts)
    assert sorted(str(m["to"]) for m in messages) == expected
    assert len(expected) > len(per_close)  # several departments per close, one message each
    assert all(str(m["subject"]).startswith("【数据质量通报】") for m in messages)


def test_a_second_backfill_adds_nothing(history, tmp_path):
    def state(root: Path) -> dict:
        con = _con(root)
        out = {
            "batches": con.execute("SELECT count(*), sum(rows_in), sum(rows_loaded) FROM audit.batches").fetchall(),
            "deliveries": con.execute("SELECT * FROM audit.deliveries ORDER BY ALL").fetchall(),
            "alerts": con.execute("SELECT * FROM audit.alerts ORDER BY ALL").fetchall(),
            "clean": con.execute("SELECT count(*) FROM clean.admin_penalty").fetchall(),
            "quarantine": con.execute("SELECT count(*) FROM quarantine.rows").fetchall(),
            "month_rates": con.execute("SELECT * EXCLUDE (rate) FROM mart.scorecard WHERE month IS NOT NULL "
                                       "ORDER BY ALL").fetchall(),
        }
        con.close()
        return out

    import shutil

    copy = tmp_path / "data"
    shutil.copytree(history, copy, symlinks=True)
    before = state(copy)
    mail_before = len(list((copy / "mail").glob("*.eml")))
    credit_cli(BACKFILL, copy)
    assert state(copy) == before
    # The closes ran again (same logical dates, cleared and re-run): their digests went out again, once each.
    assert len(list((copy / "mail").glob("*.eml"))) == 2 * mail_before
    with (copy / "truth" / "deliveries.csv").open(encoding="utf-8") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) > 0


def test_a_report_as_of_a_past_day_is_what_the_close_wrote_then(history, tmp_path):
    """The last close wrote the report as of 2025-04-30 while April's files were still in the inbox. Load
    them (received in May) and ask for the report as of 2025-04-30 again: the same bytes."""
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(history, copy, symlinks=True)
    written = (copy / "reports" / "quality-report-2025-04-30.html").read_bytes()
    credit_cli(["ingest-inbox"], copy)
    con = _con(copy)
    later = con.execute("SELECT count(*) FROM audit.batches WHERE received_at >= '2025-04-30 16:00:00+00'"
                        ).fetchall()[0][0]
    con.close()
    assert later > 0  # files received after the day now sit in the warehouse
    credit_cli(["report", "--as-of", "2025-04-30"], copy)
    assert (copy / "reports" / "quality-report-2025-04-30.html").read_bytes() == written
