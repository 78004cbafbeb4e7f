"""The credit center's data-quality report (数据质量报告): one self-contained HTML file in Chinese.

In: ``mart.scorecard`` (warehouse/scorecard.py), ``quarantine.rows`` (the top defect reasons and
a few example records), ``audit.batches``, the catalog's names and disclosure levels, and the
place of the Great Expectations Data Docs. Out: ``<data root>/reports/quality-report-<date>.html``
and ``latest.html``, each written to a temporary file and renamed.

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
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
from jinja2 import Environment, FileSystemLoader, select_autoescape

from credit.report_charts import trend_svg
from foundation.catalog import Catalog, Disclosure, FieldType
from foundation.settings import Settings
from transforms.identifiers import resident_id_reasons, uscc_reasons
from transforms.masking import mask_id, mask_ids_in_text
from transforms.reasons import ALL_REASONS, FILE_REASONS
from transforms.working_days import known_years
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
        return format_rate(self.metric, self.rate)

    @property
    def target_shown(self) -> str:
        return ("≥ " if self.direction == "min" else "≤ ") + format_rate(self.metric, self.target)


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
    trends: dict[str, list[Group]]  # department -> its batches by received date
    reasons: list[Reason]  # all, most records first
    top_reasons: int  # the first ones, shown with examples
    targets: dict[str, Target]
    batches: int
    rejected_batches: int
    quarantined: int
    last_received: date | None
    data_docs: Path
    calendar_years: tuple[int, int]


def format_rate(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4%}" if metric == "code_error" else f"{value:.2%}"


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


# --- reading the warehouse -----------------------------------------------------------------------


def _rates(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        """SELECT level, department, dataset_id, batch_id, received_date, metric, numerator, denominator, rate,
                  target, direction, meets_target, undated, outside_calendar
           FROM mart.scorecard"""
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
        return (-share, -(compliance or 0.0), g.name)

    return sorted(departments, key=key)


def _reasons(con: duckdb.DuckDBPyConnection, catalog: Catalog, top: int) -> list[Reason]:
    """Every reason code by number of records; example records for the first ``top``."""
    public = [d.id for d in catalog.datasets.values() if d.disclosure is not Disclosure.AUTHORIZED]
    counts = con.execute(
        """WITH r AS (SELECT department, dataset_id, status, split_part(unnest(reasons), ':', 1) AS code
                      FROM quarantine.rows)
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
                   FROM quarantine.rows
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
    """Everything the report shows, read from the warehouse (after write_scorecard)."""
    groups = _groups(_rates(con), catalog)
    by_level: dict[str, list[Group]] = defaultdict(list)
    pairs: dict[str, list[Group]] = defaultdict(list)  # department -> its datasets
    trends: dict[str, list[Group]] = defaultdict(list)  # department -> its batches
    for (level, dept, _, _), group in groups.items():
        by_level[level].append(group)
        if level == "department_dataset":
            pairs[dept].append(group)
        elif level == "batch":
            trends[dept].append(group)
    batches, rejected, last = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'rejected'), "
        "max((received_at AT TIME ZONE 'Asia/Shanghai')::DATE) FROM audit.batches "
        "WHERE format IS DISTINCT FROM 'corrections'"
    ).fetchall()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine.rows").fetchall()[0][0]
    city = next(iter(by_level["city"]), Group("city", "全市"))
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
        trends=ranked(trends, lambda g: (g.received_date or date.min, g.key)),
        reasons=_reasons(con, catalog, top_reasons),
        top_reasons=top_reasons,
        targets=load_targets(settings.catalog_dir),
        batches=batches,
        rejected_batches=rejected,
        quarantined=quarantined,
        last_received=last,
        data_docs=settings.data_root / DATA_DOCS,
        calendar_years=known_years(),
    )


# --- rendering and writing ----------------------------------------------------------------------------


def render(data: ReportData, catalog: Catalog, reports_dir: Path) -> str:
    """The page as HTML text; ``reports_dir`` is where it will live (the Data Docs link is relative to it)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    charts = {dept: trend_svg(dept, batches, data.targets, catalog, SHORT_NAMES)
              for dept, batches in data.trends.items()}
    docs_link = os.path.relpath(data.data_docs, reports_dir)
    html = env.get_template("quality_report.html.j2").render(
        data=data, metrics=METRICS, names=SHORT_NAMES, charts=charts, catalog=catalog,
        docs_link=Path(docs_link).as_posix(), docs_exist=data.data_docs.exists(),
    )
    assert_no_resident_id(html)
    return html


def _write_atomic(path: Path, text: str) -> None:
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
    _write_atomic(dated, html)
    _write_atomic(folder / "latest.html", html)
    return dated


def today() -> date:
    return datetime.now(SHANGHAI).date()


def build_report(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog, as_of: date,
                 top_reasons: int = TOP_REASONS) -> Path:
    """Render the report from the warehouse's current scorecard and write it; returns the dated file."""
    data = collect(con, settings, catalog, as_of, top_reasons)
    return write_report(settings, render(data, catalog, settings.data_root / "reports"), as_of)
