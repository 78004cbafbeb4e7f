"""The plan of the history: the series the catalog demands, their templates, files and events.

In: the catalog (each dataset's ``delivery``: cadence, deadline, ``since``, ``expected_from``,
per-department ``overrides``), the snapshot's ``FILES`` templates and the history's first and
last month. Out: one ``Series`` per expected department x dataset (``plan_series``: its
template, cadence, deadline and periods), the deliveries of every series and period
(``plan_deliveries``: regular, re-sent, the odd export, or missing), the file name of a delivery
(``file_name``: the period written the way each office writes it, ``2025-03`` / ``2025年03月`` /
``202503`` / ``2025.03`` / ``2025_3`` / ``2025年3月``, weeks ``2025-W07`` / ``2025第07周``) and the
rows a file of the series carries (``rows_per_file``).

The special events of the two years are constants here: ``MISSING`` (transport sends nothing),
``RESENT`` (housing_fund re-sends a corrected 2025-05), ``ODD_EXPORT`` (transport's unmapped
English export, once), ``TEMPLATE_SWITCH`` (ecology_environment's penalties move to the
catalog codes and UTF-8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from foundation.catalog import Catalog, Dataset
from sample_city.feeds import FILES, FeedSpec
from sample_city.history_calendar import series_periods
from transforms.periods import Period, parse_label

MISSING = {"transport": ("2025-07", "2025-08")}  # department -> months it sends nothing at all
RESENT = ("housing_fund", "housing_fund", "2025-05")  # department, dataset, period
RESENT_MARK = "更正"
ODD_EXPORT = ("transport", "admin_penalty", "2025-03")
TEMPLATE_SWITCH = ("ecology_environment", "admin_penalty", "2026-01")  # first period in catalog codes
MIN_ROWS = 6  # a file carries at least this many rows, so small cities still carry defects

# The regular transport penalty file (the snapshot only has the unmapped English export).
EXTRA_TEMPLATES = [
    FeedSpec("transport", "交通行政处罚_2022.csv", "admin_penalty", "csv", "utf-8", "penalty", 40,
             "uscc_check_digit 1; required_missing 1; value_not_allowed 1; date_alt_format 1; "
             "uscc_fullwidth 1"),
]
MONTH_STYLES = {  # how each office writes the month in a file name
    "market_regulation": "{y}-{m:02d}",
    "housing_fund": "{y}-{m:02d}",
    "ecology_environment": "{y}年{m:02d}月",
    "civil_affairs": "{y}年{m:02d}月",
    "transport": "{y}年{m:02d}月",
    "tax": "{y}{m:02d}",
    "water_supply": "{y}{m:02d}",
    "emergency": "{y}{m:02d}",
    "health": "{y}.{m:02d}",
    "power_supply": "{y}.{m:02d}",
    "urban_management": "{y}_{m}",
    "heat_supply": "{y}_{m}",
    "human_resources": "{y}年{m}月",
    "gas_supply": "{y}年{m}月",
    "approval": "{y}年{m:02d}月",
}
WEEK_STYLES = {"market_regulation": "{y}-W{w:02d}", "approval": "{y}第{w:02d}周"}
DEFAULT_MONTH_STYLE, DEFAULT_WEEK_STYLE = "{y}-{m:02d}", "{y}-W{w:02d}"


@dataclass(frozen=True)
class Series:
    """One department's deliveries of one dataset: a file per period."""

    department: str
    dataset: Dataset
    spec: FeedSpec  # the template: format, encoding, builder, rows a year at 3000 entities, plan
    cadence: str  # monthly | weekly
    working_days: int  # deadline after the period ends
    periods: tuple[Period, ...]


@dataclass(frozen=True)
class Delivery:
    series: Series
    period: Period
    kind: str  # regular | resent | odd | missing


def _template(department: str, dataset: str) -> FeedSpec:
    specs = [
        s for s in FILES + EXTRA_TEMPLATES
        if s.department == department and s.dataset == dataset and s.builder != "penalty_english"
    ]
    if not specs:
        raise ValueError(f"no template for {department} / {dataset}")
    return specs[0]  # social insurance of one department has one half-year template: use it


def odd_template() -> FeedSpec:
    department, dataset, _ = ODD_EXPORT
    return next(
        s for s in FILES if (s.department, s.dataset, s.builder) == (department, dataset, "penalty_english")
    )


def plan_series(catalog: Catalog, first: Period, last: Period) -> list[Series]:
    """Every expected department x dataset of the catalog's delivery rules, in catalog order."""
    out = []
    for ds in catalog.datasets.values():
        if ds.delivery is None:
            continue
        for department in ds.expected_departments():
            rule = ds.delivery.rule_for(department)
            periods = series_periods(first, last, rule.cadence, ds.delivery.since)
            if periods:
                out.append(
                    Series(department, ds, _template(department, ds.id), rule.cadence,
                           rule.deadline_working_days, tuple(periods))
                )
    return out


def plan_deliveries(series: list[Series]) -> list[Delivery]:
    """Every delivery, in the order of the months they cover (then series; a re-send after its file)."""
    out = []
    for s in series:
        for period in s.periods:
            if period.month.strftime("%Y-%m") in MISSING.get(s.department, ()):
                out.append(Delivery(s, period, "missing"))
                continue
            if (s.department, s.dataset.id, period.label) == ODD_EXPORT:
                out.append(Delivery(s, period, "odd"))
            out.append(Delivery(s, period, "regular"))
            if (s.department, s.dataset.id, period.label) == RESENT:
                out.append(Delivery(s, period, "resent"))
    order = {id(s): i for i, s in enumerate(series)}
    return sorted(out, key=lambda d: (d.period.month, d.period.start, order[id(d.series)]))


def _stem(template_name: str) -> str:
    return re.sub(r"_?2022(?:H[12]|年)?", "", PurePosixPath(template_name).stem)


def file_name(delivery: Delivery) -> str:
    s, period = delivery.series, delivery.period
    spec = odd_template() if delivery.kind == "odd" else s.spec
    year, number = int(period.label[:4]), int(period.label[-2:])
    if period.cadence == "weekly":
        text = WEEK_STYLES.get(s.department, DEFAULT_WEEK_STYLE).format(y=year, w=number)
    else:
        text = MONTH_STYLES.get(s.department, DEFAULT_MONTH_STYLE).format(y=year, m=number)
    mark = f"_{RESENT_MARK}" if delivery.kind == "resent" else ""
    return f"{_stem(spec.file_name)}_{text}{mark}.{spec.fmt}"


def rows_per_file(spec: FeedSpec, cadence: str, entities: int) -> int:
    """The template's rows a year at 3000 entities, scaled to the city and spread over the year."""
    per_year = (spec.rows or 0) * entities / 3000
    return max(MIN_ROWS, round(per_year / (52 if cadence == "weekly" else 12)))


def month_label(period: Period) -> str:
    return period.month.strftime("%Y-%m")


def check_range(first: str, last: str) -> tuple[Period, Period]:
    a, b = parse_label(first), parse_label(last)
    if a.cadence != "monthly" or b.cadence != "monthly" or a > b:
        raise ValueError(f"first and last are months, first <= last: {first!r}, {last!r}")
    return a, b
