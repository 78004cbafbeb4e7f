"""Expected deliveries and the overdue list (逾期未报): who owed which file by when, and what came.

In: the catalog's ``delivery`` rules (cadence, deadline in Chinese working days after the period,
first period, departments that owe a file, per-department overrides), the batch ledger
``audit.batches`` (each file's ``period`` and ``received_at``) and an as-of date.
Out: ``audit.deliveries`` rows for that date: one per department x dataset x period whose deadline
has passed by then, with ``on_time`` / ``late`` / ``missing`` and the days overdue (calendar days
past the deadline, to the first receipt or, still missing, to the as-of date). A file rejected as a
whole (unreadable, no header the catalog knows) is not a delivery: the department must send it again.
Only files received by the end of the as-of day (Asia/Shanghai) count, so a past date gives
what was known then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import duckdb

from foundation.catalog import Catalog, Dataset
from transforms.periods import Period, deadline, parse_label, period_of_day, periods_between
from transforms.working_days import in_calendar, known_years

TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True)
class Expected:
    department: str
    dataset_id: str
    period: Period
    deadline: date


def _first_period(since: str, cadence: str) -> Period:
    """The first period owed: ``since`` itself, or for a weekly rule the week holding the first day of ``since``."""
    first = parse_label(since)
    return period_of_day(first.start, "weekly") if cadence == "weekly" and first.cadence == "monthly" else first


class CalendarYearError(ValueError):
    """The holiday calendar has no data for the as-of year: deadlines cannot be counted."""


def expected(dataset: Dataset, as_of: date) -> list[Expected]:
    """Every delivery of ``dataset`` whose deadline lies before the end of ``as_of``.

    A deadline past the holiday calendar's last year lies after an ``as_of`` inside it: not due yet.
    An ``as_of`` outside the calendar is a CalendarYearError (install a newer chinesecalendar).
    """
    if dataset.delivery is None:
        return []
    if not in_calendar(as_of):
        first, last = known_years()
        raise CalendarYearError(f"the holiday calendar (chinesecalendar) covers {first}-{last}, not {as_of.year}: "
                                "deadlines in working days cannot be counted; upgrade chinesecalendar")
    out = []
    for department in dataset.expected_departments():
        rule = dataset.delivery.rule_for(department)
        for period in periods_between(_first_period(dataset.delivery.since, rule.cadence), as_of):
            try:
                due = deadline(period, rule.deadline_working_days)
            except NotImplementedError:
                continue  # due after the calendar's last year, so after as_of
            if due < as_of:  # the as-of day itself is still on time
                out.append(Expected(department, dataset.id, period, due))
    return out


def _received(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[tuple[str, str, str], tuple[datetime, int]]:
    rows = con.execute(
        f"""SELECT department, dataset_id, period, min(received_at), count(*)
            FROM audit.batches
            WHERE period IS NOT NULL AND status <> 'rejected' AND format IS DISTINCT FROM 'corrections'
              AND (received_at AT TIME ZONE '{TIME_ZONE}')::DATE <= ?
            GROUP BY ALL""",
        [as_of],
    ).fetchall()
    return {(d, ds, p): (first, n) for d, ds, p, first, n in rows}


def write_deliveries(con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date) -> int:
    """Recompute ``audit.deliveries`` for ``as_of`` (writer connection); returns the rows written."""
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo(TIME_ZONE)
    received = _received(con, as_of)
    rows = []
    for dataset in catalog.datasets.values():
        for e in expected(dataset, as_of):
            first, files = received.get((e.department, e.dataset_id, e.period.label), (None, 0))
            if first is None:
                status, overdue = "missing", (as_of - e.deadline).days
            else:
                day = first.astimezone(shanghai).date()
                status, overdue = ("late", (day - e.deadline).days) if day > e.deadline else ("on_time", 0)
            cadence = e.period.cadence
            rows.append([as_of, e.department, e.dataset_id, e.period.label, cadence, e.period.month, e.deadline,
                         first, files, status, overdue])
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM audit.deliveries WHERE as_of = ?", [as_of])
        if rows:
            con.executemany("INSERT INTO audit.deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(rows)


def interval_as_of(interval_end: datetime) -> date:
    """The as-of day of a data interval ``[start, end)``: the last day inside it, in Asia/Shanghai."""
    from zoneinfo import ZoneInfo

    return (interval_end.astimezone(ZoneInfo(TIME_ZONE)) - timedelta(microseconds=1)).date()
