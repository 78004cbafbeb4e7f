"""The history's calendar: periods of a series, deadlines, holiday periods and submission times.

In: the first and last month of the history, a series' cadence and ``since``, a period and its
deadline rule (``transforms.periods``: deadlines in Chinese working days with 调休), a seeded
generator. Out: the periods a series owes (``series_periods``), ``deadline_of``, whether a
period's delivery window runs into the Spring Festival or National Day (``is_holiday_period``),
the planned submission time of a delivery (a working day after the period ends, by its
deadline, in office hours) and a late one (a few working days after the deadline), the sending
time of a file without a delivery rule (``irregular_submission``: inside the month it names), and
the working-day arithmetic the decision dates use (``working_days_between``, ``workday_back``).

Monthly holiday periods are fixed (``HOLIDAY_MONTHS``: deliveries of January and September
are due around the Spring Festival and National Day); a week is a holiday period when the
holiday falls between its end and its deadline.
"""

from __future__ import annotations

import functools
import random
from datetime import date, datetime, time, timedelta

import chinese_calendar

from sample_city.timeliness import SHANGHAI, is_workday
from transforms.periods import Period, deadline, next_period, parse_label, period_of_day

HOLIDAY_MONTHS = ("2025-01", "2025-09", "2026-01", "2026-09")
HOLIDAY_NAMES = ("Spring Festival", "National Day")
OFFICE_MINUTES = (8 * 60 + 30, 17 * 60 + 30)  # submissions between 08:30 and 17:30


def series_periods(first: Period, last: Period, cadence: str, since: str) -> list[Period]:
    """The periods a series owes from ``max(first, since)`` to ``last`` (months); a week counts
    in the month of its Thursday (``Period.month``)."""
    start = parse_label(since)
    out = []
    if cadence == "monthly":
        period = max(first, period_of_day(start.month, "monthly"))
        while period.start <= last.start:
            out.append(period)
            period = next_period(period)
        return out
    week = period_of_day(first.start, "weekly")  # its Thursday may lie in the month before
    while week.month <= last.start:
        owed = week.month >= start.start if start.cadence == "monthly" else week.start >= start.start
        if week.month >= first.start and owed:
            out.append(week)
        week = next_period(week)
    return out


@functools.cache
def deadline_of(period: Period, working_days: int) -> date:
    """``transforms.periods.deadline``, remembered."""
    return deadline(period, working_days)


def is_holiday_period(period: Period, working_days: int) -> bool:
    """Is the delivery of ``period`` due across the Spring Festival or National Day?"""
    if period.cadence == "monthly":
        return period.label in HOLIDAY_MONTHS
    day, due = period.end, deadline_of(period, working_days)
    while day < due:
        day += timedelta(days=1)
        name = chinese_calendar.get_holiday_detail(day)[1]
        if name in HOLIDAY_NAMES:
            return True
    return False


def working_days_between(earlier: date, later: date) -> int:
    """Working days in ``(earlier, later]`` (0 when ``later`` is not after ``earlier``)."""
    return sum(is_workday(earlier + timedelta(days=i)) for i in range(1, (later - earlier).days + 1))


def workday_back(day: date, lag: int) -> date:
    """The working day with exactly ``lag`` working days in ``(it, day]``."""
    counted = 0
    while counted < lag or not is_workday(day):
        counted += is_workday(day)
        day -= timedelta(days=1)
    return day


def workday_on_or_after(day: date) -> date:
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def add_workdays(day: date, count: int) -> date:
    """The ``count``-th working day after ``day``."""
    while count > 0:
        day += timedelta(days=1)
        count -= is_workday(day)
    return day


def office_time(day: date, rng: random.Random) -> datetime:
    minute = rng.randrange(*OFFICE_MINUTES)
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=SHANGHAI)


def planned_submission(period: Period, working_days: int, rng: random.Random) -> datetime:
    """On time: the k-th working day after the period ends (k in 1..deadline), in office hours."""
    return office_time(add_workdays(period.end, rng.randint(1, max(1, working_days))), rng)


def irregular_submission(period: Period, after: date, rng: random.Random) -> datetime:
    """A file sent when something changed (no delivery rule): on one of the first working days from
    ``after`` (its last event, a working day of the period) to the period's end, in office hours, so
    the month its name states is the month it arrives in."""
    days = [after + timedelta(days=i) for i in range((period.end - after).days + 1)]
    days = [d for d in days if is_workday(d)] or [workday_on_or_after(after)]
    return office_time(rng.choice(days[:4]), rng)


def late_submission(period: Period, working_days: int, rng: random.Random) -> datetime:
    """Late: one to four working days after the deadline, in office hours."""
    return office_time(add_workdays(deadline_of(period, working_days), rng.randint(1, 4)), rng)
