"""Load one staged batch into the warehouse.

In: a staged folder (see transforms/stage.py). Out:
- the raw partition ``<data root>/raw/<dataset>/department=/batch_id=/rows.parquet``
  (the rows as received; restricted);
- the clean partition ``<data root>/parquet/<dataset>/department=/batch_id=/part-<n>.parquet``,
  the rows that passed every check, typed — the export downstream systems read;
- ``quarantine.rows`` for the rest (reasons, Chinese message, the record as received),
  the subjects dimension, and one ``audit.batches`` row.
The ledger row, quarantine and subjects are written in one transaction that fails
unless ``rows_in = rows_loaded + rows_quarantined``. The partitions are written in the
work area first and published (renamed into place) only after that transaction has
committed, with a publish intent in the ledger that the next writer finishes if this
one is killed (warehouse/partitions.py): a reader of the export never sees a batch the
ledger does not count. A batch already in the ledger is not loaded again (the same
bytes were dropped twice) unless ``replace=True``, which replaces it everywhere, or its
partitions are missing (lost to a crash of an older version), which loads it again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from foundation.catalog import Catalog, Dataset, get_catalog
from foundation.parquet_out import write_query
from foundation.settings import Settings
from foundation.sql_names import ident
from transforms.periods import is_resend, period_of_file
from transforms.reasons import FILE_REASONS, message_zh
from transforms.stage import MAX_QUARANTINED_VALUE, Manifest
from warehouse.checks_sql import (
    CODE_CHECKS_DDL,
    STAGED_ROWS,
    build_clean_sql,
    build_code_checks_sql,
    build_code_rows_sql,
    build_code_sql,
    build_conflict_sql,
    build_copies_sql,
    build_problem_sql,
    build_typed_sql,
)
from warehouse.corrections import match_resent, record_resent, undo_corrections
from warehouse.crash_points import crash_point
from warehouse.db import id_salt
from warehouse.partitions import batch_partitions, discard_work, publish, record_intent, work_folders
from warehouse.public_records import register_terms, repair_check_sql
from warehouse.schema import refresh_views


class ConservationError(RuntimeError):
    """Rows were lost or counted twice: the batch is rolled back."""


SHANGHAI = ZoneInfo("Asia/Shanghai")  # periods and received days are Chinese local dates

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


@dataclass(frozen=True)
class CorrectionBatch:
    """What a correction batch corrects: ``fixes`` maps its ``_row`` to the quarantined record.

    ``fixes`` columns: ``_row``, ``orig_batch_id``, ``orig_source_row``, ``field``, ``old_code``, ``new_code``.
    """

    source: str
    fixes: pa.Table


def _messages(con: duckdb.DuckDBPyConnection, dataset: Dataset | None, reason_lists: list[list[str]]) -> None:
    """A temp table of the Chinese message for each distinct list of reasons."""
    names = {f.code: f.name_zh for f in dataset.fields} if dataset else {}
    rows = {tuple(r): message_zh(list(r), names) for r in reason_lists}
    data = pa.table(
        {"reasons": [list(k) for k in rows], "message_zh": list(rows.values())},
        schema=pa.schema([("reasons", pa.list_(pa.string())), ("message_zh", pa.string())]),
    )
    con.register("reason_messages_src", data)
    con.execute("CREATE OR REPLACE TEMP TABLE reason_messages AS SELECT * FROM reason_messages_src")
    con.unregister("reason_messages_src")


def _arrival(con: duckdb.DuckDBPyConnection, m: Manifest, outcome: str, now: datetime) -> None:
    con.execute(
        "INSERT INTO audit.arrivals (batch_id, department, source_file, file_sha256, seen_at, outcome) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [m.batch_id, m.department, m.source_file, m.file_sha256, now, outcome],
    )


def _ledger_result(con: duckdb.DuckDBPyConnection, batch_id: str, outcome: str) -> LoadResult:
    row = con.execute(
        "SELECT batch_id, dataset_id, department, source_file, status, rows_in, rows_loaded, rows_quarantined, "
        "coalesce(message_zh, '') FROM audit.batches WHERE batch_id = ?",
        [batch_id],
    ).fetchall()[0]
    return LoadResult(row[0], row[1], row[2], row[3], outcome, row[4], row[5], row[6], row[7], row[8])


def load_staged(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    folder: Path,
    catalog: Catalog,
    *,
    replace: bool = False,
    run_id: str | None = None,
    correction: CorrectionBatch | None = None,
) -> LoadResult:
    """Load one staged batch; a ``correction`` batch also marks the records it corrects."""
    m = Manifest.read(folder)
    dataset = catalog.dataset(m.dataset_id)
    now = datetime.now(UTC)
    publish(con, settings, m.batch_id)  # an earlier publish of this batch cut short in this process
    exists = con.execute("SELECT count(*) FROM audit.batches WHERE batch_id = ?", [m.batch_id]).fetchall()[0][0]
    if exists and not replace and _in_place(con, settings, m.batch_id):
        _arrival(con, m, "duplicate", now)
        return _ledger_result(con, m.batch_id, "duplicate")

    raw_new, clean_new = work_folders(settings, m.batch_id)
    try:
        rows_file = raw_new / "rows.parquet"
        _link(folder / "rows.parquet", rows_file)  # the staged folder stays whole for a retry
        loaded = check_and_write_clean(con, dataset, m, rows_file, clean_new,
                                        match=correction is None, catalog=catalog)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM quarantine.rows WHERE batch_id = ?", [m.batch_id])
            con.execute("DELETE FROM audit.batches WHERE batch_id = ?", [m.batch_id])
            con.execute("DELETE FROM audit.batch_codes WHERE batch_id = ?", [m.batch_id])
            con.execute("DELETE FROM audit.code_conflicts WHERE batch_id = ?", [m.batch_id])
            if correction is None:  # 重错码率 measures what departments send, not our corrections
                con.execute("INSERT INTO audit.batch_codes SELECT ?, ?, ?, * FROM batch_codes",
                            [m.batch_id, dataset.id, m.department])
                con.execute("INSERT INTO audit.code_conflicts SELECT ?, ?, ?, * FROM code_conflicts",
                            [m.batch_id, dataset.id, m.department])
                record_resent(con, batch_id=m.batch_id, dataset_id=dataset.id, department=m.department,
                              source_file=m.source_file, file_sha256=m.file_sha256, now=now)
            else:
                _record_fixes(con, m, correction, clean_new / "*.parquet", now)
            _quarantine(con, dataset, m, rows_file, folder / "rejects.parquet")
            _keep_corrected(con, m.batch_id)
            _ledger(con, m, dataset, loaded, now, run_id)
            superseded = _supersede(con, m, dataset, now) if correction is None else []
            if loaded:
                _upsert_subjects(con, dataset, m.batch_id, clean_new / "*.parquet")
            _arrival(con, m, "replaced" if exists else "loaded", now)
            record_intent(con, m.batch_id, dataset.id, m.department, clean=loaded > 0, now=now)
            crash_point("load.before_commit")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    except BaseException:
        discard_work(settings, m.batch_id)  # not committed: the ledger does not count it, nothing to publish
        raise
    crash_point("load.after_commit")
    publish(con, settings, m.batch_id)
    for old in superseded:
        publish(con, settings, old)
    refresh_views(con, settings, dataset, when_needed=True)
    return _ledger_result(con, m.batch_id, "replaced" if exists else "loaded")


def _link(source: Path, target: Path) -> None:
    """``target`` as a hard link of ``source`` (same file system: no copy), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _in_place(con: duckdb.DuckDBPyConnection, settings: Settings, batch_id: str) -> bool:
    """The ledgered batch's partitions are where the ledger says (raw always; clean when rows loaded)."""
    dataset_id, department, loaded = con.execute(
        "SELECT dataset_id, department, rows_loaded FROM audit.batches WHERE batch_id = ?", [batch_id]).fetchall()[0]
    if dataset_id is None:
        return True
    partition = Path(f"department={department}") / f"batch_id={batch_id}"
    raw = settings.raw_root / dataset_id
    clean = settings.parquet_root / dataset_id
    return (raw / partition).is_dir() and (clean / partition).is_dir() == (loaded > 0) \
        and len(batch_partitions(raw, batch_id)) == 1


# Rows checked at a time: a slice's typed rows stay in memory (no spilling) under the
# warehouse's memory limit, and the Arrow stream of its clean write stays small (1M-row
# slices peaked at 1.9 GB, see bench/README.md); the whole-batch checks (repeated records,
# codes) span slices.
CHECK_SLICE_ROWS = 500_000


def check_and_write_clean(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, m: Manifest, rows: Path, out: Path, *, match: bool = True,
    catalog: Catalog | None = None,
) -> int:
    """Run the checks: problems into a temp table, every other row typed into ``out/part-<n>.parquet``.

    Also fills the temp table ``batch_codes`` (重错码率) and, with ``match``, ``resent``: the
    quarantined records of earlier batches this one re-sends clean (see warehouse/corrections.py).
    """
    con.execute("CREATE OR REPLACE TEMP TABLE problems (source_row BIGINT, reasons VARCHAR[], evidence JSON)")
    con.execute("CREATE OR REPLACE TEMP TABLE batch_codes (field VARCHAR, code VARCHAR, erroneous BOOLEAN, "
                "duplicate BOOLEAN)")
    con.execute("CREATE OR REPLACE TEMP TABLE code_rows (field VARCHAR, code VARCHAR, name VARCHAR, "
                "erroneous BOOLEAN, malformed BOOLEAN)")
    con.execute("CREATE OR REPLACE TEMP TABLE code_conflicts (kind VARCHAR, code VARCHAR, name_key VARCHAR, "
                "others VARCHAR[])")
    con.execute("CREATE OR REPLACE TEMP TABLE resent (orig_batch_id VARCHAR, orig_source_row BIGINT, "
                "source_row BIGINT)")
    con.execute(CODE_CHECKS_DDL)
    if not m.rows_staged:
        return 0
    out.mkdir(parents=True, exist_ok=True)
    rows_param = {"rows": str(rows)}
    sql, params = build_copies_sql(dataset)
    con.execute(f"CREATE OR REPLACE TEMP TABLE copies AS {sql}", params | rows_param)
    # Slices by position in the file: the Parquet reader skips the row groups outside it.
    typed_sql, typed_params = build_typed_sql(
        dataset, source=STAGED_ROWS.format(where=" WHERE file_row_number >= $first AND file_row_number < $stop"))
    code_checks_sql = build_code_checks_sql(dataset)
    problem_sql, problem_params = build_problem_sql(dataset)
    if "register_ready" in problem_params:
        problem_params["register_ready"] = con.execute(
            "SELECT count(*) > 0 FROM clean.subjects WHERE in_register").fetchall()[0][0]
    repair_sql, repair_params = _repair_check(con, catalog or get_catalog(), dataset)
    clean_sql, clean_params = build_clean_sql(dataset, "problems")
    clean_params = clean_params | ({"salt": id_salt()} if "$salt" in clean_sql else {})
    code_rows_sql = build_code_rows_sql(dataset, "problems")
    count = 0
    # Every row carries its source_row, so the slices need not keep the file's order: DuckDB
    # then materializes and streams them without reordering (about a third faster).
    con.execute("SET preserve_insertion_order = false")
    try:
        for part, first in enumerate(range(0, m.rows_staged, CHECK_SLICE_ROWS)):
            window = {"first": first, "stop": first + CHECK_SLICE_ROWS}
            con.execute(f"CREATE OR REPLACE TEMP TABLE typed AS {typed_sql}", typed_params | rows_param | window)
            if code_checks_sql:
                con.execute(code_checks_sql)
            if repair_sql:
                con.execute(f"CREATE OR REPLACE TEMP TABLE repair_checks AS {repair_sql}", repair_params)
            con.execute(f"INSERT INTO problems {problem_sql}", problem_params)
            count += write_query(con, clean_sql, clean_params, out / f"part-{part}.parquet")
            if code_rows_sql:
                con.execute(f"INSERT INTO code_rows {code_rows_sql}")
            if match:
                match_resent(con, dataset, m.batch_id, m.department)
            con.execute("DROP TABLE typed")
    finally:
        con.execute("RESET preserve_insertion_order")
    if code_rows_sql:
        sql, params = build_code_sql(dataset, "code_rows")
        con.execute(f"INSERT INTO batch_codes {sql}", params)
        sql, params = build_conflict_sql(dataset, "code_rows")
        con.execute(f"INSERT INTO code_conflicts {sql}", params)
    con.execute("DROP TABLE copies")
    con.execute("DROP TABLE code_checks")
    return count


def _repair_check(con: duckdb.DuckDBPyConnection, catalog: Catalog, dataset: Dataset) -> tuple[str | None, dict]:
    """The reference check of a repair dataset (warehouse/public_records.py), ready to run per slice."""
    if dataset.repairs is None:
        return None, {}
    register_terms(con, catalog.publication)
    return repair_check_sql(catalog, dataset)


def _keep_corrected(con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
    """A replaced batch's quarantined records keep the corrections other batches made to them."""
    con.execute(
        """UPDATE quarantine.rows q SET status = 'corrected', corrected_at = c.applied_at,
            corrected_by = c.corrected_batch_id
        FROM audit.corrections c
        WHERE c.outcome = 'corrected' AND c.orig_batch_id = q.batch_id AND c.orig_source_row = q.source_row
          AND q.batch_id = ?""",
        [batch_id],
    )


def _record_fixes(con: duckdb.DuckDBPyConnection, m: Manifest, correction: CorrectionBatch, clean: Path,
                  now: datetime) -> None:
    """Inside the load transaction: the records a corrections file fixed turn ``corrected``."""
    undo_corrections(con, m.batch_id)
    con.register("fixes_src", correction.fixes)
    done = "(SELECT f.* FROM fixes_src f SEMI JOIN read_parquet(?) c ON c.source_row = f._row)"
    con.execute(
        f"""UPDATE quarantine.rows q SET status = 'corrected', corrected_at = ?, corrected_by = ?
        FROM {done} f WHERE q.batch_id = f.orig_batch_id AND q.source_row = f.orig_source_row""",
        [now, m.batch_id, str(clean)],
    )
    con.execute(
        f"""INSERT INTO audit.corrections (applied_at, source_kind, source, source_file, file_sha256, dataset_id,
            department, orig_batch_id, orig_source_row, field, old_code, new_code, outcome, corrected_batch_id,
            corrected_source_row)
        SELECT ?, 'corrections_file', ?, ?, ?, ?, ?, orig_batch_id, orig_source_row, field, old_code, new_code,
            'corrected', ?, _row
        FROM {done} f""",
        [now, correction.source, m.source_file, m.file_sha256, m.dataset_id, m.department, m.batch_id, str(clean)],
    )
    con.unregister("fixes_src")


def _quarantine(con: duckdb.DuckDBPyConnection, dataset: Dataset, m: Manifest, rows: Path, rejects: Path) -> None:
    lineage = [m.batch_id, dataset.id, m.department, m.source_file]
    bad = [r[0] for r in con.execute("SELECT DISTINCT reasons FROM problems").fetchall()]
    bad += [r[0] for r in con.execute("SELECT DISTINCT reasons FROM read_parquet(?)", [str(rejects)]).fetchall()]
    _messages(con, dataset, bad)
    # Values longer than MAX_QUARANTINED_VALUE are cut here; the archived file keeps them whole.
    record = ", ".join(f"{ident(c)} := left(r.{ident(c)}, {MAX_QUARANTINED_VALUE})" for c in dataset.field_codes)
    con.execute(
        f"""INSERT INTO quarantine.rows
            (batch_id, dataset_id, department, source_file, source_row, reasons, message_zh, record, evidence)
        SELECT $batch, $dataset, $department, $file, p.source_row, p.reasons, m.message_zh,
            to_json(struct_pack({record})), p.evidence
        FROM problems p
        JOIN {STAGED_ROWS.format(where="")} r ON r._row = p.source_row
        JOIN reason_messages m ON m.reasons = p.reasons""",
        {"batch": m.batch_id, "dataset": dataset.id, "department": m.department, "file": m.source_file,
         "rows": str(rows)},
    )
    con.execute(
        """INSERT INTO quarantine.rows
            (batch_id, dataset_id, department, source_file, source_row, reasons, message_zh, record)
        SELECT ?, ?, ?, ?, j._row, j.reasons, m.message_zh, j.record::JSON
        FROM read_parquet(?) j JOIN reason_messages m ON m.reasons = j.reasons""",
        [*lineage, str(rejects)],
    )


def _ledger(con: duckdb.DuckDBPyConnection, m: Manifest, dataset: Dataset, loaded: int, now: datetime,
            run_id: str | None) -> None:
    quarantined = con.execute("SELECT count(*) FROM quarantine.rows WHERE batch_id = ?", [m.batch_id]).fetchall()[0][0]
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
        """INSERT INTO audit.batches (batch_id, dataset_id, department, source_file, file_sha256, file_bytes,
            format, encoding, received_at, loaded_at, rows_in, rows_loaded, rows_quarantined, status,
            file_reasons, message_zh, header_map, unmapped_headers, run_id, notes, period, period_inferred)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [
            m.batch_id, dataset.id, m.department, m.source_file, m.file_sha256, m.file_bytes,
            m.format, m.encoding, m.received_at, now, m.rows_in, loaded, quarantined, status,
            m.file_reasons, message, json.dumps(m.header_map, ensure_ascii=False), m.unmapped_headers, run_id,
            m.notes, *_period(m, dataset),
        ],
    )


def _period(m: Manifest, dataset: Dataset) -> tuple[str | None, bool | None]:
    """The period the file covers (stated in its name, or the last whole one before it arrived)."""
    if dataset.delivery is None:
        return None, None
    received = datetime.fromisoformat(m.received_at).astimezone(SHANGHAI).date()
    period, inferred = period_of_file(m.source_file, received, dataset.delivery.rule_for(m.department).cadence)
    return period.label, inferred


def _supersede(con: duckdb.DuckDBPyConnection, m: Manifest, dataset: Dataset, now: datetime) -> list[str]:
    """A corrected re-send of a stated period (``..._2025-05_更正.jsonl``) replaces the earlier files of that
    department, dataset and period: they are marked ``superseded_by`` and their clean partitions withdrawn
    (raw layer, quarantine and archive keep them). Returns the superseded batch ids."""
    period, inferred, _ = con.execute("SELECT period, period_inferred, status FROM audit.batches WHERE batch_id = ?",
                                      [m.batch_id]).fetchall()[0]
    if inferred or period is None or not is_resend(m.source_file):
        return []
    older = [b for (b,) in con.execute(
        """SELECT batch_id FROM audit.batches
           WHERE dataset_id = ? AND department = ? AND period = ? AND batch_id <> ? AND superseded_by IS NULL
             AND received_at <= ? ORDER BY batch_id""",
        [dataset.id, m.department, period, m.batch_id, m.received_at]).fetchall()]
    for old in older:
        con.execute("UPDATE audit.batches SET superseded_by = ? WHERE batch_id = ?", [m.batch_id, old])
        record_intent(con, old, dataset.id, m.department, clean=False, now=now)
    return older


def _upsert_subjects(con: duckdb.DuckDBPyConnection, dataset: Dataset, batch_id: str, clean_file: Path) -> None:
    s = dataset.subject
    uscc = ident(s.uscc_field) if s.uscc_field else "NULL"
    con.execute(
        f"""INSERT INTO clean.subjects
        SELECT subject_key,
            CASE WHEN starts_with(subject_key, 'P:') THEN 'natural_person'
                 WHEN starts_with(subject_key, 'N:') THEN 'unidentified'
                 ELSE 'legal_entity' END,
            any_value({uscc}), any_value({ident(s.name_field)}), ?, ?, ?
        FROM read_parquet(?)
        GROUP BY subject_key
        ON CONFLICT (subject_key) DO UPDATE SET
            last_batch = excluded.last_batch,
            name = CASE WHEN excluded.in_register OR name IS NULL THEN excluded.name ELSE name END,
            in_register = in_register OR excluded.in_register""",
        [dataset.category == "register", batch_id, batch_id, str(clean_file)],
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
    dataset_id: str | None = None,
) -> LoadResult:
    """A file no dataset accepts (or that could not be read at all): ledgered as rejected with no
    rows, kept in the archive. The same bytes refused again are one batch with another arrival."""
    now = datetime.now(UTC)
    exists = con.execute("SELECT count(*) FROM audit.batches WHERE batch_id = ?", [batch_id]).fetchall()[0][0]
    if exists:  # the same bytes refused before (another name or folder): one batch, one more arrival
        con.execute(
            "INSERT INTO audit.arrivals (batch_id, department, source_file, file_sha256, seen_at, outcome) "
            "VALUES (?, ?, ?, ?, ?, 'duplicate')",
            [batch_id, department, source_file, file_sha256, now],
        )
        return _ledger_result(con, batch_id, "duplicate")
    text = f"{FILE_REASONS.get(reason, reason)}：{message}"
    con.execute(
        """INSERT INTO audit.batches (batch_id, dataset_id, department, source_file, file_sha256, file_bytes,
            loaded_at, rows_in, rows_loaded, rows_quarantined, status, file_reasons, message_zh, run_id)
        VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 'rejected', ?, ?, ?)""",
        [batch_id, dataset_id, department, source_file, file_sha256, file_bytes, now, [reason], text, run_id],
    )
    con.execute(
        "INSERT INTO audit.arrivals (batch_id, department, source_file, file_sha256, seen_at, outcome) "
        "VALUES (?, ?, ?, ?, ?, 'rejected')",
        [batch_id, department, source_file, file_sha256, now],
    )
    return LoadResult(batch_id, dataset_id, department, source_file, "loaded", "rejected", 0, 0, 0, text)
