"""A ``Feed`` as XLSX bytes, written directly (the history writes hundreds of workbooks).

In: a finished ``Feed`` (columns, headers, rows; ``row.numeric`` marks the cells Excel stored
as numbers). Out: the bytes of a minimal SpreadsheetML package with the cells as
``writers.write_xlsx`` (openpyxl) writes them: text as inline strings (``xml:space="preserve"``
when padded), numbers as ``%.16g``, ``None`` and an empty text as an empty cell, a text
starting with ``=`` refused; the sheet states its dimension, as openpyxl's does. One sheet
named after the dataset; document properties and zip entries carry ``writers.FIXED_TIME``, so
equal content gives equal bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from xml.sax.saxutils import escape

from sample_city.rows import Feed
from sample_city.writers import FIXED_TIME

_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")  # what openpyxl refuses in a cell
_STAMP = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument"

_STATIC = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.spreadsheetml.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.spreadsheetml.worksheet+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.spreadsheetml.styles+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/>'
        f'<Relationship Id="rId2" Type="{_PKG}/metadata/core-properties" Target="docProps/core.xml"/>'
        "</Relationships>"
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_RELS}/styles" Target="styles.xml"/>'
        "</Relationships>"
    ),
    "xl/styles.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<styleSheet xmlns="{_MAIN}">'
        '<fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    ),
}


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _cell(ref: str, value: object, numeric: bool) -> str:
    if value is None:
        return f'<c r="{ref}"/>'
    if numeric and isinstance(value, (int, float)):
        return f'<c r="{ref}" t="n"><v>{value:.16g}</v></c>'
    text = str(value)
    if text.startswith("="):
        raise ValueError("a text cell starting with '=' would become a formula")
    if _ILLEGAL.search(text):
        raise ValueError(f"{text!r}: a character XML cannot carry")
    if text == "":
        return f'<c r="{ref}" t="inlineStr"/>'
    space = ' xml:space="preserve"' if text.strip() and text != text.strip() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{escape(text)}</t></is></c>'


def _sheet(feed: Feed) -> str:
    refs = [_column(i) for i in range(len(feed.columns))]
    lines = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n',
        f'<worksheet xmlns="{_MAIN}">',
        f'<dimension ref="A1:{refs[-1]}{len(feed.rows) + 1}"/><sheetData>',
        '<row r="1">',
        *(_cell(f"{refs[i]}1", feed.headers.get(c, c), False) for i, c in enumerate(feed.columns)),
        "</row>",
    ]
    for number, row in enumerate(feed.rows, start=2):
        lines.append(f'<row r="{number}">')
        lines.extend(
            _cell(f"{refs[i]}{number}", row.values.get(c), c in row.numeric)
            for i, c in enumerate(feed.columns)
        )
        lines.append("</row>")
    lines.append("</sheetData></worksheet>")
    return "".join(lines)


def write_xlsx(feed: Feed) -> bytes:
    name = escape(feed.dataset.name_zh[:31], {'"': "&quot;"})
    parts = dict(_STATIC)
    parts["docProps/core.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"<dc:creator>{name}</dc:creator>"
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{_STAMP}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{_STAMP}</dcterms:modified>'
        "</cp:coreProperties>"
    )
    parts["xl/workbook.xml"] = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_RELS}">'
        f'<sheets><sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    parts["xl/worksheets/sheet1.xml"] = _sheet(feed)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(parts):
            entry = zipfile.ZipInfo(part, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, parts[part].encode("utf-8"))
    return out.getvalue()
