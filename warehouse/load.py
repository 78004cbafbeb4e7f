"""Load one staged batch into the warehouse, in one transaction.

In: a staged folder (see transforms/stage.py). Out: ``raw.<dataset>`` rows as
received, ``clean.<dataset>`` rows that passed every check, ``quarantine.rows``
for the rest (reasons, Chinese message, the record as received), the subjects
dimension, and one ``audit.batches`` row. The transaction fails, leaving nothing,
unless ``rows_in = rows_loaded + rows_quarantined``.

A batch already in the ledger is not loaded again (the same bytes were dropped
twice) unless ``replace=True``, which deletes the batch everywhere and loads it anew.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from credit.catalog import Catalog, Dataset, FieldType
from transforms.reasons import FILE_REASONS, message_zh
from transforms.stage import MAX_QUARANTINED_VALUE, Manifest
from warehouse.checks_sql import build_check_sql
from warehouse.db import clean_columns, id_salt
from warehouse.sql_names import ident, table


class ConservationError(RuntimeError):
    """Rows were lost or counted twice: the batch is rolled back."""


@dataclass(frozen=True)
class LoadResult:
    batch_id: str
    dataset_id: str | None
    department: str
    source_file: str
    outcome: str  # loaded | replaced | duplicate
    status: str  # loaded | rejected | empty
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    message: str = ""


def _subject_key(dataset: Dataset) -> str:
    s = dataset.subject
    parts = []
    if s.uscc_field:
        parts.append(f"WHEN {ident(s.uscc_field)} IS NOT NULL THEN {ident(s.uscc_field)}")
    if s.id_field:
        parts.append(f"WHEN {ident(s.id_field)} IS NOT NULL THEN 'P:' || sha256($salt || {ident(s.id_field)})")
    return f"CASE {' '.join(parts)} ELSE 'N:' || md5(coalesce({ident(s.name_field)}, '')) END"


def _clean_select(dataset: Dataset) -> str:
    exprs = ["$batch_id", "source_row", _subject_key(dataset)]
    for spec in dataset.fields:
        col = ident(spec.code)
        if spec.type is FieldType.RESIDENT_ID:
            # Clean and everything after it carry a masked ID and a salted hash, never the ID.
            exprs.append(f"CASE WHEN {col} IS NOT NULL THEN left({col}, 6) || repeat('*', length({col}) - 10) || right({col}, 4) END")
            exprs.append(f"CASE WHEN {col} IS NOT NULL THEN sha256($salt || {col}) END")
        else:
            exprs.append(col)
    return ", ".join(exprs)


def _messages(con: duckdb.DuckDBPyConnection, dataset: Dataset | None, reason_lists: list[list[str]]) -> None:
    names = {f.code: f.name_zh for f in dataset.fields} if dataset else {}
    rows = {tuple(r): message_zh(list(r), names) for r in reason_lists}
    data = pa.table(
        {"reasons": [list(k) for k in rows], "message_zh": list(rows.values())},
        schema=pa.schema([("reasons", pa.list_(pa.string())), ("message_zh", pa.string())]),
    )
    con.register("reason_messages_src", data)
    con.execute("CREATE OR REPLACE TEMP TABLE reason_messages AS SELECT * FROM reason_messages_src")
    con.unregister("reason_messages_src")


def _delete_batch(con: duckdb.DuckDBPyConnection, dataset: Dataset | None, batch_id: str) -> None:
    if dataset is not None:
        for schema in ("raw", "clean"):
            con.execute(f"DELETE FROM {table(schema, dataset.id)} WHERE batch_id = ?", [batch_id])
    con.execute("DELETE FROM quarantine.rows WHERE batch_id = ?", [batch_id])
    con.execute("DELETE FROM audit.batches WHERE batch_id = ?", [batch_id])


def _arrival(con: duckdb.DuckDBPyConnection, m: Manifest, outcome: str, now: datetime) -> None:
    con.execute(
        "INSERT INTO audit.arrivals (batch_id, department, source_file, file_sha256, seen_at, outcome) VALUES (?, ?, ?, ?, ?, ?)",
        [m.batch_id, m.department, m.source_file, m.file_sha256, now, outcome],
    )


def _ledger_result(con: duckdb.DuckDBPyConnection, batch_id: str, outcome: str) -> LoadResult:
    row = con.execute(
        "SELECT batch_id, dataset_id, department, source_file, status, rows_in, rows_loaded, rows_quarantined, "
        "coalesce(message_zh, '') FROM audit.batches WHERE batch_id = ?",
        [batch_id],
    ).fetchone()
    return LoadResult(row[0], row[1], row[2], row[3], outcome, row[4], row[5], row[6], row[7], row[8])


def load_staged(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    catalog: Catalog,
    *,
    replace: bool = False,
    run_id: str | None = None,
) -> LoadResult:
    m = Manifest.read(folder)
    dataset = catalog.dataset(m.dataset_id)
    now = datetime.now(UTC)
    exists = con.execute("SELECT count(*) FROM audit.batches WHERE batch_id = ?", [m.batch_id]).fetchone()[0]
    if exists and not replace:
        _arrival(con, m, "duplicate", now)
        return _ledger_result(con, m.batch_id, "duplicate")

    con.execute("BEGIN TRANSACTION")
    try:
        _delete_batch(con, dataset, m.batch_id)
        _load_rows(con, folder, m, dataset)
        _load_ledger(con, m, dataset, now, run_id)
        _upsert_subjects(con, dataset, m.batch_id)
        _arrival(con, m, "replaced" if exists else "loaded", now)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return _ledger_result(con, m.batch_id, "replaced" if exists else "loaded")


def _load_rows(con: duckdb.DuckDBPyConnection, folder: Path, m: Manifest, dataset: Dataset) -> None:
    raw = table("raw", dataset.id)
    cols = ", ".join(ident(c) for c in dataset.field_codes)
    con.execute(
        f"INSERT INTO {raw} (batch_id, source_row, {cols}) SELECT ?, _row, {cols} FROM read_parquet(?)",
        [m.batch_id, str(folder / "rows.parquet")],
    )
    lineage = [m.batch_id, dataset.id, m.department, m.source_file]
    if m.rows_staged:
        sql, params = build_check_sql(dataset)
        con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {sql}", {**params, "batch_id": m.batch_id})
        clean_cols = ", ".join(ident(c) for c, _ in clean_columns(dataset))
        select = _clean_select(dataset)
        params = {"batch_id": m.batch_id} | ({"salt": id_salt()} if "$salt" in select else {})
        con.execute(
            f"INSERT INTO {table('clean', dataset.id)} ({clean_cols}) SELECT {select} FROM checked WHERE len(reasons) = 0",
            params,
        )
        bad = [r[0] for r in con.execute("SELECT DISTINCT reasons FROM checked WHERE len(reasons) > 0").fetchall()]
        _messages(con, dataset, bad)
        # Values longer than MAX_QUARANTINED_VALUE are cut here; the archived file keeps them whole.
        record = ", ".join(f"{ident(c)} := left(r.{ident(c)}, {MAX_QUARANTINED_VALUE})" for c in dataset.field_codes)
        con.execute(
            f"""INSERT INTO quarantine.rows
                (batch_id, dataset_id, department, source_file, source_row, reasons, message_zh, record, evidence)
            SELECT ?, ?, ?, ?, c.source_row, c.reasons, m.message_zh, to_json(struct_pack({record})), c.evidence
            FROM checked c
            JOIN {raw} r ON r.batch_id = ? AND r.source_row = c.source_row
            JOIN reason_messages m ON m.reasons = c.reasons
            WHERE len(c.reasons) > 0""",
            [*lineage, m.batch_id],
        )
        con.execute("DROP TABLE checked")
    rejects = str(folder / "rejects.parquet")
    bad = [r[0] for r in con.execute("SELECT DISTINCT reasons FROM read_parquet(?)", [rejects]).fetchall()]
    _messages(con, dataset, bad)
    con.execute(
        """INSERT INTO quarantine.rows
            (batch_id, dataset_id, department, source_file, source_row, reasons, message_zh, record)
        SELECT ?, ?, ?, ?, j._row, j.reasons, m.message_zh, j.record::JSON
        FROM read_parquet(?) j JOIN reason_messages m ON m.reasons = j.reasons""",
        [*lineage, rejects],
    )


def _load_ledger(con: duckdb.DuckDBPyConnection, m: Manifest, dataset: Dataset, now: datetime, run_id: str | None) -> None:
    loaded = con.execute(f"SELECT count(*) FROM {table('clean', dataset.id)} WHERE batch_id = ?", [m.batch_id]).fetchone()[0]
    quarantined = con.execute("SELECT count(*) FROM quarantine.rows WHERE batch_id = ?", [m.batch_id]).fetchone()[0]
    if loaded + quarantined != m.rows_in:
        raise ConservationError(
            f"batch {m.batch_id}: {m.rows_in} rows in but {loaded} loaded + {quarantined} quarantined; rolled back"
        )
    if m.file_reasons:
        status = "rejected"
    elif m.rows_in == 0:
        status = "empty"
    else:
        status = "loaded"
    names = {f.code: f.name_zh for f in dataset.fields}
    message = m.file_message or (message_zh(m.file_reasons, names) if m.file_reasons else "")
    if status == "empty":
        message = "文件只有表头，没有数据行"
    con.execute(
        """INSERT INTO audit.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            m.batch_id, dataset.id, m.department, m.source_file, m.file_sha256, m.file_bytes,
            m.format, m.encoding, m.received_at, now, m.rows_in, loaded, quarantined, status,
            m.file_reasons, message, json.dumps(m.header_map, ensure_ascii=False), m.unmapped_headers, run_id,
        ],
    )


def _upsert_subjects(con: duckdb.DuckDBPyConnection, dataset: Dataset, batch_id: str) -> None:
    s = dataset.subject
    uscc = ident(s.uscc_field) if s.uscc_field else "NULL"
    con.execute(
        f"""INSERT INTO clean.subjects
        SELECT subject_key,
            CASE WHEN starts_with(subject_key, 'P:') THEN 'natural_person'
                 WHEN starts_with(subject_key, 'N:') THEN 'unidentified'
                 ELSE 'legal_entity' END,
            any_value({uscc}), any_value({ident(s.name_field)}), ?, ?, ?
        FROM {table('clean', dataset.id)} WHERE batch_id = ?
        GROUP BY subject_key
        ON CONFLICT (subject_key) DO UPDATE SET
            last_batch = excluded.last_batch,
            name = CASE WHEN excluded.in_register OR name IS NULL THEN excluded.name ELSE name END,
            in_register = in_register OR excluded.in_register""",
        [dataset.category == "register", batch_id, batch_id, batch_id],
    )


def record_unrouted(
    con: duckdb.DuckDBPyConnection,
    *,
    batch_id: str,
    department: str,
    source_file: str,
    file_sha256: str,
    file_bytes: int,
    reason: str,
    message: str,
    run_id: str | None = None,
) -> LoadResult:
    """A file no dataset accepts: ledgered as rejected with no rows, kept in the archive."""
    now = datetime.now(UTC)
    con.execute("DELETE FROM audit.batches WHERE batch_id = ?", [batch_id])
    text = f"{FILE_REASONS.get(reason, reason)}：{message}"
    con.execute(
        """INSERT INTO audit.batches (batch_id, dataset_id, department, source_file, file_sha256, file_bytes,
            loaded_at, rows_in, rows_loaded, rows_quarantined, status, file_reasons, message_zh, run_id)
        VALUES (?, NULL, ?, ?, ?, ?, ?, 0, 0, 0, 'rejected', ?, ?, ?)""",
        [batch_id, department, source_file, file_sha256, file_bytes, now, [reason], text, run_id],
    )
    con.execute(
        "INSERT INTO audit.arrivals (batch_id, department, source_file, file_sha256, seen_at, outcome) VALUES (?, ?, ?, ?, ?, 'rejected')",
        [batch_id, department, source_file, file_sha256, now],
    )
    return LoadResult(batch_id, None, department, source_file, "loaded", "rejected", 0, 0, 0, text)
