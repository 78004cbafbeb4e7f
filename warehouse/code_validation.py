"""Validate a stream of codes batch by batch (``credit codes validate``).

In: lines of text, one code each. Out: one JSON object per input line, in order:
``input``, ``normalized``, ``kind`` (uscc / org_code / resident_id / unknown),
``valid`` and ``reasons``. The verdicts come from the vectorized identifier engine
(transforms/identifiers_arrow.py, the same checks as the pipeline's SQL, tested equal to the
Python reference); DuckDB's ``to_json`` writes the objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from transforms.identifiers_arrow import validate_codes

BATCH_LINES = 200_000
KINDS = ("uscc", "org_code", "resident_id")

_SQL = """
SELECT to_json({'input': input, 'normalized': normalized, 'kind': kind, 'valid': valid, 'reasons': reasons})
FROM verdicts
"""


def validate_lines(lines: Iterable[str], kind: str | None = None) -> Iterator[str]:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}")
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")  # the default; the output order depends on it
    stream = iter(lines)
    while batch := list(islice(stream, BATCH_LINES)):
        codes = pc.utf8_rtrim(pa.array(batch, pa.string()), characters="\r\n")  # = line.rstrip("\r\n")
        con.register("verdicts", validate_codes(codes, kind))
        yield from con.sql(_SQL).to_arrow_table().column(0).to_pylist()
        con.unregister("verdicts")
    con.close()
