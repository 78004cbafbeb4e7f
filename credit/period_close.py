"""The monthly close (月度结账): deliveries owed, rates of the month reported, findings with a severity.

In: a data interval ``[start, end)`` of the monthly close DAG (dags/credit_period_close.py) or of
``credit run-dags --from/--to``; the warehouse (writer connection) and the catalog.
Out: ``mart.scorecard`` as of the interval's last day (Asia/Shanghai: only files received by then,
corrections applied by then), ``audit.deliveries`` and ``audit.alerts`` for that day, and a
``CloseResult``. The close of an interval reports the month before it: that month's files are all
due within the interval. Everything is a function of the interval and the ledger, never of the clock,
so re-running a past interval writes the same rows again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb

from foundation.catalog import Catalog
from foundation.settings import Settings
from warehouse.alerts import Alert, write_alerts
from warehouse.deliveries import CalendarYearError, interval_as_of, write_deliveries
from warehouse.scorecard import ScorecardResult, write_scorecard


@dataclass(frozen=True)
class CloseResult:
    as_of: date
    month: date  # the month reported
    deliveries: int
    alerts: list[Alert]
    scorecard: ScorecardResult
    calendar_warning: str | None = None  # deliveries not checked: the as-of year is outside the calendar

    @property
    def errors(self) -> list[Alert]:
        return [a for a in self.alerts if a.severity == "error"]

    @property
    def period(self) -> str:
        return f"{self.month:%Y-%m}"


def reported_month(as_of: date) -> date:
    """The month a close as of ``as_of`` reports: the one before ``as_of``'s month."""
    return (as_of.replace(day=1) - timedelta(days=1)).replace(day=1)


def state_as_of(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog, as_of: date,
                since: date | None = None) -> CloseResult:
    """``mart.scorecard``, ``audit.deliveries`` and ``audit.alerts`` as of ``as_of``: what the monthly close,
    the daily report and ``credit report --as-of`` show. Late files count as findings when received from
    ``since`` (default: the first of ``as_of``'s month)."""
    month = reported_month(as_of)
    scorecard = write_scorecard(con, settings, catalog, as_of=as_of)
    warning = None
    try:
        deliveries = write_deliveries(con, catalog, as_of)
    except CalendarYearError as exc:  # the rates are still computed; deadlines cannot be
        deliveries, warning = 0, str(exc)
    alerts = write_alerts(con, catalog, settings.catalog_dir, as_of, month, since or as_of.replace(day=1))
    return CloseResult(as_of, month, deliveries, alerts, scorecard, warning)


def close_interval(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog, start: datetime,
                   end: datetime) -> CloseResult:
    """The close of the data interval ``[start, end)``: the state as of its last day."""
    since = interval_as_of(start + timedelta(microseconds=1))  # the first day inside the interval
    return state_as_of(con, settings, catalog, interval_as_of(end), since)
