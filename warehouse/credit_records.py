"""The credit-records mart: one fact table over every dataset, as of a day (``mart.credit_records``).

What scoring, credit warnings and the credit check read; built from the clean layer as it stood on
the as-of day (batches received by then, the latest copy of each record). Each dataset's ``credit``
block (catalog) says what it contributes:

- ``record``: one fact per record. Datasets published on the website take their status, severity
  class, rule version, end of publication and repair from the publication engine
  (warehouse/public_records.py, ``records_sql(for_mart=True)``): scoring reads them, it does not
  redo them. Others (the repair dataset) are ``in_effect`` from their date on;
- ``register``: one fact per registered subject: its registration status and founding date;
- ``payment``: one ``arrears`` fact per subject and month in arrears, and one ``on_time_streak`` fact
  per subject: the months it reported since its last month in arrears (``measure``).

The facts of a day replace that day's earlier build in one transaction and are exported to
``<data root>/mart/credit_records/as_of=<day>/credit_records.parquet`` (docs/parquet-contract.md).
Catalog values travel as bound parameters; identifiers are catalog codes checked by ``ident``.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from foundation.catalog import Catalog, Dataset, FieldType
from foundation.parquet_out import write_query
from foundation.scoring_model import IN_EFFECT
from foundation.settings import Settings
from foundation.sql_names import ident, table
from warehouse.public_records import records_sql, register_terms

CITY_TZ = ZoneInfo("Asia/Shanghai")
FACT_COLUMNS = ["as_of", "record_id", "subject_key", "dataset_id", "fact_kind", "record_kind", "polarity",
                "severity", "rule_version", "decided", "published_until", "status", "repair_kind", "repaired_on",
                "measure", "document", "department", "batch_id", "source_row"]


def cutoff_of(as_of: date) -> datetime:
    """The end of the as-of day in the city: batches received before it count."""
    return datetime.combine(as_of + timedelta(days=1), datetime.min.time(), CITY_TZ)


def mart_dir(settings: Settings) -> Path:
    return settings.data_root / "mart"


def build_credit_records(con: duckdb.DuckDBPyConnection, catalog: Catalog, as_of: date,
                         settings: Settings | None = None) -> int:
    """Build the facts as of ``as_of`` into ``mart.credit_records`` (replacing that day's) and, with
    ``settings``, export them to Parquet. Returns the number of facts."""
    register_terms(con, catalog.publication)
    bind = {"as_of": as_of, "cutoff": cutoff_of(as_of)}
    con.execute("CREATE OR REPLACE TEMP TABLE new_facts AS SELECT * FROM mart.credit_records WHERE false")
    for ds in catalog.datasets.values():
        if ds.credit is None:
            continue
        if ds.credit.fact == "payment":
            sql, params = _payment_sql(ds)
        elif ds.credit.fact == "register":
            sql, params = _register_sql(ds)
        elif ds.publication is not None:
            sql, params = _published_sql(catalog, ds)
        else:
            sql, params = _record_sql(ds)
        con.execute(f"INSERT INTO new_facts BY NAME {sql}", params | bind)
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM mart.credit_records WHERE as_of = ?", [as_of])
        con.execute("INSERT INTO mart.credit_records SELECT * FROM new_facts ORDER BY subject_key, dataset_id, "
                    "record_id")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    (facts,) = con.execute("SELECT count(*) FROM new_facts").fetchall()[0]
    con.execute("DROP TABLE new_facts")
    if settings is not None:
        export_facts(con, settings, as_of)
    return int(facts)


def export_facts(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date) -> Path:
    """The day's facts as one Parquet file."""
    folder = mart_dir(settings) / "credit_records" / f"as_of={as_of.isoformat()}"
    return write_mart_file(con, "SELECT * FROM mart.credit_records WHERE as_of = $as_of "
                                "ORDER BY subject_key, dataset_id, record_id", {"as_of": as_of},
                           folder / "credit_records.parquet")


def write_mart_file(con: duckdb.DuckDBPyConnection, sql: str, params: dict, path: Path) -> Path:
    """A query's rows as one Parquet file of the mart, written aside and renamed into place whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write_query(con, sql, params, tmp)
    os.replace(tmp, path)
    return path


def _polarity_sql(ds: Dataset, kind: str, params: dict) -> str:
    """The fact's polarity: the dataset's, or its record kind's where the catalog says so."""
    assert ds.credit is not None
    params["polarity"] = ds.credit.polarity
    if not ds.credit.polarity_by_kind:
        return "$polarity"
    params["pk_kinds"] = list(ds.credit.polarity_by_kind)
    params["pk_values"] = list(ds.credit.polarity_by_kind.values())
    return f"coalesce($pk_values[list_position($pk_kinds, {kind})], $polarity)"


def _published_sql(catalog: Catalog, ds: Dataset) -> tuple[str, dict]:
    inner, params = records_sql(catalog, ds, for_mart=True)
    params["dataset_id"] = ds.id
    polarity = _polarity_sql(ds, "record_kind", params)
    return f"""
    SELECT $as_of AS as_of, record_key AS record_id, subject_key, $dataset_id AS dataset_id, 'record' AS fact_kind,
        record_kind, {polarity} AS polarity, severity, rule_version, decided, published_until, status, repair_kind,
        repaired_on, NULL::DOUBLE AS measure, document, department, batch_id, source_row
    FROM ({inner})""", params


def _latest(ds: Dataset, columns: list[str]) -> str:
    """The dataset's clean rows received by the as-of day, the latest copy per key."""
    cols = ", ".join(f"c.{ident(c)}" for c in dict.fromkeys(columns))
    key = ", ".join(f"c.{ident(k)}" for k in ds.key_fields)
    return f"""
    SELECT c.subject_key, c.batch_id, c.source_row, b.department, {cols}
    FROM {table('clean', ds.id)} c JOIN audit.batches b USING (batch_id)
    WHERE b.received_at < $cutoff AND b.superseded_by IS NULL
    QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY b.received_at DESC, c.batch_id DESC,
                                                            c.source_row DESC) = 1"""


def _record_sql(ds: Dataset) -> tuple[str, dict]:
    credit = ds.credit
    assert credit is not None and credit.date_field
    params: dict = {"dataset_id": ds.id, "in_effect": IN_EFFECT}
    kind = f"CAST({ident(credit.kind_field)} AS VARCHAR)" if credit.kind_field else "NULL::VARCHAR"
    polarity = _polarity_sql(ds, "record_kind", params)
    doc = ident(ds.repairs.document_field if ds.repairs else ds.key_fields[0])  # the record it names (repairs)
    keys = ", ".join(f"coalesce(CAST({ident(k)} AS VARCHAR), '')" for k in ds.key_fields)
    return f"""
    SELECT $as_of AS as_of, md5(concat_ws(chr(31), $dataset_id, {keys})) AS record_id, subject_key,
        $dataset_id AS dataset_id, 'record' AS fact_kind, record_kind, {polarity} AS polarity,
        NULL::VARCHAR AS severity, NULL::VARCHAR AS rule_version, decided, NULL::DATE AS published_until,
        $in_effect AS status, NULL::VARCHAR AS repair_kind, NULL::DATE AS repaired_on, NULL::DOUBLE AS measure,
        CAST({doc} AS VARCHAR) AS document, department, batch_id, source_row
    FROM (SELECT *, {kind} AS record_kind, {ident(credit.date_field)} AS decided
          FROM ({_latest(ds, [*ds.key_fields, *credit.fields(), *(ds.repairs.fields() if ds.repairs else [])])}))
    WHERE decided <= $as_of""", params


def _register_sql(ds: Dataset) -> tuple[str, dict]:
    credit = ds.credit
    assert credit is not None and credit.kind_field and credit.date_field
    params: dict = {"dataset_id": ds.id, "in_effect": IN_EFFECT, "polarity": credit.polarity}
    return f"""
    SELECT $as_of AS as_of, md5(concat_ws(chr(31), $dataset_id, subject_key)) AS record_id, subject_key,
        $dataset_id AS dataset_id, 'register' AS fact_kind, CAST({ident(credit.kind_field)} AS VARCHAR) AS record_kind,
        $polarity AS polarity, NULL::VARCHAR AS severity, NULL::VARCHAR AS rule_version,
        {ident(credit.date_field)} AS decided, NULL::DATE AS published_until, $in_effect AS status,
        NULL::VARCHAR AS repair_kind, NULL::DATE AS repaired_on, NULL::DOUBLE AS measure,
        NULL::VARCHAR AS document, department, batch_id, source_row
    FROM ({_latest(ds, [*ds.key_fields, *credit.fields()])})
    QUALIFY row_number() OVER (PARTITION BY subject_key ORDER BY batch_id DESC, source_row DESC) = 1""", params


def _payment_sql(ds: Dataset) -> tuple[str, dict]:
    credit = ds.credit
    assert credit is not None and credit.month_field and credit.arrears_field
    params: dict = {"dataset_id": ds.id, "in_effect": IN_EFFECT, "arrears": list(credit.arrears_values)}
    month_col = ident(credit.month_field)
    if ds.field(credit.month_field).type is FieldType.DATE:
        month = f"date_trunc('month', {month_col})::DATE"
    else:
        month = f"try_strptime(trim(CAST({month_col} AS VARCHAR)), '%Y-%m')::DATE"
    return f"""
    WITH rows AS (
        SELECT subject_key, department, batch_id, source_row, {month} AS month,
            coalesce(list_contains($arrears, CAST({ident(credit.arrears_field)} AS VARCHAR)), false) AS in_arrears
        FROM ({_latest(ds, [*ds.key_fields, *credit.fields()])})
    ), months AS (
        SELECT subject_key, month, bool_or(in_arrears) AS in_arrears,
            min({{'b': batch_id, 'r': source_row, 'd': department}}) FILTER (WHERE in_arrears) AS src
        FROM rows WHERE month IS NOT NULL AND month <= date_trunc('month', $as_of::DATE)::DATE
        GROUP BY ALL
    ), streaks AS (
        SELECT subject_key, max(month) AS last_month, max(month) FILTER (WHERE in_arrears) AS last_arrears
        FROM months GROUP BY subject_key
    )
    SELECT $as_of AS as_of, md5(concat_ws(chr(31), $dataset_id, subject_key, month)) AS record_id, subject_key,
        $dataset_id AS dataset_id, 'arrears' AS fact_kind, strftime(month, '%Y-%m') AS record_kind,
        'negative' AS polarity, NULL::VARCHAR AS severity, NULL::VARCHAR AS rule_version, month AS decided,
        NULL::DATE AS published_until, $in_effect AS status, NULL::VARCHAR AS repair_kind, NULL::DATE AS repaired_on,
        NULL::DOUBLE AS measure, NULL::VARCHAR AS document, src.d AS department, src.b AS batch_id,
        src.r AS source_row
    FROM months WHERE in_arrears
    UNION ALL
    SELECT $as_of, md5(concat_ws(chr(31), $dataset_id, s.subject_key, 'streak')), s.subject_key, $dataset_id,
        'on_time_streak', strftime(s.last_month, '%Y-%m'), 'positive', NULL, NULL, s.last_month, NULL, $in_effect,
        NULL, NULL, count(m.month)::DOUBLE, NULL, NULL, NULL, NULL
    FROM streaks s LEFT JOIN months m ON m.subject_key = s.subject_key
        AND (s.last_arrears IS NULL OR m.month > s.last_arrears)
    GROUP BY s.subject_key, s.last_month""", params
