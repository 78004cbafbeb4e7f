"""A ``Feed`` as the bytes of its file: CSV, JSON lines or XLSX.

In: a finished ``Feed`` (rows, columns, headers, encoding, newline, defect flags).
Out: ``bytes`` from ``WRITERS[feed.fmt](feed)``; XLSX zips carry a fixed timestamp
(``FIXED_TIME``) so equal content gives equal bytes.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime

from sample_city.rows import UNDECODABLE, Feed

FIXED_TIME = datetime(2023, 1, 5, 9, 0, 0)  # XLSX document properties and zip entry times


def _csv_line(values: list[str], newline: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerow(values)
    return buffer.getvalue()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def write_csv(feed: Feed) -> bytes:
    base = "gb18030" if feed.encoding == "gb18030" else "utf-8"
    out = bytearray(b"\xef\xbb\xbf" if feed.encoding == "utf-8-sig" else b"")
    out += _csv_line([feed.headers.get(c, c) for c in feed.columns], feed.newline).encode(base)
    for row in feed.rows:
        cells = [_text(row.values.get(c)) for c in feed.columns]
        if row.extra is not None:
            cells.append(row.extra)
        line = _csv_line(cells, feed.newline)
        encoding = "gb18030" if row.gb18030 else base
        data = line.encode(encoding)
        if row.gb18030:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:  # pragma: no cover - Chinese text in GB18030 is never valid UTF-8
                raise AssertionError(f"GB18030 line decodes as UTF-8: {line!r}")
        if row.broken:
            data = data.replace(UNDECODABLE.encode(encoding), b"\xff\xfe")
        out += data
    return bytes(out)


def write_jsonl(feed: Feed) -> bytes:
    lines = []
    for row in feed.rows:
        obj = {feed.headers.get(c, c): row.values.get(c) for c in feed.columns}
        lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    return "".join(lines).encode("utf-8")


def write_xlsx(feed: Feed) -> bytes:
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    workbook = Workbook()
    workbook.properties.creator = feed.dataset.name_zh
    workbook.properties.created = FIXED_TIME
    workbook.properties.modified = FIXED_TIME
    sheet = workbook.active
    sheet.title = feed.dataset.name_zh
    sheet.append([feed.headers.get(c, c) for c in feed.columns])
    for row in feed.rows:
        cells = []
        for code in feed.columns:
            value = row.values.get(code)
            if code not in row.numeric and value is not None:
                value = str(value)
                if value.startswith("="):
                    raise ValueError("a text cell starting with '=' would become a formula")
            cells.append(value)
        sheet.append(cells)
    buffer = io.BytesIO()
    archive = zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED)
    ExcelWriter(workbook, archive).save()  # not save_workbook(): it stamps the current time
    return _stable_zip(buffer.getvalue())


def _stable_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed entry times so equal content gives equal bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


WRITERS = {"csv": write_csv, "jsonl": write_jsonl, "xlsx": write_xlsx}
