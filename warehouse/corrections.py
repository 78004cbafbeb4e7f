"""The correction ledger (纠正) and the re-sent-record path.

A quarantined record is never lost: it stays in ``quarantine.rows`` until a correction
reaches it, then its status turns ``corrected`` and ``corrected_by`` names the batch that
carried the corrected record into the clean layer. Two kinds of correction arrive:

- a corrections file (old code -> new code) from a department or the register authority,
  applied by ``warehouse.correction_file``;
- a re-sent record: an ordinary feed batch that carries, clean this time, a record some
  earlier batch of the same department and dataset had quarantined. Records are the same
  when their *identity* is: the catalog key without its codes (a code field in the key
  is replaced by the subject's name, since the code is what gets corrected).

Every correction, and every correction that did not take, is one row of ``audit.corrections``.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from foundation.catalog import CODE_TYPES, Dataset, FieldSpec
from foundation.sql_names import ident
from warehouse.checks_sql import build_typed_sql, typed_name

# A record quarantined only as a repeated copy has nothing to correct.
_CORRECTABLE = "len(list_filter(q.reasons, lambda r: r <> 'duplicate_row')) > 0"


def identity_fields(dataset: Dataset) -> list[FieldSpec]:
    """The catalog key without its codes: a code field is replaced by the subject's name."""
    out: list[FieldSpec] = []
    for code in dataset.key_fields:
        spec = dataset.field(code)
        if spec.type in CODE_TYPES:
            spec = dataset.field(dataset.subject.name_field)
        if spec not in out:
            out.append(spec)
    return out


def json_columns(dataset: Dataset) -> tuple[str, dict]:
    """SELECT list turning a quarantined ``record`` (JSON keyed by field code) back into columns."""
    params = {f"path_{code}": f'$."{code}"' for code in dataset.field_codes}
    select = ", ".join(f"json_extract_string(q.record, $path_{code}) AS {ident(code)}" for code in dataset.field_codes)
    return select, params


def match_resent(con: duckdb.DuckDBPyConnection, dataset: Dataset, batch_id: str, department: str) -> int:
    """Add to temp table ``resent`` the open quarantined records of other batches that this batch re-sends clean.

    Reads the temp tables ``typed`` (a slice of the batch being loaded) and ``problems``. Returns
    the number of matches. Records this batch corrected before (a ``--replace`` re-run) match again.
    """
    fields = identity_fields(dataset)
    if not fields:
        return 0
    candidates = """FROM quarantine.rows q
        WHERE q.dataset_id = $dataset AND q.department = $department AND q.batch_id <> $batch
          AND (q.status = 'open' OR q.corrected_by = $batch) AND q.record IS NOT NULL AND """ + _CORRECTABLE
    where = {"dataset": dataset.id, "department": department, "batch": batch_id}
    if not con.execute(f"SELECT count(*) {candidates}", where).fetchall()[0][0]:
        return 0
    select, params = json_columns(dataset)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE quarantined_source AS "
        f"SELECT row_number() OVER () AS _row, q.batch_id AS orig_batch_id, q.source_row AS orig_source_row, {select} "
        f"{candidates}",
        {**params, **where},
    )
    typed_sql, typed_params = build_typed_sql(dataset, source="quarantined_source")
    con.execute(f"CREATE OR REPLACE TEMP TABLE quarantined_typed AS {typed_sql}", typed_params)
    on = " AND ".join(f"n.{typed_name(f)} = o.{typed_name(f)}" for f in fields)
    con.execute(
        f"""INSERT INTO resent
        SELECT s.orig_batch_id, s.orig_source_row, min(n.source_row)
        FROM (typed n ANTI JOIN problems USING (source_row))
        JOIN quarantined_typed o ON {on}
        JOIN quarantined_source s ON s._row = o.source_row
        GROUP BY ALL"""
    )
    for name in ("quarantined_source", "quarantined_typed"):
        con.execute(f"DROP TABLE {name}")
    return con.execute("SELECT count(*) FROM resent").fetchall()[0][0]  # over the slices so far


def record_resent(
    con: duckdb.DuckDBPyConnection, *, batch_id: str, dataset_id: str, department: str, source_file: str,
    file_sha256: str, now: datetime,
) -> None:
    """Inside the load transaction: mark the re-sent records corrected and ledger them."""
    undo_corrections(con, batch_id)
    con.execute("CREATE OR REPLACE TEMP TABLE resent AS "  # a record re-sent twice corrects once
                "SELECT orig_batch_id, orig_source_row, min(source_row) AS source_row FROM resent GROUP BY ALL")
    con.execute(
        """UPDATE quarantine.rows q SET status = 'corrected', corrected_at = $now, corrected_by = $batch
        FROM resent r WHERE q.batch_id = r.orig_batch_id AND q.source_row = r.orig_source_row""",
        {"now": now, "batch": batch_id},
    )
    con.execute(
        """INSERT INTO audit.corrections (applied_at, source_kind, source, source_file, file_sha256, dataset_id,
            department, orig_batch_id, orig_source_row, outcome, corrected_batch_id, corrected_source_row)
        SELECT $now, 'resent', $department, $file, $sha, $dataset, $department, orig_batch_id, orig_source_row,
            'corrected', $batch, source_row
        FROM resent""",
        {"now": now, "batch": batch_id, "department": department, "file": source_file, "sha": file_sha256,
         "dataset": dataset_id},
    )


def undo_corrections(con: duckdb.DuckDBPyConnection, batch_id: str) -> None:
    """A batch being replaced gives back what it corrected; the reload corrects it again."""
    con.execute("UPDATE quarantine.rows SET status = 'open', corrected_at = NULL, corrected_by = NULL "
                "WHERE corrected_by = ?", [batch_id])
    con.execute("DELETE FROM audit.corrections WHERE corrected_batch_id = ?", [batch_id])
