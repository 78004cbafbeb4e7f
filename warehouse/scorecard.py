"""The department scorecard (数据质量评分卡): five rates with numerator, denominator and target.

In: the batch ledger ``audit.batches``, the raw layer (``raw.<dataset>`` views), the code
tables and views ``audit.batch_codes`` / ``audit.code_error_rate`` (重错码率) and
``audit.correction_rate`` (纠正率), the targets in ``catalogs/quality_targets.yaml`` and the
working-day calendar (transforms/working_days.py).
Out: the warehouse table ``mart.scorecard``, one row per level x group x metric, and its copy
``<data root>/parquet/mart_scorecard/scorecard.parquet`` for downstream systems.

Levels: ``batch`` (the trend, by received date), ``department_dataset``, ``department``,
``dataset`` and ``city``. Metrics (definitions in the README, "Quality report"):

- ``compliance`` 合规率 = rows loaded / rows received. A file rejected as a whole (e.g. no header
  matches the catalog) counts with all its rows received and none passing. The three record
  metrics count feed batches only: a corrections batch re-carries records already counted.
- ``completeness`` 完整率 = filled required cells / required cells, over the records read into the
  raw layer (a file rejected as a whole has no readable columns and is left out). Filled means
  something is left after the loader's own normalization, i.e. the loader would not say
  ``required_missing``.
- ``timeliness`` 及时率 = records submitted within the catalog's deadline (``timeliness.working_days``
  after ``timeliness.date_field``, in Chinese working days) / records with a deadline. Submitted is
  the batch's received date in Asia/Shanghai. A record without a readable date counts as not on
  time (``undated``); a record whose dates lie outside the holiday calendar's years is left out of
  both numbers and counted as a warning (``outside_calendar``), never guessed.
- ``code_error`` 重错码率 and ``correction`` 纠正率 come from their views where the views have the
  level (department x dataset, department, city). Per batch and per dataset, 重错码率 is counted from
  ``audit.batch_codes`` with the view's definition (distinct codes); 纠正率 per dataset sums the
  view's department x dataset rows (it counts records, so it adds up); it has no batch level.

A group with a zero denominator has no row for that metric (not applicable), except a
timeliness row whose records all lie outside the calendar: it stays, without a rate, so that
the warning is seen.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from foundation.catalog import Catalog, CatalogError, Dataset, read_catalog_file
from foundation.settings import Settings
from foundation.sql_names import ident, table
from transforms.periods import parse_label
from transforms.reasons import CODE_REASONS, REGISTER_REASONS
from transforms.working_days import calendar_rows
from warehouse.checks_sql import normalized_sql  # the loader's normalization: "filled" = not required_missing
from warehouse.partitions import sql_path

METRICS = ("compliance", "completeness", "timeliness", "code_error", "correction")
LEVELS = ("city", "department", "dataset", "department_dataset", "batch",
          "city_month", "department_month", "dataset_month", "department_dataset_month")
TIME_ZONE = "Asia/Shanghai"
PARQUET_NAME = "mart_scorecard"

SCORECARD_COLUMNS = [
    ("level", "VARCHAR", "city, department, dataset, department_dataset or batch"),
    ("department", "VARCHAR", "department code (NULL at the city and dataset levels)"),
    ("dataset_id", "VARCHAR", "catalog dataset (NULL at the city and department levels)"),
    ("batch_id", "VARCHAR", "the batch (batch level only); joins audit.batches"),
    ("received_date", "DATE", "batch level: the day the file was received, Asia/Shanghai"),
    ("month", "DATE", "the *_month levels and batch: the month of the period the files cover (first day); "
                      "NULL at the all-time levels"),
    ("metric", "VARCHAR", "compliance 合规率, completeness 完整率, timeliness 及时率, code_error 重错码率 or "
                          "correction 纠正率"),
    ("numerator", "BIGINT", "records, cells or codes that count for the rate"),
    ("denominator", "BIGINT", "records, cells or codes measured"),
    ("rate", "DOUBLE", "numerator / denominator; NULL only when every record of the group is outside_calendar"),
    ("target", "DOUBLE", "the target (catalogs/quality_targets.yaml; 重错码率: the datasets' thresholds)"),
    ("direction", "VARCHAR", "min: the rate must be at least the target; max: at most"),
    ("meets_target", "BOOLEAN", "the rate meets the target (compared exactly, in decimals); NULL without a rate"),
    ("undated", "BIGINT", "timeliness: records without a readable date, counted as not on time"),
    ("outside_calendar", "BIGINT", "timeliness: records left out because a date lies outside the holiday "
                                   "calendar's years (a warning)"),
]


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name_zh: str
    min: float | None = Field(default=None, ge=0, le=1)
    max: float | None = Field(default=None, ge=0, le=1)
    definition: str | None = None
    source: str | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Target:
        if (self.min is None) == (self.max is None):
            raise ValueError("give exactly one of min (at least) and max (at most)")
        return self

    @property
    def direction(self) -> Literal["min", "max"]:
        return "min" if self.min is not None else "max"

    @property
    def value(self) -> float:
        if self.min is not None:
            return self.min
        assert self.max is not None, "_one_bound: exactly one of min and max is set"
        return self.max


def load_targets(catalog_dir: Path) -> dict[str, Target]:
    """The five targets from ``quality_targets.yaml``; raises CatalogError naming the file and metric."""
    path = catalog_dir / "quality_targets.yaml"
    raw = read_catalog_file(path.name, catalog_dir)
    if not isinstance(raw, dict) or set(raw) != set(METRICS):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise CatalogError(f"{path}: expected exactly the metrics {', '.join(METRICS)}; found {found}")
    targets = {}
    for metric in METRICS:
        try:
            targets[metric] = Target.model_validate(raw[metric])
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or metric}: {e['msg']}" for e in exc.errors())
            raise CatalogError(f"{path}: metric '{metric}': {problems}") from None
    return targets


@dataclass(frozen=True)
class ScorecardResult:
    rows: int
    parquet: Path
    outside_calendar: int  # records left out of 及时率: dates outside the holiday calendar


def _install_calendar(con: duckdb.DuckDBPyConnection) -> None:
    days, working, seq = zip(*calendar_rows(), strict=True)
    data = pa.table({"day": pa.array(days, pa.date32()), "working": list(working), "seq": list(seq)})
    con.register("working_calendar_src", data)
    con.execute("CREATE OR REPLACE TEMP TABLE working_calendar AS SELECT * FROM working_calendar_src")
    con.unregister("working_calendar_src")


def _batch_sql(dataset: Dataset) -> tuple[str, dict]:
    """Per loaded batch of one dataset: records read, required cells filled, timeliness verdicts."""
    required = [f for f in dataset.fields if f.required]
    filled = " + ".join(f"({normalized_sql(f)} IS NOT NULL)::BIGINT" for f in required) or "0"
    params: dict = {"dataset_id": dataset.id, "n_required": len(required)}
    if dataset.timeliness:
        date_col = ident(dataset.timeliness.date_field)
        decided = f"parse_cn_date(clean_text(fold_width({date_col})))"
        params["working_days"] = dataset.timeliness.working_days
        verdict = """CASE WHEN decided IS NULL THEN 'undated'
                 WHEN decided >= received_date THEN 'on_time'
                 WHEN cd.seq IS NULL OR cr.seq IS NULL THEN 'outside_calendar'
                 WHEN cr.seq - cd.seq <= $working_days THEN 'on_time'
                 ELSE 'late' END"""
    else:
        decided, verdict = "NULL::DATE", "NULL"
    sql = f"""
WITH records AS (  -- the raw layer alone: field codes never meet the ledger's column names
    SELECT batch_id, {decided} AS decided, {filled} AS filled FROM {table('raw', dataset.id)}
),
judged AS (
    SELECT records.*, {verdict} AS verdict
    FROM records
    JOIN scorecard_batches b ON b.batch_id = records.batch_id AND b.dataset_id = $dataset_id
    LEFT JOIN working_calendar cd ON cd.day = records.decided
    LEFT JOIN working_calendar cr ON cr.day = b.received_date
)
SELECT batch_id,
    count(*) * $n_required AS required_cells,
    sum(filled) AS filled_cells,
    count(*) FILTER (WHERE verdict IS NOT NULL AND verdict <> 'outside_calendar') AS timed,
    count(*) FILTER (WHERE verdict = 'on_time') AS on_time,
    count(*) FILTER (WHERE verdict = 'undated') AS undated,
    count(*) FILTER (WHERE verdict = 'outside_calendar') AS outside_calendar
FROM judged GROUP BY batch_id"""
    return sql, params


# Feed batches. A corrections batch (warehouse/correction_file.py) carries records already
# counted in the batch that quarantined them: it counts for 纠正率, not as records received again.
_BATCHES = f"""
CREATE OR REPLACE TEMP TABLE scorecard_batches AS
SELECT b.batch_id, b.department, b.dataset_id, b.status, b.rows_in, b.rows_loaded,
    (b.received_at AT TIME ZONE '{TIME_ZONE}')::DATE AS received_date,
    coalesce(pm.month, date_trunc('month', (b.received_at AT TIME ZONE '{TIME_ZONE}')::DATE))::DATE AS month
FROM audit.batches b LEFT JOIN period_months pm USING (period)
WHERE b.dataset_id IS NOT NULL AND b.format IS DISTINCT FROM 'corrections'
    AND (b.received_at AT TIME ZONE '{TIME_ZONE}')::DATE <= $as_of
    AND NOT EXISTS (  -- replaced by a corrected re-send of its period received by then
        SELECT 1 FROM audit.batches r WHERE r.batch_id = b.superseded_by
            AND (r.received_at AT TIME ZONE '{TIME_ZONE}')::DATE <= $as_of)"""

_COUNTS = """
CREATE OR REPLACE TEMP TABLE scorecard_counts (
    batch_id VARCHAR, required_cells BIGINT, filled_cells BIGINT, timed BIGINT, on_time BIGINT, undated BIGINT,
    outside_calendar BIGINT)"""

# Additive metrics, summed over batches for every level at once.
_GROUP_LEVEL = """CASE WHEN GROUPING(batch_id) = 0 THEN 'batch'
         WHEN GROUPING(month) = 0 AND GROUPING(department) = 0 AND GROUPING(dataset_id) = 0
             THEN 'department_dataset_month'
         WHEN GROUPING(month) = 0 AND GROUPING(department) = 0 THEN 'department_month'
         WHEN GROUPING(month) = 0 AND GROUPING(dataset_id) = 0 THEN 'dataset_month'
         WHEN GROUPING(month) = 0 THEN 'city_month'
         WHEN GROUPING(department) = 0 AND GROUPING(dataset_id) = 0 THEN 'department_dataset'
         WHEN GROUPING(department) = 0 THEN 'department'
         WHEN GROUPING(dataset_id) = 0 THEN 'dataset'
         ELSE 'city' END"""
_GROUPING_SETS = """GROUPING SETS ((department, dataset_id), (department), (dataset_id), (),
        (department, dataset_id, month), (department, month), (dataset_id, month), (month))"""

# Additive metrics, summed over batches for every level at once.
_ADDITIVE = f"""
CREATE OR REPLACE TEMP TABLE scorecard_sums AS
SELECT {_GROUP_LEVEL} AS level,
    department, dataset_id, batch_id, received_date, month,
    sum(b.rows_loaded) AS loaded, sum(b.rows_in) AS received,
    sum(c.filled_cells) AS filled_cells, sum(c.required_cells) AS required_cells,
    sum(c.on_time) AS on_time, sum(c.timed) AS timed, sum(c.undated) AS undated,
    sum(c.outside_calendar) AS outside_calendar
FROM scorecard_batches b LEFT JOIN scorecard_counts c USING (batch_id)
GROUP BY GROUPING SETS ((batch_id, department, dataset_id, received_date, month), (department, dataset_id),
    (department), (dataset_id), (), (department, dataset_id, month), (department, month), (dataset_id, month),
    (month))"""

# 重错码率 (distinct codes, a code bad when any of its batches found it erroneous or duplicated, as the
# view audit.code_error_rate counts) and 纠正率 (quarantined records with a code defect; corrected by the
# as-of date), over the batches counted, for every level but the batch.
_CODES = f"""
CREATE OR REPLACE TEMP TABLE scorecard_codes AS
SELECT {_GROUP_LEVEL.replace("GROUPING(batch_id) = 0", "false")} AS level, department, dataset_id, month,
    count(DISTINCT code) FILTER (WHERE erroneous OR duplicate) AS bad, count(DISTINCT code) AS received,
    min(t.code_error_threshold) AS threshold
FROM audit.batch_codes c JOIN scorecard_batches b USING (batch_id, department, dataset_id)
LEFT JOIN ref.dataset_thresholds t USING (dataset_id)
GROUP BY {_GROUPING_SETS}"""

_CORRECTIONS = f"""
CREATE OR REPLACE TEMP TABLE scorecard_corrections AS
SELECT {_GROUP_LEVEL.replace("GROUPING(batch_id) = 0", "false")} AS level, department, dataset_id, month,
    count(*) FILTER (WHERE q.status = 'corrected'
                     AND (q.corrected_at AT TIME ZONE '{TIME_ZONE}')::DATE <= $as_of) AS corrected,
    count(*) AS detected
FROM quarantine.rows q JOIN scorecard_batches b USING (batch_id, department, dataset_id)
WHERE list_has_any(list_transform(q.reasons, lambda r: split_part(r, ':', 1)), $code_reasons)
GROUP BY {_GROUPING_SETS}"""

_LONG = """
CREATE OR REPLACE TEMP TABLE scorecard_long AS
SELECT level, department, dataset_id, batch_id, received_date, month, 'compliance' AS metric,
       loaded AS numerator, received AS denominator, NULL::DOUBLE AS target, NULL::BIGINT AS undated,
       NULL::BIGINT AS outside_calendar
FROM scorecard_sums
UNION ALL
SELECT level, department, dataset_id, batch_id, received_date, month, 'completeness', filled_cells,
       required_cells, NULL, NULL, NULL
FROM scorecard_sums
UNION ALL
SELECT level, department, dataset_id, batch_id, received_date, month, 'timeliness', on_time, timed, NULL,
       undated, outside_calendar
FROM scorecard_sums
UNION ALL  -- 重错码率 per feed batch, with the view's definition
SELECT 'batch', any_value(b.department), c.dataset_id, c.batch_id, any_value(b.received_date), any_value(b.month),
       'code_error', count(DISTINCT c.code) FILTER (WHERE c.erroneous OR c.duplicate), count(DISTINCT c.code),
       min(t.code_error_threshold), NULL, NULL
FROM audit.batch_codes c JOIN scorecard_batches b USING (batch_id)
LEFT JOIN ref.dataset_thresholds t ON t.dataset_id = c.dataset_id
GROUP BY c.batch_id, c.dataset_id
UNION ALL  -- ... and every other level
SELECT level, department, dataset_id, NULL, NULL, month, 'code_error', bad, received, threshold, NULL, NULL
FROM scorecard_codes
UNION ALL  -- 纠正率 (no batch level)
SELECT level, department, dataset_id, NULL, NULL, month, 'correction', corrected, detected, NULL, NULL, NULL
FROM scorecard_corrections"""

_FINAL = """
CREATE OR REPLACE TABLE mart.scorecard AS
WITH scored AS (
    SELECT l.*, coalesce(l.target, t.target) AS goal, t.direction
    FROM scorecard_long l JOIN scorecard_targets t USING (metric)
    WHERE l.denominator > 0 OR l.outside_calendar > 0
)
SELECT level, department, dataset_id, batch_id, received_date, month, metric,
    numerator::BIGINT AS numerator, denominator::BIGINT AS denominator,
    CASE WHEN denominator > 0 THEN numerator / denominator END AS rate, goal AS target, direction,
    CASE WHEN denominator = 0 THEN NULL
         WHEN direction = 'min' THEN numerator >= goal::DECIMAL(18, 8) * denominator
         ELSE numerator <= goal::DECIMAL(18, 8) * denominator END AS meets_target,
    undated::BIGINT AS undated, outside_calendar::BIGINT AS outside_calendar
FROM scored
ORDER BY list_position($levels, level), department NULLS FIRST, dataset_id NULLS FIRST, month, received_date,
    batch_id, list_position($metrics, metric)"""


def write_scorecard(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog,
                    as_of: date | None = None) -> ScorecardResult:
    """Recompute ``mart.scorecard`` from the warehouse (writer connection) and export it as Parquet.

    ``as_of``: count only what was received by the end of that day (Asia/Shanghai), with the corrections
    applied by then, so a past date gives what the scorecard said then; None counts everything.
    """
    targets = load_targets(settings.catalog_dir)
    _install_calendar(con)
    _install_period_months(con)
    day = {"as_of": as_of or date.max}
    con.execute("CREATE OR REPLACE TEMP TABLE scorecard_targets (metric VARCHAR, target DOUBLE, direction VARCHAR)")
    con.executemany("INSERT INTO scorecard_targets VALUES (?, ?, ?)",
                    [[m, t.value, t.direction] for m, t in targets.items()])
    con.execute(_BATCHES, day)
    con.execute(_COUNTS)
    for dataset in catalog.datasets.values():
        sql, params = _batch_sql(dataset)
        con.execute(f"INSERT INTO scorecard_counts {sql}", params)
    con.execute(_ADDITIVE)
    con.execute(_CODES)
    con.execute(_CORRECTIONS, {**day, "code_reasons": sorted({**CODE_REASONS, **REGISTER_REASONS})})
    con.execute(_LONG)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(_FINAL, {"levels": list(LEVELS), "metrics": list(METRICS)})
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    rows = con.execute("SELECT count(*) FROM mart.scorecard").fetchall()[0][0]
    outside = con.execute("SELECT coalesce(sum(outside_calendar), 0) FROM scorecard_counts").fetchall()[0][0]
    return ScorecardResult(rows, export_parquet(con, settings), outside)


def _install_period_months(con: duckdb.DuckDBPyConnection) -> None:
    """``period_months``: each period label in the ledger and the month it counts in (a week: its Thursday's)."""
    found = con.execute("SELECT DISTINCT period FROM audit.batches WHERE period IS NOT NULL").fetchall()
    labels = [p for (p,) in found]
    months = [parse_label(p).month for p in labels]
    con.register("period_months_src", pa.table({"period": pa.array(labels, pa.string()),
                                                "month": pa.array(months, pa.date32())}))
    con.execute("CREATE OR REPLACE TEMP TABLE period_months AS SELECT * FROM period_months_src")
    con.unregister("period_months_src")


def export_parquet(con: duckdb.DuckDBPyConnection, settings: Settings) -> Path:
    """``mart.scorecard`` to ``<parquet root>/mart_scorecard/scorecard.parquet``: a temp file, then a rename."""
    folder = settings.parquet_root / PARQUET_NAME
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / "scorecard.parquet"
    tmp = folder / f".tmp-{uuid.uuid4().hex}.parquet"
    try:
        con.execute(f"COPY mart.scorecard TO {sql_path(tmp)} (FORMAT parquet, COMPRESSION snappy)")
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return final
