"""Read a workbook (xlsx, xlsm, xls, xlsb, ods) with python-calamine, as ``transforms.read_feed.Feed``.

- Cells are read as the workbook stores them: a formula gives its cached value (``=0.5*3``
  reads as 1.5); a formula without a cached value (written by a program that does not
  calculate) gives its formula text, inert (xlsx: read from the sheet XML).
- Numbers become the text Excel shows (``cell_text``): integers without ``.0``, 15 significant
  digits (an 18-digit code typed as a number keeps its Excel damage visible), dates as ISO.
- Every visible worksheet whose header names the dataset's fields is read (the header is the
  row, among the first 30, naming the most catalog fields, judged by the caller's
  ``HeaderMatch``); title rows above it are skipped. Instruction sheets (名字含 说明 / 示例 /
  样例), hidden, empty and chart sheets, and sheets whose header names no field (or fewer than
  half as many as the best sheet) are skipped. Without a matcher: the first visible worksheet.
- Merged cells are filled as the sheet shows them (a 处罚机关 merged over 3 rows gives all 3
  rows its value), from calamine's merge list (xlsx, xls; ods and xlsb have none).
- ``_row`` is a row's position below its sheet's header, counted on across sheets (sheet 2's
  first row follows sheet 1's last), so every row of a batch stays addressable.
- ``Feed.notes`` says, per sheet, what was read and what was skipped.
Columns of several sheets are lined up by the catalog field their header names (else by the
header text), so the sheets may order or name their columns differently.
"""

from __future__ import annotations

import re
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

import pyarrow as pa
import python_calamine as calamine

from foundation.catalog import header_key
from transforms.read_feed import (
    BatchBuilder,
    Feed,
    FeedError,
    HeaderMatch,
    Reject,
    csv_text_row,
    feed_error,
    header_score,
    plural,
)

HEAD_ROWS = 30  # the header is looked for in a sheet's first 30 rows
INSTRUCTION_WORDS = ("说明", "示例", "样例")  # 填表说明, 填报说明, 说明, 填报示例 ...
_RESEND_ZH = "请在Excel中打开后另存为XLSX（Excel工作簿）或UTF-8 CSV再报送"
_RESEND_EN = "please open it in Excel, save it again as an XLSX workbook or a UTF-8 CSV and send it again"
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CELL_REF = re.compile(r"([A-Z]+)([0-9]+)")
_FORMULA_TAG = re.compile(rb"<(?:\w+:)?f[\s>/]")
_FORMAT_OF_SUFFIX = {".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xls", ".xlsb": "xlsb", ".ods": "ods"}


def cell_text(value: object) -> str | None:
    """An Excel cell as the text a department meant; numbers the way Excel shows them."""
    if value is None or value == "":
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


def _unreadable(path: Path, fmt: str, exc: BaseException, sheet: str | None = None) -> FeedError:
    if isinstance(exc, calamine.PasswordError) or _encrypted(path):
        return feed_error(
            "password_protected", path, "工作簿设有打开密码，无法读取；请取消密码后重新报送，或另存为UTF-8 CSV",
            "the workbook is protected by a password and cannot be read; please remove the password and send it "
            "again, or save it as a UTF-8 CSV",
        )
    where_zh = f"工作表“{sheet}”" if sheet else "工作簿"
    where_en = f"sheet '{sheet}' of the workbook" if sheet else "the workbook"
    detail = f"{type(exc).__name__}: {exc}"[:300]
    return feed_error(
        "unreadable_file", path, f"文件已损坏，无法读取：{where_zh}无法解析（{fmt.upper()}，{detail}）；{_RESEND_ZH}",
        f"the file is damaged and cannot be read: {where_en} cannot be parsed ({fmt.upper()}, {detail}); "
        f"{_RESEND_EN}",
    )


def _encrypted(path: Path) -> bool:
    """An OLE2 container with an EncryptionInfo stream: an XLSX saved with a password."""
    try:
        with path.open("rb") as fh:
            data = fh.read(64 << 20)
    except OSError:
        return False
    return data.startswith(b"\xd0\xcf\x11\xe0") and "EncryptionInfo".encode("utf-16-le") in data


def _is_instructions(name: str) -> bool:
    return any(word in name for word in INSTRUCTION_WORDS)


# ---------------------------------------------------------------- xlsx formulas without a cached value


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> its XML part in an xlsx package."""
    book = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    rels = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels.iter(f"{{{_PKG_REL_NS}}}Relationship")}
    parts = {}
    for sheet in book.iter(f"{{{_MAIN_NS}}}sheet"):
        target = targets.get(sheet.get(f"{{{_REL_NS}}}id"), "")
        path = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        parts[sheet.get("name", "")] = path
    return parts


def _has_formulas(archive: zipfile.ZipFile, part: str) -> bool:
    tail = b""
    with archive.open(part) as fh:
        while chunk := fh.read(1 << 20):
            if _FORMULA_TAG.search(tail + chunk):
                return True
            tail = chunk[-16:]
    return False


def _column_index(letters: str) -> int:
    index = 0
    for char in letters:
        index = index * 26 + ord(char) - 64
    return index - 1


def uncached_formulas(path: Path, sheet_name: str) -> dict[tuple[int, int], str]:
    """(row, column) -> ``=formula`` for the xlsx cells that hold a formula but no cached value.

    Best effort: a package that cannot be read this way gives no formulas (calamine has read
    the values already).
    """
    found: dict[tuple[int, int], str] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            part = _sheet_parts(archive).get(sheet_name)
            if not part or not _has_formulas(archive, part):
                return found
            with archive.open(part) as fh:
                for _, elem in ElementTree.iterparse(fh):
                    if elem.tag != f"{{{_MAIN_NS}}}c":
                        continue
                    formula = elem.find(f"{{{_MAIN_NS}}}f")
                    value = elem.find(f"{{{_MAIN_NS}}}v")
                    if formula is not None and formula.text and (value is None or not value.text):
                        ref = _CELL_REF.fullmatch(elem.get("r", ""))
                        if ref:
                            found[(int(ref.group(2)) - 1, _column_index(ref.group(1)))] = "=" + formula.text
                    elem.clear()
    except Exception:  # noqa: BLE001 - a best-effort extra; the cached values stand
        return {}
    return found


# ---------------------------------------------------------------- sheets


@dataclass
class _Sheet:
    name: str
    sheet: Any  # calamine.CalamineSheet
    header_row: int  # absolute, 0-based
    headers: list[str]
    score: int
    columns: list[int] = field(default_factory=list)  # the Feed column of each header position
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)


def _merges(sheet: Any) -> list[tuple[int, int, int, int]]:
    ranges = sheet.merged_cell_ranges or []
    return [(r1, c1, r2, c2) for (r1, c1), (r2, c2) in ranges if r2 > r1 or c2 > c1]


def _fill_merged(grid: list[list[Any]], merges: list[tuple[int, int, int, int]]) -> None:
    """Give every cell of a merged range the value of its top-left cell (in place, absolute grid)."""
    for r1, c1, r2, c2 in merges:
        if r1 >= len(grid) or c1 >= len(grid[r1]):
            continue
        value = grid[r1][c1]
        for r in range(r1, min(r2, len(grid) - 1) + 1):
            for c in range(c1, min(c2, len(grid[r]) - 1) + 1):
                if grid[r][c] == "":
                    grid[r][c] = value


def _find_header(sheet: Any, match: HeaderMatch | None) -> tuple[int, list[str], int] | None:
    """(row, header texts, score) of a sheet, or None when its first rows are empty."""
    grid = [list(r) for r in sheet.to_python(skip_empty_area=False, nrows=HEAD_ROWS)]
    raw_filled = [sum(1 for v in r if v != "") for r in grid]
    _fill_merged(grid, _merges(sheet))
    texts = [[(cell_text(v) or "").strip() for v in r] for r in grid]
    best: tuple[int, int] | None = None  # (score, row)
    for index, cells in enumerate(texts):
        score = header_score(cells, match)
        if score and (best is None or score > best[0]):
            best = (score, index)
    if best is None:
        fallback = next((i for i, n in enumerate(raw_filled) if n >= 2), None)
        if fallback is None:
            fallback = next((i for i, n in enumerate(raw_filled) if n), None)
        if fallback is None:
            return None
        best = (0, fallback)
    score, index = best
    cells = list(texts[index])
    while cells and not cells[-1]:
        cells.pop()
    return index, cells, score


class _Workbook:
    def __init__(self, path: Path, fmt: str, match: HeaderMatch | None) -> None:
        self.path, self.fmt, self.match = path, fmt, match
        try:
            if _FORMAT_OF_SUFFIX.get(path.suffix.lower()) == fmt:
                self.book = calamine.CalamineWorkbook.from_path(str(path))
            else:  # calamine goes by the name; a misnamed workbook is opened by its content
                with path.open("rb") as fh:
                    self.book = calamine.CalamineWorkbook.from_filelike(fh)
            self.meta = list(self.book.sheets_metadata)
        except BaseException as exc:  # calamine raises its own errors, or a Rust panic
            if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
                raise
            raise _unreadable(path, fmt, exc) from exc

    def sheet(self, index: int) -> Any:
        try:
            return self.book.get_sheet_by_index(index)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
                raise
            raise _unreadable(self.path, self.fmt, exc, self.meta[index].name) from exc

    def plan(self) -> tuple[list[_Sheet], dict[str, str]]:
        """The data sheets in workbook order, and why each other sheet is skipped (name -> note)."""
        skipped: dict[str, str] = {}
        candidates: list[_Sheet] = []
        for index, meta in enumerate(self.meta):
            name = meta.name
            if meta.typ != calamine.SheetTypeEnum.WorkSheet:
                skipped[name] = _skip_note(name, "不是工作表（图表等）", "not a worksheet (a chart or macro sheet)")
                continue
            if meta.visible != calamine.SheetVisibleEnum.Visible:
                skipped[name] = _skip_note(name, "隐藏的工作表", "a hidden sheet")
                continue
            if _is_instructions(name):
                skipped[name] = _skip_note(name, "说明页", "instructions")
                continue
            sheet = self.sheet(index)
            found = _find_header(sheet, self.match) if sheet.start is not None else None
            if found is None:
                skipped[name] = _skip_note(name, "空表", "empty")
                continue
            row, headers, score = found
            candidates.append(_Sheet(name, sheet, row, headers, score))
            if self.match is None:
                break  # no catalog to judge by: the first sheet with content, as before
        best = max((s.score for s in candidates), default=0)
        if best == 0:
            chosen = candidates[:1]  # its header names nothing: read it, every row is rejected and counted
        else:
            chosen = [s for s in candidates if s.score and s.score * 2 >= best]
        for s in candidates:
            if s in chosen:
                continue
            if s.score:
                skipped[s.name] = _skip_note(
                    s.name, f"表头只对应{s.score}个目录字段，数据表对应{best}个",
                    f"its header names {s.score} catalog fields, the data sheet {best}",
                )
            else:
                skipped[s.name] = _skip_note(s.name, "表头与归集目录字段不符", "its header names no catalog field")
        return chosen, skipped


def _skip_note(name: str, why_zh: str, why_en: str) -> str:
    return f"跳过工作表“{name}”（{why_zh}） / skipped sheet '{name}' ({why_en})"


def _line_up(sheets: list[_Sheet], match: HeaderMatch | None) -> list[str]:
    """One header list for all sheets; sets each sheet's ``columns`` (header position -> Feed column)."""
    headers: list[str] = []
    index: dict[tuple[str, int], int] = {}
    for sheet in sheets:
        seen: dict[str, int] = defaultdict(int)
        for position, text in enumerate(sheet.headers):
            code = match(text) if match and text else None
            if code:
                key = f"field:{code}"
            else:
                key = f"text:{header_key(text)}" if text else f"blank:{sheet.name}:{position}"
            occurrence = seen[key]
            seen[key] += 1  # a header repeated in one sheet stays two columns (map_headers reports it)
            column = index.get((key, occurrence))
            if column is None:
                column = index[(key, occurrence)] = len(headers)
                headers.append(text)
            sheet.columns.append(column)
    return headers


def _rows(sheet: _Sheet, merges: list[tuple[int, int, int, int]]) -> Iterator[tuple[int, list[Any]]]:
    """(absolute row, cells from column A) with merged ranges filled, from the sheet's header row on."""
    start_col = sheet.sheet.start[1]
    pad = [""] * start_col
    starts: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for r1, c1, r2, c2 in merges:
        starts[r1].append((c1, r2, c2))
    active: list[tuple[int, int, int, int, Any]] = []  # (r1, c1, r2, c2, value)
    for r, cells in enumerate(sheet.sheet.iter_rows()):  # calamine: rows from row 1, columns from start_col
        row = pad + cells if start_col else cells
        if r in starts:
            for c1, r2, c2 in starts.pop(r):
                active.append((r, c1, r2, c2, row[c1] if c1 < len(row) else ""))
        if active:
            for r1, c1, _, c2, value in active:
                for c in range(c1, min(c2, len(row) - 1) + 1):
                    if (r, c) != (r1, c1) and row[c] == "":
                        row[c] = value
            active = [a for a in active if a[2] > r]
        if r >= sheet.header_row:
            yield r, row


def read_excel(path: Path, fmt: str, match: HeaderMatch | None = None) -> Feed:
    """Every data sheet of a workbook (see the module docstring). Raises FeedError when it cannot be read."""
    book = _Workbook(path, fmt, match)
    sheets, skipped = book.plan()
    if not sheets:
        names = "、".join(m.name for m in book.meta) or "（无）"
        if all("（空表）" in note for note in skipped.values()):
            raise feed_error("empty_file", path, f"工作簿中的工作表都是空的（{names}）；{_RESEND_ZH}",
                             f"every sheet of the workbook is empty ({', '.join(m.name for m in book.meta)}); "
                             f"{_RESEND_EN}")
        raise feed_error(
            "no_data_sheet", path, f"工作簿中没有可读取的数据表（工作表：{names}）；请把数据放在第一个工作表中，"
            f"首行为表头，再报送",
            f"the workbook has no sheet of data to read (sheets: {', '.join(m.name for m in book.meta)}); please put "
            f"the records on the first sheet under one header row and send it again",
        )
    headers = _line_up(sheets, match)
    width = len(headers)
    feed = Feed(path=path, format=fmt, headers=headers, encoding=fmt)
    if fmt in ("xlsx", "xlsm"):
        for sheet in sheets:
            sheet.formulas = uncached_formulas(path, sheet.name)

    def batches() -> Iterator[pa.RecordBatch]:
        builder = BatchBuilder(width)
        offset = 0
        read_notes: dict[str, str] = {}
        for sheet in sheets:
            h = sheet.header_row
            own_width = len(sheet.headers)
            identity = sheet.columns == list(range(width))
            formulas: dict[int, list[tuple[int, str]]] = defaultdict(list)
            for (fr, fc), text in sheet.formulas.items():
                formulas[fr].append((fc, text))
            read = blank = 0
            first = last = 0
            end = h
            for r, cells in _rows(sheet, _merges(sheet.sheet)):
                end = r
                if r == h:
                    continue
                if r in formulas:
                    for fc, text in formulas[r]:
                        if fc < len(cells) and cells[fc] == "":
                            cells[fc] = text
                values = [cell_text(v) for v in cells]
                if all(v is None for v in values):
                    blank += 1
                    continue
                row = offset + r - h
                read += 1
                first = first or row
                last = row
                if any(v is not None for v in values[own_width:]):
                    feed.rejects.append(Reject(row, "ragged_row", csv_text_row(values)))
                    continue
                own = (values + [None] * own_width)[:own_width]
                if identity:
                    out = own
                else:
                    out = [None] * width
                    for position, column in enumerate(sheet.columns):
                        out[column] = own[position]
                if batch := builder.add(row, out):
                    yield batch
            offset += end - h
            read_notes[sheet.name] = _read_note(sheet, read, blank, first, last)
        if batch := builder.flush():
            yield batch
        feed.notes.extend(read_notes.get(m.name) or skipped.get(m.name, "") for m in book.meta
                          if m.name in read_notes or m.name in skipped)

    feed._batches = batches()
    return feed


def _read_note(sheet: _Sheet, read: int, blank: int, first: int, last: int) -> str:
    h = sheet.header_row
    zh = f"工作表“{sheet.name}”：表头在第{h + 1}行，读取{read}行"
    en = f"sheet '{sheet.name}': header on row {h + 1}, read {plural(read, 'row')}"
    if read:
        zh += f"（记录号{first}–{last}）"
        en += f" (_row {first}-{last})"
    if blank:
        zh += f"，跳过{blank}行空行"
        en += f", skipped {plural(blank, 'blank row')}"
    if h:
        zh += f"，跳过表头前的{h}行（标题/空行）"
        en += f", skipped {plural(h, 'title or blank row')} before the header"
    return f"{zh} / {en}"

