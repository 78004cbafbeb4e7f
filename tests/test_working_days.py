"""Chinese working days (transforms/working_days.py) on the real 2022-2026 holiday notices.

Each adjusted working weekend (调休) and holiday below is from the State Council's notice for
that year, written out by hand here rather than read from the library under test.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from transforms.working_days import (
    OutsideCalendar,
    Verdict,
    add_working_days,
    calendar_rows,
    is_working_day,
    known_years,
    timeliness,
    working_days_between,
)

pytestmark = pytest.mark.unit


def test_the_calendar_knows_2004_to_at_least_2026():
    first, last = known_years()
    assert first == 2004 and last >= 2026


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2024, 2, 4), True),  # Sunday worked before the 2024 Spring Festival
        (date(2024, 2, 12), False),  # Monday inside the Spring Festival holiday (10-17 Feb)
        (date(2024, 2, 18), True),  # Sunday worked after it
        (date(2024, 4, 7), True),  # Sunday worked after Qingming
        (date(2024, 5, 11), True),  # Saturday worked after Labour Day
        (date(2024, 9, 14), True),  # Saturday worked before Mid-Autumn
        (date(2024, 9, 16), False),  # Monday, Mid-Autumn holiday
        (date(2024, 10, 12), True),  # Saturday worked after National Day
        (date(2024, 10, 7), False),  # Monday inside National Day
        (date(2025, 1, 26), True),  # Sunday worked before the 2025 Spring Festival
        (date(2025, 2, 3), False),  # Monday inside it (28 Jan - 4 Feb)
        (date(2025, 2, 8), True),  # Saturday worked after it
        (date(2025, 10, 8), False),  # Wednesday, National Day + Mid-Autumn (1-8 Oct)
        (date(2025, 10, 11), True),  # Saturday worked after them
        (date(2026, 1, 4), True),  # Sunday worked after New Year 2026
        (date(2026, 2, 14), True),  # Saturday worked before the 2026 Spring Festival
        (date(2026, 2, 23), False),  # Monday, last day of it (15-23 Feb)
        (date(2026, 2, 28), True),  # Saturday worked after it
        (date(2026, 10, 10), True),  # Saturday worked after National Day
        (date(2026, 3, 7), False),  # an ordinary Saturday
        (date(2026, 3, 9), True),  # an ordinary Monday
    ],
)
def test_holidays_and_adjusted_working_weekends(day, working):
    assert is_working_day(day) is working


@pytest.mark.parametrize(
    ("decided", "deadline"),
    [
        # Fri 27 Sep 2024: Sun 29 Sep worked (1), 30 Sep (2), 1-7 Oct off, 8-11 Oct (3-6), Sat 12 Oct worked (7)
        (date(2024, 9, 27), date(2024, 10, 12)),
        # Fri 26 Sep 2025: Sun 28 Sep (1), 29, 30 (3), 1-8 Oct off, 9, 10 (5), Sat 11 Oct (6), Mon 13 Oct (7)
        (date(2025, 9, 26), date(2025, 10, 13)),
        # Thu 12 Feb 2026: 13 Feb (1), Sat 14 Feb worked (2), 15-23 Feb off, 24-27 Feb (3-6), Sat 28 Feb (7)
        (date(2026, 2, 12), date(2026, 2, 28)),
        # across the year end: Fri 27 Dec 2024, 30, 31 Dec (2), 1 Jan off, 2, 3, 6, 7, 8 Jan (7)
        (date(2024, 12, 27), date(2025, 1, 8)),
        # decided on a holiday (3 Oct 2024): 8-11 Oct (1-4), Sat 12 Oct (5), 14, 15 Oct (7)
        (date(2024, 10, 3), date(2024, 10, 15)),
        # Thu 29 Sep 2022: 30 Sep (1), 1-7 Oct off, Sat 8 and Sun 9 Oct worked (2, 3), 10-13 Oct (4-7)
        (date(2022, 9, 29), date(2022, 10, 13)),
    ],
)
def test_seven_working_day_deadlines(decided, deadline):
    assert add_working_days(decided, 7) == deadline
    assert working_days_between(decided, deadline) == 7
    assert timeliness(decided, deadline, 7) is Verdict.ON_TIME
    assert timeliness(decided, add_working_days(deadline, 1), 7) is Verdict.LATE
    assert timeliness(decided, deadline - timedelta(days=1), 7) is Verdict.ON_TIME


def test_a_weekday_count_that_skips_the_adjusted_saturday_would_be_wrong():
    """Decided Thu 29 Sep 2022, submitted Fri 14 Oct: 8 working days, late (Mon-Fri counting says 6)."""
    assert working_days_between(date(2022, 9, 29), date(2022, 10, 14)) == 8
    assert timeliness(date(2022, 9, 29), date(2022, 10, 14), 7) is Verdict.LATE
    assert timeliness(date(2022, 9, 30), date(2022, 10, 14), 7) is Verdict.ON_TIME  # exactly 7


@pytest.mark.parametrize(
    ("decided", "submitted", "verdict"),
    [
        (None, date(2024, 3, 1), Verdict.UNDATED),  # no readable date: not on time
        (date(2024, 3, 5), date(2024, 3, 1), Verdict.ON_TIME),  # decided after submission: nothing elapsed
        (date(2024, 3, 1), date(2024, 3, 1), Verdict.ON_TIME),  # same day
        (date(2003, 12, 30), date(2004, 1, 5), Verdict.OUTSIDE_CALENDAR),  # 2003 is not in the calendar
    ],
)
def test_verdicts_at_the_edges(decided, submitted, verdict):
    assert timeliness(decided, submitted, 7) is verdict


def test_after_the_last_known_year_is_a_warning_unless_nothing_elapsed():
    last = known_years()[1]  # 2026 with chinesecalendar 1.11; a newer release moves it
    assert timeliness(date(last, 12, 30), date(last + 1, 1, 4), 7) is Verdict.OUTSIDE_CALENDAR
    assert timeliness(date(last + 1, 1, 4), date(last, 12, 30), 7) is Verdict.ON_TIME  # decided after submission


def test_outside_the_calendar_raises_instead_of_guessing():
    with pytest.raises(OutsideCalendar, match="2003-12-31"):
        is_working_day(date(2003, 12, 31))
    with pytest.raises(OutsideCalendar):
        working_days_between(date(2003, 12, 1), date(2004, 1, 10))
    last = known_years()[1]
    with pytest.raises(OutsideCalendar):
        add_working_days(date(last, 12, 24), 7)  # the count runs past the last known year


def test_calendar_rows_count_working_days_like_the_functions():
    rows = calendar_rows()
    seq = {day: n for day, _, n in rows}
    assert rows[0][0] == date(known_years()[0], 1, 1) and rows[-1][0] == date(known_years()[1], 12, 31)
    assert len(rows) == (rows[-1][0] - rows[0][0]).days + 1
    pairs = [(date(2022, 9, 29), date(2022, 10, 14)), (date(2024, 12, 27), date(2025, 1, 8)),
             (date(2004, 1, 1), date(2026, 12, 31)), (date(2025, 1, 26), date(2025, 2, 8))]
    for start, end in pairs:
        assert seq[end] - seq[start] == working_days_between(start, end), (start, end)
    assert all(working == is_working_day(day) for day, working, _ in rows[::97])
