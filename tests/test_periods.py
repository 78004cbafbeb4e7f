"""Reporting periods (transforms/periods.py): names offices give files, deadlines across holidays."""

from __future__ import annotations

from datetime import date

import pytest

from transforms.periods import (
    deadline,
    is_resend,
    month_period,
    parse_label,
    period_in_name,
    period_of_file,
    periods_between,
    week_period,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("name", "label"), [
    ("xzcf_scjg_2025-03.csv", "2025-03"),
    ("环境行政处罚_2025年3月.csv", "2025-03"),
    ("环境行政处罚_2025年03月.xlsx", "2025-03"),
    ("nashui_202503.csv", "2025-03"),
    ("gjj_jc_2025.05_更正.jsonl", "2025-05"),
    ("market_regulation/xzcf_scjg_2025-W07.csv", "2025-W07"),
    ("行政处罚_2025年第7周.xlsx", "2025-W07"),
    ("penalty_2026w01.csv", "2026-W01"),
    ("penalty_2020-W53.csv", "2020-W53"),  # 2020 has 53 ISO weeks
])
def test_the_period_a_name_states(name, label):
    period = period_in_name(name)
    assert period is not None and period.label == label
    assert parse_label(label) == period


@pytest.mark.parametrize("name", [
    "transport_penalty_export.csv",  # no period
    "report_2025.csv",  # a year is not a period
    "x_2025-13.csv", "x_202513.csv",  # no month 13
    "x_2025-W54.csv", "x_2025-W53.csv",  # 2025 has 52 ISO weeks
    "导出_20250315.csv",  # an export date, not a period: inferred from the receipt instead
])
def test_no_period_where_the_name_states_none(name):
    assert period_in_name(name) is None


def test_a_name_without_period_is_the_last_whole_period_before_receipt():
    assert period_of_file("export.csv", date(2025, 4, 3), "monthly") == (month_period(2025, 3), True)
    assert period_of_file("export.csv", date(2025, 4, 3), "weekly") == (week_period(2025, 13), True)
    assert period_of_file("x_2025-01.csv", date(2025, 4, 3), "monthly") == (month_period(2025, 1), False)


def test_weeks_count_in_the_month_of_their_thursday():
    assert week_period(2025, 1).month == date(2025, 1, 1)  # 2024-12-30 .. 2025-01-05, Thursday 2 January
    assert week_period(2025, 40).month == date(2025, 10, 1)  # 29 September .. 5 October, Thursday 2 October
    assert week_period(2025, 44).month == date(2025, 10, 1)  # 27 October .. 2 November, Thursday 30 October


def test_deadlines_count_chinese_working_days_with_adjusted_weekends():
    # September 2025: 1-8 October off, Saturday 11 October worked: the 5th working day after 30 September
    # is Tuesday 14 October (9, 10, 11, 13, 14).
    assert deadline(month_period(2025, 9), 5) == date(2025, 10, 14)
    # January 2025: Spring Festival 28 January - 4 February, so 5 working days after 31 January end on
    # Monday 10 February (5, 6, 7, Saturday 8 worked, 10).
    assert deadline(month_period(2025, 1), 5) == date(2025, 2, 10)
    # Week 40 of 2025 ends Sunday 5 October: 3 working days are 9, 10 and Saturday 11 October.
    assert deadline(week_period(2025, 40), 3) == date(2025, 10, 11)


def test_periods_between_stops_at_the_last_whole_period():
    months = periods_between(month_period(2025, 11), date(2026, 2, 27))
    assert [p.label for p in months] == ["2025-11", "2025-12", "2026-01"]
    weeks = periods_between(week_period(2025, 52), date(2026, 1, 11))
    assert [p.label for p in weeks] == ["2025-W52", "2026-W01", "2026-W02"]


@pytest.mark.parametrize(("name", "resend"), [
    ("gjj_jc_2025-05_更正.jsonl", True), ("xzcf_2025-03_重报.csv", True), ("penalty_2025-03_corrected.csv", True),
    ("xzcf_2025-03.csv", False), ("xzcf_2025-03_2.csv", False),  # a second part is not a replacement
])
def test_a_resend_is_marked_in_the_name(name, resend):
    assert is_resend(name) is resend
