"""The credit center's data-quality report (数据质量报告): one self-contained HTML file in Chinese.

In: ``mart.scorecard`` (warehouse/scorecard.py) as computed for the as-of date, ``quarantine.rows``
(the top defect reasons and a few example records), ``audit.batches``, ``audit.deliveries`` and
``audit.alerts`` (the rows of the as-of date, or of the latest date before it), the catalog's
names and disclosure levels, and the place of the Great Expectations Data Docs.
Out: ``<data root>/reports/quality-report-<date>.html`` and ``latest.html``, each written to a
temporary file and renamed.

What a reviewer reads first (``collect`` -> ``ReportData``):

- 要点: the latest month, the most improved and the most deteriorated department, deliveries
  missing and late, findings by severity.
- 全市概况: the city's five rates of the latest month (``city_month``) with the change from the
  month before, the year to date (the sums of the numerators and denominators of the ``city_month``
  rows of the as-of year up to the latest month) and everything received so far (``city``).
- 部门排名: departments in the latest month (``department_month``): share of targets met, then the
  mean shortfall from target, then the department code; each rate with its month-over-month change
  (▲/▼ in percentage points, 重错码率 in ‱; green when it moved the good way for the rate's
  direction, red otherwise).
- Most improved / most deteriorated (``Movement``): a rate's shortfall in a month is how far it is
  on the wrong side of its target (0 when it meets it). Per department and rate, the mean shortfall
  over the months with data among the last ``WINDOW`` (3) months up to the latest month, and among
  the ``WINDOW`` months before them; the department's score per window is the mean over the rates
  of ``MOVER_METRICS`` (合规率, 完整率, 重错码率: what the files are worth; 及时率 swings with the
  holidays, 纠正率 waits for the register) with data in both windows. The largest fall of the score
  is the most improved, the largest rise the most deteriorated; equal changes go to the smaller
  department code.
- 逾期与未报送 and 告警: missing and late deliveries newest first; findings errors first, then by
  department.
- 信用预警与修复指导 (``ReportData.warnings``, ``CreditWarnings``): the credit-warning list of
  ``mart.credit_warnings`` as of the report's day (or the latest list before it; a score run's day
  without warning rows is an empty list, as the scoring job builds both): the subjects with
  ``threshold`` or more unrepaired negative records (catalogs/credit_warnings.yaml), most records
  first, each record with its severity class, end of publication and whether and from when it can be
  repaired (relative to the report's day), the repair steps per dataset; and per year up to the
  report's day, the subjects guided against the annual target and the repairs completed
  (``warehouse.credit_warnings.guidance_by_year``). Organisations only: a natural person's records
  are never listed by name, only counted. No list yet: the section says so.
- Trends (``ReportData.trends``): per department and per dataset, per rate, the monthly series
  (month, rate or None for a month without data: a gap, never a zero) over up to ``TREND_MONTHS``
  months up to the latest, drawn as small multiples (credit/report_charts.py).

Months after the as-of date's month are not read; the page shows no date but the as-of date and
dates from the data.

The page loads nothing from the network: styles are inline, charts are inline SVG drawn by
matplotlib with their labels kept as text (credit/report_charts.py). Restricted data stays out:
example records come only from datasets that are not ``authorized`` (授权查询), every resident ID value is masked
(first 6 and last 4 characters), and the finished page is scanned for anything that still
looks like a valid resident ID before it is written.
"""

from __future__ import annotations

import json
import math
import os
import re
import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from credit.report_charts import monthly_svg
from foundation.catalog import Catalog, Disclosure, FieldType
from foundation.settings import Settings
from transforms.identifiers import resident_id_reasons, uscc_reasons
from transforms.masking import mask_id, mask_ids_in_text
from transforms.reasons import ALL_REASONS, FILE_REASONS
from transforms.working_days import known_years
from warehouse.credit_warnings import YearGuidance
from warehouse.scorecard import METRICS, Target, load_targets

TEMPLATES = Path(__file__).parent / "templates"
DATA_DOCS = Path("gx") / "uncommitted" / "data_docs" / "local_site" / "index.html"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TOP_REASONS = 10
EXAMPLES_PER_REASON = 3
MAX_SHOWN = 60  # characters of an example value
SHORT_NAMES = {"compliance": "合规率", "completeness": "完整率", "timeliness": "及时率", "code_error": "重错码率",
               "correction": "纠正率"}


class RestrictedDataError(RuntimeError):
    """The rendered report still holds something that looks like a resident ID; nothing is written."""


@dataclass(frozen=True)
class Rate:
    metric: str
    numerator: int
    denominator: int
    rate: float | None
    target: float
    direction: str  # min | max
    meets: bool | None
    undated: int | None = None
    outside_calendar: int | None = None

    @property
    def shown(self) -> str:
        return shown_rate(self.metric, self.rate)

    @property
    def target_shown(self) -> str:
        return ("≥ " if self.direction == "min" else "≤ ") + shown_rate(self.metric, self.target)


@dataclass
class Group:
    """One line of a table: a department, a dataset, a pair of them, a batch or the city."""

    key: str
    name: str
    rates: dict[str, Rate] = field(default_factory=dict)
    received_date: date | None = None
    dataset_id: str | None = None

    @property
    def applicable(self) -> int:
        return sum(r.meets is not None for r in self.rates.values())

    @property
    def met(self) -> int:
        return sum(bool(r.meets) for r in self.rates.values())


@dataclass(frozen=True)
class Example:
    department: str
    dataset: str
    source_file: str
    source_row: int | None
    field: str
    value: str


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    records: int
    departments: int
    examples: list[Example]
    restricted: int  # records of authorized-disclosure datasets: counted, never shown
    corrected: int  # records corrected since (纠正)


@dataclass
class ReportData:
    as_of: date
    city: Group
    departments: list[Group]
    datasets: list[Group]
    pairs: dict[str, list[Group]]  # department -> its datasets
    reasons: list[Reason]  # all, most records first
    top_reasons: int  # the first ones, shown with examples
    targets: dict[str, Target]
    batches: int
    rejected_batches: int
    quarantined: int
    last_received: date | None
    data_docs: Path
    calendar_years: tuple[int, int]
    monthly: Monthly = field(default_factory=lambda: Monthly())
    deliveries_as_of: date | None = None  # the audit.deliveries rows shown (as_of, or the latest before)
    delivery_counts: dict[str, int] = field(default_factory=dict)  # status -> deliveries due
    overdue: list[Delivery] = field(default_factory=list)  # missing and late, newest first
    alerts_as_of: date | None = None
    alerts: list[AlertSection] = field(default_factory=list)  # errors first, then by department
    warnings: CreditWarnings = field(default_factory=lambda: CreditWarnings())

    @property
    def trends(self) -> dict[str, dict[str, Trend]]:
        """``trends["department"][code]`` / ``trends["dataset"][id]``: a Trend whose ``series[metric].points``
        is the list of (month, rate or None for a month without data) over ``monthly.months``."""
        return self.monthly.trends

    @property
    def months(self) -> list[date]:
        return self.monthly.months

    @property
    def latest_month(self) -> date | None:
        return self.monthly.latest


def format_rate(metric: str, value: float | None) -> str:
    """A rate for the console (credit report): 重错码率 with four decimals of a percent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4%}" if metric == "code_error" else f"{value:.2%}"


def shown_rate(metric: str, value: float | None) -> str:
    """A rate on the page: 重错码率 in ‱ (its target is 万分之一: 1.00‱), the others in %, two decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value * 10000:.2f}‱" if metric == "code_error" else f"{value:.2%}"


def safe_value(value: object, field_type: FieldType | None) -> str:
    """An example value fit for the report: resident IDs, and any run of digits shaped like one, masked.

    A resident ID field is always masked, valid or not. Elsewhere (an ID typed into a code or
    text field), an 18- or 15-digit run with a birth date in place is masked unless the whole
    value is a valid USCC (an organization's code).
    """
    if value is None or str(value).strip() == "":
        return "（空）"
    text = unicodedata.normalize("NFKC", str(value)).strip()
    compact = re.sub(r"[\s\-]", "", text).upper()
    if field_type is FieldType.RESIDENT_ID:
        return mask_id(compact)
    if not (len(compact) == 18 and not uscc_reasons(compact)):
        for source in (text, compact):  # an ID written with spaces or hyphens is caught in the compact form
            if mask_ids_in_text(source.upper()) != source.upper():
                text = mask_ids_in_text(compact)
                break
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def assert_no_resident_id(html: str) -> None:
    """Refuse a page holding a valid resident ID (GB 11643), however it got there."""
    folded = unicodedata.normalize("NFKC", html).upper()
    for match in re.finditer(r"(?<![0-9])\d{17}[\dX](?![0-9X])", folded):
        if not resident_id_reasons(match.group()):
            raise RestrictedDataError("the report would show an unmasked resident ID; not written")


# --- monthly trends, the latest month's ranking, deliveries and alerts ---------------------------------

MONTH_LEVELS = ("city_month", "department_month", "dataset_month", "department_dataset_month")
CUMULATIVE_LEVELS = ("city", "department", "dataset", "department_dataset")
TREND_MONTHS = 24  # months a trend chart shows, up to the latest month
WINDOW = 3  # months of each window of the most improved / most deteriorated comparison
# The rates the movers compare: what a department's files are worth. 及时率 swings with the holidays
# (and is read in the overdue list), 纠正率 waits for the register's corrections: neither says whether a
# department's data got better.
MOVER_METRICS = ("compliance", "completeness", "code_error")
SEVERITY_ZH = {"error": "错误", "warning": "警告"}
CHECK_ZH = {"rate": "指标未达标", "worsening": "较上月变差", "delivery": "报送逾期"}
STATUS_ZH = {"missing": "未报送", "late": "逾期报送", "on_time": "按时报送"}
SAME = 1e-12  # a change smaller than this is none (floating-point noise of equal rates)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def shortfall(rate: float | None, target: float, direction: str) -> float | None:
    """How far a rate is from its target on the wrong side (0 when it meets it), in rate units."""
    if rate is None:
        return None
    return max(0.0, target - rate) if direction == "min" else max(0.0, rate - target)


def change_unit(metric: str) -> tuple[float, str]:
    """Changes are shown in percentage points, 重错码率's in ‱ (万分点)."""
    return (10000.0, "‱") if metric == "code_error" else (100.0, "")


@dataclass(frozen=True)
class Change:
    """A rate's change from the previous calendar month (环比)."""

    metric: str
    current: float | None
    previous: float | None
    direction: str  # min | max

    @property
    def delta(self) -> float | None:
        if self.current is None or self.previous is None:
            return None
        delta = self.current - self.previous
        return 0.0 if abs(delta) < SAME else delta

    @property
    def better(self) -> bool | None:
        """True when the rate moved towards good (up for a min rate, down for 重错码率), None if unchanged."""
        delta = self.delta
        if not delta:
            return None
        return (delta > 0) == (self.direction == "min")

    @property
    def arrow(self) -> str:
        delta = self.delta
        return "" if delta is None else ("▲" if delta > 0 else "▼" if delta < 0 else "＝")

    @property
    def shown(self) -> str:
        delta = self.delta
        if delta is None:
            return "—"
        if delta == 0:
            return "＝ 持平"
        factor, unit = change_unit(self.metric)
        return f"{self.arrow}{abs(delta) * factor:.2f}{unit}"

    @property
    def css(self) -> str:
        return "na" if self.delta is None else {True: "good", False: "worse", None: "same"}[self.better]


@dataclass(frozen=True)
class Series:
    """One rate of one department or dataset, month by month; ``None`` is a month without data (a gap)."""

    metric: str
    points: list[tuple[date, float | None]]
    target: float | None
    direction: str
    missed: frozenset[date]  # months whose rate misses the target (mart.scorecard.meets_target)

    @property
    def months(self) -> list[date]:
        return [m for m, _ in self.points]

    @property
    def count(self) -> int:
        """Points drawn: the months with a rate."""
        return sum(v is not None for _, v in self.points)

    @property
    def gaps(self) -> list[date]:
        """Months without data between the first and the last month with data."""
        filled = [i for i, (_, v) in enumerate(self.points) if v is not None]
        if not filled:
            return []
        return [m for m, v in self.points[filled[0]:filled[-1] + 1] if v is None]


@dataclass(frozen=True)
class Trend:
    kind: str  # department | dataset
    key: str
    name: str
    series: dict[str, Series]  # every metric, all over ReportData.months


@dataclass(frozen=True)
class Movement:
    """The mean shortfall from target of a department's last WINDOW months against the WINDOW before."""

    department: str
    name: str
    prior: float  # mean shortfall, rate units (0.01 = 1 percentage point)
    recent: float
    metrics: tuple[str, ...]  # the rates compared: those with data in both windows

    @property
    def change(self) -> float:
        return self.recent - self.prior


@dataclass
class MonthlyRow:
    """A department in the latest month's ranking."""

    group: Group  # its rates of the latest month (department_month)
    changes: dict[str, Change]  # metric -> change from the month before
    movement: Movement | None
    shortfall: float | None  # mean shortfall from target of the latest month's rates

    @property
    def has_data(self) -> bool:
        return bool(self.group.rates)


@dataclass(frozen=True)
class Delivery:
    department: str
    department_name: str
    dataset_id: str
    dataset_name: str
    period: str
    deadline: date
    first_received: str | None  # Asia/Shanghai, minutes
    files: int
    status: str  # missing | late
    days_overdue: int

    @property
    def status_zh(self) -> str:
        return STATUS_ZH.get(self.status, self.status)


@dataclass(frozen=True)
class Alert:
    severity: str
    check_name: str
    department: str
    dataset_id: str
    dataset_name: str
    period: str
    month: date
    metric: str | None
    value: float | None
    previous: float | None
    target: float | None
    threshold: float | None
    message_zh: str

    @property
    def check_zh(self) -> str:
        return CHECK_ZH.get(self.check_name, self.check_name)

    @property
    def metric_zh(self) -> str:
        return SHORT_NAMES.get(self.metric, self.metric) if self.metric else "报送"

    def _shown(self, value: float | None) -> str:
        if value is None:
            return "—"
        if self.check_name == "delivery":
            return f"逾期 {int(value)} 天"
        return shown_rate(self.metric or "", value)

    @property
    def value_shown(self) -> str:
        return self._shown(self.value)

    @property
    def previous_shown(self) -> str:
        return "—" if self.check_name == "delivery" else self._shown(self.previous)

    @property
    def target_shown(self) -> str:
        return "—" if self.check_name == "delivery" else self._shown(self.target)


@dataclass(frozen=True)
class AlertDepartment:
    code: str
    name: str
    alerts: list[Alert]


@dataclass(frozen=True)
class AlertSection:
    severity: str  # error | warning
    label: str
    departments: list[AlertDepartment]

    @property
    def count(self) -> int:
        return sum(len(d.alerts) for d in self.departments)


def _has_column(con: duckdb.DuckDBPyConnection, schema: str, name: str, column: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND column_name = ?", [schema, name, column]).fetchall()[0][0])


def _month_rows(con: duckdb.DuckDBPyConnection, as_of: date) -> list[tuple]:
    """The monthly levels of mart.scorecard up to the as-of month (none before the monthly SQL exists)."""
    if not _has_column(con, "mart", "scorecard", "month"):
        return []
    return con.execute(
        """SELECT level, department, dataset_id, month, metric, numerator, denominator, rate, target, direction,
                  meets_target
           FROM mart.scorecard
           WHERE list_contains(?, level) AND month IS NOT NULL AND month <= date_trunc('month', ?::DATE)""",
        [list(MONTH_LEVELS), as_of],
    ).fetchall()


MonthCube = dict[tuple[str, str | None, str | None], dict[date, dict[str, Rate]]]


def _cube(rows: list[tuple]) -> MonthCube:
    """(level, department, dataset) -> month -> metric -> Rate."""
    cube: MonthCube = defaultdict(lambda: defaultdict(dict))
    for level, dept, ds, month, metric, num, den, rate, target, direction, meets in rows:
        month = month.date() if isinstance(month, datetime) else month
        cube[(level, dept, ds)][month][metric] = Rate(metric, num, den, rate, target, direction, meets)
    return cube


def _series(by_month: dict[date, dict[str, Rate]], months: list[date], targets: dict[str, Target]) -> dict:
    out = {}
    for metric in METRICS:
        rows = [by_month[m][metric] for m in months if metric in by_month.get(m, {})]
        latest = rows[-1] if rows else None
        out[metric] = Series(
            metric=metric,
            points=[(m, r.rate if (r := by_month.get(m, {}).get(metric)) else None) for m in months],
            target=latest.target if latest and latest.target is not None else targets[metric].value,
            direction=latest.direction if latest else targets[metric].direction,
            missed=frozenset(m for m in months if (r := by_month.get(m, {}).get(metric)) and r.meets is False),
        )
    return out


def _mean_shortfall(by_month: dict[date, dict[str, Rate]], months: list[date], metric: str) -> float | None:
    gaps = [s for m in months if (r := by_month.get(m, {}).get(metric))
            and (s := shortfall(r.rate, r.target, r.direction)) is not None]
    return sum(gaps) / len(gaps) if gaps else None


def _movement(code: str, name: str, by_month: dict[date, dict[str, Rate]], latest: date) -> Movement | None:
    """Mean shortfall from target over the last WINDOW months against the WINDOW months before them.

    Per rate, the mean of its monthly shortfalls over the months of a window that have data; then
    the mean over the rates that have data in both windows. None without such a rate.
    """
    recent_months = [add_months(latest, -i) for i in range(WINDOW)]
    prior_months = [add_months(latest, -WINDOW - i) for i in range(WINDOW)]
    pairs = {m: (p, r) for m in MOVER_METRICS
             if (p := _mean_shortfall(by_month, prior_months, m)) is not None
             and (r := _mean_shortfall(by_month, recent_months, m)) is not None}
    if not pairs:
        return None
    return Movement(code, name, prior=sum(p for p, _ in pairs.values()) / len(pairs),
                    recent=sum(r for _, r in pairs.values()) / len(pairs), metrics=tuple(pairs))


def _movers(movements: list[Movement]) -> tuple[Movement | None, Movement | None]:
    """(most improved, most deteriorated): the largest fall and the largest rise of the mean shortfall;
    ties by department code; None when no department's shortfall fell (rose)."""
    def rounded(m: Movement) -> float:  # equal changes are ties, whatever the floating-point noise
        return round(m.change, 9)

    improved = sorted((m for m in movements if rounded(m) < 0), key=lambda m: (rounded(m), m.department))
    worse = sorted((m for m in movements if rounded(m) > 0), key=lambda m: (-rounded(m), m.department))
    return (improved[0] if improved else None), (worse[0] if worse else None)


def _changes(now: dict[str, Rate], before: dict[str, Rate], targets: dict[str, Target]) -> dict[str, Change]:
    out = {}
    for metric in METRICS:
        current, previous = now.get(metric), before.get(metric)
        either = current or previous
        out[metric] = Change(metric, current.rate if current else None, previous.rate if previous else None,
                             either.direction if either else targets[metric].direction)
    return out


def _ytd(city: dict[date, dict[str, Rate]], year: int, latest: date) -> dict[str, Rate]:
    """Per rate: the sums of the numerators and denominators of the city's months of ``year`` up to
    ``latest``, their ratio and whether it meets the latest of those months' target."""
    out = {}
    months = sorted(m for m in city if m.year == year and m <= latest)
    for metric in METRICS:
        rows = [city[m][metric] for m in months if metric in city[m]]
        if not rows:
            continue
        num, den = sum(r.numerator for r in rows), sum(r.denominator for r in rows)
        target, direction = rows[-1].target, rows[-1].direction
        meets = None
        if den > 0:
            goal = Decimal(repr(target)) * den
            meets = num >= goal if direction == "min" else num <= goal
        out[metric] = Rate(metric, num, den, num / den if den else None, target, direction, meets)
    return out


def _name(catalog: Catalog, department: str | None = None, dataset_id: str | None = None) -> str:
    if department is not None:
        return catalog.departments[department].name_zh if department in catalog.departments else department
    assert dataset_id is not None
    return catalog.datasets[dataset_id].name_zh if dataset_id in catalog.datasets else dataset_id


@dataclass
class Monthly:
    months: list[date] = field(default_factory=list)
    latest: date | None = None
    trends: dict[str, dict[str, Trend]] = field(default_factory=lambda: {"department": {}, "dataset": {}})
    city: dict[str, Rate] = field(default_factory=dict)
    city_changes: dict[str, Change] = field(default_factory=dict)
    ytd: dict[str, Rate] = field(default_factory=dict)
    ytd_months: tuple[date, date] | None = None
    ranking: list[MonthlyRow] = field(default_factory=list)
    improved: Movement | None = None
    deteriorated: Movement | None = None


def _monthly(con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date, targets: dict[str, Target]) -> Monthly:
    cube = _cube(_month_rows(con, as_of))
    all_months = {m for by_month in cube.values() for m in by_month}
    if not all_months:
        return Monthly()
    latest = max(all_months)
    first = max(min(all_months), add_months(latest, -(TREND_MONTHS - 1)))
    months = [first]
    while months[-1] < latest:
        months.append(add_months(months[-1], 1))
    previous = add_months(latest, -1)
    city = cube.get(("city_month", None, None), {})
    out = Monthly(months=months, latest=latest)
    out.city = dict(city.get(latest, {}))
    out.city_changes = _changes(out.city, city.get(previous, {}), targets)
    year_months = sorted(m for m in city if m.year == as_of.year and m <= latest)
    out.ytd = _ytd(city, as_of.year, latest)
    out.ytd_months = (year_months[0], year_months[-1]) if year_months else None

    shown = set(months)
    departments = sorted(d for (lvl, d, _), by_month in cube.items()
                         if lvl == "department_month" and d is not None and shown & set(by_month))
    datasets = sorted(ds for (lvl, _, ds), by_month in cube.items()
                      if lvl == "dataset_month" and ds is not None and shown & set(by_month))
    rows = []
    for code in departments:
        by_month = cube[("department_month", code, None)]
        now = by_month.get(latest, {})
        group = Group(key=code, name=_name(catalog, department=code), rates=dict(now))
        gaps = [s for r in now.values() if (s := shortfall(r.rate, r.target, r.direction)) is not None]
        rows.append(MonthlyRow(group, _changes(now, by_month.get(previous, {}), targets),
                               _movement(code, group.name, by_month, latest),
                               sum(gaps) / len(gaps) if gaps else None))
    out.ranking = sorted(rows, key=_monthly_rank)
    out.improved, out.deteriorated = _movers([r.movement for r in rows if r.movement])
    out.trends["department"] = {
        r.group.key: Trend("department", r.group.key, r.group.name,
                           _series(cube[("department_month", r.group.key, None)], months, targets))
        for r in out.ranking}
    out.trends["dataset"] = {
        ds: Trend("dataset", ds, _name(catalog, dataset_id=ds), _series(cube[("dataset_month", None, ds)], months,
                                                                         targets))
        for ds in datasets}
    return out


def _monthly_rank(row: MonthlyRow) -> tuple:
    """Departments with data in the latest month first: share of targets met, then the mean shortfall
    from target (smaller first), then the department code; the others after them, by code."""
    g = row.group
    if not row.has_data:
        return (1, 0.0, 0.0, g.key)
    share = g.met / g.applicable if g.applicable else 0.0
    return (0, -share, row.shortfall or 0.0, g.key)


def _latest_as_of(con: duckdb.DuckDBPyConnection, name: str, as_of: date) -> date | None:
    """The as-of date of ``audit.<name>`` the report uses: ``as_of`` itself, or the latest before it."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'audit' "
                         "AND table_name = ?", [name]).fetchall()[0][0]
    if not exists:
        return None
    return con.execute(f"SELECT max(as_of) FROM audit.{name} WHERE as_of <= ?", [as_of]).fetchall()[0][0]


def _deliveries(con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date
                ) -> tuple[date | None, dict[str, int], list[Delivery]]:
    """(the as-of date used, deliveries per status, the missing and late ones newest first)."""
    used = _latest_as_of(con, "deliveries", as_of)
    if used is None:
        return None, {}, []
    counts = dict(con.execute("SELECT status, count(*) FROM audit.deliveries WHERE as_of = ? GROUP BY status",
                              [used]).fetchall())
    rows = con.execute(
        """SELECT department, dataset_id, period, deadline,
                  strftime(first_received_at AT TIME ZONE 'Asia/Shanghai', '%Y-%m-%d %H:%M'), files, status,
                  days_overdue
           FROM audit.deliveries WHERE as_of = ? AND status IN ('missing', 'late')
           ORDER BY deadline DESC, status = 'late', days_overdue DESC, department, dataset_id, period""",
        [used],
    ).fetchall()
    return used, counts, [
        Delivery(dept, _name(catalog, department=dept), ds, _name(catalog, dataset_id=ds), period, deadline,
                 received, files, status, days)
        for dept, ds, period, deadline, received, files, status, days in rows]


def _alerts(con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date) -> tuple[date | None, list[AlertSection]]:
    """(the as-of date used, the findings by severity, errors first, then by department: most findings
    first, then by code; within a department the newest month first)."""
    used = _latest_as_of(con, "alerts", as_of)
    if used is None:
        return None, []
    rows = con.execute(
        """SELECT severity, check_name, department, dataset_id, period, month, metric, value, previous, target,
                  threshold, message_zh
           FROM audit.alerts WHERE as_of = ?
           ORDER BY month DESC, period DESC, dataset_id, check_name, metric NULLS FIRST""",
        [used],
    ).fetchall()
    by: dict[str, dict[str, list[Alert]]] = defaultdict(lambda: defaultdict(list))
    for sev, check, dept, ds, period, month, metric, value, previous, target, threshold, message in rows:
        by[sev][dept].append(Alert(sev, check, dept, ds, _name(catalog, dataset_id=ds), period, month, metric, value,
                                   previous, target, threshold, message))
    order = sorted(by, key=lambda s: (["error", "warning"].index(s) if s in ("error", "warning") else 2, s))
    return used, [
        AlertSection(sev, SEVERITY_ZH.get(sev, sev), [
            AlertDepartment(dept, _name(catalog, department=dept), alerts)
            for dept, alerts in sorted(by[sev].items(), key=lambda kv: (-len(kv[1]), kv[0]))])
        for sev in order]


# --- credit warnings and repair guidance (信用预警与修复指导) ---------------------------------------------

WARNINGS_SHOWN = 30  # subjects shown before the rest are folded away


@dataclass(frozen=True)
class WarningRecord:
    """One unrepaired negative record of a subject on the warning list."""

    record_id: str
    dataset_id: str
    dataset_name: str
    document: str | None
    decided: date | None
    severity: str | None
    severity_zh: str
    rule_version: str | None
    published_until: date | None
    repairable: bool | None  # None: the rule version gives the class no terms
    repairable_from: date | None

    def repair_open(self, day: date) -> bool:
        """The record may be repaired on ``day`` (its minimum publication period has passed)."""
        return bool(self.repairable) and self.repairable_from is not None and self.repairable_from <= day


@dataclass(frozen=True)
class WarnedSubject:
    subject_key: str
    uscc: str | None
    name: str | None
    records: list[WarningRecord]

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r.dataset_id for r in self.records))


@dataclass
class CreditWarnings:
    list_as_of: date | None = None  # the list shown: the report's day or the latest before it; None: no list
    subjects: list[WarnedSubject] = field(default_factory=list)  # most records first, then by code
    persons: int = 0  # natural persons on the list: counted, never named
    guidance: list[YearGuidance] = field(default_factory=list)
    threshold: int | None = None
    datasets: list[str] = field(default_factory=list)  # the warning datasets (catalogs/credit_warnings.yaml)
    annual_target: int | None = None
    steps: dict[str, list[str]] = field(default_factory=dict)  # dataset -> steps, the datasets on the list
    not_repairable_zh: str = ""
    rules_error: str | None = None  # catalogs/credit_warnings.yaml could not be read

    @property
    def records(self) -> int:
        return sum(len(s.records) for s in self.subjects)


def _credit_warnings(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog,
                     as_of: date) -> CreditWarnings:
    """The warning list of the report's day (or the latest before it) and the repair guidance per year."""
    from foundation.catalog import CatalogError
    from foundation.scoring_model import load_warning_rules
    from warehouse.credit_warnings import guidance_by_year

    try:
        rules = load_warning_rules(catalog, settings.catalog_dir)
    except CatalogError as exc:  # the quality report still goes out; the section says why it is empty
        return CreditWarnings(rules_error=str(exc))
    out = CreditWarnings(threshold=rules.threshold, datasets=list(rules.datasets), annual_target=rules.annual_target,
                         not_repairable_zh=rules.not_repairable_zh)
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'mart' "
                         "AND table_name = 'credit_warnings'").fetchall()[0][0]
    if not exists:
        return out
    out.guidance = guidance_by_year(con, rules, as_of)
    # A scoring job builds the day's list right after its score run: a run's day without warning rows is an
    # empty list, not a missing one.
    out.list_as_of = con.execute(
        "SELECT max(day) FROM (SELECT as_of AS day FROM mart.credit_warnings UNION ALL "
        "SELECT as_of FROM mart.score_runs) WHERE day <= ?", [as_of]).fetchall()[0][0]
    if out.list_as_of is None:
        return out
    out.persons = con.execute("SELECT count(DISTINCT subject_key) FROM mart.credit_warnings "
                              "WHERE as_of = ? AND starts_with(subject_key, 'P:')", [out.list_as_of]).fetchall()[0][0]
    rows = con.execute(
        """SELECT w.subject_key, s.uscc, s.name, w.record_id, w.dataset_id, w.document, w.decided, w.severity,
                  w.rule_version, w.published_until, w.repairable, w.repairable_from, w.steps_zh
           FROM mart.credit_warnings w LEFT JOIN clean.subjects s USING (subject_key)
           WHERE w.as_of = ? AND NOT starts_with(w.subject_key, 'P:')
           ORDER BY w.records DESC, w.subject_key, w.decided, w.record_id""",
        [out.list_as_of],
    ).fetchall()
    severities = catalog.publication.severities
    by_subject: dict[str, WarnedSubject] = {}
    for key, uscc, name, record_id, ds, doc, decided, sev, version, until, repairable, since, steps in rows:
        if key not in by_subject:
            by_subject[key] = WarnedSubject(key, uscc, name, [])
        by_subject[key].records.append(WarningRecord(
            record_id, ds, _name(catalog, dataset_id=ds), doc, decided, sev,
            severities.get(sev, sev) if sev else "未判定", version, until, repairable, since))
        out.steps.setdefault(ds, list(steps or []))
    out.subjects = list(by_subject.values())
    out.steps = {ds: out.steps[ds] for ds in sorted(out.steps)}
    return out


# --- reading the warehouse -----------------------------------------------------------------------


def _rates(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        """SELECT level, department, dataset_id, batch_id, received_date, metric, numerator, denominator, rate,
                  target, direction, meets_target, undated, outside_calendar
           FROM mart.scorecard WHERE list_contains(?, level)""",
        [list(CUMULATIVE_LEVELS)],
    ).fetchall()


def _groups(rows: list[tuple], catalog: Catalog) -> dict[tuple, Group]:
    groups: dict[tuple, Group] = {}
    for level, dept, ds, batch, received, metric, num, den, rate, target, direction, meets, undated, outside in rows:
        key = (level, dept, ds, batch)
        if key not in groups:
            names = [catalog.departments[dept].name_zh if dept in catalog.departments else dept,
                     catalog.datasets[ds].name_zh if ds in catalog.datasets else ds]
            name = " · ".join(n for n in names if n) or "全市"
            groups[key] = Group(key="/".join(k for k in key[1:] if k) or "city", name=name,
                                received_date=received, dataset_id=ds)
        groups[key].rates[metric] = Rate(metric, num, den, rate, target, direction, meets, undated, outside)
    return groups


def _rank(departments: list[Group]) -> list[Group]:
    """Best first: share of applicable targets met, then 合规率, then the name."""

    def key(g: Group) -> tuple:
        share = g.met / g.applicable if g.applicable else 0.0
        compliance = g.rates["compliance"].rate if "compliance" in g.rates else 0.0
        return (-share, -(compliance or 0.0), g.name, g.key)

    return sorted(departments, key=key)


def _as_of_tables(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """``report_batches`` and ``report_quarantine``: the ledger and the quarantine as they stood at the end of
    ``as_of`` (Asia/Shanghai): files received by then, a record ``corrected`` only if corrected by then."""
    con.execute("""CREATE OR REPLACE TEMP TABLE report_batches AS
                   SELECT * FROM audit.batches WHERE (received_at AT TIME ZONE 'Asia/Shanghai')::DATE <= ?""",
                [as_of])
    con.execute("""CREATE OR REPLACE TEMP TABLE report_quarantine AS
                   SELECT q.* REPLACE (CASE WHEN q.status = 'corrected'
                                             AND (q.corrected_at AT TIME ZONE 'Asia/Shanghai')::DATE <= ?
                                            THEN 'corrected' ELSE 'open' END AS status)
                   FROM quarantine.rows q SEMI JOIN report_batches b ON b.batch_id = q.batch_id""", [as_of])


def _reasons(con: duckdb.DuckDBPyConnection, catalog: Catalog, top: int) -> list[Reason]:
    """Every reason code by number of records; example records for the first ``top``."""
    public = [d.id for d in catalog.datasets.values() if d.disclosure is not Disclosure.AUTHORIZED]
    counts = con.execute(
        """WITH r AS (SELECT department, dataset_id, status, split_part(unnest(reasons), ':', 1) AS code
                      FROM report_quarantine)
           SELECT code, count(*), count(DISTINCT department),
                  count(*) FILTER (WHERE dataset_id IS NULL OR NOT list_contains(?, dataset_id)),
                  count(*) FILTER (WHERE status = 'corrected')
           FROM r GROUP BY code ORDER BY count(*) DESC, code""",
        [public],
    ).fetchall()
    reasons = []
    for rank, (code, records, departments, restricted, corrected) in enumerate(counts):
        rows = [] if rank >= top else con.execute(
            """WITH hits AS (
                   SELECT department, dataset_id, source_file, source_row, record,
                          [split_part(r, ':', 2) FOR r IN reasons IF split_part(r, ':', 1) = ?][1] AS field,
                          row_number() OVER (PARTITION BY department, source_file
                                             ORDER BY status <> 'open', source_row) AS nth
                   FROM report_quarantine
                   WHERE list_contains(?, dataset_id)
                     AND list_contains([split_part(r, ':', 1) FOR r IN reasons], ?))
               SELECT department, dataset_id, source_file, source_row, record::VARCHAR, field FROM hits
               ORDER BY nth, department, source_file LIMIT ?""",
            [code, public, code, EXAMPLES_PER_REASON],
        ).fetchall()
        examples = [_example(catalog, code, *row) for row in rows]
        reasons.append(Reason(code, ALL_REASONS.get(code, code), records, departments, examples, restricted,
                              corrected))
    return reasons


def _example(catalog: Catalog, code: str, dept: str, dataset_id: str, source_file: str, source_row: int | None,
             record: str | None, field_code: str) -> Example:
    dataset = catalog.datasets[dataset_id]
    department = catalog.departments[dept].name_zh
    values = json.loads(record) if record else {}
    if not isinstance(values, dict):
        values = {}
    if code in FILE_REASONS:  # the file's own headers say why (column names, not personal data)
        return Example(department, dataset.name_zh, source_file, source_row, "表头",
                       safe_value("，".join(values), None))
    if not field_code:  # a reason about the whole record (duplicate, ragged): show its first key field
        field_code = dataset.key_fields[0]
    spec = next((f for f in dataset.fields if f.code == field_code), None)
    if spec is None:  # e.g. a file rejected as a whole: its columns are not the catalog's
        return Example(department, dataset.name_zh, source_file, source_row, field_code, "—")
    return Example(department, dataset.name_zh, source_file, source_row, spec.name_zh,
                   safe_value(values.get(field_code), spec.type))


def collect(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog, as_of: date,
            top_reasons: int = TOP_REASONS) -> ReportData:
    """Everything the report shows, read from the warehouse (after write_scorecard as of ``as_of``)."""
    _as_of_tables(con, as_of)
    groups = _groups(_rates(con), catalog)
    by_level: dict[str, list[Group]] = defaultdict(list)
    pairs: dict[str, list[Group]] = defaultdict(list)  # department -> its datasets
    for (level, dept, _, _), group in groups.items():
        by_level[level].append(group)
        if level == "department_dataset":
            pairs[dept].append(group)
    batches, rejected, last = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'rejected'), "
        "max((received_at AT TIME ZONE 'Asia/Shanghai')::DATE) FROM report_batches "
        "WHERE format IS DISTINCT FROM 'corrections'"
    ).fetchall()[0]
    quarantined = con.execute("SELECT count(*) FROM report_quarantine").fetchall()[0][0]
    city = next(iter(by_level["city"]), Group("city", "全市"))
    targets = load_targets(settings.catalog_dir)
    delivered_as_of, delivery_counts, overdue = _deliveries(con, catalog, as_of)
    alerts_as_of, alerts = _alerts(con, catalog, as_of)
    departments = _rank(by_level["department"])
    order = [g.key for g in departments]

    def ranked(per_department: dict[str, list[Group]], key) -> dict[str, list[Group]]:
        return {d: sorted(per_department[d], key=key) for d in order if d in per_department}

    return ReportData(
        as_of=as_of,
        city=city,
        departments=departments,
        datasets=sorted(by_level["dataset"], key=lambda g: g.key),
        pairs=ranked(pairs, lambda g: g.key),
        reasons=_reasons(con, catalog, top_reasons),
        top_reasons=top_reasons,
        targets=targets,
        batches=batches,
        rejected_batches=rejected,
        quarantined=quarantined,
        last_received=last,
        data_docs=settings.data_root / DATA_DOCS,
        calendar_years=known_years(),
        monthly=_monthly(con, catalog, as_of, targets),
        deliveries_as_of=delivered_as_of,
        delivery_counts=delivery_counts,
        overdue=overdue,
        alerts_as_of=alerts_as_of,
        alerts=alerts,
        warnings=_credit_warnings(con, settings, catalog, as_of),
    )


# --- rendering and writing ----------------------------------------------------------------------------


def render(data: ReportData, catalog: Catalog, reports_dir: Path) -> str:
    """The page as HTML text; ``reports_dir`` is where it will live (the Data Docs link is relative to it)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    charts = {kind: {key: monthly_svg(kind, key, trend.series, SHORT_NAMES) for key, trend in trends.items()}
              for kind, trends in data.trends.items()}
    docs_link = os.path.relpath(data.data_docs, reports_dir)
    html = env.get_template("quality_report.html.j2").render(
        data=data, metrics=METRICS, names=SHORT_NAMES, charts=charts, catalog=catalog,
        docs_link=Path(docs_link).as_posix(), docs_exist=data.data_docs.exists(), window=WINDOW,
        fmt=shown_rate, shown_warnings=WARNINGS_SHOWN,
    )
    assert_no_resident_id(html)
    return html


def write_atomic(path: Path, text: str) -> None:
    """``text`` to ``path`` (UTF-8), written aside and renamed into place whole."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_report(settings: Settings, html: str, as_of: date) -> Path:
    """``quality-report-<date>.html`` and ``latest.html`` under ``<data root>/reports/``."""
    folder = settings.data_root / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    dated = folder / f"quality-report-{as_of.isoformat()}.html"
    write_atomic(dated, html)
    write_atomic(folder / "latest.html", html)
    return dated


def today() -> date:
    return datetime.now(SHANGHAI).date()


def build_report(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog, as_of: date,
                 top_reasons: int = TOP_REASONS) -> Path:
    """Render the report from the warehouse's current scorecard and write it; returns the dated file."""
    data = collect(con, settings, catalog, as_of, top_reasons)
    return write_report(settings, render(data, catalog, settings.data_root / "reports"), as_of)
