"""Reporting periods of periodic feeds: which period a file covers and when it was due.

In: a file name (``xzcf_scjg_2025-03.csv``, ``行政处罚_2025年3月.xlsx``, ``penalty_2025-W07.csv``,
``税务_202503.jsonl`` ...), the day it was received, and a dataset's delivery rule (cadence and
deadline in Chinese working days after the period ends, ``chinese_calendar`` with 调休).
Out: a ``Period`` (``2025-03`` or ``2025-W07``, its first and last day, its month) and its deadline.

A name that states no period is read as the last whole period before the day it arrived
(a monthly feed received in April is March's); the batch ledger notes that it was inferred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import chinese_calendar

Cadence = Literal["monthly", "weekly"]

# A file whose name says it re-sends a period with fixes replaces that period's earlier files.
RESENT_MARKERS = ("更正", "重报", "重发", "补正", "修正", "corrected", "resend", "resent")

# Week before month: "2025-W07" must not read as month 07 of year 2025.
_WEEK = re.compile(r"(?<!\d)(20\d{2})年?[-_ ]?(?:W|w|第)(\d{1,2})周?(?!\d)")
_MONTH = [
    re.compile(r"(?<!\d)(20\d{2})年(\d{1,2})月"),
    re.compile(r"(?<!\d)(20\d{2})[-_.](\d{1,2})(?![\d-])"),
    re.compile(r"(?<!\d)(20\d{2})(0[1-9]|1[0-2])(?!\d)"),
]


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date  # the last day, inclusive
    label: str  # 2025-03 or 2025-W07

    @property
    def cadence(self) -> Cadence:
        return "weekly" if "W" in self.label else "monthly"

    @property
    def month(self) -> date:
        """The month the period counts in for monthly trends: its own, or the month of a week's Thursday."""
        anchor = self.start + timedelta(days=3) if self.cadence == "weekly" else self.start
        return anchor.replace(day=1)


def month_period(year: int, month: int) -> Period:
    start = date(year, month, 1)
    end = (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return Period(start, end, f"{year:04d}-{month:02d}")


def week_period(year: int, week: int) -> Period:
    start = date.fromisocalendar(year, week, 1)
    return Period(start, start + timedelta(days=6), f"{year:04d}-W{week:02d}")


def period_of_day(day: date, cadence: Cadence) -> Period:
    if cadence == "weekly":
        year, week, _ = day.isocalendar()
        return week_period(year, week)
    return month_period(day.year, day.month)


def next_period(period: Period) -> Period:
    return period_of_day(period.end + timedelta(days=1), period.cadence)


def parse_label(label: str) -> Period:
    """``2025-03`` or ``2025-W07`` back to its period; ValueError otherwise."""
    if m := re.fullmatch(r"(\d{4})-W(\d{2})", label):
        return week_period(int(m[1]), int(m[2]))
    if m := re.fullmatch(r"(\d{4})-(\d{2})", label):
        return month_period(int(m[1]), int(m[2]))
    raise ValueError(f"'{label}' is not a period (2025-03 or 2025-W07)")


def period_in_name(file_name: str) -> Period | None:
    """The period a file name states, or None. Impossible ones (month 13, week 54) are None too."""
    stem = file_name.rsplit("/", 1)[-1]
    if m := _WEEK.search(stem):
        try:
            return week_period(int(m[1]), int(m[2]))
        except ValueError:
            return None
    for pattern in _MONTH:
        if (m := pattern.search(stem)) and 1 <= int(m[2]) <= 12:
            return month_period(int(m[1]), int(m[2]))
    return None


def period_of_file(file_name: str, received: date, cadence: Cadence) -> tuple[Period, bool]:
    """The period a file covers and whether it was inferred (no period in the name): then it is
    the last whole period before the day it was received."""
    stated = period_in_name(file_name)
    if stated is not None:
        return stated, False
    current = period_of_day(received, cadence)
    return period_of_day(current.start - timedelta(days=1), cadence), True


def is_resend(file_name: str) -> bool:
    """The name marks a corrected re-send of its period (``gjj_jc_2025-05_更正.jsonl``)."""
    stem = file_name.rsplit("/", 1)[-1].lower()
    return any(marker in stem for marker in RESENT_MARKERS)


def add_working_days(day: date, working_days: int) -> date:
    """The ``working_days``-th working day after ``day`` (Chinese calendar with 调休).

    ``chinese_calendar`` raises NotImplementedError outside the years it knows: that propagates.
    """
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        counted += chinese_calendar.is_workday(day)
    return day


def deadline(period: Period, working_days: int) -> date:
    """The last day a delivery of ``period`` is on time: N working days after the period ends."""
    return add_working_days(period.end, working_days)


def periods_between(first: Period, last_day: date) -> list[Period]:
    """``first`` and every later period of its cadence that has ended by ``last_day``."""
    out, period = [], first
    while period.end <= last_day:
        out.append(period)
        period = next_period(period)
    return out
