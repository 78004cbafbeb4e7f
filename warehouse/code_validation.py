"""Validate a stream of codes in DuckDB, batch by batch (``credit codes validate``).

In: lines of text, one code each. Out: one JSON object per input line, in order:
``input``, ``normalized``, ``kind`` (uscc / org_code / resident_id / unknown),
``valid`` and ``reasons``. The same macros as the pipeline do the work, so the
command line and the warehouse can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import duckdb
import pyarrow as pa

from warehouse.identifier_sql import install_identifier_macros

BATCH_LINES = 200_000
KINDS = ("uscc", "org_code", "resident_id")

_SQL = """
WITH normalized AS (
    SELECT i, input, normalize_code(input) AS normalized FROM lines
),
kinded AS (
    SELECT *, coalesce($kind, code_kind(normalized)) AS kind FROM normalized
),
checked AS (
    SELECT *,
        CASE WHEN normalized IS NULL THEN ['empty']
             WHEN kind = 'org_code' THEN org_code_reasons(normalized)
             WHEN kind = 'resident_id' THEN resident_id_reasons(normalized)
             ELSE uscc_reasons(normalized) END AS reasons
    FROM kinded
)
SELECT to_json({'input': input, 'normalized': normalized, 'kind': kind,
                'valid': len(reasons) = 0, 'reasons': reasons})
FROM checked ORDER BY i
"""


def validate_lines(lines: Iterable[str], kind: str | None = None) -> Iterator[str]:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}")
    con = duckdb.connect()
    install_identifier_macros(con)
    stream = iter(lines)
    while batch := list(islice(stream, BATCH_LINES)):
        table = pa.table({"i": pa.array(range(len(batch)), pa.int64()),
                          "input": pa.array([line.rstrip("\r\n") for line in batch], pa.string())})
        con.register("lines", table)
        for (row,) in con.execute(_SQL, {"kind": kind}).fetchall():
            yield row
        con.unregister("lines")
    con.close()
