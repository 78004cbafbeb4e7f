"""Attacker text in free-text fields of valid records: what the website must mask or render inert.

In: a finished feed (after its defects), the number of the attack to plant, and the feed's
free-text fields (the fact field and the remark). Out: one clean row of the feed carrying the
attack (appended to the fact text, or as the whole remark so a formula leads the cell); the row
stays valid and loads. ``ATTACKS`` cycles through: a resident ID number pasted with spaces, in
full-width digits and plain; a mobile number plain, spaced and hyphenated; HTML / script; and
spreadsheet formulas (``=``-formulas only in CSV and JSON lines: the workbook writers refuse a
text cell starting with ``=``).
"""

from __future__ import annotations

import random

from sample_city.rows import Feed, Row

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
HYPERLINK = '=HYPERLINK("http://x","y")'
CMD = "+cmd|' /C calc'!A0"
SUM = "@SUM(1)"
PHONES = ("13912345678", "139 1234 5678", "139-1234-5678")
# (target: "fact" appends to the fact field, "remark" is the whole remark; text, {rid} = an ID number)
ATTACKS: tuple[tuple[str, str], ...] = (
    ("fact", "（当事人身份证号：{rid_spaced}）"),
    ("fact", "（身份证号码{rid_wide}）"),
    ("fact", "经办人身份证{rid}。"),
    ("fact", f"联系电话{PHONES[0]}。"),
    ("remark", f"联系电话：{PHONES[1]}"),
    ("remark", f"手机{PHONES[2]}"),
    ("fact", SCRIPT),
    ("remark", IMG),
    ("remark", HYPERLINK),
    ("remark", CMD),
    ("remark", SUM),
)
RID_FIELDS = ("CF_XDR_ZJHM", "CF_FR_ZJHM", "SX_XDR_ZJHM", "XF_XDR_ZJHM")


def _wide(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() or c == "X" else c for c in text)


def _spaced(rid: str) -> str:
    return " ".join((rid[:6], rid[6:14], rid[14:]))


def attack_text(index: int, rid: str) -> tuple[str, str]:
    target, text = ATTACKS[index % len(ATTACKS)]
    return target, text.format(rid=rid, rid_spaced=_spaced(rid), rid_wide=_wide(rid))


def plant(feed: Feed, index: int, fact: str, remark: str, rng: random.Random) -> Row | None:
    """Plant attack ``index`` (or the next one a workbook can carry) in one clean row; the row."""
    while feed.fmt == "xlsx" and ATTACKS[index % len(ATTACKS)][1].startswith("="):
        index += 1
    rids = [str(r.values[c]) for r in feed.rows for c in RID_FIELDS if r.values.get(c)]
    rid = rng.choice(rids) if rids else "371083198503041237"
    target, text = attack_text(index, rid)
    rows = [
        r for r in feed.rows
        if r.defect is None and r.extra is None and (target == "fact" or not r.values.get(remark))
        and fact in feed.columns and remark in feed.columns
    ]
    if not rows:
        return None
    row = rng.choice(rows)
    if target == "fact":
        row.values[fact] = f"{row.values.get(fact) or ''}{text}"
    else:
        row.values[remark] = text
    return row
