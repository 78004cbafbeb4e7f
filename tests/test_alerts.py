"""Deliveries owed (warehouse/deliveries.py) and findings with a severity (warehouse/alerts.py), on a
real DuckDB warehouse with ledger and scorecard rows written by hand, so every expected row is known."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from foundation.catalog import CatalogError
from foundation.settings import PROJECT_ROOT
from warehouse.alerts import load_alert_rules, write_alerts
from warehouse.db import open_warehouse
from warehouse.deliveries import expected, write_deliveries
from warehouse.scorecard import SCORECARD_COLUMNS

pytestmark = pytest.mark.integration

SH = ZoneInfo("Asia/Shanghai")
CATALOG_DIR = PROJECT_ROOT / "catalogs"


def _batch(con, batch_id: str, dataset: str, department: str, period: str, received: datetime,
           status: str = "loaded") -> None:
    con.execute(
        """INSERT INTO audit.batches (batch_id, dataset_id, department, source_file, file_sha256, received_at,
               rows_in, rows_loaded, rows_quarantined, status, period, period_inferred)
           VALUES (?, ?, ?, ?, ?, ?, 1, 1, 0, ?, ?, false)""",
        [batch_id, dataset, department, f"{department}/{batch_id}.csv", batch_id, received, status, period])


def test_the_expected_grid_follows_cadence_override_and_first_period(catalog):
    penalty = expected(catalog.dataset("admin_penalty"), date(2025, 3, 1))
    weekly = [e.period.label for e in penalty if e.department == "market_regulation"]
    # Weeks from 2025-W01 (the week of 1 January) whose deadline (3 working days) is before 1 March.
    assert weekly == [f"2025-W{w:02d}" for w in range(1, 9)]
    monthly = sorted({(e.department, e.period.label) for e in penalty if e.department != "market_regulation"})
    assert monthly == [(d, p) for d in sorted(["ecology_environment", "urban_management", "tax", "transport"])
                       for p in ("2025-01",)]  # February's deadline (7 March) is not due yet
    assert expected(catalog.dataset("admin_adjudication"), date(2026, 3, 31)) == []  # its history starts 2026-03
    assert {e.period.label for e in expected(catalog.dataset("admin_adjudication"), date(2026, 4, 30))} == {"2026-03"}


def test_deliveries_on_time_late_missing_and_rejected_files_are_not_deliveries(settings, catalog):
    with open_warehouse(settings, catalog) as con:
        # tax_payment, tax, due 10 working days after each month: January 2025 -> 17 February (Spring Festival).
        _batch(con, "tax_payment-0000000000000001", "tax_payment", "tax", "2025-01",
               datetime(2025, 2, 17, 17, 0, tzinfo=SH))  # the deadline day itself: on time
        _batch(con, "tax_payment-0000000000000002", "tax_payment", "tax", "2025-02",
               datetime(2025, 3, 20, 9, 0, tzinfo=SH))  # due 14 March: late by 6 days
        _batch(con, "tax_payment-0000000000000003", "tax_payment", "tax", "2025-03",
               datetime(2025, 4, 10, 9, 0, tzinfo=SH), status="rejected")  # unreadable: still owed
        assert write_deliveries(con, catalog, date(2025, 4, 30)) > 0
        rows = con.execute("""SELECT period, deadline, status, days_overdue, files FROM audit.deliveries
                              WHERE dataset_id = 'tax_payment' ORDER BY period""").fetchall()
        again = write_deliveries(con, catalog, date(2025, 4, 30))
        count = con.execute("SELECT count(*) FROM audit.deliveries WHERE as_of = '2025-04-30'").fetchone()[0]
    assert rows == [
        ("2025-01", date(2025, 2, 17), "on_time", 0, 1),
        ("2025-02", date(2025, 3, 14), "late", 6, 1),
        ("2025-03", date(2025, 4, 15), "missing", 15, 0),
    ]
    assert count == again  # recomputed for the date, not appended


def _scorecard(con, rows: list[tuple]) -> None:
    columns = ", ".join(f'"{c}" {t}' for c, t, _ in SCORECARD_COLUMNS)
    con.execute(f"CREATE OR REPLACE TABLE mart.scorecard ({columns})")
    for department, dataset, month, metric, rate, target, direction in rows:
        meets = rate >= target if direction == "min" else rate <= target
        con.execute("""INSERT INTO mart.scorecard (level, department, dataset_id, month, metric, numerator,
                           denominator, rate, target, direction, meets_target)
                       VALUES ('department_dataset_month', ?, ?, ?, ?, 0, 1, ?, ?, ?, ?)""",
                    [department, dataset, month, metric, rate, target, direction, meets])


def test_severities_follow_the_thresholds(settings, catalog):
    feb, mar = date(2025, 2, 1), date(2025, 3, 1)
    with open_warehouse(settings, catalog) as con:
        _scorecard(con, [
            ("tax", "tax_payment", mar, "compliance", 0.985, 0.99, "min"),  # misses: warning
            ("tax", "tax_payment", mar, "completeness", 0.93, 0.99, "min"),  # below 0.94: error
            ("tax", "tax_payment", mar, "code_error", 0.005, 0.0001, "max"),  # above target, below 1%: warning
            ("housing_fund", "housing_fund", mar, "code_error", 0.02, 0.0001, "max"),  # above 1%: error
            ("housing_fund", "housing_fund", feb, "compliance", 0.999, 0.99, "min"),
            ("housing_fund", "housing_fund", mar, "compliance", 0.945, 0.99, "min"),  # warning, and 5.4 points worse
            ("housing_fund", "housing_fund", mar, "timeliness", 1.0, 0.95, "min"),  # meets: nothing
            ("housing_fund", "housing_fund", mar, "correction", 0.0, 0.95, "min"),  # not a checked metric
        ])
        write_deliveries(con, catalog, date(2025, 4, 30))
        alerts = write_alerts(con, catalog, CATALOG_DIR, date(2025, 4, 30), mar, date(2025, 4, 1))
        stored = con.execute("SELECT count(*) FROM audit.alerts WHERE as_of = '2025-04-30'").fetchone()[0]
    rates = {(a.department, a.metric, a.check_name): a.severity for a in alerts if a.check_name != "delivery"}
    assert rates == {
        ("tax", "compliance", "rate"): "warning",
        ("tax", "completeness", "rate"): "error",
        ("tax", "code_error", "rate"): "warning",
        ("housing_fund", "code_error", "rate"): "error",
        ("housing_fund", "compliance", "rate"): "warning",
        ("housing_fund", "compliance", "worsening"): "error",
    }
    deliveries = [a for a in alerts if a.check_name == "delivery"]
    # Nothing arrived: every file of the periods up to March is missing; an error in the close of the month
    # that holds its deadline (April), a warning ("仍未报送") in the closes after.
    assert deliveries and all(a.month <= mar for a in deliveries)
    deadlines = {(d, ds, p): due for d, ds, p, due in con_rows(settings)}
    assert all((a.severity == "error") == (deadlines[(a.department, a.dataset_id, a.period)] >= date(2025, 4, 1))
               for a in deliveries)
    assert {a.severity for a in deliveries} == {"error", "warning"}
    assert stored == len(alerts)
    worse = next(a for a in alerts if a.check_name == "worsening")
    assert (worse.previous, worse.value, worse.period) == (0.999, 0.945, "2025-03")
    assert "housing_fund" not in {a.department for a in alerts if a.metric == "correction"}


def con_rows(settings) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("SELECT department, dataset_id, period, deadline FROM audit.deliveries "
                           "WHERE as_of = '2025-04-30'").fetchall()


def test_a_malformed_alerts_file_names_file_and_setting(tmp_path: Path):
    catalog_dir = tmp_path / "catalogs"
    catalog_dir.mkdir()
    text = (CATALOG_DIR / "alerts.yaml").read_text(encoding="utf-8").replace("error_if_code_error_above: 0.01",
                                                                             "error_if_code_error_above: lots")
    (catalog_dir / "alerts.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=r"alerts\.yaml: rates\.error_if_code_error_above"):
        load_alert_rules(catalog_dir)
    assert load_alert_rules(CATALOG_DIR).rates.error_if_code_error_above == 0.01
