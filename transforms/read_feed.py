"""Read a department file as it was sent: delimited text (UTF-8 with/without BOM, GB18030/GBK,
mixed, UTF-16 with BOM; comma, tab, semicolon or pipe; LF, CRLF or CR line ends), Excel
workbooks (``transforms/read_excel.py``: xlsx, xlsm, xls, xlsb, ods) and JSON (lines, an
array, pretty-printed), streamed in Arrow batches of text.

Out flow ``Feed.headers`` (the header texts in column order) and ``Feed.batches()``:
Arrow record batches with a ``_row`` column (the record's 1-based ordinal in the file,
header not counted; for a workbook, the row's position below its sheet's header, counted
on across sheets) and one string column per header, named by its index (``"0"``, ``"1"``
...). Values are exactly as received, never typed: an 18-digit code stays text, NUL and
other control characters stay in. Records that cannot be read at all (ragged, undecodable,
an unclosed quote, not JSON) are collected in ``Feed.rejects`` with a reason; nothing is
dropped. What the reader had to decide (title lines skipped, delimiter, sheets read or
skipped) is said in ``Feed.notes``, one line in Chinese / English each.

Where the header is: the line (row) whose cells name the most catalog fields, judged by the
``HeaderMatch`` the caller passes (header text -> field code or None); blank and title lines
above it are skipped. Without a matcher: the first line with two or more non-empty cells.

A file that cannot be read as a feed at all raises ``FeedError(reason, message)`` with a
plain bilingual message that says what the department should send instead; no other
exception leaves ``read_feed`` or ``Feed.batches()``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

BATCH_ROWS = 50_000
HEAD_BYTES = 1 << 20  # the header is looked for in the first MiB ...
HEADER_SCAN_LINES = 30  # ... and its first 30 lines
MAX_HEADER_CHARS = 1 << 16  # a longer line is data, never a header
_CHUNK = 1 << 20
_UNDECODABLE = "\ue000UNDECODABLE\ue000"  # private-use marker for a line we could not decode
_UNDECODABLE_UTF16 = "\ufdd2"  # noncharacter our UTF-16 error handler puts where bytes were invalid
_HIDDEN_CR, _HIDDEN_LF = "\ufdd0", "\ufdd1"  # noncharacters standing in for a line break inside a line
DELIMITERS = (",", "\t", ";", "|")
_DELIMITER_NAMES = {",": ("逗号", "comma"), "\t": ("制表符", "tab"), ";": ("分号", "semicolon"), "|": ("竖线", "pipe")}
csv.field_size_limit(1 << 30)


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    if isinstance(exc, UnicodeDecodeError):
        return _UNDECODABLE_UTF16, exc.end
    raise exc


codecs.register_error("credit_feed_undecodable", _mark_undecodable)

HeaderMatch = Callable[[str], str | None]
"""A header text -> the catalog field code it names, or None (built from the dataset in stage.py)."""


class FeedError(ValueError):
    """The file cannot be read as a feed at all (reason code + plain message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def feed_error(reason: str, path: Path, zh: str, en: str) -> FeedError:
    """A FeedError whose message says what is wrong and what to send instead, in Chinese and English."""
    return FeedError(reason, f"{path.name}：{zh} / {path.name}: {en}")


RESEND_ZH = "请重新导出为UTF-8编码的CSV或XLSX后再报送"
RESEND_EN = "please export it again as a UTF-8 CSV or an XLSX workbook and send it again"


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
    notes: list[str] = field(default_factory=list)  # bilingual lines for Manifest.notes
    delimiter: str = ","
    skip_lines: int = 1  # physical lines before the first record (title/blank lines + the header)
    skip_rows: int = 1  # the same in CSV rows (a header cell holding a line break is one row): DuckDB's ``skip``
    fast_csv: bool = False  # DuckDB's parallel reader may try it (stage.py); it falls back here on any error
    _batches: Iterator[pa.RecordBatch] | None = None

    def batches(self) -> Iterator[pa.RecordBatch]:
        assert self._batches is not None, "batches() can be iterated once"
        batches, self._batches = self._batches, None
        return batches


def header_score(cells: Iterable[str | None], match: HeaderMatch | None) -> int:
    """How many distinct catalog fields a row of candidate header cells names."""
    if match is None:
        return 0
    return len({code for cell in cells if cell and (code := match(cell))})


def _schema(width: int) -> pa.Schema:
    return pa.schema([("_row", pa.int64())] + [(str(i), pa.string()) for i in range(width)])


class BatchBuilder:
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


def csv_text_row(values: Sequence[str | None]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(["" if v is None else v for v in values])
    return out.getvalue()


# ---------------------------------------------------------------- what the bytes are


@dataclass(frozen=True)
class Sniffed:
    kind: str  # text | utf16 | utf16_no_bom | utf32 | xlsx | xlsb | ods | ole2 | zip | html | other
    zh: str = ""  # what it looks like, for messages
    en: str = ""


_MAGIC = (
    (b"%PDF", "PDF文档", "a PDF document"),
    (b"\x1f\x8b", "GZIP压缩包", "a GZIP archive"),
    (b"Rar!\x1a\x07", "RAR压缩包", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z压缩包", "a 7z archive"),
    (b"\x89PNG\r\n\x1a\n", "PNG图片", "a PNG image"),
    (b"\xff\xd8\xff", "JPEG图片", "a JPEG image"),
    (b"GIF8", "GIF图片", "a GIF image"),
    (b"{\\rtf", "RTF文档", "an RTF document"),
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _utf16_without_bom(head: bytes) -> str | None:
    """'le' / 'be' when the bytes look like UTF-16 text without a byte-order mark."""
    pairs = min(len(head), 8192) // 2
    if pairs < 8:
        return None
    even = head[0 : 2 * pairs : 2].count(0)
    odd = head[1 : 2 * pairs : 2].count(0)
    if odd >= pairs * 0.1 and even <= odd * 0.1:
        return "le"
    if even >= pairs * 0.1 and odd <= even * 0.1:
        return "be"
    return None


def _zip_kind(path: Path) -> Sniffed:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError):
        return Sniffed("zip_damaged", "已损坏的ZIP压缩包（或已损坏的XLSX工作簿）",
                       "a damaged ZIP archive (or a damaged XLSX workbook)")
    if "xl/workbook.xml" in names:
        return Sniffed("xlsx", "XLSX工作簿", "an XLSX workbook")
    if "xl/workbook.bin" in names:
        return Sniffed("xlsb", "XLSB工作簿", "an XLSB workbook")
    if b"opendocument.spreadsheet" in mimetype:
        return Sniffed("ods", "ODS电子表格", "an ODS spreadsheet")
    if "word/document.xml" in names or b"opendocument.text" in mimetype:
        return Sniffed("other", "Word文档", "a Word document")
    if any(n.startswith("ppt/") for n in names):
        return Sniffed("other", "PowerPoint演示文稿", "a PowerPoint file")
    return Sniffed("zip", "ZIP压缩包", "a ZIP archive")


def sniff(path: Path, head: bytes) -> Sniffed:
    """What a file is, from its first bytes (and a ZIP's list of members)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip_kind(path)
    if head.startswith(_OLE2):
        return Sniffed("ole2", "旧版Office文件（XLS）", "an old binary Office file (XLS)")
    for magic, zh, en in _MAGIC:
        if head.startswith(magic):
            return Sniffed("other", zh, en)
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return Sniffed("utf32", "UTF-32编码的文本", "UTF-32 text")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Sniffed("utf16", "UTF-16编码的文本", "UTF-16 text")
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip()[:512].lower()
    if start.startswith((b"<!doctype html", b"<html", b"<table", b"<head", b"<meta")):
        return Sniffed("html", "网页（HTML表格）", "a web page (an HTML table)")
    if start.startswith(b"<?xml"):
        if b"urn:schemas-microsoft-com:office:spreadsheet" in head:
            return Sniffed("html", "Excel 2003 XML表格", "an Excel 2003 XML spreadsheet")
        return Sniffed("other", "XML文档", "an XML document")
    order = _utf16_without_bom(head)
    if order:
        order = order.upper()
        return Sniffed("utf16_no_bom", f"缺少BOM的UTF-16（{order}）文本", f"UTF-16 ({order}) text without a BOM")
    control = sum(1 for b in head[:8192] if b < 9 or 13 < b < 32 and b != 27)
    if head and control > min(len(head), 8192) * 0.3:
        return Sniffed("other", "二进制文件", "a binary file")
    return Sniffed("text")


# ---------------------------------------------------------------- lines

_S = TypeVar("_S", str, bytes)


def _split(chunks: Iterable[_S], sep: _S) -> Iterator[_S]:
    """Lines ending in ``sep`` (kept), from chunks of any size; a very long line costs no copies."""
    pending: list[_S] = []
    empty = sep[:0]
    for chunk in chunks:
        start = 0
        while (end := chunk.find(sep, start)) >= 0:
            pending.append(chunk[start : end + 1])
            yield empty.join(pending)
            pending = []
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield empty.join(pending)


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


def _encoding_label(seen: set[str]) -> str:
    found = sorted(seen - {"undecodable"})
    label = "+".join(found) if found else "none"
    return label + ("+undecodable" if "undecodable" in seen else "")


@dataclass(frozen=True)
class _Text:
    """How a text file is laid out: its byte-level encoding and what ends a line."""

    utf16: bool
    newline: str  # "\n" (LF and CRLF) or "\r" (CR only, old Mac exporters)


def _layout(head: bytes, utf16: bool) -> _Text:
    if utf16:
        text = head[: len(head) // 2 * 2].decode("utf-16", "replace")
        crlf, cr, lf = text.count("\r\n"), text.count("\r"), text.count("\n")
    else:
        crlf, cr, lf = head.count(b"\r\n"), head.count(b"\r"), head.count(b"\n")
    lone_cr = cr - crlf
    return _Text(utf16, "\r" if lone_cr > lf else "\n")  # CR-only when bare CRs outnumber every LF


def _text_lines(path: Path, layout: _Text, seen: set[str], escape: bool = False) -> Iterator[str]:
    """Decoded lines with their line end; an undecodable line becomes one quoted marker field
    (``escape``: its bytes become lone surrogates instead, ``surrogateescape``)."""
    with path.open("rb") as fh:
        if layout.utf16:
            text = io.TextIOWrapper(fh, encoding="utf-16", errors="credit_feed_undecodable", newline="")
            for line in _split(iter(lambda: text.read(_CHUNK), ""), layout.newline):
                if _UNDECODABLE_UTF16 in line and escape:
                    seen.add("undecodable")
                    yield line
                elif _UNDECODABLE_UTF16 in line:
                    seen.add("undecodable")
                    body = line.rstrip("\r\n").replace(_UNDECODABLE_UTF16, "\ufffd").replace('"', '""')
                    yield f'"{_UNDECODABLE}{body}"{layout.newline}'
                else:
                    seen.add("utf-16")
                    yield line
            return
        raws: Iterable[bytes] = fh if layout.newline == "\n" else _split(iter(lambda: fh.read(_CHUNK), b""), b"\r")
        for raw in raws:
            text_line, encoding = _decode_line(raw)
            seen.add(encoding)
            if text_line is None and escape:
                yield raw.decode("utf-8", "surrogateescape")
            elif text_line is None:
                escaped = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
                quoted = (_UNDECODABLE + escaped).replace('"', '""')
                yield f'"{quoted}"{layout.newline}'  # one quoted field, whatever delimiters the bytes held
            else:
                yield text_line


def _head_lines(head: bytes, layout: _Text, whole_file: bool) -> list[str]:
    """The first lines (without line ends) of the first MiB, for finding the header; one per physical line."""
    if layout.utf16:
        lines = head[: len(head) // 2 * 2].decode("utf-16", "replace").split(layout.newline)
    else:
        decoded = [_decode_line(raw)[0] for raw in head.split(layout.newline.encode())]
        lines = [text if text is not None else raw.decode("utf-8", "replace")
                 for text, raw in zip(decoded, head.split(layout.newline.encode()), strict=True)]
    if not whole_file and len(lines) > 1:
        lines.pop()  # cut off by the end of the sample
    return [line.rstrip("\r\n") for line in lines[:HEADER_SCAN_LINES]]


def _is_blank(text: str) -> bool:
    return not text.strip()


# ---------------------------------------------------------------- the header


def split_cells(text: str, delimiter: str) -> list[str]:
    """One line's cells (a line alone: a quote left open runs to its end)."""
    try:
        return next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:
        return text.split(delimiter)


def _ends_inside_quotes(text: str, delimiter: str) -> bool:
    """Whether a quoted field is still open at the end of ``text`` (the csv module's own rules:
    a quote opens a field only at its start, ``""`` inside is a quote, other quotes are text)."""
    if '"' not in text:
        return False
    state = "start"  # start | field | quoted | closed
    for char in text:
        if state == "quoted":
            if char == '"':
                state = "closed"
        elif state == "closed" and char == '"':
            state = "quoted"
        elif char == delimiter or char in "\r\n":
            state = "start"
        elif state == "start" and char == '"':
            state = "quoted"
        else:
            state = "field"
    return state == "quoted"


@dataclass(frozen=True)
class HeaderLine:
    index: int  # 0-based line (or row) number
    delimiter: str
    cells: list[str]
    score: int
    lines: int = 1  # physical lines it takes (a quoted header cell may hold a line break)


_HEADER_CONTINUATION = 5  # a header cell with a line break may run over this many more lines


def _header_text(lines: Sequence[str], index: int, delimiter: str) -> tuple[str, int]:
    """The header record starting at ``index``: joined with the next lines while a quote is open."""
    text, taken = lines[index], 1
    while _ends_inside_quotes(text, delimiter) and taken <= _HEADER_CONTINUATION and index + taken < len(lines):
        text += "\n" + lines[index + taken]
        taken += 1
    return text, taken


def find_header(lines: Sequence[str], match: HeaderMatch | None) -> HeaderLine | None:
    """The line naming the most catalog fields, with the delimiter that splits it best.

    Ties go to the earlier line, then to the delimiter earlier in DELIMITERS. When no line names
    a field: the first line with two or more non-empty cells (a title line has one), split by the
    delimiter giving the most cells.
    """
    best: tuple[tuple[int, int, int], HeaderLine] | None = None
    for index, line in enumerate(lines):
        if _is_blank(line) or len(line) > MAX_HEADER_CHARS:
            continue
        for rank, delimiter in enumerate(DELIMITERS):
            if delimiter != "," and delimiter not in line:
                continue
            text, taken = _header_text(lines, index, delimiter)
            cells = [c.strip() for c in split_cells(text, delimiter)]
            score = header_score(cells, match)
            key = (score, -index, -rank)
            if score and (best is None or key > best[0]):
                best = (key, HeaderLine(index, delimiter, cells, score, taken))
    if best:
        return best[1]
    first: HeaderLine | None = None
    for index, text in enumerate(lines):
        if _is_blank(text):
            continue
        options = []
        for rank, delimiter in enumerate(DELIMITERS):
            cells = [c.strip() for c in split_cells(text, delimiter)]
            options.append((sum(1 for c in cells if c), -rank, delimiter, cells))
        filled, _, delimiter, cells = max(options)
        if filled >= 2:
            return HeaderLine(index, delimiter, cells, 0)
        first = first or HeaderLine(index, ",", [c.strip() for c in split_cells(text, ",")], 0)
    return first


def plural(count: int, word: str) -> str:
    """``1 line``, ``2 lines``."""
    return f"{count} {word}" + ("" if count == 1 else "s")


def skipped_note(count: int) -> str:
    """The note for title and blank lines above the header."""
    return f"跳过表头前的{count}行（标题/空行） / skipped {plural(count, 'title or blank line')} before the header"


# ---------------------------------------------------------------- delimited text


class _Lines:
    """The line iterator the csv module reads, one record at a time.

    Remembers the lines each record took (``taken``), skips blank lines where a record would
    start, lets lines be pushed back (an unclosed quote is ended at its line end and the lines
    it swallowed are read again), and hides a line-break character inside a line from the csv
    module (which refuses a bare CR in an unquoted field), to be put back in the values.
    """

    def __init__(self, lines: Iterator[tuple[int, str]]) -> None:
        self._lines = lines
        self._pushed: list[tuple[int, str]] = []
        self.taken: list[tuple[int, str]] = []  # (line number, line) of the record being read
        self.hidden = False
        self.blank_lines = 0  # whitespace-only lines, not records (empty lines are not counted either)
        self.exhausted = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        while True:
            if self._pushed:
                item = self._pushed.pop()
            else:
                try:
                    item = next(self._lines)
                except StopIteration:
                    self.exhausted = True
                    raise
            line = item[1]
            if not self.taken and _is_blank(line):
                if line.strip("\r\n"):
                    self.blank_lines += 1
                continue
            self.taken.append(item)
            return self._hide_breaks(line)

    def start_record(self) -> None:
        self.taken = []
        self.hidden = False

    def push_back(self, lines: list[tuple[int, str]]) -> None:
        self._pushed.extend(reversed(lines))

    def _hide_breaks(self, line: str) -> str:
        body = line.rstrip("\r\n")
        if "\r" not in body and "\n" not in body:
            return line
        if _HIDDEN_CR in body or _HIDDEN_LF in body:
            return line  # cannot hide them safely: the csv module decides
        self.hidden = True
        return body.replace("\r", _HIDDEN_CR).replace("\n", _HIDDEN_LF) + line[len(body) :]


def _unhide(values: list[str]) -> list[str]:
    return [v.replace(_HIDDEN_CR, "\r").replace(_HIDDEN_LF, "\n") for v in values]


def _looks_like_a_record(line: str, width: int, delimiter: str) -> bool:
    body = line.rstrip("\r\n")
    return body.count('"') % 2 == 0 and len(split_cells(body, delimiter)) == width


def _unclosed_quote(taken: list[tuple[int, str]], width: int, delimiter: str) -> bool:
    """A quoted field ran over a line break and the next line looks like a full record of its own."""
    following = next((line for _, line in taken[1:] if not _is_blank(line)), None)
    return following is not None and _looks_like_a_record(following, width, delimiter)


def _text_records(path: Path, layout: _Text, feed: Feed) -> Iterator[pa.RecordBatch]:
    """Record by record after the header: mixed encodings, undecodable lines, ragged rows, huge
    fields, line breaks inside quotes, unclosed quotes, whitespace-only lines."""
    seen: set[str] = set()
    width = len(feed.headers)
    builder = BatchBuilder(width)
    lines = enumerate(_text_lines(path, layout, seen), start=1)
    for _ in range(feed.skip_lines):
        next(lines, None)
    source = _Lines(lines)
    reader = csv.reader(source, delimiter=feed.delimiter)
    row = 0
    unclosed: list[int] = []  # line numbers
    while True:
        source.start_record()
        values: list[str] | None
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error:
            values = None
        taken = source.taken
        if not taken:
            break
        row += 1
        if len(taken) > 1 and _unclosed_quote(taken, width, feed.delimiter):
            source.push_back(taken[1:])
            feed.rejects.append(Reject(row, "unclosed_quote", taken[0][1].rstrip("\r\n")))
            unclosed.append(taken[0][0])
            continue
        if source.exhausted and _ends_inside_quotes("".join(line for _, line in taken), feed.delimiter):
            # the file ended inside a quoted field: the quote opened on this record's first line never closed
            feed.rejects.append(Reject(row, "unclosed_quote", "".join(line for _, line in taken).rstrip("\r\n")))
            unclosed.append(taken[0][0])
            continue
        if values is None:
            feed.rejects.append(Reject(row, "ragged_row", "".join(line for _, line in taken).rstrip("\r\n")))
            continue
        if source.hidden:
            values = _unhide(values)
        if len(values) == 1 and values[0].startswith(_UNDECODABLE):
            feed.rejects.append(Reject(row, "undecodable_bytes", values[0][len(_UNDECODABLE) :]))
            continue
        if len(values) != width:
            feed.rejects.append(Reject(row, "ragged_row", csv_text_row(values)))
            continue
        if batch := builder.add(row, values):
            yield batch
    if batch := builder.flush():
        yield batch
    feed.encoding = _encoding_label(seen)
    if source.blank_lines:
        n = source.blank_lines
        feed.notes.append(f"跳过{n}行仅含空白字符的行（不计为记录） / skipped {plural(n, 'whitespace-only line')} "
                          "(not records)")
    if unclosed:
        shown = "、".join(str(n) for n in unclosed[:10]) + ("等" if len(unclosed) > 10 else "")
        shown_en = ", ".join(str(n) for n in unclosed[:10]) + (" ..." if len(unclosed) > 10 else "")
        feed.notes.append(
            f"{len(unclosed)}条记录的引号未闭合（第{shown}行），已在行末结束并隔离 / "
            f"{plural(len(unclosed), 'record')} with an unclosed quote (line {shown_en}) ended at the line end and "
            "quarantined"
        )


def read_text(path: Path, match: HeaderMatch | None = None, sniffed: Sniffed | None = None) -> Feed:
    """Delimited text (CSV, TSV, semicolon, pipe), header found by ``find_header``.

    (A UTF-8 file goes through DuckDB's parallel reader first when it can: transforms/stage.py.)
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    sniffed = sniffed or sniff(path, head)
    layout = _layout(head, utf16=sniffed.kind == "utf16")
    lines = _head_lines(head, layout, whole_file=len(head) < HEAD_BYTES)
    header = find_header(lines, match)
    if header is None:
        raise feed_error(
            "empty_file", path, "文件只有空行，没有表头和数据；" + RESEND_ZH,
            "the file holds only blank lines, no header and no records; " + RESEND_EN,
        )
    feed = Feed(path=path, format="csv", headers=header.cells, delimiter=header.delimiter,
                skip_lines=header.index + header.lines, skip_rows=header.index + 1,
                encoding="utf-16" if layout.utf16 else "utf-8")
    if header.index:
        feed.notes.append(skipped_note(header.index))
    if header.delimiter != ",":
        zh, en = _DELIMITER_NAMES[header.delimiter]
        feed.notes.append(f"按{zh}分隔读取 / read as {en}-delimited")
    if layout.newline == "\r":
        feed.notes.append("换行符为CR（旧版Mac格式） / CR-only line ends (old Mac format)")
    feed.fast_csv = not layout.utf16 and not any('"' in line for line in lines[: header.index])
    feed._batches = _text_records(path, layout, feed)
    return feed


# ---------------------------------------------------------------- JSON


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


_JSON = json.JSONDecoder(strict=False)  # control characters inside strings are kept, not refused
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _json_lines(path: Path, layout: _Text, seen: set[str]) -> Iterator[tuple[int, dict | None, str, str]]:
    """(line number, object or None, raw text, reject reason) for every non-blank line."""
    for number, text in enumerate(_text_lines(path, layout, seen), start=1):
        if _is_blank(text):
            continue
        if text.startswith('"' + _UNDECODABLE):
            raw = text.rstrip("\r\n")[1 + len(_UNDECODABLE) : -1].replace('""', '"')
            yield number, None, raw, "undecodable_bytes"
            continue
        try:
            obj = _JSON.decode(text)
        except json.JSONDecodeError:
            obj = None
        yield number, obj if isinstance(obj, dict) else None, text.rstrip("\r\n"), "malformed_json"


class _BrokenJson(Exception):
    def __init__(self, line: int, column: int, what: str) -> None:
        super().__init__(what)
        self.line, self.column, self.what = line, column, what


def _json_document(path: Path, layout: _Text) -> tuple[str, str]:
    """The whole file as text (a JSON array or pretty-printed objects), and its encoding label.

    Undecodable bytes are kept as lone surrogates: the record holding them is quarantined.
    """
    seen: set[str] = set()
    return "".join(_text_lines(path, layout, seen, escape=True)), _encoding_label(seen)


_NOT_DECODED = re.compile(f"[\udc80-\udcff{_UNDECODABLE_UTF16}]")


def _json_record(number: int, value: object, raw: str) -> tuple[int, dict | None, str, str]:
    if _NOT_DECODED.search(raw):
        escaped = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return number, None, escaped.replace(_UNDECODABLE_UTF16, "\ufffd"), "undecodable_bytes"
    return number, value if isinstance(value, dict) else None, raw, "malformed_json"


def _json_values(text: str, array: bool, newline: str = "\n") -> list[tuple[object, str]]:
    """The values of a JSON array (or of JSON values one after another), with their source text."""
    values: list[tuple[object, str]] = []

    def broken(pos: int, what: str) -> _BrokenJson:
        line = text.count(newline, 0, pos) + 1
        return _BrokenJson(line, pos - (text.rfind(newline, 0, pos) + 1) + 1, what)

    pos = _JSON_SPACE.match(text, 0).end()  # type: ignore[union-attr]
    if array:
        pos += 1  # "["
    while True:
        pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
        if array and text.startswith("]", pos):
            pos += 1
            break
        if not array and pos >= len(text):
            break
        try:
            value, end = _JSON.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise broken(exc.pos, exc.msg) from None
        values.append((value, text[pos:end]))
        pos = _JSON_SPACE.match(text, end).end()  # type: ignore[union-attr]
        if not array:
            continue
        if text.startswith(",", pos):
            pos += 1
        elif text.startswith("]", pos):
            pos += 1
            break
        else:
            raise broken(pos, "expecting ',' or ']'" if pos < len(text) else "the array is not closed with ']'")
    pos = _JSON_SPACE.match(text, pos).end()  # type: ignore[union-attr]
    if pos < len(text):
        raise broken(pos, "more text after the end of the JSON array")
    return values


def _feed_from_objects(path: Path, fmt: str, records: list[tuple[int, dict | None, str, str]]) -> Feed:
    keys: dict[str, None] = {}
    for _, obj, _, _ in records:
        if obj:
            keys.update(dict.fromkeys(obj))
    headers = list(keys)
    feed = Feed(path=path, format=fmt, headers=headers)
    index = {k: i for i, k in enumerate(headers)}
    width = len(headers)

    def batches() -> Iterator[pa.RecordBatch]:
        builder = BatchBuilder(width)
        for row, obj, raw, reason in records:
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

    feed._batches = batches()
    return feed


def read_json(path: Path, match: HeaderMatch | None = None, sniffed: Sniffed | None = None) -> Feed:
    """JSON lines (one object per line), a JSON array of objects (on one line or pretty-printed), or
    pretty-printed objects one after another. The headers are every key seen, in first-seen order.

    An array element that is not an object is quarantined as ``malformed_json``; an array that is
    broken is rejected as a whole (``broken_json``), naming the line and column.
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    sniffed = sniffed or sniff(path, head)
    layout = _layout(head, utf16=sniffed.kind == "utf16")
    lines = _head_lines(head, layout, whole_file=len(head) < HEAD_BYTES)
    first = next((line.strip() for line in lines if not _is_blank(line)), "")
    if not first:
        raise feed_error(
            "empty_file", path, "文件只有空行，没有任何记录；" + RESEND_ZH,
            "the file holds only blank lines, no records; " + RESEND_EN,
        )
    if first.startswith("["):
        document = True
    elif first.startswith("{"):  # pretty-printed objects: the first line is not a whole object
        try:
            _JSON.decode(first)
            document = False
        except json.JSONDecodeError:
            document = True
    else:
        document = False
    if document:
        text, encoding = _json_document(path, layout)
        array = first.startswith("[")
        try:
            values = _json_values(text, array, layout.newline)
        except _BrokenJson as exc:
            if array:
                raise feed_error(
                    "broken_json", path,
                    f"JSON数组在第{exc.line}行第{exc.column}列格式错误（{exc.what}），无法拆分为记录；"
                    "请检查后重新导出为JSON lines（每行一个对象）、UTF-8 CSV或XLSX",
                    f"the JSON array is broken at line {exc.line}, column {exc.column} ({exc.what}) and cannot be "
                    "split into records; please export it again as JSON lines (one object per line), a UTF-8 CSV "
                    "or an XLSX workbook",
                ) from None
        else:
            records = [_json_record(n, value, raw) for n, (value, raw) in enumerate(values, start=1)]
            if not records:
                raise feed_error(
                    "empty_file", path, "JSON中没有任何记录（空数组）；" + RESEND_ZH,
                    "the JSON holds no records (an empty array); " + RESEND_EN,
                )
            feed = _feed_from_objects(path, "json", records)
            feed.encoding = encoding
            what_zh, what_en = ("JSON数组", "a JSON array") if array else ("多行JSON对象", "pretty-printed objects")
            count = len(records)
            feed.notes.append(f"按{what_zh}读取，共{count}条记录 / read as {what_en} of {plural(count, 'record')}")
            return feed
    seen: set[str] = set()
    feed = _feed_from_objects(path, "jsonl", list(_json_lines(path, layout, seen)))
    feed.encoding = _encoding_label(seen)
    if layout.newline == "\r":
        feed.notes.append("换行符为CR（旧版Mac格式） / CR-only line ends (old Mac format)")
    return feed


# ---------------------------------------------------------------- dispatch

TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
SUPPORTED = TEXT_SUFFIXES + EXCEL_SUFFIXES + JSON_SUFFIXES
_WORKBOOK_KINDS = {"xlsx": "xlsx", "xlsb": "xlsb", "ods": "ods", "ole2": "xls"}


def _not_a_feed(path: Path, sniffed: Sniffed) -> FeedError:
    if sniffed.kind == "utf16_no_bom":
        return feed_error(
            "utf16_without_bom", path,
            f"文件看起来是{sniffed.zh}，无法可靠识别编码；请在Excel中另存为“CSV UTF-8（逗号分隔）”或XLSX，"
            "或另存为带BOM的“Unicode文本”后再报送",
            f"the file looks like {sniffed.en}, so its encoding cannot be told for sure; please save it from Excel "
            "as 'CSV UTF-8 (comma delimited)' or XLSX, or as 'Unicode Text' with its byte-order mark, and send it "
            "again",
        )
    if sniffed.kind == "utf32":
        return feed_error("unreadable_file", path, f"文件是{sniffed.zh}，不受支持；" + RESEND_ZH,
                          f"the file is {sniffed.en}, which is not supported; " + RESEND_EN)
    if sniffed.kind == "html":
        return feed_error(
            "not_a_feed", path,
            f"文件看起来是{sniffed.zh}，不是数据表格文件；请在Excel中打开后另存为XLSX（Excel工作簿）或UTF-8 CSV再报送",
            f"the file looks like {sniffed.en}, not a data table; please open it in Excel, save it as an XLSX "
            "workbook or a UTF-8 CSV and send it again",
        )
    return feed_error(
        "not_a_feed", path,
        f"文件看起来是{sniffed.zh}，不是数据表格文件；{RESEND_ZH}",
        f"the file looks like {sniffed.en}, not a data table; {RESEND_EN}",
    )


def _open(path: Path, match: HeaderMatch | None) -> Feed:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        known = ", ".join(SUPPORTED)
        raise feed_error(
            "unsupported_format", path, f"不支持的文件类型“{path.suffix}”（支持：{known}）；{RESEND_ZH}",
            f"unsupported file type '{path.suffix}' (expected {known}); {RESEND_EN}",
        )
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    sniffed = sniff(path, head)
    from transforms.read_excel import read_excel  # read_excel builds on this module's Feed

    workbook = _WORKBOOK_KINDS.get(sniffed.kind)
    if suffix in EXCEL_SUFFIXES:
        if workbook or sniffed.kind == "zip_damaged":
            return read_excel(path, workbook or suffix.lstrip("."), match)
        if sniffed.kind == "text":
            feed = read_text(path, match, sniffed)
            feed.notes.insert(0, f"扩展名为{suffix}，但内容是文本表格，已按文本读取 / "
                                 f"the file is named {suffix} but holds delimited text: read as text")
            return feed
        if sniffed.kind == "utf16":
            feed = read_text(path, match, sniffed)
            feed.notes.insert(0, f"扩展名为{suffix}，但内容是UTF-16文本（Excel“Unicode文本”），已按文本读取 / the file "
                                 f"is named {suffix} but holds UTF-16 text (Excel 'Unicode Text'): read as text")
            return feed
        raise _not_a_feed(path, sniffed)
    if workbook:
        feed = read_excel(path, workbook, match)
        feed.notes.insert(0, f"扩展名为{suffix}，但内容是{sniffed.zh}，已按工作簿读取 / "
                             f"the file is named {suffix} but is {sniffed.en}: read as a workbook")
        return feed
    if sniffed.kind not in ("text", "utf16"):
        raise _not_a_feed(path, sniffed)
    if suffix in JSON_SUFFIXES:
        return read_json(path, match, sniffed)
    return read_text(path, match, sniffed)


def _is_read_failure(exc: BaseException) -> bool:
    """An error of the file, not of the machine: anything but MemoryError, interrupts and exits.

    Rust panics in the Excel parser arrive as ``PanicException`` (a BaseException).
    """
    if isinstance(exc, MemoryError):
        return False
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def unreadable(path: Path, exc: BaseException) -> FeedError:
    detail = f"{type(exc).__name__}: {exc}"[:300]
    return feed_error(
        "unreadable_file", path, f"文件已损坏，无法读取（{detail}）；{RESEND_ZH}",
        f"the file is damaged and cannot be read ({detail}); {RESEND_EN}",
    )


@contextmanager
def _read_failures_as_feed_errors(path: Path) -> Iterator[None]:
    """A reader's failure on this file (not a bug of ours, not an interrupt) becomes a plain FeedError."""
    try:
        yield
    except FeedError:
        raise
    except BaseException as exc:
        if not _is_read_failure(exc):
            raise
        raise unreadable(path, exc) from exc


def _guarded(path: Path, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    with _read_failures_as_feed_errors(path):
        yield from batches


def read_feed(path: Path, match: HeaderMatch | None = None) -> Feed:
    """Open a feed by its extension and its content.

    ``match`` (header text -> catalog field or None) finds the header line, the delimiter and a
    workbook's data sheets. Raises FeedError for an empty, unsupported or unreadable file, and
    ``Feed.batches()`` raises nothing else either.
    """
    with _read_failures_as_feed_errors(path):
        if os.path.getsize(path) == 0:
            raise feed_error("empty_file", path, f"文件为空（0字节）；{RESEND_ZH}",
                             f"the file is empty (0 bytes); {RESEND_EN}")
        feed = _open(path, match)
    if feed._batches is not None:
        feed._batches = _guarded(path, feed._batches)
    return feed
