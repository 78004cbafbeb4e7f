"""Every table and view of the warehouse, in one place: the DDL and ``ensure_schema``.

Schemas: ``raw`` (as received, all text, per dataset), ``clean`` (typed, per dataset,
plus the ``subjects`` dimension), ``quarantine.rows`` (every rejected record with its
reasons), ``audit`` (the batch ledger, every file arrival, codes, corrections, gate
findings, expectation results), ``ref`` (reference tables of the identifier engine),
``mart`` (the scorecard). The bulk of the data lives in Parquet partitions
(``<data root>/raw/`` restricted, ``<data root>/parquet/`` the exported clean layer);
``raw.<dataset>`` and ``clean.<dataset>`` are views over them, so a batch is written
once and downstream systems read the very files the warehouse queries.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from foundation.catalog import Catalog, Dataset, FieldType
from foundation.settings import Settings
from foundation.sql_names import ident, table
from transforms.reasons import CODE_REASONS, REGISTER_REASONS
from warehouse.checks_sql import STAGED_ROW_NUMBER
from warehouse.partitions import sql_path

FIXED_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS clean;
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE SCHEMA IF NOT EXISTS audit;
CREATE SCHEMA IF NOT EXISTS mart;
CREATE TABLE IF NOT EXISTS audit.batches (
    batch_id VARCHAR PRIMARY KEY,
    dataset_id VARCHAR,
    department VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    file_bytes BIGINT,
    format VARCHAR,
    encoding VARCHAR,
    received_at TIMESTAMPTZ,
    loaded_at TIMESTAMPTZ,
    rows_in BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_quarantined BIGINT NOT NULL,
    status VARCHAR NOT NULL,          -- loaded | rejected | empty
    file_reasons VARCHAR[],
    message_zh VARCHAR,
    header_map JSON,
    unmapped_headers VARCHAR[],
    run_id VARCHAR,
    CHECK (rows_in = rows_loaded + rows_quarantined)
);
-- What the reader did that a reviewer should know (title lines skipped, sheets read, ...).
ALTER TABLE audit.batches ADD COLUMN IF NOT EXISTS notes VARCHAR[];
-- The reporting period the file covers (2025-03, 2025-W07; transforms/periods.py), and whether the
-- name stated it or it was inferred from the day it arrived.
ALTER TABLE audit.batches ADD COLUMN IF NOT EXISTS period VARCHAR;
ALTER TABLE audit.batches ADD COLUMN IF NOT EXISTS period_inferred BOOLEAN;
-- A corrected re-send of the period that replaced this file (its clean partition withdrawn).
ALTER TABLE audit.batches ADD COLUMN IF NOT EXISTS superseded_by VARCHAR;
CREATE SEQUENCE IF NOT EXISTS audit.arrival_seq;
CREATE TABLE IF NOT EXISTS audit.arrivals (
    arrival_id BIGINT PRIMARY KEY DEFAULT nextval('audit.arrival_seq'),
    batch_id VARCHAR NOT NULL,
    department VARCHAR,
    source_file VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    seen_at TIMESTAMPTZ NOT NULL,
    outcome VARCHAR NOT NULL          -- loaded | replaced | duplicate
);
CREATE TABLE IF NOT EXISTS quarantine.rows (
    batch_id VARCHAR NOT NULL,
    dataset_id VARCHAR,
    department VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row BIGINT,
    reasons VARCHAR[] NOT NULL,
    message_zh VARCHAR NOT NULL,
    record JSON,
    evidence JSON,
    status VARCHAR NOT NULL DEFAULT 'open',  -- open | corrected
    corrected_at TIMESTAMPTZ,
    corrected_by VARCHAR              -- the batch that carried the corrected record
);
CREATE TABLE IF NOT EXISTS audit.batch_codes (  -- every distinct USCC a batch carried (重错码率)
    batch_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    department VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    code VARCHAR NOT NULL,
    erroneous BOOLEAN NOT NULL,       -- 错码: malformed, failed a check, or not the subject's (register)
    duplicate BOOLEAN NOT NULL        -- 重码: reported under two or more subject names in the batch
);
CREATE TABLE IF NOT EXISTS audit.code_conflicts (  -- the evidence behind 重码, for reviewers
    batch_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    department VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,            -- one_code_several_names | one_name_several_codes
    code VARCHAR,                     -- the code reported under several names ...
    name_key VARCHAR,                 -- ... or the subject (name_key) reported under several codes
    others VARCHAR[] NOT NULL         -- the names, or the codes, as received in the batch
);
CREATE SCHEMA IF NOT EXISTS ref;
CREATE OR REPLACE TABLE ref.dataset_thresholds (dataset_id VARCHAR PRIMARY KEY, code_error_threshold DOUBLE);
CREATE OR REPLACE VIEW audit.code_error_rate AS
WITH codes AS (
    SELECT b.department, b.dataset_id, c.code, bool_or(c.erroneous) AS erroneous, bool_or(c.duplicate) AS duplicate
    FROM audit.batch_codes c JOIN audit.batches b USING (batch_id)
    GROUP BY ALL
)
SELECT department, dataset_id,
    count(DISTINCT code) AS codes_received,
    count(DISTINCT code) FILTER (WHERE erroneous) AS codes_erroneous,
    count(DISTINCT code) FILTER (WHERE duplicate) AS codes_duplicate,
    count(DISTINCT code) FILTER (WHERE erroneous OR duplicate) AS codes_bad,
    count(DISTINCT code) FILTER (WHERE erroneous OR duplicate) / count(DISTINCT code) AS rate,
    min(t.code_error_threshold) AS threshold
FROM codes LEFT JOIN ref.dataset_thresholds t USING (dataset_id)
GROUP BY GROUPING SETS ((department, dataset_id), (department), ())
ORDER BY department NULLS LAST, dataset_id NULLS FIRST;
CREATE TABLE IF NOT EXISTS clean.subjects (
    subject_key VARCHAR PRIMARY KEY,
    subject_kind VARCHAR NOT NULL,    -- legal_entity | natural_person | unidentified
    uscc VARCHAR,
    name VARCHAR,
    in_register BOOLEAN NOT NULL,
    first_batch VARCHAR NOT NULL,
    last_batch VARCHAR NOT NULL
);
"""

CLEAN_TYPES = {
    FieldType.DATE: "DATE",
    FieldType.AMOUNT: "DECIMAL(18, 6)",
    FieldType.INTEGER: "BIGINT",
}


def clean_columns(dataset: Dataset) -> list[tuple[str, str]]:
    """(column, type) of ``clean.<dataset>``; a resident ID is kept masked plus a salted hash."""
    columns = [("batch_id", "VARCHAR"), ("source_row", "BIGINT"), ("subject_key", "VARCHAR")]
    for spec in dataset.fields:
        columns.append((spec.code, CLEAN_TYPES.get(spec.type, "VARCHAR")))
        if spec.type is FieldType.RESIDENT_ID:
            columns.append((f"{spec.code}_HASH", "VARCHAR"))
    return columns


def raw_columns(dataset: Dataset) -> list[tuple[str, str]]:
    return [("batch_id", "VARCHAR"), ("source_row", "BIGINT")] + [(c, "VARCHAR") for c in dataset.field_codes]


def _empty_view(columns: list[tuple[str, str]]) -> str:
    return "SELECT " + ", ".join(f"NULL::{t} AS {ident(c)}" for c, t in columns) + " WHERE false"


def _parquet_view(folder: Path, columns: list[tuple[str, str]], exprs: dict[str, str]) -> str:
    """A view over every partition under ``folder``, or an empty one with the same columns.

    ``exprs`` gives a column's SQL where it is not simply the Parquet column of that name.
    """
    if not any(folder.glob("*/*/*.parquet")):
        return _empty_view(columns)
    select = ", ".join(f"({exprs.get(c, ident(c))})::{t} AS {ident(c)}" for c, t in columns)
    pattern = sql_path(folder / "*" / "*" / "*.parquet")
    return (f"SELECT {select} FROM read_parquet({pattern}, hive_partitioning = true, "
            "hive_types_autocast = false, union_by_name = true, file_row_number = true)")


def refresh_views(con: duckdb.DuckDBPyConnection, settings: Settings, dataset: Dataset,
                  when_needed: bool = False) -> None:
    """(Re)create ``raw.<dataset>`` and ``clean.<dataset>``. A view over Parquet reads the partitions its
    glob finds when queried, so after a load it needs recreating only when its layer went from no
    partition to some, or back (``when_needed``): binding it reads every partition's footer, which grows
    with the layer, so a catch-up run of hundreds of files would otherwise spend most of its time here."""
    layers = [("raw", settings.raw_root / dataset.id, raw_columns(dataset), {"source_row": STAGED_ROW_NUMBER}),
              ("clean", settings.parquet_root / dataset.id, clean_columns(dataset), {})]
    for schema, folder, columns, exprs in layers:
        if when_needed and _over_parquet(con, schema, dataset.id) == any(folder.glob("*/*/*.parquet")):
            continue
        con.execute(f"CREATE OR REPLACE VIEW {table(schema, dataset.id)} AS " + _parquet_view(folder, columns, exprs))


def _over_parquet(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool | None:
    """Whether the view reads Parquet partitions (False: the empty view; None: no such view)."""
    found = con.execute("SELECT sql FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
                        [schema, name]).fetchall()
    return ("read_parquet" in found[0][0]) if found else None


def _correction_view() -> str:
    """纠正率: quarantined records with a code defect, and how many a correction has fixed since."""
    codes = ", ".join("'" + code + "'" for code in sorted({**CODE_REASONS, **REGISTER_REASONS}))  # our constants
    return f"""
CREATE OR REPLACE VIEW audit.correction_rate AS
WITH detected AS (
    SELECT department, dataset_id, status FROM quarantine.rows
    WHERE list_has_any(list_transform(reasons, lambda r: split_part(r, ':', 1)), [{codes}])
)
SELECT department, dataset_id,
    count(*) AS rows_detected,
    count(*) FILTER (WHERE status = 'corrected') AS rows_corrected,
    count(*) FILTER (WHERE status = 'open') AS rows_open,
    count(*) FILTER (WHERE status = 'corrected') / nullif(count(*), 0) AS rate
FROM detected
GROUP BY GROUPING SETS ((department, dataset_id), (department), ())
ORDER BY department NULLS LAST, dataset_id NULLS FIRST"""


def ensure_schema(con: duckdb.DuckDBPyConnection, catalog: Catalog, settings: Settings) -> None:
    """Create what is missing and refresh the catalog-driven parts (thresholds, views over Parquet)."""
    con.execute(FIXED_DDL)
    con.execute(PUBLISH_DDL)
    con.execute(CORRECTIONS_DDL)
    con.execute(_correction_view())
    con.execute(GATE_DDL)
    con.execute(EXPECTATION_RESULTS_DDL)
    con.execute(OPERATIONS_DDL)
    con.execute(SCORING_DDL)
    con.executemany("INSERT INTO ref.dataset_thresholds VALUES (?, ?)",
                    [[d.id, d.code_error_threshold] for d in catalog.datasets.values()])
    for dataset in catalog.datasets.values():
        refresh_views(con, settings, dataset)


# The credit-records mart and scoring (warehouse/credit_records.py, warehouse/scoring.py,
# docs/scoring.md): facts per as-of day, score runs with every subject's score and the lines that
# make it up (the explanation: the lines of a subject add up to its score).
SCORING_DDL = """
CREATE SCHEMA IF NOT EXISTS mart;
CREATE TABLE IF NOT EXISTS mart.credit_records (
    as_of DATE NOT NULL,
    record_id VARCHAR NOT NULL,       -- stable across days: dataset + document + subject (records)
    subject_key VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    fact_kind VARCHAR NOT NULL,       -- record | register | arrears | on_time_streak
    record_kind VARCHAR,              -- the record's kind (处罚类别, 奖励类别, 登记状态, the month in arrears)
    polarity VARCHAR NOT NULL,        -- negative | positive | neutral (catalog)
    severity VARCHAR,                 -- publication.yaml class (published datasets)
    rule_version VARCHAR,
    decided DATE,                     -- decision date (founding date, month)
    published_until DATE,
    status VARCHAR NOT NULL,          -- publication status, or in_effect
    repair_kind VARCHAR,              -- repair | objection | revoked
    repaired_on DATE,                 -- repair / objection / revocation / list exit date
    measure DOUBLE,                   -- on_time_streak: months reported since the last month in arrears
    document VARCHAR,
    department VARCHAR,
    batch_id VARCHAR,
    source_row BIGINT
);
CREATE TABLE IF NOT EXISTS mart.score_runs (
    run_id VARCHAR PRIMARY KEY,
    model_id VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    subjects BIGINT NOT NULL,
    facts BIGINT NOT NULL,
    triggered_by VARCHAR
);
CREATE TABLE IF NOT EXISTS mart.scores (
    run_id VARCHAR NOT NULL,
    subject_key VARCHAR NOT NULL,
    score DOUBLE NOT NULL,
    grade VARCHAR NOT NULL,
    grade_by_points VARCHAR NOT NULL, -- before grade limits
    grade_limit_zh VARCHAR            -- why the grade is lower than the points give
);
CREATE TABLE IF NOT EXISTS mart.score_lines (
    run_id VARCHAR NOT NULL,
    subject_key VARCHAR NOT NULL,
    line_no INTEGER NOT NULL,
    line_kind VARCHAR NOT NULL,       -- base | fact | measure | not_counted | cap | total_bound
    dimension_id VARCHAR,
    indicator_id VARCHAR,
    record_id VARCHAR,
    dataset_id VARCHAR,
    document VARCHAR,
    decided DATE,
    status VARCHAR,
    category VARCHAR,                 -- the category scored (severity, kind, polarity)
    age_months INTEGER,
    measure DOUBLE,
    raw_points DOUBLE,
    factor DOUBLE,
    points DOUBLE NOT NULL,
    note_zh VARCHAR
);
-- One credit-warning list per as-of day (warehouse/credit_warnings.py): a row per subject and record.
CREATE TABLE IF NOT EXISTS mart.credit_warnings (
    as_of DATE NOT NULL,
    subject_key VARCHAR NOT NULL,
    records INTEGER NOT NULL,         -- the subject's unrepaired negative records that day
    record_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    document VARCHAR,
    decided DATE,
    severity VARCHAR,
    rule_version VARCHAR,
    published_until DATE,
    repairable BOOLEAN,               -- may be repaired before its publication ends
    repairable_from DATE,             -- decision date + the class's minimum period
    steps_zh VARCHAR[] NOT NULL       -- what the subject must do
);
"""


PUBLISH_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
-- A batch committed in the ledger whose partitions still wait in <data root>/work/<batch_id>/ to be
-- renamed into place (warehouse/partitions.py): written in the load's transaction, cleared once
-- published; a writer that finds one at start finishes the publish.
CREATE TABLE IF NOT EXISTS audit.publish_intents (
    batch_id VARCHAR PRIMARY KEY,
    dataset_id VARCHAR NOT NULL,
    department VARCHAR NOT NULL,
    clean BOOLEAN NOT NULL,           -- the batch has a clean partition (false: remove any it had)
    committed_at TIMESTAMPTZ NOT NULL
);
"""


def ensure_publish_intents(con: duckdb.DuckDBPyConnection) -> None:
    """The publish intents table, for a writer's start-up recovery (before ``ensure_schema``)."""
    con.execute(PUBLISH_DDL)


GATE_DDL = """
CREATE TABLE IF NOT EXISTS audit.gate_findings (
    batch_id VARCHAR PRIMARY KEY,
    dataset_id VARCHAR NOT NULL,
    department VARCHAR NOT NULL,
    codes_received BIGINT NOT NULL,
    codes_bad BIGINT NOT NULL,
    rate DOUBLE NOT NULL,
    threshold DOUBLE NOT NULL
)
"""

CORRECTIONS_DDL = """
CREATE SEQUENCE IF NOT EXISTS audit.correction_seq;
CREATE TABLE IF NOT EXISTS audit.corrections (
    correction_id BIGINT PRIMARY KEY DEFAULT nextval('audit.correction_seq'),
    applied_at TIMESTAMPTZ NOT NULL,
    source_kind VARCHAR NOT NULL,     -- corrections_file | resent
    source VARCHAR,                   -- who sent it: a department or the register authority
    source_file VARCHAR NOT NULL,
    file_sha256 VARCHAR,
    dataset_id VARCHAR,
    department VARCHAR,
    orig_batch_id VARCHAR,            -- the quarantined record ...
    orig_source_row BIGINT,
    field VARCHAR,
    old_code VARCHAR,
    new_code VARCHAR,
    outcome VARCHAR NOT NULL,         -- corrected | still_invalid | no_match | conflicting | invalid_new_code
    reasons VARCHAR[],                -- why it did not take
    corrected_batch_id VARCHAR,       -- ... and where its corrected version lives
    corrected_source_row BIGINT
);
"""

EXPECTATION_RESULTS_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.expectation_results (  -- GX results per batch (expectations/run.py)
    batch_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    department VARCHAR NOT NULL,
    suite VARCHAR NOT NULL,
    expectation VARCHAR NOT NULL,     -- GX expectation type
    rule VARCHAR,                     -- the quarantine reason it mirrors (valid_code: any identifier reason)
    field VARCHAR,                    -- catalog field code ('' for the key rule)
    "column" VARCHAR,                 -- the column(s) validated
    success BOOLEAN NOT NULL,
    element_count BIGINT,
    unexpected_count BIGINT,
    examples VARCHAR[],               -- a few unexpected values, codes and ID numbers masked
    run_at TIMESTAMPTZ NOT NULL
);
-- The batches validated together (one department's files of a dataset in one run); [batch_id] alone.
ALTER TABLE audit.expectation_results ADD COLUMN IF NOT EXISTS batches VARCHAR[];
"""


OPERATIONS_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
-- Expected deliveries as of a date (warehouse/deliveries.py): one row per department x dataset x period
-- due by then; replaced for that date on every run.
CREATE TABLE IF NOT EXISTS audit.deliveries (
    as_of DATE NOT NULL,
    department VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    period VARCHAR NOT NULL,          -- 2025-03 or 2025-W07
    cadence VARCHAR NOT NULL,         -- monthly | weekly
    month DATE NOT NULL,              -- the month the period counts in (a week: its Thursday's)
    deadline DATE NOT NULL,           -- last day on time (N working days after the period, 调休 included)
    first_received_at TIMESTAMPTZ,    -- the first file of the period received by as_of (NULL: none)
    files INTEGER NOT NULL,           -- files of the period received by as_of (2: re-sent)
    status VARCHAR NOT NULL,          -- on_time | late | missing
    days_overdue INTEGER NOT NULL     -- calendar days past the deadline: to the receipt (late) or to as_of (missing)
);
-- Findings with a severity (warehouse/alerts.py, thresholds in catalogs/alerts.yaml), per as-of date.
CREATE TABLE IF NOT EXISTS audit.alerts (
    as_of DATE NOT NULL,
    severity VARCHAR NOT NULL,        -- warning | error
    check_name VARCHAR NOT NULL,      -- rate | worsening | delivery
    department VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL,
    period VARCHAR NOT NULL,          -- rate and worsening: the month (2025-03); delivery: the period
    month DATE NOT NULL,
    metric VARCHAR,                   -- compliance ... correction; NULL for a delivery
    value DOUBLE,                     -- the rate (delivery: days overdue)
    previous DOUBLE,                  -- worsening: last month's rate
    target DOUBLE,
    threshold DOUBLE,                 -- the error threshold it was compared with
    message_zh VARCHAR NOT NULL
);
"""
