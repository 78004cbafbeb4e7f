"""Read a department file as it was sent: CSV (UTF-8 with/without BOM, GB18030/GBK,
mixed), XLSX and JSON lines, streamed in Arrow batches of text.

Out flow ``Feed.headers`` (the header texts in column order) and ``Feed.batches()``:
Arrow record batches with a ``_row`` column (the record's 1-based ordinal in the
file, header not counted) and one string column per header, named by its index
(``"0"``, ``"1"`` ...). Values are exactly as received, never typed: an 18-digit
code stays text. Records that cannot be read at all (ragged, undecodable, not
JSON) are collected in ``Feed.rejects`` with a reason; nothing is dropped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

BATCH_ROWS = 50_000
_UNDECODABLE = "\ue000UNDECODABLE\ue000"  # private-use marker for a line we could not decode
csv.field_size_limit(1 << 30)


class FeedError(ValueError):
    """The file cannot be read as a feed at all (reason code + plain message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Reject:
    row: int
    reason: str
    raw: str


@dataclass
class Feed:
    path: Path
    format: str
    headers: list[str]
    encoding: str = "utf-8"
    rejects: list[Reject] = field(default_factory=list)
    _batches: Iterator[pa.RecordBatch] | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        assert self._batches is not None, "batches() can be iterated once"
        batches, self._batches = self._batches, None
        return batches


def _schema(width: int) -> pa.Schema:
    return pa.schema([("_row", pa.int64())] + [(str(i), pa.string()) for i in range(width)])


class _BatchBuilder:
    """Collects rows of text and emits Arrow batches of BATCH_ROWS."""

    def __init__(self, width: int) -> None:
        self.schema = _schema(width)
        self.width = width
        self._rows: list[int] = []
        self._cols: list[list[str | None]] = [[] for _ in range(width)]

    def add(self, row: int, values: Sequence[str | None]) -> pa.RecordBatch | None:
        self._rows.append(row)
        for col, value in zip(self._cols, values, strict=True):
            col.append(value)
        return self.flush() if len(self._rows) >= BATCH_ROWS else None

    def flush(self) -> pa.RecordBatch | None:
        if not self._rows:
            return None
        arrays = [pa.array(self._rows, pa.int64())] + [pa.array(c, pa.string()) for c in self._cols]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        self._rows = []
        self._cols = [[] for _ in range(self.width)]
        return batch


# ---------------------------------------------------------------- encodings


def _decode_line(raw: bytes) -> tuple[str | None, str]:
    """One line: UTF-8 first (BOM allowed), then GB18030 (a superset of GBK)."""
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        return None, "undecodable"


def _decoded_lines(path: Path, seen: set[str]) -> Iterator[str]:
    """Lines decoded one by one; undecodable lines become a marker the CSV reader passes on."""
    with path.open("rb") as fh:
        for raw in fh:
            text, encoding = _decode_line(raw)
            seen.add(encoding)
            if text is None:
                escaped = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
                quoted = (_UNDECODABLE + escaped).replace('"', '""')
                yield f'"{quoted}"\n'  # one quoted field, whatever commas the bytes held
            else:
                yield text


def _encoding_label(seen: set[str]) -> str:
    found = sorted(seen - {"undecodable"})
    label = "+".join(found) if found else "none"
    return label + ("+undecodable" if "undecodable" in seen else "")


# ---------------------------------------------------------------- CSV


def _csv_text_row(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


def _read_csv_header(path: Path) -> list[str]:
    with path.open("rb") as fh:
        first = fh.readline()
    if not first.strip():
        return []
    text, _ = _decode_line(first)
    if text is None:
        raise FeedError("undecodable_bytes", f"{path.name}: the header line is neither UTF-8 nor GB18030")
    return [h.strip() for h in next(csv.reader([text]))]


def _csv_slow(path: Path, width: int, feed: Feed) -> Iterator[pa.RecordBatch]:
    """Line-by-line decoding (mixed encodings, undecodable lines, ragged rows, huge fields)."""
    seen: set[str] = set()
    builder = _BatchBuilder(width)
    reader = csv.reader(_decoded_lines(path, seen))
    next(reader, None)  # header
    row = 0
    for values in reader:
        if not values:
            continue  # a blank line is not a record
        row += 1
        if len(values) == 1 and values[0].startswith(_UNDECODABLE):
            feed.rejects.append(Reject(row, "undecodable_bytes", values[0][len(_UNDECODABLE) :]))
            continue
        if len(values) != width:
            feed.rejects.append(Reject(row, "ragged_row", _csv_text_row(values)))
            continue
        if batch := builder.add(row, values):
            yield batch
    if batch := builder.flush():
        yield batch
    feed.encoding = _encoding_label(seen)


def read_csv(path: Path) -> Feed:
    """Line by line: any encoding mix, ragged rows, fields of any size.

    (A well-formed UTF-8 CSV takes DuckDB's parallel reader instead: transforms/stage.py.)
    """
    headers = _read_csv_header(path)
    feed = Feed(path=path, format="csv", headers=headers)
    feed._batches = _csv_slow(path, len(headers), feed) if headers else iter(())
    return feed


# ---------------------------------------------------------------- XLSX


def _cell_text(value: object) -> str | None:
    """An Excel cell as the text a department meant; numbers the way Excel shows them."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            # Excel keeps 15 significant digits: an 18-digit code typed as a number
            # comes back as e.g. 913710831234567000 (the damage we want to detect).
            return str(int(Decimal(format(value, ".15g"))))
        return format(value, ".15g")
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def read_xlsx(path: Path) -> Feed:
    """First worksheet; row 1 is the header. Formula cells are read as their formula text."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds for a damaged zip
        raise FeedError("unreadable_file", f"{path.name}: not a readable XLSX workbook ({exc})") from exc
    sheet = book.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header_cells = list(next(rows, ()) or ())
    while header_cells and header_cells[-1] in (None, ""):
        header_cells.pop()
    headers = [(_cell_text(h) or "").strip() for h in header_cells]
    feed = Feed(path=path, format="xlsx", headers=headers, encoding="xlsx")
    width = len(headers)

    def batches() -> Iterator[pa.RecordBatch]:
        builder = _BatchBuilder(width)
        try:
            for row, cells in enumerate(rows, start=1):
                values = [_cell_text(c) for c in cells]
                if all(v is None or v == "" for v in values):
                    continue
                extra = values[width:]
                if any(v not in (None, "") for v in extra):
                    feed.rejects.append(Reject(row, "ragged_row", _csv_text_row([v or "" for v in values])))
                    continue
                values = (values + [None] * width)[:width]
                if batch := builder.add(row, values):
                    yield batch
            if batch := builder.flush():
                yield batch
        finally:
            book.close()

    feed._batches = batches() if width else iter(())
    return feed


# ---------------------------------------------------------------- JSON lines


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _json_objects(path: Path, seen: set[str]) -> Iterator[tuple[int, dict | None, str, str]]:
    """(line number, object or None, raw text, reject reason) for every non-blank line."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            text, encoding = _decode_line(raw)
            seen.add(encoding)
            if text is None:
                escaped = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
                yield number, None, escaped, "undecodable_bytes"
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                obj = None
            yield number, obj, text.rstrip("\r\n"), "malformed_json"


def read_jsonl(path: Path) -> Feed:
    """One JSON object per line; the headers are every key seen, in first-seen order."""
    keys: dict[str, None] = {}
    for _, obj, _, _ in _json_objects(path, set()):
        if obj:
            keys.update(dict.fromkeys(obj))
    headers = list(keys)
    feed = Feed(path=path, format="jsonl", headers=headers)
    index = {k: i for i, k in enumerate(headers)}
    width = len(headers)

    def batches() -> Iterator[pa.RecordBatch]:
        seen: set[str] = set()
        builder = _BatchBuilder(width)
        for row, obj, raw, reason in _json_objects(path, seen):
            if obj is None:
                feed.rejects.append(Reject(row, reason, raw))
                continue
            values: list[str | None] = [None] * width
            for key, value in obj.items():
                values[index[key]] = _json_text(value)
            if batch := builder.add(row, values):
                yield batch
        if batch := builder.flush():
            yield batch
        feed.encoding = _encoding_label(seen)

    feed._batches = batches()
    return feed


# ---------------------------------------------------------------- dispatch

READERS = {
    ".csv": read_csv, ".txt": read_csv, ".xlsx": read_xlsx,
    ".jsonl": read_jsonl, ".ndjson": read_jsonl, ".json": read_jsonl,
}


def read_feed(path: Path) -> Feed:
    """Open a feed by its extension. Raises FeedError for an empty or unsupported file."""
    if os.path.getsize(path) == 0:
        raise FeedError("empty_file", f"{path.name}: the file is empty (0 bytes)")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        known = ", ".join(sorted(READERS))
        raise FeedError("unsupported_format", f"{path.name}: unsupported file type '{path.suffix}' (expected {known})")
    return reader(path)
