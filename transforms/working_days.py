"""Chinese working days (工作日): public holidays and adjusted working weekends (调休).

In: dates. Out: whether a day is a working day, working days between two dates, the
deadline N working days after a decision, a timeliness verdict for one record, and the
whole calendar as rows (for the warehouse's SQL). The calendar is the maintained
``chinesecalendar`` package (State Council holiday notices, one per year). A date outside
the years it knows raises :class:`OutsideCalendar`: the caller counts and reports it, it
never guesses from weekdays alone.

Deadline rule (NDRC 2018 notice 424: decisions online "within 7 working days"): a record
decided on day ``d`` is on time when submitted on or before the N-th working day after
``d``; equivalently, when at most N working days lie in ``(d, submitted]``.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

import chinese_calendar
from chinese_calendar.constants import holidays as _HOLIDAYS


class OutsideCalendar(ValueError):
    """A date lies outside the years the holiday calendar knows."""

    def __init__(self, day: date) -> None:
        first, last = known_years()
        super().__init__(f"{day.isoformat()} is outside the holiday calendar's years {first}-{last}")
        self.day = day


def known_years() -> tuple[int, int]:
    """First and last year the installed calendar covers (1.11.0: 2004-2026)."""
    years = [d.year for d in _HOLIDAYS]
    return min(years), max(years)


def in_calendar(day: date) -> bool:
    first, last = known_years()
    return first <= day.year <= last


def is_working_day(day: date) -> bool:
    """A working day: Monday-Friday that is not a public holiday, or an adjusted working weekend day."""
    if not in_calendar(day):
        raise OutsideCalendar(day)
    return chinese_calendar.is_workday(day)


def working_days_between(start: date, end: date) -> int:
    """Working days in ``(start, end]``; 0 when ``end`` is not after ``start``."""
    if end <= start:
        return 0
    for day in (start, end):
        if not in_calendar(day):
            raise OutsideCalendar(day)
    return len(chinese_calendar.get_workdays(start + timedelta(days=1), end))


def add_working_days(day: date, n: int) -> date:
    """The n-th working day after ``day`` (n >= 1): the last day to submit a record decided on ``day``."""
    if n < 1:
        raise ValueError("n must be at least 1")
    current, counted = day, 0
    while counted < n:
        current += timedelta(days=1)
        counted += is_working_day(current)
    return current


class Verdict(StrEnum):
    ON_TIME = "on_time"
    LATE = "late"
    UNDATED = "undated"  # no readable date: counted as not on time
    OUTSIDE_CALENDAR = "outside_calendar"  # a warning: left out of the rate, never guessed


def timeliness(decided: date | None, submitted: date, working_days: int) -> Verdict:
    """The verdict for one record decided on ``decided`` and received on ``submitted``."""
    if decided is None:
        return Verdict.UNDATED
    if decided >= submitted:
        return Verdict.ON_TIME
    try:
        elapsed = working_days_between(decided, submitted)
    except OutsideCalendar:
        return Verdict.OUTSIDE_CALENDAR
    return Verdict.ON_TIME if elapsed <= working_days else Verdict.LATE


def calendar_rows() -> list[tuple[date, bool, int]]:
    """Every day of the known years: (day, is working day, working days from the first day up to it).

    Working days in ``(a, b]`` = ``seq(b) - seq(a)``: one join per date does the counting in SQL.
    """
    first, last = known_years()
    day, end = date(first, 1, 1), date(last, 12, 31)
    rows, seq = [], 0
    while day <= end:
        working = chinese_calendar.is_workday(day)
        seq += working
        rows.append((day, working, seq))
        day += timedelta(days=1)
    return rows
