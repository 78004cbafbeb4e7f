"""An attack corpus: the awkward files departments really drop into the inbox, with what must come of each.

Each ``Case`` says where a file lands (``<inbox>/<department>/<file_name>``; the department may be a
bytes name, a sub-path, an unknown folder or ``""`` for the inbox root), how it is written (``write``
returns the bytes the archive must hold: the file's bytes, or the description a link or FIFO is
archived as; for a file still being written, the bytes that must stay in the inbox), and the
outcome counted by hand from what the file holds: the dataset, the ledger status, rows in / loaded /
quarantined, the reasons (file or row level), a text the message or notes must hold, and values
the clean export must show.

The ground truth is the issue's rule: every row that enters leaves either in the warehouse or in
quarantine with a reason; whitespace-only lines are not records; a file that cannot be read is
rejected with a plain message. ``bug`` says how the pipeline breaks that rule today (a lost ledger
row, an unmasked resident ID, a reason that is not true); tests/test_feed_corpus.py runs such a
case as a strict xfail. ``SIDE_RUNS`` holds the bugs that would fail the whole run (exit code 1, a
traceback, a file left in the inbox): each group runs in an inbox of its own.

Rows come from ``tests/test_ingest_files.row`` (a valid 行政处罚 record) with a fresh number each,
so no two cases hold the same bytes unless they mean to.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from test_ingest_files import CODE, HEADERS, csv_text, row
from test_read_feed import ods_bytes, patch_zip, xlsx_bytes

PENALTY = "admin_penalty"
MARKET = "market_regulation"
RID = "11010519491231002X"  # a valid resident ID (GB 11643's own example)
FORMULA = "=cmd|' /C calc'!A0"
CODES = ["CF_XDR_MC", "CF_XDR_LB", "CF_XDR_SHXYM", "CF_WSH", "CF_WFXW", "CF_SY", "CF_YJ", "CF_CFLB", "CF_NR",
         "CF_NR_FK", "CF_JDRQ", "CF_YXQ", "CF_CFJG", "CF_CFJGDM", "CF_SJLY", "CF_SJLYDM", "BZ"]  # HEADERS' field codes

Writer = Callable[[Path, Path], bytes]  # (path to create, a scratch folder outside the inbox)


@dataclass(frozen=True)
class Case:
    name: str
    department: str | bytes  # folder under the inbox ("" = the inbox root; "a/b" = a sub-folder)
    file_name: str | bytes  # bytes: a name that is not UTF-8
    write: Writer
    dataset_id: str | None
    status: str  # loaded | rejected | empty | duplicate (same bytes as ``duplicate_of``) | waiting (left alone:
    # a .part or hidden file still being written)
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reasons: frozenset[str] = frozenset()  # file_reasons and row reasons of its batch
    exact_reasons: bool = True  # False: ``reasons`` must be present, others may be too
    text: str | None = None  # in message_zh or one of the notes
    encoding: str | None = None  # audit.batches.encoding
    clean: dict[str, set[str]] = field(default_factory=dict)  # field -> its distinct values in the clean export
    ledger_name: str | None = None  # source_file in the ledger, when the scan renames the file
    ledger_department: str | None = None  # default: the first folder of ``department``, "-" at the root
    duplicate_of: str | None = None  # the file name whose batch these bytes are
    bug: str | None = None  # the rule this case breaks today (a strict xfail)

    @property
    def source_file(self) -> str:
        return self.ledger_name or (self.file_name if isinstance(self.file_name, str) else os.fsdecode(self.file_name))

    @property
    def department_code(self) -> str:
        if self.ledger_department:
            return self.ledger_department
        folder = os.fsdecode(self.department)
        return folder.split("/")[0] if folder else "-"

    def path(self, inbox: Path) -> Path:
        parts = [os.fsencode(inbox)]
        if self.department:
            parts.append(os.fsencode(self.department))
        return Path(os.fsdecode(b"/".join([*parts, os.fsencode(self.file_name)])))


# ---------------------------------------------------------------- building blocks

_numbers = itertools.count(100)


def recs(count: int, **over) -> list[list[str]]:
    """``count`` valid penalty records, numbered on from the last case's."""
    return [row(next(_numbers), **over) for _ in range(count)]


def one(**over) -> list[str]:
    return row(next(_numbers), **over)


def put(data: bytes) -> Writer:
    def write(path: Path, outside: Path) -> bytes:
        path.write_bytes(data)
        return data

    return write


def text(body: str, encoding: str = "utf-8") -> Writer:
    return put(body.encode(encoding))


def delimited(rows: list[list[str]], headers: list[str] = HEADERS, delimiter: str = ",", newline: str = "\n",
              quoting: int = csv.QUOTE_MINIMAL) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def unquoted(rows: list[list[str]], headers: list[str] = HEADERS) -> str:
    """A comma CSV written without any quoting, as some exporters do (values must hold no comma)."""
    return "".join(",".join(r) + "\n" for r in [headers, *rows])


def body_lines(rows: list[list[str]]) -> list[str]:
    """The record lines of a comma CSV (LF, no header)."""
    return csv_text(rows).splitlines(keepends=True)[1:]


def renamed(headers_by_name: dict[str, str]) -> list[str]:
    return [headers_by_name.get(h, h) for h in HEADERS]


def objects(rows: list[list[str]], headers: list[str] = HEADERS) -> list[dict]:
    return [dict(zip(headers, r, strict=True)) for r in rows]


def book(*sheets: tuple[str, list[list]]) -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets:
        sheet = wb.create_sheet(title)
        for values in rows:
            sheet.append(values)
    return wb


def workbook(*sheets: tuple[str, list[list]]) -> bytes:
    return xlsx_bytes(book(*sheets))


def inbox_relpath(path: Path) -> str:
    """``path`` relative to the inbox it was written in (the name the pipeline gives a link or FIFO)."""
    parts = path.parts
    return "/".join(parts[len(parts) - parts[::-1].index("inbox"):])


def symlink(to_folder: bool = False) -> Writer:
    def write(path: Path, outside: Path) -> bytes:
        target = outside / f"target_of_{path.name}"
        if to_folder:
            target.mkdir(parents=True)
            (target / "xzcf_secret.csv").write_text(csv_text(recs(1)), encoding="utf-8")
        else:
            target.write_text("not for the warehouse: " + RID, encoding="utf-8")
        path.symlink_to(target, target_is_directory=to_folder)
        return f"symbolic link {inbox_relpath(path)} to {target}".encode()

    return write


def fifo(path: Path, outside: Path) -> bytes:
    os.mkfifo(path)
    return f"{inbox_relpath(path)}: not a regular file".encode()


def cfb_bytes(streams: dict[str, bytes]) -> bytes:
    """A minimal OLE2 compound file (CFB v3, 512-byte sectors) holding ``streams``: the container an
    XLSX saved with a password is (EncryptionInfo + EncryptedPackage). Each stream is padded to 4 KiB
    so none lives in the mini stream; sector 0 is the FAT, sector 1 the directory."""
    sector, free, end, fat_sector, none = 512, 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    ordered = sorted(streams.items(), key=lambda kv: (len(kv[0]), kv[0].upper()))  # the directory's sort order
    fat, starts, bodies = [fat_sector, end], [], []
    for _, data in ordered:
        body = data.ljust(max(4096, -(-len(data) // sector) * sector), b"\0")
        start = len(fat)
        starts.append(start)
        count = len(body) // sector
        fat += [start + i + 1 for i in range(count - 1)] + [end]
        bodies.append(body)
    assert len(fat) <= sector // 4
    fat += [free] * (sector // 4 - len(fat))

    def entry(name: str, kind: int, child: int = none, right: int = none, start: int = end, size: int = 0) -> bytes:
        raw = (name.encode("utf-16-le") + b"\0\0") if name else b""
        return (raw.ljust(64, b"\0") + struct.pack("<HBBIII", len(raw), kind, 1, none, right, child)
                + b"\0" * 36 + struct.pack("<IQ", start, size))

    entries = [entry("Root Entry", 5, child=1)]
    for i, ((name, data), start) in enumerate(zip(ordered, starts, strict=True), start=1):
        entries.append(entry(name, 2, right=i + 1 if i < len(ordered) else none, start=start, size=len(data)))
    entries += [entry("", 0)] * (4 - len(entries))
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<9I", 0, 1, 1, 0, 4096, end, 0, end, 0)
              + struct.pack("<I", 0) + struct.pack("<I", free) * 108)
    directory = b"".join(entries)
    assert len(header) == sector and len(directory) == sector
    return header + struct.pack(f"<{sector // 4}I", *fat) + directory + b"".join(bodies)


def encrypted_xlsx() -> bytes:
    info = struct.pack("<HHI", 4, 4, 0x40) + (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<encryption '
        b'xmlns="http://schemas.microsoft.com/office/2006/encryption"><keyData saltSize="16" blockSize="16" '
        b'keyBits="256" hashSize="64" cipherAlgorithm="AES" cipherChaining="ChainingModeCBC" hashAlgorithm="SHA512" '
        b'saltValue="AAAAAAAAAAAAAAAAAAAAAA=="/></encryption>'
    )
    package = struct.pack("<Q", 6000) + bytes(range(256)) * 24
    return cfb_bytes({"EncryptionInfo": info, "EncryptedPackage": package})


def _xlsx_title() -> bytes:
    wb = book(("2024年", [["乳山市2024年行政处罚信息"], HEADERS, *recs(3)]))
    wb["2024年"].merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
    return xlsx_bytes(wb)


def _xlsx_merged() -> bytes:
    rows = recs(3)
    agency = HEADERS.index("处罚机关")
    rows[1][agency] = rows[2][agency] = None
    wb = book(("Sheet1", [HEADERS, *rows]))
    wb["Sheet1"].merge_cells(start_row=2, start_column=agency + 1, end_row=4, end_column=agency + 1)
    return xlsx_bytes(wb)


def _xlsx_formula() -> bytes:
    values = one()
    values[HEADERS.index("罚款金额（万元）")] = "=0.5*3"
    data = workbook(("Sheet1", [HEADERS, values]))
    return patch_zip(data, "xl/worksheets/sheet1.xml",
                     lambda body: body.replace(b"<f>0.5*3</f><v />", b"<f>0.5*3</f><v>1.5</v>"))


def _xlsx_hidden() -> bytes:
    wb = book(("数据", [HEADERS, *recs(2)]), ("旧数据", [HEADERS, *recs(3)]))
    wb["旧数据"].sheet_state = "hidden"
    return xlsx_bytes(wb)


def _xlsx_offset() -> bytes:
    wb = Workbook()
    sheet = wb.active
    for r, values in enumerate([HEADERS, *recs(2)], start=3):
        for c, value in enumerate(values, start=3):
            sheet.cell(r, c, value)
    return xlsx_bytes(wb)


def _xlsx_typed_cells() -> bytes:
    rows = recs(2)
    for values in rows:
        values[HEADERS.index("处罚决定日期")] = datetime(2022, 7, 26)
        values[HEADERS.index("处罚有效期")] = datetime(2023, 7, 26)
        values[HEADERS.index("罚款金额（万元）")] = 0.2
    return workbook(("Sheet1", [HEADERS, *rows]))


def _xlsx_numeric_code() -> bytes:
    damaged = one()
    damaged[HEADERS.index("统一社会信用代码")] = float("913710831234567891")
    return workbook(("Sheet1", [HEADERS, one(), damaged]))


def _xlsx_right_of_table() -> bytes:
    noted = [*one(), "已整改"]  # a remark typed right of the table, under no header
    return workbook(("Sheet1", [HEADERS, one(), noted, one()]))


def _xlsx_chart_sheet() -> bytes:
    wb = book(("数据", [HEADERS, *recs(2)]))
    wb.create_chartsheet("图表")
    return xlsx_bytes(wb)


def _xlsx_error_cells() -> bytes:
    failed = one()
    failed[HEADERS.index("处罚机关统一社会信用代码")] = "#N/A"  # a VLOOKUP that found nothing (an error cell)
    return workbook(("Sheet1", [HEADERS, failed, one()]))


def _simple_xlsx(count: int) -> bytes:
    return workbook(("Sheet1", [HEADERS, *recs(count)]))


def _excel_lock_file() -> bytes:
    """What Excel leaves beside an open workbook (~$name.xlsx): the user's name, twice, padded."""
    user = b"zhangsan"
    return (bytes([len(user)]) + user.ljust(53, b" ") + struct.pack("<H", len(user))
            + "zhangsan".encode("utf-16-le")).ljust(165, b"\0")


def _zip_of_csv() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xzcf.csv", csv_text(recs(2)))
    return out.getvalue()


def _docx_named_xlsx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def _png() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00\x00\x01\x00" * 3 + bytes(range(256)) * 4


def _unclosed_middle() -> str:
    lines = body_lines(recs(5))
    lines[2] = lines[2].replace("乳山市测试", '"乳山市测试', 1)
    return csv_text([]) + "".join(lines)


def _mixed_encodings() -> bytes:
    lines = body_lines(recs(3))
    return (csv_text([]).encode() + lines[0].encode("gb18030") + lines[1].encode() + lines[2].encode("gb18030"))


def _undecodable_line() -> bytes:
    lines = body_lines(recs(3))
    broken = lines[1].encode()
    at = broken.find("测试".encode())
    return csv_text([]).encode() + lines[0].encode() + broken[:at] + b"\xff\xfe" + broken[at + 2:] + lines[2].encode()


def _unquoted_line_break() -> str:
    """A cell with a line break exported without quotes: one record over two lines, each ragged."""
    rows = recs(3)
    rows[1][HEADERS.index("违法事实")] = "发布虚假广告\n情节较轻"
    return unquoted(rows)


def _one_mb_field() -> str:
    rows = recs(3)
    rows[1][HEADERS.index("违法事实")] = "违" * 350_000  # 1.05 MB of UTF-8
    return csv_text(rows)


def _tax_feed() -> str:
    headers = ["纳税人识别号", "纳税人名称", "税种", "所属期起", "所属期止", "应纳税额（万元）", "纳税状态"]
    rows = [[CODE, "乳山市纳税测试有限公司", kind, "2024-01-01", "2024-03-31", "1.5", "正常"]
            for kind in ("增值税", "企业所得税")]
    return csv_text(rows, headers)


def _concatenated_exports() -> str:
    return csv_text(recs(2)) + csv_text(recs(2))  # the header again in the middle: two exports pasted together


def _utf16_tab(encoding: str, rows: list[list[str]]) -> bytes:
    body = delimited(rows, delimiter="\t", newline="\r\n")
    return {"le": b"\xff\xfe" + body.encode("utf-16-le"), "be": b"\xfe\xff" + body.encode("utf-16-be"),
            "nobom": body.encode("utf-16-le")}[encoding]


def _natural_person_rows() -> list[list[str]]:
    """Resident IDs pasted into free text the ways people type them; one in its own 证件号码 column."""
    facts = [
        f"当事人张某（身份证号{RID}）发布虚假广告",
        "当事人李某，身份证号 110105 19491231 002X，发布虚假广告",
        "当事人王某，公民身份号码１１０１０５１９４９１２３１００２Ｘ，发布虚假广告",
        "当事人赵某（110105-1949-1231-002x）发布虚假广告",
    ]
    rows = []
    for fact in facts:
        values = one(行政相对人类别="自然人", 统一社会信用代码="", 违法事实=fact, 备注=f"核对：{RID}")
        rows.append([*values, RID])
    return rows


# ---------------------------------------------------------------- the corpus


def _loaded(name: str, file_name: str, write: Writer, rows: int, **kw) -> Case:
    return Case(name, kw.pop("department", MARKET), file_name, write, kw.pop("dataset_id", PENALTY), "loaded",
                rows, rows, 0, **kw)


def _rejected(name: str, file_name: str, write: Writer, reason: str, dataset_id: str | None = PENALTY, **kw) -> Case:
    return Case(name, kw.pop("department", MARKET), file_name, write, dataset_id, "rejected",
                reasons=frozenset({reason}), **kw)


def _partly(name: str, file_name: str, write: Writer, rows_in: int, quarantined: int, reasons: set[str],
            **kw) -> Case:
    return Case(name, kw.pop("department", MARKET), file_name, write, kw.pop("dataset_id", PENALTY),
                kw.pop("status", "loaded"), rows_in, rows_in - quarantined, quarantined, frozenset(reasons), **kw)


_same_bytes = csv_text(recs(2)).encode()
_same_unroutable = "会议通知：请各单位于周五前报送2024年数据。\n".encode()

CASES: list[Case] = [
    # -- encodings
    _loaded("utf8", "xzcf_utf8.csv", text(csv_text(recs(3))), 3, encoding="utf-8"),
    _loaded("utf8_bom", "xzcf_utf8_bom.csv", text("\ufeff" + csv_text(recs(3))), 3),
    _loaded("gb18030", "xzcf_gb18030.csv",
            text(csv_text([one(行政相对人名称="乳山市𠮷祥测试有限公司"), *recs(1)]), "gb18030"), 2,
            encoding="gb18030"),
    _loaded("gbk", "xzcf_gbk.csv", text(csv_text(recs(3)), "gbk"), 3, encoding="gb18030"),
    _loaded("mixed_encoding_lines", "xzcf_mixed_enc.csv", put(_mixed_encodings()), 3, encoding="gb18030+utf-8"),
    _partly("undecodable_bytes_in_one_line", "xzcf_undecodable.csv", put(_undecodable_line()), 3, 1,
            {"undecodable_bytes"}, encoding="utf-8+undecodable"),
    _loaded("utf16_le_bom_tab", "xzcf_unicode_le.txt", put(_utf16_tab("le", recs(3))), 3, encoding="utf-16",
            text="read as tab-delimited"),
    _loaded("utf16_be_bom_tab", "xzcf_unicode_be.txt", put(_utf16_tab("be", recs(2))), 2, encoding="utf-16"),
    _partly("utf16_cut_one_byte_short", "xzcf_unicode_cut.txt", put(_utf16_tab("le", recs(3))[:-1]), 3, 1,
            {"undecodable_bytes"}),
    _rejected("utf16_without_bom", "xzcf_unicode_nobom.txt", put(_utf16_tab("nobom", recs(2))), "utf16_without_bom",
              text="without a BOM"),
    _loaded("utf16_named_xls", "xzcf_unicode.xls", put(_utf16_tab("le", recs(2))), 2, text="holds UTF-16 text"),
    _rejected("utf32", "xzcf_utf32.csv", text(csv_text(recs(2)), "utf-32"), "unreadable_file", text="UTF-32"),
    # -- line ends and blank lines
    _loaded("crlf", "xzcf_crlf.csv", text(csv_text(recs(3)).replace("\n", "\r\n")), 3),
    _loaded("cr_only", "xzcf_cr.csv", text(csv_text(recs(3)).replace("\n", "\r")), 3, text="CR-only line ends"),
    _loaded("mixed_line_ends", "xzcf_mixed_eol.csv",
            text(csv_text(recs(4)).replace("\n", "\r\n", 2)), 4),
    _loaded("no_final_newline", "xzcf_no_eol.csv", text(csv_text(recs(3)).rstrip("\n")), 3),
    _loaded("trailing_blank_lines", "xzcf_trailing_blank.csv", text(csv_text(recs(3)) + "\n\n\r\n\n"), 3),
    _loaded("whitespace_only_lines", "xzcf_ws_lines.csv",
            text(csv_text([]) + "   \n" + "".join(line + "\t \n" for line in body_lines(recs(3))) + " \u3000 \n"),
            3, text="whitespace-only line"),
    _loaded("blank_first_line", "xzcf_blank_first.csv", text("\n" + csv_text(recs(3))), 3,
            text="skipped 1 title or blank line"),
    _partly("delimiter_only_lines", "xzcf_commas_only.csv",
            text(csv_text([*recs(2), [""] * len(HEADERS), *recs(1)])), 4, 1,
            {"required_missing:CF_XDR_MC", "required_missing:CF_WSH"}, exact_reasons=False),
    _partly("nul_padding_at_end", "xzcf_nul_tail.csv", put(csv_text(recs(3)).encode() + b"\x00" * 64), 4, 1,
            {"ragged_row"}),
    # -- above and in the header
    _loaded("title_rows_above_header", "xzcf_title.csv",
            text("乳山市2024年行政处罚信息,,,\n填报单位：乳山市市场监督管理局\n" + csv_text(recs(3))), 3,
            text="skipped 2 title or blank lines"),
    _loaded("title_line_with_quotes", "xzcf_title_quotes.csv",
            text('关于"双随机、一公开"检查的行政处罚信息\n' + csv_text(recs(3))), 3,
            text="skipped 1 title or blank line"),
    _loaded("excel_sep_line", "xzcf_sep.csv", text("sep=;\n" + delimited(recs(2), delimiter=";")), 2),
    _loaded("header_zero_width_chars", "xzcf_zwsp.csv",
            text(csv_text(recs(2), renamed({"行政处罚决定书文号": "行政处罚\u200b决定书文号",
                                            "处罚机关": "\ufeff处罚机关\u2060",
                                            "违法事实": "违法\u200c事\u200d实"}))), 2),
    _loaded("header_fullwidth_and_spaces", "xzcf_fw_header.csv",
            text(csv_text(recs(2), renamed({"行政相对人名称": "  行政相对人名称 ", "罚款金额（万元）": "罚款金额(万元)",
                                            "备注": "ＢＺ", "处罚类别": "处罚 类别"}))), 2),
    _loaded("header_line_break_in_cell", "xzcf_wrapped_header.csv",
            text(csv_text(recs(2), renamed({"罚款金额（万元）": "罚款金额\n（万元）"}))), 2),
    _loaded("pre_2019_codes", "xzcf_old_codes.csv",
            text(csv_text([[*r, "王某"] for r in recs(2)], [*renamed({"处罚机关": "CF_XZJG"}), "CF_FR"])), 2,
            clean={"CF_FRDB": {"王某"}}),
    _loaded("field_code_headers", "xzcf_codes.csv",
            text(csv_text(recs(2), [c.lower() if i % 2 else c for i, c in enumerate(CODES)])), 2),
    _loaded("columns_reordered", "xzcf_reordered.csv",
            text(csv_text([list(reversed(r)) for r in recs(2)], list(reversed(HEADERS)))), 2),
    _loaded("unknown_extra_column", "xzcf_extra_col.csv",
            text(csv_text([[*r, "内部-001"] for r in recs(2)], [*HEADERS, "内部编号"])), 2),
    _loaded("trailing_empty_columns", "xzcf_trailing_cols.csv",
            text(csv_text([[*r, "", "", ""] for r in recs(2)], [*HEADERS, "", "", ""])), 2),
    _partly("two_header_rows", "xzcf_two_headers.csv",
            text(csv_text([CODES, *recs(3)])), 4, 1,
            {"value_not_allowed:CF_XDR_LB", "invalid_date:CF_JDRQ"}, exact_reasons=False),
    _partly("header_repeated_mid_file", "xzcf_concat.csv", text(_concatenated_exports()), 5, 1,
            {"value_not_allowed:CF_XDR_LB"}, exact_reasons=False),
    _partly("totals_row", "xzcf_totals.csv",
            text(csv_text([*recs(3), ["合计"] + [""] * 8 + ["0.6"] + [""] * 7])), 4, 1,
            {"required_missing:CF_WSH", "required_missing:CF_XDR_LB"}, exact_reasons=False),
    Case("duplicate_header", MARKET, "xzcf_dup_header.csv",
         text(csv_text([[*r, r[0]] for r in recs(3)], [*HEADERS, "CF_XDR_MC"])), PENALTY, "rejected", 3, 0, 3,
         frozenset({"duplicate_header:CF_XDR_MC"})),
    Case("missing_required_column", MARKET, "xzcf_missing_col.csv",
         text(csv_text([[v for h, v in zip(HEADERS, r, strict=True) if h != "行政处罚决定书文号"] for r in recs(3)],
                       [h for h in HEADERS if h != "行政处罚决定书文号"])),
         PENALTY, "rejected", 3, 0, 3, frozenset({"missing_required_column:CF_WSH"})),
    Case("no_recognizable_header", MARKET, "xzcf_english.csv",
         text("name,code,date\nA Co,91110000600037341L,2022-07-26\nB Co,91110000600037341L,2022-07-27\n"),
         PENALTY, "rejected", 2, 0, 2, frozenset({"unrecognized_header"})),
    Case("title_only", MARKET, "xzcf_title_only.csv", text("乳山市2024年行政处罚信息\n"), PENALTY, "rejected",
         reasons=frozenset({"unrecognized_header"})),
    Case("header_only", MARKET, "xzcf_header_only.csv", text(csv_text([])), PENALTY, "empty", text="只有表头"),
    _rejected("zero_bytes", "xzcf_zero.csv", put(b""), "empty_file", text="0字节"),
    _rejected("bom_only", "xzcf_bom_only.csv", put(b"\xef\xbb\xbf"), "empty_file"),  # Excel's CSV UTF-8, empty
    _rejected("blank_lines_only", "xzcf_blank_only.csv", put(b"\r\n  \r\n\t\r\n"), "empty_file"),
    # -- delimiters
    _loaded("tab_delimited", "xzcf_tab.tsv", text(delimited(recs(3), delimiter="\t")), 3,
            text="read as tab-delimited"),
    _loaded("semicolon_delimited", "xzcf_semicolon.csv",
            text(delimited([one(处罚内容="罚款0.2万元,另处警告"), *recs(2)], delimiter=";")), 3,
            text="read as semicolon-delimited"),
    _loaded("pipe_delimited", "xzcf_pipe.txt", text(delimited(recs(3), delimiter="|")), 3,
            text="read as pipe-delimited"),
    _loaded("every_field_quoted", "xzcf_quote_all.csv", text(delimited(recs(3), quoting=csv.QUOTE_ALL)), 3),
    _loaded("stray_quotes_inside_fields", "xzcf_stray_quotes.csv",
            text(unquoted([one(行政相对人名称='乳山市"好运来"超市'), one(行政相对人名称='乳山市"好运来超市')])), 2,
            clean={"CF_XDR_MC": {'乳山市"好运来"超市', '乳山市"好运来超市'}}),
    _partly("unquoted_line_break", "xzcf_unquoted_break.csv", text(_unquoted_line_break()), 4, 2, {"ragged_row"}),
    # -- broken records
    _partly("ragged_rows", "xzcf_ragged.csv",
            text(csv_text([one(), [*one(), "多出的一列"], one(), one()[:-3]])), 4, 2, {"ragged_row"}),
    _partly("unclosed_quote_middle", "xzcf_quote_mid.csv", text(_unclosed_middle()), 5, 1, {"unclosed_quote"},
            text="unclosed quote (line 4)"),
    _partly("unclosed_quote_at_end", "xzcf_quote_end.csv",
            text(csv_text(recs(2)) + '"' + ",".join(one()) + "\n"), 3, 1, {"unclosed_quote"}),
    _loaded("quoted_newlines_and_commas", "xzcf_multiline.csv",
            text(csv_text([one(违法事实="第一行，\n第二行, 含逗号\r\n第三行"), one(处罚内容='罚款0.2万元,"从重"'),
                           one()])),
            3, clean={"CF_NR": {'罚款0.2万元,"从重"', "罚款0.2万元"}}),
    _partly("one_mb_field", "xzcf_1mb.csv", text(_one_mb_field()), 3, 1, {"field_too_long:CF_SY"}),
    _loaded("nul_and_control_chars", "xzcf_ctrl.csv",
            text(csv_text([one(违法事实="发布\x00虚假\x01广告\x1b[31m", 备注="\x07\x08\x0b\x0c"), one()])), 2,
            clean={"CF_SY": {"发布虚假广告[31m", "发布虚假广告"}}),
    _loaded("formula_injection", "xzcf_formula_text.csv",
            text(csv_text([one(备注=FORMULA), one(备注="@SUM(1+1)*cmd|' /C calc'!A0"), one(备注="+1+1"),
                           one(备注="-2+3")])), 4,
            clean={"BZ": {FORMULA, "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3"}}),
    _partly("repeated_records", "xzcf_repeat.csv", text(csv_text([*(r := recs(2)), r[0], one()])), 4, 1,
            {"duplicate_row"}),
    # -- codes
    _loaded("fullwidth_digits_in_codes", "xzcf_fw_codes.csv",
            text(csv_text([one(统一社会信用代码="９１１１００００６０００３７３４１Ｌ"), one()])), 2,
            clean={"CF_XDR_SHXYM": {CODE}}),
    _loaded("codes_spaces_hyphens_lowercase", "xzcf_code_spacing.csv",
            text(csv_text([one(统一社会信用代码="9111-0000 6000 3734 1l"), one(统一社会信用代码=" 91110000600037341l "),
                           one(统一社会信用代码="\t" + CODE)])), 3, clean={"CF_XDR_SHXYM": {CODE}}),
    _partly("excel_damaged_codes", "xzcf_excel_codes.csv",
            text(csv_text([one(统一社会信用代码="913710831234568000"), one(统一社会信用代码="9.13710831234567E+17"),
                           one()])), 3, 2, {"uscc_excel_damage:CF_XDR_SHXYM", "uscc_length:CF_XDR_SHXYM"}),
    _partly("bad_and_wrong_kind_codes", "xzcf_bad_codes.csv",
            text(csv_text([one(统一社会信用代码="91110000600037341X"), one(统一社会信用代码="000000000000000000"),
                           one(统一社会信用代码=RID), one()])), 4, 3,
            {"uscc_check_digit:CF_XDR_SHXYM", "uscc_placeholder:CF_XDR_SHXYM", "wrong_kind_resident_id:CF_XDR_SHXYM"}),
    _partly("dates_written_many_ways", "xzcf_dates.csv",
            text(csv_text([one(处罚决定日期=d) for d in
                           ("2022-07-26", "2022/7/26", "2022.7.26", "2022年7月26日", "20220726", "2022-07-26 09:30:00",
                            "44768")])), 7, 1, {"invalid_date:CF_JDRQ"}),
    # -- resident IDs in free text
    _loaded("resident_ids_in_free_text", "xzcf_rid.csv",
            text(csv_text(_natural_person_rows(), [*HEADERS, "证件号码"])), 4,
            clean={"CF_XDR_ZJHM": {"110105********002X"}}),
    _loaded("resident_id_with_nbsp", "xzcf_rid_nbsp.csv",
            text(csv_text([one(备注="身份证号：110105\u00a019491231\u00a0002X（网页复制）"), one()])), 2),
    _loaded("resident_id_with_double_spaces", "xzcf_rid_spaces.csv",
            text(csv_text([one(违法事实="当事人身份证号110105  19491231  002X，发布虚假广告"), one()])), 2),
    # -- JSON
    _loaded("json_lines", "xzcf_lines.jsonl",
            text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects(recs(3), CODES))), 3,
            encoding="utf-8"),
    _partly("json_lines_broken_line", "xzcf_broken_line.jsonl",
            text(json.dumps(objects(recs(1))[0], ensure_ascii=False) + "\n{\"行政相对人名称\": \"乳山市\n"
                 + json.dumps(objects(recs(1))[0], ensure_ascii=False) + "\n"), 3, 1, {"malformed_json"}),
    _loaded("json_pretty_array", "xzcf_pretty.json",
            text(json.dumps(objects(recs(3)), ensure_ascii=False, indent=2)), 3, text="read as a JSON array of 3"),
    _loaded("json_one_line_array_bom", "xzcf_oneline.json",
            text("\ufeff" + json.dumps(objects(recs(3)), ensure_ascii=False)), 3),
    _rejected("json_broken", "xzcf_broken.json",
              text("[\n" + json.dumps(objects(recs(1))[0], ensure_ascii=False) + ",\n {\"a\": 1,,}\n]"),
              "broken_json", text="JSON数组在第3行"),
    _loaded("json_nested_objects", "xzcf_nested.json",
            text(json.dumps([{**o, "处罚机关": {"名称": "乳山市市场监督管理局", "级别": "县级"},
                              "罚款金额（万元）": 0.2,
                              "备注": None} for o in objects(recs(2))], ensure_ascii=False, indent=1)), 2,
            clean={"CF_CFJG": {'{"名称": "乳山市市场监督管理局", "级别": "县级"}'}}),
    Case("json_api_envelope", MARKET, "xzcf_api.json",
         text(json.dumps({"code": 200, "msg": "ok", "data": objects(recs(2))}, ensure_ascii=False, indent=2)),
         PENALTY, "rejected", 1, 0, 1, frozenset({"unrecognized_header"})),
    # No header and no record, like a 0-byte or blank file: rejected as empty, saying it holds no records.
    _rejected("json_empty_array", "xzcf_empty_array.json", text("[]\n"), "empty_file", text="空数组"),
    _loaded("json_lines_gbk", "xzcf_gbk.jsonl",
            text("".join(json.dumps(o, ensure_ascii=False) + "\r\n" for o in objects(recs(2))), "gbk"), 2,
            encoding="gb18030"),
    Case("json_array_of_arrays", MARKET, "xzcf_rows.json",
         text(json.dumps([HEADERS, *recs(2)], ensure_ascii=False)), PENALTY, "rejected", 3, 0, 3,
         frozenset({"malformed_json", "unrecognized_header"})),
    # -- workbooks
    _loaded("xlsx_simple", "xzcf_simple.xlsx", put(_simple_xlsx(3)), 3, encoding="xlsx"),
    _loaded("xlsx_title_row", "xzcf_title.xlsx", put(_xlsx_title()), 3, text="header on row 2"),
    _loaded("xlsx_instruction_sheet_first", "xzcf_guide_first.xlsx",
            put(workbook(("填表说明", [["字段", "说明"], ["行政相对人名称", "必填"]]),
                         ("数据", [HEADERS, *recs(2)]))), 2,
            text="skipped sheet '填表说明' (instructions)"),
    _loaded("xlsx_two_data_sheets", "xzcf_two_sheets.xlsx",
            put(workbook(("1月", [HEADERS, *recs(2)]), ("2月", [HEADERS, *recs(2)]))), 4, text="sheet '2月'"),
    _loaded("xlsx_merged_cells", "xzcf_merged.xlsx", put(_xlsx_merged()), 3,
            clean={"CF_CFJG": {"乳山市市场监督管理局"}}),
    _loaded("xlsx_formula_cached_value", "xzcf_formula.xlsx", put(_xlsx_formula()), 1,
            clean={"CF_NR_FK": {"1.500000"}}),
    _loaded("xlsx_hidden_sheet", "xzcf_hidden.xlsx", put(_xlsx_hidden()), 2, text="a hidden sheet"),
    _loaded("xlsx_table_not_at_a1", "xzcf_offset.xlsx", put(_xlsx_offset()), 2),
    _loaded("xlsx_date_and_number_cells", "xzcf_typed.xlsx", put(_xlsx_typed_cells()), 2,
            clean={"CF_JDRQ": {"2022-07-26"}, "CF_NR_FK": {"0.200000"}}),
    _loaded("xlsx_blank_rows_between", "xzcf_blank_rows.xlsx",
            put(workbook(("Sheet1", [HEADERS, one(), [], one(), [None] * 5, one()]))), 3,
            text="skipped 2 blank rows"),
    _partly("xlsx_numeric_code", "xzcf_numeric_code.xlsx", put(_xlsx_numeric_code()), 2, 1,
            {"uscc_excel_damage:CF_XDR_SHXYM"}),
    _partly("xlsx_cell_right_of_table", "xzcf_right_of_table.xlsx", put(_xlsx_right_of_table()), 3, 1,
            {"ragged_row"}),
    Case("xlsx_header_only", MARKET, "xzcf_header_only.xlsx", put(workbook(("Sheet1", [HEADERS]))), PENALTY,
         "empty"),
    _rejected("xlsx_only_instructions", "xzcf_only_guide.xlsx",
              put(workbook(("填报说明", [["请按模板填写"], ["行政相对人名称为必填项"]]))), "no_data_sheet"),
    _rejected("xlsx_truncated_zip", "xzcf_truncated.xlsx", put(_simple_xlsx(2)[:1500]), "unreadable_file",
              text="请在Excel中打开后另存为XLSX"),
    _rejected("xlsx_corrupt_sheet_xml", "xzcf_corrupt_xml.xlsx",
              put(patch_zip(_simple_xlsx(2), "xl/worksheets/sheet1.xml", lambda body: body[: len(body) // 2])),
              "unreadable_file", text="无法解析"),
    _rejected("xlsx_password_protected", "xzcf_password.xlsx", put(encrypted_xlsx()), "password_protected",
              text="取消密码"),
    _loaded("xlsx_named_csv", "xzcf_really_xlsx.csv", put(_simple_xlsx(2)), 2,
            text="named .csv but is an XLSX workbook"),
    _loaded("xlsx_named_xls", "xzcf_really_xlsx.xls", put(_simple_xlsx(2)), 2),
    _loaded("xlsm_macro_workbook", "xzcf_macro.xlsm", put(_simple_xlsx(2)), 2),
    _loaded("xlsx_with_chart_sheet", "xzcf_chart.xlsx", put(_xlsx_chart_sheet()), 2, text="not a worksheet"),
    _partly("xlsx_error_cells", "xzcf_na.xlsx", put(_xlsx_error_cells()), 2, 1, {"required_missing:CF_CFJGDM"}),
    _loaded("csv_named_xls", "xzcf_export.xls", text(csv_text(recs(2))), 2, text="holds delimited text"),
    _rejected("html_named_xls", "xzcf_web.xls",
              text("<html><body><table><tr><td>行政相对人名称</td></tr></table></body></html>"), "not_a_feed",
              text="网页"),
    _rejected("excel_2003_xml_named_xls", "xzcf_2003.xls",
              text('<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">'
                   "<Worksheet><Table><Row><Cell><Data>行政相对人名称</Data></Cell></Row></Table></Worksheet></Workbook>"),
              "not_a_feed", text="Excel 2003 XML"),
    _rejected("old_xls_damaged", "xzcf_old.xls", put(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600),
              "unreadable_file"),
    _loaded("ods", "xzcf_sheet.ods",
            put(ods_bytes({"说明": [["请填写"]], "数据": [["行政处罚信息"], HEADERS, *recs(2)]})), 2,
            encoding="ods"),
    _rejected("excel_lock_file", "~$xzcf_simple.xlsx", put(_excel_lock_file()), "unsafe_file_name", dataset_id=None),
    # -- not a feed at all, under a feed's name
    _rejected("pdf_named_csv", "xzcf_scan.csv", put(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
              "not_a_feed", text="PDF"),
    _rejected("zip_named_csv", "xzcf_packed.csv", put(_zip_of_csv()), "not_a_feed", text="ZIP"),
    _rejected("png_named_xlsx", "xzcf_photo.xlsx", put(_png()), "not_a_feed", text="PNG"),
    _rejected("docx_named_xlsx", "xzcf_word.xlsx", put(_docx_named_xlsx()), "not_a_feed", text="Word"),
    _rejected("html_named_csv", "xzcf_page.csv",
              text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>登录超时</body></html>"),
              "not_a_feed"),
    _rejected("unsupported_extension", "xzcf_2024.doc", text(csv_text(recs(1))), "unsupported_format",
              text="不支持的文件类型"),
    # -- names, folders and entries that are not files
    _loaded("long_file_name", "行政处罚" * 15 + "_2024年第一季度.csv", text(csv_text(recs(2))), 2),
    _loaded("browser_download_suffix", "xzcf_2024[1].csv", text(csv_text(recs(2))), 2),
    _loaded("quotes_in_file_name", "xzcf_'2024'_\"final\".csv", text(csv_text(recs(2))), 2),
    _rejected("department_folder_wrong_case", "xzcf_case.csv", text(csv_text(recs(1))), "unknown_dataset",
              dataset_id=None, department="Market_Regulation"),
    _loaded("uppercase_extension", "XZCF_UPPER.CSV", text(csv_text(recs(2))), 2),
    _loaded("name_with_spaces_and_parens", "行政处罚信息 (1).csv", text(csv_text(recs(2))), 2),
    _loaded("file_in_a_subfolder", "xzcf_sub.csv", text(csv_text(recs(2))), 2, department=f"{MARKET}/2024年/三月"),
    _loaded("name_in_gbk_bytes", "行政处罚_2024年度.csv".encode("gbk"), text(csv_text(recs(2))), 2,
            ledger_name="行政处罚_2024年度.csv"),
    _rejected("name_neither_utf8_nor_gbk", b"\xff\xfexzcf.csv", text(csv_text(recs(1))), "unsafe_file_name",
              dataset_id=None, ledger_name="\\xff\\xfexzcf.csv"),
    _rejected("unsafe_name_semicolon", "xzcf;rm -rf ~.csv", text(csv_text(recs(1))), "unsafe_file_name",
              dataset_id=None),
    _rejected("unsafe_name_command_substitution", "xzcf_$(reboot).csv", text(csv_text(recs(1))), "unsafe_file_name",
              dataset_id=None),
    _rejected("unsafe_name_newline", "xzcf\n.csv", text(csv_text(recs(1))), "unsafe_file_name", dataset_id=None),
    _rejected("unsafe_name_leading_dash", "-xzcf.csv", text(csv_text(recs(1))), "unsafe_file_name", dataset_id=None),
    _rejected("symlink_to_file_outside", "xzcf_link.csv", symlink(), "unsafe_link", dataset_id=None,
              text="links are not followed"),
    _rejected("symlink_to_folder", "linked_folder", symlink(to_folder=True), "unsafe_link", dataset_id=None),
    _rejected("symlinked_department_folder", "market_regulation_link", symlink(to_folder=True), "unsafe_link",
              dataset_id=None, department=""),
    _rejected("fifo", "xzcf_pipe.csv", fifo, "not_a_regular_file", dataset_id=None),
    _rejected("file_at_inbox_root", "xzcf_root.csv", text(csv_text(recs(1))), "unknown_dataset", dataset_id=None,
              department="", text="not in a department folder"),
    _rejected("unknown_department", "xzcf_police.csv", text(csv_text(recs(1))), "unknown_dataset", dataset_id=None,
              department="police", text="not a department of the catalog"),
    _rejected("department_folder_in_gbk_bytes", "xzcf_gbk_folder.csv", text(csv_text(recs(1))), "unknown_dataset",
              dataset_id=None, department="市场监管局".encode("gbk"), ledger_department="市场监管局"),
    _rejected("name_matches_no_dataset", "scan_0001.csv", text(csv_text(recs(1))), "unknown_dataset",
              dataset_id=None, text="matches datasets: none"),
    _rejected("name_matches_two_datasets", "xzcf_xzxk.csv", text(csv_text(recs(1))), "unknown_dataset",
              dataset_id=None, text="admin_penalty"),
    _rejected("windows_thumbnail_cache", "Thumbs.db", put(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1thumbs" + b"\x00" * 64),
              "unknown_dataset", dataset_id=None),
    _loaded("other_dataset_other_department", "nashui_2024q1.csv", text(_tax_feed()), 2, department="tax",
            dataset_id="tax_payment"),
    Case("upload_in_progress", MARKET, "xzcf_uploading.csv.part", put(csv_text(recs(1)).encode()), None, "waiting"),
    Case("hidden_temp_file", MARKET, ".~xzcf_editing.csv", put(csv_text(recs(1)).encode()), None, "waiting"),
    # -- the same bytes twice
    _loaded("same_bytes_first_name", "xzcf_same_a.csv", put(_same_bytes), 2),
    Case("same_bytes_second_name", MARKET, "xzcf_same_b.csv", put(_same_bytes), PENALTY, "duplicate",
         duplicate_of="xzcf_same_a.csv"),
    # Refused bytes sent twice are one batch too: the second is an arrival of the first one's batch.
    _rejected("unroutable_same_bytes_first", "会议通知.txt", put(_same_unroutable), "unknown_dataset",
              dataset_id=None, department="civil_affairs"),
    Case("unroutable_same_bytes_second", "health", "会议通知_转发.txt", put(_same_unroutable), None, "duplicate",
         duplicate_of="会议通知.txt"),
]


# Not in the one big run: cases that once failed the whole run (exit code 1, a traceback, a file left in
# the inbox), each group in an inbox of its own (tests/test_feed_corpus.py::test_side_run).


def _markup_link(path: Path, outside: Path) -> bytes:
    os.symlink("[/evil]", path)  # a dangling link: its target is any text
    return f"symbolic link {inbox_relpath(path)} to [/evil]".encode()


SIDE_RUNS: dict[str, tuple[str, list[Case]]] = {
    "gbk_name_clash": (
        "a GBK-named file whose decoded name is already taken keeps its undecodable name; the ledger insert "
        "fails (DuckDB: cannot encode surrogates), the run exits 1 and the file stays in the inbox",
        [
            _loaded("gbk_name_clash_utf8", "行政处罚_重名.csv", text(csv_text(recs(1))), 1),
            _loaded("gbk_name_clash_gbk", "行政处罚_重名.csv".encode("gbk"), text(csv_text(recs(2))), 2,
                    ledger_name="行政处罚_重名~2.csv"),  # the readable name is taken: ~2 added
        ],
    ),
    "link_target_is_markup": (
        "a message holding rich markup (a link's target '[/evil]') crashes the results table: MarkupError, "
        "a traceback and exit 1 after the files were ingested",
        [_rejected("link_target_is_markup", "xzcf_markup_link.csv", _markup_link, "unsafe_link", dataset_id=None)],
    ),
    "folder_name_is_markup": (
        "a sub-folder path holding rich markup ('a[/xzcf].csv') crashes the progress bar: MarkupError, "
        "a traceback and exit 1",
        [_loaded("folder_name_is_markup", "xzcf].csv", text(csv_text(recs(1))), 1, department=f"{MARKET}/a[")],
    ),
}
