"""The feed reader against what departments really send: every file is read or rejected with a
plain FeedError, and the counts stay true (rows_in = the records actually in the file).

Files are built in the test; outcomes are read from the staged folder (``Manifest.read``).
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook
from test_ingest_files import CODE, HEADERS, csv_text, row

from foundation.catalog import get_catalog, header_key
from transforms import read_excel as read_excel_module
from transforms import stage
from transforms.read_feed import FeedError, find_header, read_feed
from transforms.reasons import ALL_REASONS, FILE_REASONS, READ_REASONS
from transforms.stage import Manifest, header_matcher, stage_file

integration = pytest.mark.integration
unit = pytest.mark.unit

DATASET = "admin_penalty"
DEPARTMENT = "market_regulation"


def staged(path: Path, tmp_path: Path) -> tuple[Manifest, list[dict], list[dict]]:
    """Stage one file: its manifest, staged rows and rejects."""
    folder = stage_file(path, get_catalog().dataset(DATASET), DEPARTMENT, tmp_path / "staging")
    return (
        Manifest.read(folder),
        pq.read_table(folder / "rows.parquet").to_pylist(),
        pq.read_table(folder / "rejects.parquet").to_pylist(),
    )


def counts(m: Manifest) -> tuple[int, int, int]:
    return m.rows_in, m.rows_staged, m.rows_rejected


def records(n: int, start: int = 1) -> list[list[str]]:
    return [row(i) for i in range(start, start + n)]


@pytest.fixture
def duckdb_calls(monkeypatch) -> list[tuple]:
    """Records each use of DuckDB's parallel CSV reader (the fast path) with its skip and delimiter."""
    calls: list[tuple] = []
    real = stage._csv_in_duckdb

    def spy(path, width, mapping, dataset, folder, skip=1, delimiter=","):
        calls.append((path.name, skip, delimiter))
        return real(path, width, mapping, dataset, folder, skip, delimiter)

    monkeypatch.setattr(stage, "_csv_in_duckdb", spy)
    return calls


def xlsx_bytes(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def patch_zip(data: bytes, member: str, change) -> bytes:
    """A copy of a zip (xlsx) with one member's bytes changed."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info.filename)
            target.writestr(info, change(body) if info.filename == member else body)
    return out.getvalue()


def ods_bytes(sheets: dict[str, list[list]]) -> bytes:
    """A minimal OpenDocument spreadsheet; a cell ``("0.5*3", 1.5)`` is a formula with its cached value."""

    def cell(value) -> str:
        if value is None:
            return "<table:table-cell/>"
        if isinstance(value, tuple):
            formula, cached = value
            return (f'<table:table-cell table:formula="of:={escape(formula)}" office:value-type="float" '
                    f'office:value="{cached}"><text:p>{cached}</text:p></table:table-cell>')
        if isinstance(value, float):
            return (f'<table:table-cell office:value-type="float" office:value="{value!r}">'
                    f"<text:p>{value}</text:p></table:table-cell>")
        return f'<table:table-cell office:value-type="string"><text:p>{escape(value)}</text:p></table:table-cell>'

    tables = "".join(
        f'<table:table table:name="{escape(name)}">'
        + "".join("<table:table-row>" + "".join(cell(c) for c in r) + "</table:table-row>" for r in rows)
        + "</table:table>"
        for name, rows in sheets.items()
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f"<office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return out.getvalue()


# ---------------------------------------------------------------- 1. no tracebacks


@integration
def test_cr_only_line_ends_are_read(tmp_path, duckdb_calls):
    path = tmp_path / "xzcf_mac.csv"
    path.write_bytes(csv_text(records(5)).replace("\n", "\r").encode())
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (5, 5, 0) and m.file_reasons == []
    assert m.notes == ["换行符为CR（旧版Mac格式） / CR-only line ends (old Mac format)"]
    assert duckdb_calls == [("xzcf_mac.csv", 1, ",")]
    # the line-by-line reader (here: a ragged row makes DuckDB refuse the file) splits at CR too
    ragged = tmp_path / "xzcf_mac_ragged.csv"
    ragged.write_bytes(csv_text(records(2) + [row(3)[:5]] + records(2, 4)).replace("\n", "\r").encode())
    m, rows, rejects = staged(ragged, tmp_path)
    assert counts(m) == (5, 4, 1)
    assert [r["_row"] for r in rows] == [1, 2, 4, 5] and rows[0]["CF_XDR_MC"] == "乳山市测试1有限公司"
    assert [(r["_row"], r["reasons"]) for r in rejects] == [(3, ["ragged_row"])]


@integration
def test_a_damaged_workbook_is_a_plain_bilingual_feed_error(tmp_path):
    book = Workbook()
    book.active.append(HEADERS)
    book.active.append(row(1))
    good = xlsx_bytes(book)
    cases = {
        "xzcf_xml.xlsx": patch_zip(good, "xl/worksheets/sheet1.xml", lambda body: body[: len(body) // 2]),
        "xzcf_cut.xlsx": good[:1500],
        "xzcf_old.xls": b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        m, rows, rejects = staged(path, tmp_path)
        assert (m.file_reasons, counts(m), rows, rejects) == (["unreadable_file"], (0, 0, 0), [], []), name
        zh, en = m.file_message.split(" / ")
        assert zh.startswith(f"{name}：文件已损坏，无法读取：") and "请在Excel中打开后另存为XLSX" in zh
        assert en.startswith(f"{name}: the file is damaged and cannot be read: ") and "save it again as" in en
    with pytest.raises(FeedError) as caught:
        feed = read_feed(tmp_path / "xzcf_xml.xlsx")
        list(feed.batches())
    assert caught.value.reason == "unreadable_file" and "工作表“Sheet”无法解析（XLSX，XmlError" in str(caught.value)


@unit
def test_garbage_never_raises_anything_but_feed_error(tmp_path):
    """Truncated and bit-flipped copies of good feeds: each is read or refused with a FeedError."""
    book = Workbook()
    book.active.append(HEADERS)
    for values in records(20):
        book.active.append(values)
    seeds = {
        ".xlsx": xlsx_bytes(book),
        ".csv": csv_text(records(20)).encode("gb18030"),
        ".json": json.dumps([dict(zip(HEADERS, r, strict=True)) for r in records(5)], ensure_ascii=False).encode(),
        ".ods": ods_bytes({"数据": [HEADERS, *records(3)]}),
    }
    rng = random.Random(371083)
    tried = 0
    for suffix, data in seeds.items():
        variants = [data[: int(len(data) * f)] for f in (0.1, 0.5, 0.9, 0.99)]
        for _ in range(12):
            flipped = bytearray(data)
            for _ in range(8):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            variants.append(bytes(flipped))
        for n, variant in enumerate(variants):
            path = tmp_path / f"xzcf_{n}{suffix}"
            path.write_bytes(variant)
            try:
                feed = read_feed(path, header_matcher(get_catalog().dataset(DATASET)))
                for _ in feed.batches():
                    pass
            except FeedError as exc:
                assert exc.reason in FILE_REASONS and " / " in str(exc)
            tried += 1
    assert tried == 64


# ---------------------------------------------------------------- 2. counts stay true


@integration
def test_an_unclosed_quote_is_confined_to_its_record(tmp_path):
    lines = csv_text(records(10_000)).splitlines(keepends=True)
    lines[2] = lines[2].replace("乳山市测试2", '"乳山市测试2', 1)  # record 2 opens a quote, never closes it
    path = tmp_path / "xzcf_quote.csv"
    path.write_text("".join(lines), encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (10_000, 9_999, 1)
    assert [(r["_row"], r["reasons"]) for r in rejects] == [(2, ["unclosed_quote"])]
    assert json.loads(rejects[0]["record"])["_raw"] == lines[2].rstrip("\n")
    assert rows[1]["_row"] == 3 and rows[1]["CF_XDR_MC"] == "乳山市测试3有限公司"
    assert m.notes == ["1条记录的引号未闭合（第3行），已在行末结束并隔离 / "
                       "1 record with an unclosed quote (line 3) ended at the line end and quarantined"]
    # a quote left open at the very end of the file; a quoted line break that is real stays one field
    path = tmp_path / "xzcf_quote_end.csv"
    path.write_text(csv_text([row(1, 违法事实="第一行\n第二行"), row(2)]) + '"' + ",".join(row(3)) + "\n",
                    encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (3, 2, 1) and rows[0]["CF_SY"] == "第一行\n第二行"
    assert [(r["_row"], r["reasons"]) for r in rejects] == [(3, ["unclosed_quote"])]
    assert "unclosed_quote" in READ_REASONS and ALL_REASONS["unclosed_quote"].startswith("引号未闭合")


@integration
def test_title_and_blank_lines_above_the_header_are_skipped_and_noted(tmp_path, duckdb_calls):
    path = tmp_path / "xzcf_title.csv"
    path.write_text("\n2024年行政处罚信息,,,\n" + csv_text(records(5)), encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (5, 5, 0) and m.file_reasons == [] and m.headers == HEADERS
    assert [r["_row"] for r in rows] == [None] * 5  # DuckDB's path: the ordinal is the position in rows.parquet
    assert m.notes == ["跳过表头前的2行（标题/空行） / skipped 2 title or blank lines before the header"]
    assert duckdb_calls == [("xzcf_title.csv", 3, ",")]  # still the parallel reader, told to skip 3 lines
    # a single blank first line (the tester's case), read line by line because a row is ragged
    path = tmp_path / "xzcf_blank.csv"
    path.write_text("\n" + csv_text(records(3) + [row(4)[:3]]), encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (4, 3, 1) and [r["_row"] for r in rows] == [1, 2, 3]
    assert m.notes == ["跳过表头前的1行（标题/空行） / skipped 1 title or blank line before the header"]


@integration
def test_a_header_cell_with_a_line_break_is_one_header(tmp_path, duckdb_calls):
    headers = [h.replace("（万元）", "\n（万元）") for h in HEADERS]  # Alt+Enter in an Excel header cell
    for name, tail in (("xzcf_wrap.csv", ""), ("xzcf_wrap_slow.csv", "  \n")):
        path = tmp_path / name
        path.write_text("行政处罚信息\n" + csv_text(records(2), headers) + tail, encoding="utf-8")
        m, rows, _ = staged(path, tmp_path)
        assert (counts(m), m.file_reasons) == ((2, 2, 0), []), name
        assert m.header_map["罚款金额\n（万元）"] == "CF_NR_FK" and rows[1]["CF_NR_FK"] == "0.2"
    assert duckdb_calls == [("xzcf_wrap.csv", 2, ","), ("xzcf_wrap_slow.csv", 2, ",")]  # 2 CSV rows: title, header


@integration
def test_whitespace_only_lines_are_not_records(tmp_path):
    text = csv_text(records(4))
    header, body = text.split("\n", 1)
    path = tmp_path / "xzcf_spaces.csv"
    path.write_text(header + "\n   \n" + body.replace("\n", "\n\t \n", 1) + "\n \r\n\n", encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (4, 4, 0) and rejects == []
    assert [r["_row"] for r in rows] == [1, 2, 3, 4]
    assert m.notes == ["跳过3行仅含空白字符的行（不计为记录） / skipped 3 whitespace-only lines (not records)"]


@integration
def test_json_arrays_pretty_or_on_one_line_are_their_records(tmp_path):
    objects = [dict(zip(HEADERS, r, strict=True)) for r in records(5)]
    for name, text in {
        "xzcf_pretty.json": json.dumps(objects, ensure_ascii=False, indent=2),
        "xzcf_line.json": json.dumps(objects, ensure_ascii=False),
    }.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        m, rows, rejects = staged(path, tmp_path)
        assert (counts(m), m.format, m.file_reasons) == ((5, 5, 0), "json", []), name
        assert [r["_row"] for r in rows] == [1, 2, 3, 4, 5] and rows[4]["CF_WSH"] == "乳市监罚〔2022〕5号"
        assert m.notes == ["按JSON数组读取，共5条记录 / read as a JSON array of 5 records"]
    # an element that is not an object is one quarantined record; a trailing comma is forgiven
    path = tmp_path / "xzcf_mixed.json"
    path.write_text("[\n" + json.dumps(objects[0], ensure_ascii=False) + ",\n 42,\n"
                    + json.dumps(objects[1], ensure_ascii=False) + ",\n]\n", encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (3, 2, 1) and [(r["_row"], r["reasons"], r["record"]) for r in rejects] == [
        (2, ["malformed_json"], json.dumps({"_raw": "42"}))
    ]
    # a broken array is rejected naming where
    path = tmp_path / "xzcf_broken.json"
    path.write_text("[\n" + json.dumps(objects[0], ensure_ascii=False) + ",\n {\"a\": 1,,}\n]", encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert (m.file_reasons, counts(m)) == (["broken_json"], (0, 0, 0))
    assert "JSON数组在第3行第10列格式错误" in m.file_message and "broken at line 3, column 10" in m.file_message
    # bytes that are neither UTF-8 nor GB18030 quarantine the record they sit in, not the file
    path = tmp_path / "xzcf_bytes.json"
    data = json.dumps(objects[:3], ensure_ascii=False, indent=1).encode()
    at = data.find("测试2".encode()) + 1
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])
    m, rows, rejects = staged(path, tmp_path)
    assert (counts(m), m.encoding) == ((3, 2, 1), "utf-8+undecodable")
    assert [(r["_row"], r["reasons"]) for r in rejects] == [(2, ["undecodable_bytes"])]
    assert "乳山市\\xe6\\xff\\x8b试2有限公司" in json.loads(rejects[0]["record"])["_raw"]
    # pretty-printed objects one after another (no array) are records too
    path = tmp_path / "xzcf_objects.json"
    path.write_text("\n".join(json.dumps(o, ensure_ascii=False, indent=1) for o in objects[:3]), encoding="utf-8")
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (3, 3, 0)
    assert m.notes == ["按多行JSON对象读取，共3条记录 / read as pretty-printed objects of 3 records"]


# ---------------------------------------------------------------- 3. Excel


def _workbook_with_sheets() -> Workbook:
    book = Workbook()
    guide = book.active
    guide.title = "填表说明"
    guide.append(["字段", "说明"])
    guide.append(["行政相对人名称", "必填"])
    first = book.create_sheet("2023年")
    first.append(["2023年行政处罚信息"])
    first.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
    first.append(HEADERS)
    for values in records(3):
        first.append(values)
    agency = HEADERS.index("处罚机关") + 1
    first.cell(4, agency).value = first.cell(5, agency).value = None
    first.merge_cells(start_row=3, start_column=agency, end_row=5, end_column=agency)  # 处罚机关 over 3 rows
    second = book.create_sheet("2024年")  # other column order, an alias for 行政处罚决定书文号
    second.append(["处罚决定书文号", *[h for h in HEADERS if h != "行政处罚决定书文号"]])
    for n in (4, 5, 6):
        values = row(n)
        document = values.pop(HEADERS.index("行政处罚决定书文号"))
        second.append([document, *values])
        if n == 4:
            second.append([])  # a blank row between records
    lookup = book.create_sheet("代码表")
    lookup.append(["处罚类别"])
    lookup.append(["罚款"])
    book.create_sheet("Sheet3")
    hidden = book.create_sheet("旧数据")
    hidden.append(HEADERS)
    hidden.append(row(99))
    hidden.sheet_state = "hidden"
    return book


@integration
def test_every_data_sheet_is_read_and_the_others_are_noted(tmp_path):
    path = tmp_path / "xzcf_sheets.xlsx"
    path.write_bytes(xlsx_bytes(_workbook_with_sheets()))
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (6, 6, 0) and m.file_reasons == [] and (m.format, m.encoding) == ("xlsx", "xlsx")
    assert [(r["_row"], r["CF_WSH"], r["CF_CFJG"]) for r in rows] == [
        (1, "乳市监罚〔2022〕1号", "乳山市市场监督管理局"),
        (2, "乳市监罚〔2022〕2号", "乳山市市场监督管理局"),  # filled from the merged cell
        (3, "乳市监罚〔2022〕3号", "乳山市市场监督管理局"),
        (4, "乳市监罚〔2022〕4号", "乳山市市场监督管理局"),  # sheet 2 counts on from sheet 1
        (6, "乳市监罚〔2022〕5号", "乳山市市场监督管理局"),  # row 5 is the blank row
        (7, "乳市监罚〔2022〕6号", "乳山市市场监督管理局"),
    ]
    assert m.notes == [
        "跳过工作表“填表说明”（说明页） / skipped sheet '填表说明' (instructions)",
        "工作表“2023年”：表头在第2行，读取3行（记录号1–3），跳过表头前的1行（标题/空行） / "
        "sheet '2023年': header on row 2, read 3 rows (_row 1-3), skipped 1 title or blank row before the header",
        "工作表“2024年”：表头在第1行，读取3行（记录号4–7），跳过1行空行 / "
        "sheet '2024年': header on row 1, read 3 rows (_row 4-7), skipped 1 blank row",
        "跳过工作表“代码表”（表头只对应1个目录字段，数据表对应17个） / "
        "skipped sheet '代码表' (its header names 1 catalog fields, the data sheet 17)",
        "跳过工作表“Sheet3”（空表） / skipped sheet 'Sheet3' (empty)",
        "跳过工作表“旧数据”（隐藏的工作表） / skipped sheet '旧数据' (a hidden sheet)",
    ]
    assert m.header_map["行政处罚决定书文号"] == "CF_WSH" and m.headers == HEADERS  # lined up by field


@integration
def test_cached_formula_values_are_read_not_the_formula(tmp_path):
    book = Workbook()
    book.active.append(HEADERS)
    values = row(1)
    values[HEADERS.index("罚款金额（万元）")] = "=0.5*3"
    values[HEADERS.index("备注")] = "=1+1"  # no cached value: kept as its formula text, inert
    book.active.append(values)
    data = patch_zip(xlsx_bytes(book), "xl/worksheets/sheet1.xml",
                     lambda body: body.replace(b"<f>0.5*3</f><v />", b"<f>0.5*3</f><v>1.5</v>"))
    assert b"<v>1.5</v>" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    path = tmp_path / "xzcf_formula.xlsx"
    path.write_bytes(data)
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (1, 1, 0)
    assert (rows[0]["CF_NR_FK"], rows[0]["BZ"]) == ("1.5", "=1+1")


@integration
def test_ods_is_read_with_cached_formulas_and_excel_number_rules(tmp_path):
    code = HEADERS.index("统一社会信用代码")
    amount = HEADERS.index("罚款金额（万元）")
    first, second = row(1), row(2)
    first[amount] = ("0.5*3", 1.5)
    second[code] = 913710831234567891.0  # an 18-digit code typed as a number
    second[amount] = 12.0
    path = tmp_path / "xzcf.ods"
    path.write_bytes(ods_bytes({"说明": [["请填写"]], "数据": [["行政处罚信息"], HEADERS, first, second]}))
    m, rows, rejects = staged(path, tmp_path)
    assert counts(m) == (2, 2, 0) and (m.format, m.encoding) == ("ods", "ods")
    assert [(r["CF_XDR_SHXYM"], r["CF_NR_FK"]) for r in rows] == [(CODE, "1.5"), ("913710831234568000", "12")]
    assert m.notes == [
        "跳过工作表“说明”（说明页） / skipped sheet '说明' (instructions)",
        "工作表“数据”：表头在第2行，读取2行（记录号1–2），跳过表头前的1行（标题/空行） / "
        "sheet '数据': header on row 2, read 2 rows (_row 1-2), skipped 1 title or blank row before the header",
    ]


@unit
def test_excel_cells_read_as_excel_shows_them(tmp_path):
    book = Workbook()
    book.active.append(["a", "b", "c", "d", "e", "f"])
    book.active.append([913710831234567891.0, 12, 0.2, datetime(2022, 7, 26), datetime(2022, 7, 26, 9, 30), True])
    book.active.append([date(2023, 1, 2), None, "=A1&\"x\"", "0012", None, False])  # a formula, never computed
    path = tmp_path / "cells.xlsx"
    path.write_bytes(xlsx_bytes(book))
    feed = read_feed(path)
    assert feed.headers == ["a", "b", "c", "d", "e", "f"]
    assert [r for b in feed.batches() for r in b.to_pylist()] == [
        {"_row": 1, "0": "913710831234568000", "1": "12", "2": "0.2", "3": "2022-07-26", "4": "2022-07-26 09:30:00",
         "5": "TRUE"},
        {"_row": 2, "0": "2023-01-02", "1": None, "2": "=A1&\"x\"", "3": "0012", "4": None, "5": "FALSE"},
    ]


@integration
def test_xls_and_xlsb_go_to_calamine_and_misnamed_files_are_told_apart(tmp_path, monkeypatch):
    seen: list[tuple[str, str]] = []
    real = read_excel_module.read_excel

    def spy(path, fmt, match=None):
        seen.append((path.name, fmt))
        return real(path, fmt, match)

    monkeypatch.setattr(read_excel_module, "read_excel", spy)
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    for name in ("xzcf.xls", "xzcf.xlsb"):
        (tmp_path / name).write_bytes(ole2)
        m, _, _ = staged(tmp_path / name, tmp_path)
        assert m.file_reasons == ["unreadable_file"] and "工作簿无法解析（XLS，CalamineError: " in m.file_message
    assert seen == [("xzcf.xls", "xls"), ("xzcf.xlsb", "xls")]  # the bytes decide the format, not the name
    # a ".xls" that is really CSV text (a common "export to Excel") is read as text
    path = tmp_path / "xzcf_export.xls"
    path.write_text(csv_text(records(2)), encoding="utf-8")
    m, rows, _ = staged(path, tmp_path)
    assert (counts(m), m.format) == ((2, 2, 0), "csv")
    assert m.notes == ["扩展名为.xls，但内容是文本表格，已按文本读取 / "
                       "the file is named .xls but holds delimited text: read as text"]
    # a ".xls" that is a web page is refused, saying so
    path = tmp_path / "xzcf_web.xls"
    path.write_text("<html><body><table><tr><td>行政相对人名称</td></tr></table></body></html>", encoding="utf-8")
    m, _, _ = staged(path, tmp_path)
    assert m.file_reasons == ["not_a_feed"]
    assert "文件看起来是网页（HTML表格），不是数据表格文件" in m.file_message
    assert "looks like a web page (an HTML table), not a data table" in m.file_message
    # an XLSX saved as ".csv" is read as the workbook it is
    book = Workbook()
    book.active.append(HEADERS)
    book.active.append(row(1))
    path = tmp_path / "xzcf_book.csv"
    path.write_bytes(xlsx_bytes(book))
    m, rows, _ = staged(path, tmp_path)
    assert (counts(m), m.format) == ((1, 1, 0), "xlsx")
    assert m.notes[0] == ("扩展名为.csv，但内容是XLSX工作簿，已按工作簿读取 / "
                          "the file is named .csv but is an XLSX workbook: read as a workbook")


@integration
def test_a_workbook_with_only_instructions_says_so(tmp_path):
    book = Workbook()
    book.active.title = "填报说明"
    book.active.append(["请按模板填写"])
    path = tmp_path / "xzcf_guide.xlsx"
    path.write_bytes(xlsx_bytes(book))
    m, _, _ = staged(path, tmp_path)
    assert (m.file_reasons, counts(m)) == (["no_data_sheet"], (0, 0, 0))
    assert m.file_message.startswith("xzcf_guide.xlsx：工作簿中没有可读取的数据表（工作表：填报说明）")


# ---------------------------------------------------------------- 4. messages that say what is wrong


@integration
def test_invisible_characters_in_headers_are_folded(tmp_path):
    headers = list(HEADERS)
    headers[HEADERS.index("行政处罚决定书文号")] = "行政处罚\u200b决定书文号"
    headers[HEADERS.index("处罚机关")] = "\ufeff处罚机关\u2060"
    headers[HEADERS.index("违法事实")] = "违法\u200c事\u200d实"
    path = tmp_path / "xzcf_zwsp.csv"
    path.write_text(csv_text(records(2), headers), encoding="utf-8")
    m, rows, _ = staged(path, tmp_path)
    assert (counts(m), m.file_reasons) == ((2, 2, 0), [])
    assert m.header_map["行政处罚\u200b决定书文号"] == "CF_WSH" and rows[1]["CF_WSH"] == "乳市监罚〔2022〕2号"


@unit
def test_header_key_folds_zero_width_characters():
    texts = ("决定\u200b日期", "\ufeff决定日期", "决\u200c定\u200d日\u2060期", " 决定日期 ", "决定\u00ad日期")
    assert {header_key(t) for t in texts} == {"决定日期"}


@integration
@pytest.mark.parametrize(("delimiter", "name"), [("\t", "tab"), (";", "semicolon"), ("|", "pipe")])
def test_tab_semicolon_and_pipe_delimited_files(tmp_path, duckdb_calls, delimiter, name):
    body = csv_text(records(3)).replace(",", delimiter)
    path = tmp_path / "xzcf.txt"
    path.write_text(body.replace("罚款0.2万元", "罚款0.2万元,另处警告"), encoding="utf-8")  # a comma inside a value
    m, rows, _ = staged(path, tmp_path)
    assert (counts(m), m.file_reasons) == ((3, 3, 0), [])
    assert rows[0]["CF_NR"] == "罚款0.2万元,另处警告"
    zh = {"\t": "制表符", ";": "分号", "|": "竖线"}[delimiter]
    assert m.notes == [f"按{zh}分隔读取 / read as {name}-delimited"]
    assert duckdb_calls == [("xzcf.txt", 1, delimiter)]


@integration
def test_utf16_unicode_text_from_excel_is_read(tmp_path, duckdb_calls):
    path = tmp_path / "xzcf_unicode.txt"
    text = csv_text(records(3)).replace(",", "\t").replace("\n", "\r\n")
    path.write_bytes(text.encode("utf-16"))  # Excel's "Unicode Text": UTF-16 LE with BOM, tab-delimited, CRLF
    m, rows, _ = staged(path, tmp_path)
    assert (counts(m), m.encoding, m.file_reasons) == ((3, 3, 0), "utf-16", [])
    assert rows[2]["CF_XDR_MC"] == "乳山市测试3有限公司" and rows[2]["BZ"] == ""
    assert m.notes == ["按制表符分隔读取 / read as tab-delimited"]
    assert duckdb_calls == []  # DuckDB reads UTF-8 only


@integration
def test_unreadable_files_say_what_they_look_like(tmp_path):
    text = csv_text(records(3)).replace(",", "\t")
    cases = {
        "xzcf_nobom.txt": (text.encode("utf-16-le"), "utf16_without_bom",
                           "文件看起来是缺少BOM的UTF-16（LE）文本", "looks like UTF-16 (LE) text without a BOM"),
        "xzcf_scan.csv": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "not_a_feed",
                          "文件看起来是PDF文档，不是数据表格文件", "looks like a PDF document, not a data table"),
        "xzcf_pack.csv": (b"PK\x05\x06" + b"\x00" * 18, "not_a_feed", "文件看起来是ZIP压缩包",
                          "looks like a ZIP archive"),
        "xzcf_blank.csv": (b"\r\n  \r\n", "empty_file", "文件只有空行", "holds only blank lines"),
    }
    for name, (data, reason, zh, en) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        m, _, _ = staged(path, tmp_path)
        assert (m.file_reasons, counts(m)) == ([reason], (0, 0, 0)), name
        assert zh in m.file_message and en in m.file_message and reason in FILE_REASONS, name


@unit
def test_the_header_line_and_delimiter_are_found_by_the_catalog():
    match = header_matcher(get_catalog().dataset(DATASET))
    lines = ["", "乳山市2024年行政处罚信息", "填报单位：市场监管局;日期：2024-01-01",
             "行政相对人名称;行政相对人类别;决定日期", "甲;法人及非法人组织;2024-01-01"]
    found = find_header(lines, match)
    assert found is not None
    assert (found.index, found.delimiter, found.cells, found.score) == (
        3, ";", ["行政相对人名称", "行政相对人类别", "决定日期"], 3
    )
    # no catalog to judge by (a corrections file): the first line with two or more cells
    found = find_header(["纠错清单", "原代码\t新代码", "a\tb"], None)
    assert found is not None and (found.index, found.delimiter, found.cells) == (1, "\t", ["原代码", "新代码"])


# ---------------------------------------------------------------- 5. control characters


@integration
def test_nul_and_control_characters_are_kept_as_received(tmp_path, duckdb_calls):
    fact = "发布\x00虚假\x01广告\x1b"
    path = tmp_path / "xzcf_ctrl.csv"
    path.write_bytes(csv_text([row(1, 违法事实=fact), row(2)]).encode())
    m, rows, _ = staged(path, tmp_path)
    assert counts(m) == (2, 2, 0) and rows[0]["CF_SY"] == fact and len(duckdb_calls) == 1
    # line by line (a GB18030 line makes DuckDB refuse the file), with a bare CR inside a value too
    header, _, rest = csv_text(records(3)).partition("\n")
    first, second, third = rest.splitlines(keepends=True)
    first = first.replace("发布虚假广告", fact + "\r换行")  # unquoted: the csv module alone would refuse the bare CR
    path = tmp_path / "xzcf_ctrl_gbk.csv"
    path.write_bytes(f"{header}\n{first}".encode() + second.encode("gb18030") + third.encode())
    m, rows, _ = staged(path, tmp_path)
    assert (counts(m), m.encoding) == ((3, 3, 0), "gb18030+utf-8")
    assert rows[0]["CF_SY"] == fact + "\r换行"
    # in JSON too
    path = tmp_path / "xzcf_ctrl.jsonl"
    path.write_text(json.dumps(dict(zip(HEADERS, row(1, 违法事实="a\x00b"), strict=True)), ensure_ascii=False)
                    .replace("\\u0000", "\x00") + "\n", encoding="utf-8")
    m, rows, _ = staged(path, tmp_path)
    assert counts(m) == (1, 1, 0) and rows[0]["CF_SY"] == "a\x00b"


# ---------------------------------------------------------------- the ledger


@integration
def test_notes_reach_the_ledger_and_counts_add_up(settings, catalog, tmp_path):
    from credit import pipeline
    from warehouse.db import connect

    lines = csv_text(records(6)).splitlines(keepends=True)
    lines[4] = lines[4].replace("乳山市测试4", '"乳山市测试4', 1)
    path = tmp_path / "xzcf_ledger.csv"
    path.write_text("2024年行政处罚信息\n" + "".join(lines) + "  \n", encoding="utf-8")
    result = pipeline.ingest_file(settings, catalog, path, DATASET, DEPARTMENT)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (6, 5, 1)
    con = connect(settings, catalog)
    notes, rows_in = con.execute("SELECT notes, rows_in FROM audit.batches").fetchone()
    quarantined = con.execute("SELECT source_row, reasons, message_zh FROM quarantine.rows").fetchall()
    con.close()
    assert rows_in == 6
    assert notes == [
        "跳过表头前的1行（标题/空行） / skipped 1 title or blank line before the header",
        "跳过1行仅含空白字符的行（不计为记录） / skipped 1 whitespace-only line (not records)",
        "1条记录的引号未闭合（第6行），已在行末结束并隔离 / "
        "1 record with an unclosed quote (line 6) ended at the line end and quarantined",
    ]
    assert quarantined == [(4, ["unclosed_quote"], "引号未闭合：字段以引号开始但在行末未结束，已在行末截断")]
