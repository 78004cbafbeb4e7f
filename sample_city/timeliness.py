"""When each feed was submitted, its decision dates relative to that, and the timeliness truth.

In: a built ``Feed`` (before defects: ``set_submission`` re-dates its decisions) and, after the
defects, the same feed (``timeliness_truth`` counts records on time / late / undated /
outside the holiday calendar, in Chinese working days). Out: ``feed.submitted_at`` (the
file's mtime), the rows re-dated in place, and one ``timeliness.csv`` row per feed.
"""

from __future__ import annotations

import functools
import random
import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import chinese_calendar

from foundation.catalog import Dataset, FieldType
from sample_city.entities import _zh_date
from sample_city.rows import Feed, Row

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Submission(NamedTuple):
    at: str  # when the department delivered the file, Asia/Shanghai local time (the file's mtime)
    late: float = 0.0  # share of decision dates set more than the catalog deadline before `at`


# fmt: off
SUBMISSIONS: dict[str, Submission] = {
    "market_regulation/legal_entity_register_2022.csv": Submission("2022-12-30 16:05"),
    "civil_affairs/社会组织法人登记信息_2022.xlsx": Submission("2022-12-29 10:12"),
    "approval/行政许可信息_2022年.xlsx": Submission("2022-12-16 15:30", 0.02),
    "market_regulation/xzxk_scjg_2022.csv": Submission("2022-11-18 11:00", 0.04),
    "health/health_licence_2022.jsonl": Submission("2022-10-08 09:40", 0.10),  # an adjusted working Saturday
    "market_regulation/xzcf_scjg_2022.csv": Submission("2022-12-09 17:20", 0.03),
    "ecology_environment/环境行政处罚_2022.csv": Submission("2022-11-25 14:00", 0.08),
    "urban_management/penalty_zhzf_2022.xlsx": Submission("2022-12-02 10:30", 0.12),
    "tax/税务行政处罚_2022.jsonl": Submission("2022-10-14 10:05"),  # LATE_FEED
    "transport/transport_penalty_export.csv": Submission("2022-11-11 09:00"),
    "tax/nashui_2022.csv": Submission("2023-01-30 09:30"),  # after the Spring Festival; periods as they are
    "human_resources/shebao_2022H1.csv": Submission("2022-07-15 10:00"),
    "tax/社会保险费_2022H2.csv": Submission("2023-01-13 15:45"),
    "housing_fund/gjj_jc_2022.jsonl": Submission("2023-01-10 09:20"),
    "water_supply/utility_water_2022.csv": Submission("2023-01-06 11:30"),
    "power_supply/utility_power_2022.xlsx": Submission("2023-01-09 16:00"),
    "gas_supply/燃气缴费_2022.csv": Submission("2023-01-11 10:40"),
    "heat_supply/heat_utility_2022.jsonl": Submission("2023-01-12 14:10"),
    "ecology_environment/xzqz_2022.csv": Submission("2022-11-04 16:30", 0.05),
    "urban_management/行政强制_2022.jsonl": Submission("2022-12-23 09:15", 0.15),
    "civil_affairs/xzqr_mz_2022.jsonl": Submission("2022-12-20 10:00"),
    "human_resources/行政确认_2022.xlsx": Submission("2022-11-30 15:00", 0.03),
    "human_resources/xzcj_rs_2022.csv": Submission("2022-12-14 11:20", 0.06),
    "market_regulation/adjudication_scjg_2022.xlsx": Submission("2022-10-21 09:50", 0.02),
    "emergency/xzjl_yj_2022.xlsx": Submission("2022-12-28 17:00", 0.20),
    "market_regulation/reward_scjg_2022.jsonl": Submission("2022-12-27 10:30"),
    "market_regulation/xzjc_scjg_2022.csv": Submission("2022-12-01 00:20", 0.05),  # 30 November in UTC
    "emergency/inspection_yj_2022.csv": Submission("2022-11-15 14:30", 0.04),
}
# fmt: on
# The deliberately late feed: submitted Friday 14 October 2022, after the National Day holiday
# (1-7 October off, Saturday 8 and Sunday 9 October worked). Its decisions lie 8 or 9 working
# days before submission (late); some exactly 7 (the last day on time). A count that skipped
# the adjusted working weekend would call the 8-day ones on time; one that ignored the holiday
# would call the 7-day ones late.
LATE_FEED = "tax/税务行政处罚_2022.jsonl"
LATE_FEED_LAGS = (7, 8, 8, 9, 9)
# Records backfilled from before the holiday calendar's first year (2004): a warning, not a guess.
BACKFILLED = {"ecology_environment/环境行政处罚_2022.csv": (date(2003, 12, 30), 2)}
CN_DAY = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")


@functools.cache
def is_workday(day: date) -> bool:
    """``chinese_calendar.is_workday``, remembered (it scans its tables on every call); outside the
    calendar's years it raises NotImplementedError every time, as the package does."""
    return chinese_calendar.is_workday(day)


def _submitted_at(feed: Feed) -> datetime:
    return datetime.fromisoformat(SUBMISSIONS[feed.path].at).replace(tzinfo=SHANGHAI)


def _workday_before(day: date, lag: int) -> date:
    """The working day with exactly ``lag`` working days in (it, ``day``]."""
    counted = 0
    while counted < lag or not is_workday(day):
        counted += is_workday(day)
        day -= timedelta(days=1)
    return day


def _shift_row_dates(ds: Dataset, row: Row, delta: timedelta) -> None:
    """Move every date of a record by ``delta``: ISO date fields and 2022年3月1日 inside texts."""

    def shift_cn(match: re.Match) -> str:
        return _zh_date(date(*map(int, match.groups())) + delta)

    for spec in ds.fields:
        value = row.values.get(spec.code)
        if not isinstance(value, str) or not value:
            continue
        if spec.type is FieldType.DATE:
            row.values[spec.code] = (date.fromisoformat(value) + delta).isoformat()
        elif spec.type is FieldType.TEXT:
            row.values[spec.code] = CN_DAY.sub(shift_cn, value)


def set_submission(feed: Feed, seed: int) -> None:
    """Give the feed its submission time; re-date decisions relative to it (before defects are injected).

    Decisions sharing a date keep sharing one. The payment datasets keep their periods.
    """
    feed.submitted_at = _submitted_at(feed)
    rule = feed.dataset.timeliness
    if rule is None or feed.rejected or feed.dataset.category == "payment":
        return
    rng = random.Random(f"{seed}/{feed.path}/timeliness")
    submitted = feed.submitted_at.date()
    plan = SUBMISSIONS[feed.path]
    new_dates: dict[str, date] = {}
    for row in feed.rows:
        old = str(row.values[rule.date_field])
        if old not in new_dates:
            if feed.path == LATE_FEED:
                lag = rng.choice(LATE_FEED_LAGS)
            elif rng.random() < plan.late:
                lag = rng.randint(rule.working_days + 1, rule.working_days + 25)
            else:
                lag = rng.randint(0, rule.working_days)
            new_dates[old] = _workday_before(submitted, lag)
    if feed.path in BACKFILLED:
        day, count = BACKFILLED[feed.path]
        for old in rng.sample(sorted(new_dates), count):
            new_dates[old] = day
    for row in feed.rows:
        old_day = date.fromisoformat(str(row.values[rule.date_field]))
        _shift_row_dates(feed.dataset, row, new_dates[old_day.isoformat()] - old_day)


def _decision_date(row: Row, code: str) -> date | None:
    """A record's date as the loader reads it, from what the generator wrote (not from SQL)."""
    d = row.defect
    if d is not None and d.field == code:
        if d.defect == "date_alt_format":
            return date.fromisoformat(d.expected_value)
        if d.defect in ("invalid_date", "required_missing"):
            return None
    value = row.values.get(code)
    return date.fromisoformat(str(value)) if value not in (None, "") else None


def _elapsed_working_days(decided: date, submitted: date) -> int:
    """Working days in (decided, submitted], one day at a time; NotImplementedError outside the calendar."""
    days = (submitted - decided).days
    return sum(is_workday(decided + timedelta(days=i)) for i in range(1, days + 1))


def timeliness_truth(feed: Feed) -> dict:
    """Submission time and, for a dataset with a deadline, the verdict counts of the records read."""
    rule = feed.dataset.timeliness
    submitted_at = feed.submitted_at
    assert submitted_at is not None, "set_submission() runs first"
    out = {
        "file": feed.path,
        "dataset_id": feed.dataset.id,
        "department": feed.department,
        "submitted_at": submitted_at.isoformat(),
        "submitted_date": submitted_at.date().isoformat(),
    }
    if rule is None or feed.rejected:
        return out  # no deadline, or no column could be read
    counts: Counter[str] = Counter()
    submitted = submitted_at.date()
    for row in feed.rows:
        if row.extra is not None or row.broken:
            continue  # rejected while reading: never reaches the raw layer
        decided = _decision_date(row, rule.date_field)
        if decided is None:
            counts["undated"] += 1
            continue
        try:
            late = _elapsed_working_days(decided, submitted) > rule.working_days
        except NotImplementedError:
            counts["outside_calendar"] += 1
            continue
        counts["late" if late else "on_time"] += 1
    records = sum(counts.values())
    return out | {
        "date_field": rule.date_field,
        "working_days": rule.working_days,
        "records": records,
        "on_time": counts["on_time"],
        "late": counts["late"],
        "undated": counts["undated"],
        "outside_calendar": counts["outside_calendar"],
        "numerator": counts["on_time"],
        "denominator": records - counts["outside_calendar"],
    }
