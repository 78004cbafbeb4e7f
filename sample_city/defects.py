"""The Injector: plants a feed's planned defects, exactly one per defective row.

In: a built ``Feed`` (rows with valid values) and its plan from ``feeds.parse_plan``.
Out: the same feed, its rows' values changed in place and each defective row's ``Defect``
(the expected quarantine reason, or the value expected after normalization). Also the
tables of bad values and ``QUARANTINE_KINDS``.
"""

from __future__ import annotations

import random
import unicodedata
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from foundation.catalog import Dataset, FieldType
from sample_city.entities import _zh_date
from sample_city.rows import UNDECODABLE, Defect, Feed, Row
from transforms.identifiers import (
    USCC_ALPHABET,
    normalize_code,
    resident_id_reasons,
    uscc_reasons,
)

FORMULA_TEXT = "=cmd|' /C calc'!A0"  # CSV-injection probe: must stay plain text


def _key(ds: Dataset, values: dict[str, object]) -> tuple:
    """Key of a row as the loader compares it: NFKC + trim, codes compacted and upper-cased."""
    parts = []
    for code in ds.key_fields:
        value = values.get(code)
        text = "" if value is None else unicodedata.normalize("NFKC", str(value)).strip()
        if ds.field(code).type in (FieldType.USCC, FieldType.ORG_CODE, FieldType.RESIDENT_ID):
            text = normalize_code(text) or ""
        parts.append(text)
    return tuple(parts)


def _date_fields_in_rules(ds: Dataset) -> set[str]:
    return {c for rule in ds.date_order for c in (rule.start, rule.end)}


def _filled(row: Row, code: str) -> bool:
    value = row.values.get(code)
    return value is not None and str(value).strip() != ""


BAD_ENUMS = {
    "LB": ["法人", "企业", "单位", "个人"],  # 行政相对人类别
    "CF_CFLB": ["罚没款", "责令改正", "警告;罚金"],
    "ZTLX": ["有限责任公司", "个人独资企业", "公司"],
    "DJZT": ["开业", "正常"],
    "XK_XKLB": ["一般", "行政许可", "普通许可"],
    "XK_ZT": ["正常", "0", "已注销"],
    "SZ": ["营业税", "增值税附加"],
    "XZ": ["大病保险", "养老"],
    "JFZT": ["已缴", "未缴"],
    "JCZT": ["正常", "停缴"],
    "NYLX": ["电力", "天然气", "自来水"],
    "NSZT": ["已缴清", "注销"],
    "QZ_LB": ["查封", "罚款"],
    "QR_LB": ["身份认定", "确认"],
    "CJ_LB": ["民事纠纷", "仲裁"],
    "JC_LB": ["通过", "优秀", "整改"],
    "JL_LB": ["表彰", "嘉奖"],
}
BAD_DATES = ["2022-13-45", "2022年2月30日", "2022-02-29", "20221341", "2022/4/31", "2022.00.12"]
BAD_AMOUNTS = {
    "万元": ["壹万元", "伍仟元", "叁万伍仟元整", "贰佰元"],
    "元": ["伍佰元", "壹仟贰佰元整", "捌拾元"],
}


class Injector:
    """Applies a file's defect plan; each mutation leaves exactly one reason on its row."""

    def __init__(self, feed: Feed, rng: random.Random) -> None:
        self.feed, self.ds, self.rng = feed, feed.dataset, rng
        self.keys = Counter(_key(self.ds, r.values) for r in feed.rows)

    # helpers
    def _uscc_field(self, field_code: str | None) -> str:
        code = field_code or self.ds.subject.uscc_field
        assert code is not None, f"{self.ds.id}: a code defect needs a field (the dataset has no USCC field)"
        return code

    def _valid_code_at(self, row: Row, code: str) -> str | None:
        """The canonical, valid USCC in ``code``: the registered subject's, or an agency's."""
        value = row.values.get(code)
        if isinstance(value, str) and len(value) == 18 and not uscc_reasons(value) and row.entity:
            return value
        if (
            isinstance(value, str)
            and code != self.ds.subject.uscc_field
            and not uscc_reasons(value)
        ):
            return value  # agency codes
        return None

    def _q(self, defect: str, code: str) -> Defect:
        return Defect(defect, code, f"{defect}:{code}" if code else defect, "quarantine")

    def _n(self, defect: str, code: str, expected: str) -> Defect:
        return Defect(defect, code, "", "normalized", expected)

    # mutators: return (changes, defect) or None when the row does not fit
    def uscc_check_digit(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        code = self._valid_code_at(row, f)
        if not code:
            return None
        for ch in self.rng.sample(USCC_ALPHABET, len(USCC_ALPHABET)):
            bad = code[:17] + ch
            if ch != code[17] and uscc_reasons(bad) == ["uscc_check_digit"]:
                return {f: bad}, self._q("uscc_check_digit", f)
        return None

    def uscc_excel_damage(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        code = self._valid_code_at(row, f)
        if not code or not code.isdigit():
            return None
        bad = code[:15] + "000"
        if uscc_reasons(bad) != ["uscc_excel_damage"]:
            return None
        return {f: bad}, self._q("uscc_excel_damage", f)

    def uscc_excel_numeric(self, row: Row, f: str | None):
        """An all-digit code typed into Excel: a float rounded to 15 significant digits."""
        f = self._uscc_field(f)
        code = self._valid_code_at(row, f)
        if not code or not code.isdigit():
            return None
        number = float(int(code))
        if uscc_reasons(excel_digits(number)) != ["uscc_excel_damage"]:
            return None
        row.numeric.add(f)
        return {f: number}, self._q("uscc_excel_damage", f)

    def wrong_kind_registration_number(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        if not self._valid_code_at(row, f) or row.entity is None:
            return None
        return {f: row.entity.registration_number}, self._q("wrong_kind_registration_number", f)

    def wrong_kind_org_code(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        code = self._valid_code_at(row, f)
        if not code:
            return None
        org = code[8:16] + "-" + code[16] if self.rng.random() < 0.6 else code[8:17]
        return {f: org}, self._q("wrong_kind_org_code", f)

    def uscc_placeholder(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        if not self._valid_code_at(row, f):
            return None
        return {f: "0" * 18}, self._q("uscc_placeholder", f)

    def rid_check_digit(self, row: Row, f: str | None):
        fields = [f] if f else [s.code for s in self.ds.fields if s.type is FieldType.RESIDENT_ID]
        for code in fields:
            rid = row.values.get(code)
            if isinstance(rid, str) and len(rid) == 18 and not resident_id_reasons(rid):
                for ch in self.rng.sample("0123456789X", 11):
                    bad = rid[:17] + ch
                    if resident_id_reasons(bad) == ["rid_check_digit"]:
                        return {code: bad}, self._q("rid_check_digit", code)
        return None

    def required_missing(self, row: Row, f: str | None):
        candidates = (
            [f]
            if f
            else [
                s.code
                for s in self.ds.fields
                if s.required and s.type is FieldType.TEXT and s.code not in self.ds.key_fields
            ]
        )
        candidates = [c for c in candidates if _filled(row, c)]
        if not candidates:
            return None
        code = self.rng.choice(candidates)
        empty = (
            self.rng.choice(("", "  ", None))
            if self.feed.fmt != "csv"
            else self.rng.choice(("", "", " "))
        )
        return {code: empty}, self._q("required_missing", code)

    def invalid_date(self, row: Row, f: str | None):
        dates = [
            s.code for s in self.ds.fields if s.type is FieldType.DATE and _filled(row, s.code)
        ]
        free = [c for c in dates if c not in _date_fields_in_rules(self.ds)]
        candidates = [f] if f else (free or dates)
        if not candidates:
            return None
        code = self.rng.choice(candidates)
        return {code: self.rng.choice(BAD_DATES)}, self._q("invalid_date", code)

    def value_not_allowed(self, row: Row, f: str | None):
        enums = (
            [f]
            if f
            else [
                s.code for s in self.ds.fields if s.type is FieldType.ENUM and _filled(row, s.code)
            ]
        )
        if not enums:
            return None
        code = self.rng.choice(enums)
        spec = self.ds.field(code)
        bad_list = BAD_ENUMS.get(code) or BAD_ENUMS.get(code.split("_")[-1]) or ["其它类"]
        bad = self.rng.choice(bad_list)
        assert bad not in (spec.allowed_values or []), (code, bad)
        return {code: bad}, self._q("value_not_allowed", code)

    def invalid_amount(self, row: Row, f: str | None):
        amounts = (
            [f]
            if f
            else [
                s.code
                for s in self.ds.fields
                if s.type is FieldType.AMOUNT and _filled(row, s.code)
            ]
        )
        if not amounts:
            return None
        code = self.rng.choice(amounts)
        bad = self.rng.choice(
            BAD_AMOUNTS.get(self.ds.field(code).unit or "万元", BAD_AMOUNTS["万元"])
        )
        return {code: bad}, self._q("invalid_amount", code)

    def date_order(self, row: Row, f: str | None):
        rules = list(self.ds.date_order)
        if not rules:
            return None
        target = self.rng.choice(rules)
        try:
            start = date.fromisoformat(str(row.values[target.start]))
            end = date.fromisoformat(str(row.values[target.end]))
        except (KeyError, ValueError):
            return None
        shift = timedelta(days=self.rng.randint(1, 90))
        options = [
            {target.start: end.isoformat(), target.end: start.isoformat()},  # swapped
            {target.end: (start - shift).isoformat()},
            {target.start: (end + shift).isoformat()},
        ]
        self.rng.shuffle(options)
        for changes in options:
            values = {**row.values, **changes}
            broken = [
                r
                for r in rules
                if date.fromisoformat(str(values[r.start])) > date.fromisoformat(str(values[r.end]))
            ]
            if broken == [target]:
                return changes, self._q("date_order", target.end)
        return None

    def uscc_fullwidth(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        code = self._valid_code_at(row, f)
        if not code:
            return None
        wide = "".join(chr(ord(c) + 0xFEE0) for c in code)
        return {f: wide}, self._n("uscc_fullwidth", f, code)

    def uscc_lowercase(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        code = self._valid_code_at(row, f)
        if not code or code.isdigit():
            return None
        return {f: code.lower()}, self._n("uscc_lowercase", f, code)

    def uscc_spaced(self, row: Row, f: str | None):
        f = self._uscc_field(f)
        code = self._valid_code_at(row, f)
        if not code:
            return None
        style = self.rng.randrange(3)
        if style == 0:
            text = " ".join((code[:4], code[4:8], code[8:12], code[12:16], code[16:]))
        elif style == 1:
            text = f"{code[:8]}-{code[8:17]}-{code[17]}"
        else:
            text = f" {code[:2]}\u3000{code[2:8]} {code[8:]} "
        return {f: text}, self._n("uscc_spaced", f, code)

    def date_alt_format(self, row: Row, f: str | None):
        dates = (
            [f]
            if f
            else [
                s.code for s in self.ds.fields if s.type is FieldType.DATE and _filled(row, s.code)
            ]
        )
        if not dates:
            return None
        code = self.rng.choice(dates)
        day = date.fromisoformat(str(row.values[code]))
        text = self.rng.choice(
            (
                f"{day.year}/{day.month}/{day.day}",
                f"{day.year}.{day.month}.{day.day}",
                _zh_date(day),
                day.strftime("%Y%m%d"),
                f"{day.isoformat()} {self.rng.randint(8, 17):02d}:{self.rng.randint(0, 59):02d}:00",
            )
        )
        return {code: text}, self._n("date_alt_format", code, day.isoformat())

    def amount_thousands(self, row: Row, f: str | None):
        amounts = (
            [f]
            if f
            else [
                s.code
                for s in self.ds.fields
                if s.type is FieldType.AMOUNT
                and _filled(row, s.code)
                and isinstance(row.values[s.code], str)
                and Decimal(str(row.values[s.code])) >= 1000
            ]
        )
        if not amounts:
            return None
        code = self.rng.choice(amounts)
        plain = str(row.values[code])
        whole, _, frac = plain.partition(".")
        text = f"{int(whole):,}" + (f".{frac}" if frac else "")
        return {code: text}, self._n("amount_thousands", code, plain)

    def amount_unit(self, row: Row, f: str | None):
        amounts = (
            [f]
            if f
            else [
                s.code
                for s in self.ds.fields
                if s.type is FieldType.AMOUNT
                and s.unit
                and isinstance(row.values.get(s.code), str)
                and _filled(row, s.code)
            ]
        )
        if not amounts:
            return None
        code = self.rng.choice(amounts)
        plain = str(row.values[code])
        unit = self.ds.field(code).unit
        assert unit is not None  # `amounts` holds fields with a unit only
        return {code: plain + unit}, self._n("amount_unit", code, plain)

    def formula_text(self, row: Row, f: str | None):
        if "BZ" not in self.feed.columns or self.feed.fmt == "xlsx":
            return None
        return {"BZ": FORMULA_TEXT}, self._n("formula_text", "BZ", FORMULA_TEXT)

    def gb18030_line(self, row: Row, f: str | None):
        name_field = self.ds.subject.name_field
        if self.feed.fmt != "csv" or not _filled(row, name_field):
            return None
        row.gb18030 = True
        return {}, self._n("gb18030_line", name_field, str(row.values[name_field]))

    def ragged_row(self, row: Row, f: str | None):
        if self.feed.fmt != "csv":
            return None
        row.extra = self.rng.choice(("备用", "1", "以下空白"))
        return {}, self._q("ragged_row", "")

    def undecodable_bytes(self, row: Row, f: str | None):
        texts = [
            s.code
            for s in self.ds.fields
            if s.type is FieldType.TEXT
            and s.code not in self.ds.key_fields
            and _filled(row, s.code)
            and s.code in self.feed.columns
        ]
        if self.feed.fmt != "csv" or not texts:
            return None
        code = self.rng.choice(texts)
        value = str(row.values[code])
        cut = self.rng.randint(1, len(value))
        row.broken = True
        return {code: value[:cut] + UNDECODABLE + value[cut:]}, self._q("undecodable_bytes", "")

    # driver
    def apply(self, plan: list[tuple[str, int | None, str | None]]) -> None:
        for kind, count, field_code in plan:
            if kind == "duplicate_row":
                assert count is not None, "duplicate_row needs a count, not '*'"
                self._duplicates(count)
                continue
            mutate = getattr(self, kind)
            register = self.ds.category == "register"
            candidates = [
                r
                for r in self.feed.rows
                if r.defect is None
                and not r.numeric
                # register rows: quarantined defects only on spare entities nobody else uses
                and (not register or r.spare == (kind in QUARANTINE_KINDS))
            ]
            self.rng.shuffle(candidates)
            applied = 0
            for row in candidates:
                if count is not None and applied >= count:
                    break
                result = mutate(row, field_code)
                if result is None:
                    continue
                changes, defect = result
                old_key = _key(self.ds, row.values)
                new_key = _key(self.ds, {**row.values, **changes})
                if new_key != old_key and self.keys[new_key]:
                    row.gb18030 = row.broken = False
                    row.extra = None
                    row.numeric.clear()
                    continue  # would collide with another row's key: pick another row
                self.keys[old_key] -= 1
                self.keys[new_key] += 1
                row.values.update(changes)
                row.defect = defect
                applied += 1

    def _duplicates(self, count: int) -> None:
        rows = self.feed.rows
        for _ in range(count):
            clean = [i for i, r in enumerate(rows[:-1]) if r.defect is None and not r.spare]
            if not clean:
                return
            src = self.rng.choice(clean)
            copy = Row(values=dict(rows[src].values), entity=rows[src].entity)
            copy.defect = self._q("duplicate_row", "")
            rows.insert(self.rng.randint(src + 1, len(rows)), copy)


# The code defects of a subject's USCC: what 重错码率 counts as 错码.
CODE_KINDS = frozenset({
    "uscc_check_digit",
    "uscc_excel_damage",
    "uscc_excel_numeric",
    "wrong_kind_registration_number",
    "wrong_kind_org_code",
    "uscc_placeholder",
})
QUARANTINE_KINDS = CODE_KINDS | {
    "rid_check_digit",
    "required_missing",
    "invalid_date",
    "value_not_allowed",
    "invalid_amount",
    "date_order",
    "ragged_row",
    "undecodable_bytes",
}


def excel_digits(number: float) -> str:
    """What a reader makes of an 18-digit code Excel stored as a number: 15 significant digits."""
    return str(int(Decimal(format(number, ".15g"))))
