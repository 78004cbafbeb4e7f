"""A deterministic sample city (乳山市, division 371083) with known defects, for demos and tests.

``generate(data_root, seed, entities)`` writes

* department feeds to ``<data_root>/inbox/<department>/<file>``: a register of legal entities
  (法人基础信息), licences and penalties (双公示), the five other kinds of administrative
  management information, tax, social insurance, housing fund and utility payments, in CSV
  (UTF-8 with/without BOM, GB18030, one UTF-8 file with a few GB18030 lines), XLSX and JSON
  lines;
* the ground truth to ``<data_root>/truth/``: ``files.csv`` (per file: rows in / loaded /
  quarantined, status) and ``defects.csv`` (per injected defect: file, 1-based data row, field,
  defect, the expected quarantine reason of transforms/reasons.py, or the value expected in
  the clean layer after normalization) and ``timeliness.csv`` (per file: when it was submitted
  and, for datasets with a deadline, how many records were on time, late, undated or outside
  the holiday calendar, counted in Chinese working days with chinesecalendar).

Each feed has a fixed submission time (Asia/Shanghai), written as the file's mtime, which is
what the loader records as received. Decision dates of the datasets with a deadline are set
relative to it: most records on time, a share late, and one deliberately late feed decided
just over 7 working days before it was submitted, across the 2022 National Day holiday and
its adjusted working Saturday.

Every row not listed in ``defects.csv`` is valid: required fields filled, enums allowed, dates
valid and in order, amounts in range, codes valid and registered under the exact same name.
A defective row carries exactly one defect, so it expects exactly one reason.

Same seed -> byte-identical files: no wall-clock time anywhere (dates are fixed around 2022,
XLSX zip entries and document properties carry a fixed timestamp), every random choice comes
from ``random.Random`` seeded with ``f"{seed}/{purpose}"``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import chinese_calendar

from foundation.catalog import Catalog, Dataset, FieldType, get_catalog
from sample_city import names
from transforms.identifiers import (
    USCC_ALPHABET,
    gb11714_check_char,
    normalize_code,
    resident_id_reasons,
    rid_check_char,
    uscc_check_char,
    uscc_reasons,
)

FIXED_TIME = datetime(2023, 1, 5, 9, 0, 0)  # XLSX document properties and zip entry times
YEAR_START, YEAR_END = date(2022, 1, 1), date(2022, 12, 31)
RUSHAN = "371083"
OTHER_WEIHAI = ("371002", "371003", "371082")  # 环翠区, 文登区, 荣成市
REGISTRARS = {
    "371083": "乳山市市场监督管理局",
    "371002": "威海市环翠区市场监督管理局",
    "371003": "威海市文登区市场监督管理局",
    "371082": "荣成市市场监督管理局",
}
# Birth-place codes of resident IDs (GB/T 2260 as kept in stdnum/cn/loc.dat): the county's
# code in use in the birth year, first year of each code. Rushan was 乳山县 under 烟台地区,
# 烟台市 (1983), 威海市 (1987), then 乳山市 (1993).
RID_COUNTIES = {
    "乳山": ((0, "372130"), (1983, "370630"), (1987, "371021"), (1993, "371083")),
    "文登": (
        (0, "372132"),
        (1983, "370632"),
        (1987, "371022"),
        (1988, "379011"),
        (1989, "371081"),
        (2014, "371003"),
    ),
    "荣成": ((0, "372133"), (1983, "370633"), (1987, "371023"), (1988, "379012"), (1989, "371082")),
}
RID_HOME = ("乳山",) * 16 + ("文登", "文登", "荣成", "荣成")


def birth_place_code(county: str, year: int) -> str:
    return [code for first, code in RID_COUNTIES[county] if first <= year][-1]


FORMULA_TEXT = "=cmd|' /C calc'!A0"  # CSV-injection probe: must stay plain text
UNDECODABLE = "\ue000"  # placeholder replaced by b"\xff\xfe" when the line is encoded
NATURAL, LEGAL, INDIVIDUAL = "自然人", "法人及非法人组织", "个体工商户"


# --- people and entities ------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    name: str
    rid: str  # 公民身份号码


@dataclass(frozen=True)
class Entity:
    uscc: str
    name: str
    kind: str  # 主体类型 (ZTLX)
    rep: Person  # 法定代表人 / 经营者 / 负责人
    founded: date
    capital: str | None  # 注册资本（万元）
    registrar: str
    status: str
    address: str

    @property
    def subject_type(self) -> str:  # 行政相对人类别
        return INDIVIDUAL if self.kind == "个体工商户" else LEGAL

    @property
    def all_digits(self) -> bool:
        return self.uscc.isdigit()

    @property
    def active(self) -> bool:
        return self.status in ("存续", "在业")

    @property
    def registration_number(self) -> str:
        """A plausible old 15-digit 工商注册号 (division + 8 digits + ISO 7064 MOD 11,10)."""
        digits = self.uscc[2:8] + str(int(hashlib.sha256(self.uscc.encode()).hexdigest(), 16))[:8]
        product = 10
        for ch in digits:
            total = (product + int(ch)) % 10 or 10
            product = (2 * total) % 11
        return digits + str((11 - product) % 10)


def make_uscc(prefix: str, division: str, body: str) -> str:
    """USCC from authority+category, division and the 8-char organization code body."""
    first17 = prefix + division + body + gb11714_check_char(body)
    return first17 + uscc_check_char(first17)


def agency_uscc(department: str) -> str:
    """Stable code of a government department: authority 1 (机构编制), category 1 (机关)."""
    digest = int(hashlib.sha256(f"agency/{department}".encode()).hexdigest(), 16)
    return make_uscc("11", RUSHAN, f"0{digest % 10**7:07d}")


def _rand_date(rng: random.Random, start: date, end: date, workday: bool = False) -> date:
    while True:
        day = start + timedelta(days=rng.randint(0, (end - start).days))
        if not workday or day.weekday() < 5:
            return day


def _add_years(day: date, years: int) -> date:
    """The last day of a validity of ``years`` (5 years from 2022-03-01 end on 2027-02-28)."""
    try:
        later = day.replace(year=day.year + years)
    except ValueError:  # 29 February
        later = day.replace(year=day.year + years, day=28)
    return later - timedelta(days=1)


def _month_end(year: int, month: int) -> date:
    return (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)


def fmt_amount(value: Decimal | float | int) -> str:
    """Plain decimal without exponent or trailing zeros: 1234.50 -> '1234.5'."""
    return format(Decimal(str(value)).normalize(), "f")


def _zh_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


class City:
    """People, entities and agencies of the sample city, all drawn from one seeded generator."""

    def __init__(self, catalog: Catalog, seed: int, entities: int) -> None:
        self.catalog = catalog
        self.seed = seed
        self.rng = random.Random(f"{seed}/city")
        self._rids: set[str] = set()
        self._names: set[str] = set()
        self._codes: set[str] = set()
        self.agencies = {code: agency_uscc(code) for code in catalog.departments}
        self.market_register: list[Entity] = []
        self.civil_register: list[Entity] = []
        self._build(entities)
        everyone = self.market_register + self.civil_register
        self.active = [e for e in everyone if e.active]
        self.firms = [e for e in self.active if e.kind in ("企业", "个体工商户", "农民专业合作社")]
        self.companies = [e for e in self.firms if e.kind == "企业"]
        self.orgs = [e for e in self.active if e.kind in ("事业单位", "社会组织")]
        self.by_code = {e.uscc: e for e in everyone}

    # people
    def person(self, rng: random.Random, born: tuple[int, int] = (1955, 2002)) -> Person:
        surname = rng.choice(names.SURNAMES)
        given = "".join(rng.choice(names.GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2, 2))))
        while True:
            birth = _rand_date(rng, date(born[0], 1, 1), date(born[1], 12, 31))
            place = birth_place_code(rng.choice(RID_HOME), birth.year)
            first17 = f"{place}{birth:%Y%m%d}{rng.randint(1, 999):03d}"
            rid = first17 + rid_check_char(first17)
            if rid not in self._rids:
                break
        assert not resident_id_reasons(rid), rid
        self._rids.add(rid)
        return Person(surname + given, rid)

    # entities
    def _unique_name(self, make) -> str:
        for _ in range(10_000):
            name = make()
            if name not in self._names:
                self._names.add(name)
                return name
        raise RuntimeError("ran out of names")

    def _code(self, prefix: str, division: str, body_kind: str, digits_only: bool = False) -> str:
        rng = self.rng
        letters = USCC_ALPHABET
        while True:
            if digits_only or body_kind == "digits":
                body = rng.choice("1267") + "".join(rng.choice("0123456789") for _ in range(7))
            elif body_kind == "MA":
                body = "MA" + "".join(rng.choice(letters) for _ in range(6))
            elif body_kind == "MJ":
                body = "MJ" + "".join(rng.choice(letters) for _ in range(6))
            else:  # 事业单位 "4xxxxxxx", 社会团体 "5xxxxxxx"
                body = body_kind + "".join(rng.choice("0123456789") for _ in range(7))
            code = make_uscc(prefix, division, body)
            if digits_only and not code.isdigit():
                continue
            if code not in self._codes and not uscc_reasons(code):
                self._codes.add(code)
                return code

    def _town(self) -> str:
        return self.rng.choice(names.TOWNS)

    def _address(self, division: str, town: str | None = None) -> str:
        rng = self.rng
        street = rng.choice(names.STREETS)
        if division == RUSHAN:
            return f"山东省威海市乳山市{town or self._town()}{street}{rng.randint(1, 299)}号"
        county = {"371002": "环翠区", "371003": "文登区", "371082": "荣成市"}[division]
        return f"山东省威海市{county}{street}{rng.randint(1, 299)}号"

    def _trade(self) -> str:
        chars = names.TRADE_CHARS
        i = self.rng.randrange(0, len(chars) - 1)
        return (
            chars[i : i + 2]
            if self.rng.random() < 0.5
            else self.rng.choice(chars) + self.rng.choice(chars)
        )

    def company(self, digits_only: bool = False, division: str | None = None) -> Entity:
        rng = self.rng
        division = division or (RUSHAN if rng.random() < 0.85 else rng.choice(OTHER_WEIHAI))
        body_kind = "digits" if rng.random() < 0.45 else "MA"
        code = self._code("91", division, body_kind, digits_only)
        industry = rng.choice(names.INDUSTRIES)
        suffix = rng.choice(names.COMPANY_SUFFIXES)

        def make() -> str:
            if division != RUSHAN:
                return f"{rng.choice(('威海', '威海市'))}{self._trade()}{industry}{suffix}"
            if rng.random() < 0.04:
                return f"山东{self._trade()}{industry}有限公司乳山分公司"
            return f"{rng.choice(('乳山市', '乳山'))}{self._trade()}{industry}{suffix}"

        capital = rng.choice(
            (10, 30, 50, 100, 100, 200, 300, 500, 500, 1000, 2000, 3000, 5000, 12000)
        )
        return Entity(
            uscc=code,
            name=self._unique_name(make),
            kind="企业",
            rep=self.person(rng, (1955, 1998)),
            founded=_rand_date(rng, date(1995, 1, 1), date(2022, 6, 30)),
            capital=fmt_amount(capital),
            registrar=REGISTRARS[division],
            status=self._status(),
            address=self._address(division),
        )

    def _status(self) -> str:
        roll = self.rng.random()
        if roll < 0.80:
            return "存续"
        if roll < 0.92:
            return "在业"
        return ("吊销", "注销", "注销", "迁出")[int((roll - 0.92) / 0.02)]

    def individual(self) -> Entity:
        rng = self.rng
        code = self._code("92", RUSHAN, "MA" if rng.random() < 0.7 else "digits")
        owner = self.person(rng, (1960, 2000))
        town = self._town()

        def make() -> str:
            mark = owner.name[0] + "记" if rng.random() < 0.4 else self._trade()
            return f"乳山市{town.replace('街道', '')}{mark}{rng.choice(names.SHOP_TYPES)}"

        return Entity(
            uscc=code,
            name=self._unique_name(make),
            kind="个体工商户",
            rep=owner,
            founded=_rand_date(rng, date(2005, 1, 1), date(2022, 6, 30)),
            capital=fmt_amount(rng.choice((1, 2, 3, 5, 10, 20))) if rng.random() < 0.6 else None,
            registrar=REGISTRARS[RUSHAN],
            status=self._status(),
            address=self._address(RUSHAN, town),
        )

    def cooperative(self) -> Entity:
        rng = self.rng
        code = self._code("93", RUSHAN, "MA")
        town = self._town()

        def make() -> str:
            product = rng.choice(names.COOP_PRODUCTS)
            return f"乳山市{town.replace('街道', '')}{self._trade()}{product}专业合作社"

        return Entity(
            uscc=code,
            name=self._unique_name(make),
            kind="农民专业合作社",
            rep=self.person(rng, (1950, 1990)),
            founded=_rand_date(rng, date(2008, 1, 1), date(2021, 12, 31)),
            capital=fmt_amount(rng.choice((10, 50, 100, 200, 500))),
            registrar=REGISTRARS[RUSHAN],
            status=self._status(),
            address=f"山东省威海市乳山市{town}"
            f"{rng.choice(names.VILLAGE_STEMS)}{rng.choice(names.VILLAGE_SURNAMES)}家村",
        )

    def institution(self) -> Entity:
        rng = self.rng
        code = self._code("12", RUSHAN, "4")
        town = self._town()

        def make() -> str:
            roll = rng.random()
            if roll < 0.6:
                return "乳山市" + rng.choice(names.PUBLIC_INSTITUTIONS)
            if roll < 0.85:
                return f"乳山市{town}" + rng.choice(
                    ("卫生院", "中心学校", "便民服务中心", "综合文化站")
                )
            village = rng.choice(names.VILLAGE_STEMS) + rng.choice(names.VILLAGE_SURNAMES)
            return f"乳山市{town}{village}家村" + rng.choice(("卫生室", "小学", "幼儿园"))

        return Entity(
            uscc=code,
            name=self._unique_name(make),
            kind="事业单位",
            rep=self.person(rng, (1960, 1985)),
            founded=_rand_date(rng, date(1980, 1, 1), date(2015, 12, 31)),
            capital=fmt_amount(rng.choice((10, 50, 100, 300, 1000, 3000))),
            registrar="乳山市事业单位登记管理局",
            status="存续",
            address=self._address(RUSHAN, town),
        )

    def social_org(self, category: str) -> Entity:
        rng = self.rng
        code = self._code(
            "5" + category, RUSHAN, "5" if category == "1" and rng.random() < 0.5 else "MJ"
        )

        def make() -> str:
            if category == "1":
                if rng.random() < 0.6:
                    return "乳山市" + rng.choice(names.SOCIAL_GROUPS)
                return f"乳山市{self._town().replace('街道', '')}" + rng.choice(names.SOCIAL_GROUPS)
            if category == "3":
                return "乳山市" + rng.choice(names.FOUNDATIONS)
            if rng.random() < 0.5:
                return "乳山市" + rng.choice(names.PRIVATE_NONPROFITS)
            return (
                "乳山市" + self._trade() + rng.choice(("幼儿园", "培训学校", "养老院", "康复中心"))
            )

        return Entity(
            uscc=code,
            name=self._unique_name(make),
            kind="社会组织",
            rep=self.person(rng, (1955, 1990)),
            founded=_rand_date(rng, date(2000, 1, 1), date(2021, 12, 31)),
            capital=fmt_amount(rng.choice((3, 10, 20, 50, 200))),
            registrar="乳山市民政局",
            status="存续",
            address=self._address(RUSHAN),
        )

    def spare_company(self) -> Entity:
        """A register-only company (no other feed names it) with an all-digit code."""
        return replace(self.company(digits_only=True, division=RUSHAN), status="存续")

    def spare_social_org(self) -> Entity:
        return self.social_org("1")

    def _build(self, total: int) -> None:
        n_inst = max(2, round(total * 0.01))
        n_soc = max(3, round(total * 0.015))
        n_coop = max(3, round(total * 0.08))
        n_ind = max(5, round(total * 0.35))
        n_comp = max(10, total - n_inst - n_soc - n_coop - n_ind)
        market = [self.company() for _ in range(n_comp)]
        market += [self.individual() for _ in range(n_ind)]
        market += [self.cooperative() for _ in range(n_coop)]
        market += [self.institution() for _ in range(n_inst)]
        n_found = min(3, n_soc // 8)
        cats = ["3"] * n_found + ["2"] * round(n_soc * 0.35)
        cats += ["1"] * (n_soc - len(cats))
        civil = [self.social_org(c) for c in cats]
        self.market_register = sorted(market, key=lambda e: (e.founded, e.uscc))
        self.civil_register = sorted(civil, key=lambda e: (e.founded, e.uscc))


# --- rows, files and defects --------------------------------------------------------------


@dataclass
class Defect:
    defect: str
    field: str
    reason: str  # expected quarantine reason ('' when the row loads)
    outcome: str  # quarantine | normalized
    expected_value: str = ""


@dataclass
class Row:
    values: dict[str, object]
    entity: Entity | None = None
    spare: bool = False  # register row of an entity no other feed mentions
    defect: Defect | None = None
    extra: str | None = None  # ragged: one more column than the header
    broken: bool = False  # carries bytes that are neither UTF-8 nor GB18030
    gb18030: bool = False  # a GB18030 line inside a UTF-8 file
    numeric: set[str] = field(default_factory=set)  # XLSX cells written as numbers


@dataclass
class Feed:
    department: str
    file_name: str
    dataset: Dataset
    fmt: str  # csv | xlsx | jsonl
    encoding: str  # utf-8-sig | utf-8 | gb18030 | utf-8+gb18030 ('' for xlsx)
    columns: list[str]
    rows: list[Row]
    headers: dict[str, str] = field(default_factory=dict)  # field code -> header written
    rejected: bool = False  # header matches nothing: every row unrecognized_header
    newline: str = "\n"
    submitted_at: datetime | None = None  # Asia/Shanghai; the file's mtime

    @property
    def path(self) -> str:
        return f"{self.department}/{self.file_name}"


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
        return field_code or self.ds.subject.uscc_field

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
        return {code: plain + self.ds.field(code).unit}, self._n("amount_unit", code, plain)

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


QUARANTINE_KINDS = {
    "uscc_check_digit",
    "uscc_excel_damage",
    "uscc_excel_numeric",
    "wrong_kind_registration_number",
    "wrong_kind_org_code",
    "uscc_placeholder",
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


# --- dataset builders ---------------------------------------------------------------------


def _subject_values(prefix: str, subject: Entity | Person, with_rep: bool) -> dict[str, object]:
    """行政相对人 fields of the double-publicity pattern (prefix CF / XK / QZ / ...)."""
    if isinstance(subject, Person):
        return {
            f"{prefix}_XDR_MC": subject.name,
            f"{prefix}_XDR_LB": NATURAL,
            f"{prefix}_XDR_ZJLX": "身份证",
            f"{prefix}_XDR_ZJHM": subject.rid,
        }
    values: dict[str, object] = {
        f"{prefix}_XDR_MC": subject.name,
        f"{prefix}_XDR_LB": subject.subject_type,
        f"{prefix}_XDR_SHXYM": subject.uscc,
    }
    if with_rep:
        values[f"{prefix}_FRDB"] = subject.rep.name
        values[f"{prefix}_FR_ZJLX"] = "身份证"
        values[f"{prefix}_FR_ZJHM"] = subject.rep.rid
    return values


def _numbered(
    rows: list[tuple[date, dict]], rng: random.Random, prefix: str, wsh_field: str
) -> list[dict]:
    """Sort by decision date and give decision numbers like 乳市监罚〔2022〕123号."""
    rows.sort(key=lambda item: item[0])
    number = rng.randint(1, 40)
    out = []
    for _, values in rows:
        number += rng.choice((1, 1, 1, 2, 3))  # gaps: numbers used by decisions of other kinds
        values[wsh_field] = f"{prefix}〔2022〕{number}号"
        out.append(values)
    return out


def _pick_subject(city: City, rng: random.Random, person_share: float, pool: list[Entity]):
    return city.person(rng) if rng.random() < person_share else rng.choice(pool)


PENALTIES = {
    # department: (decision-number prefix, share of natural persons, templates
    #   (违法行为类型, 违法事实, 处罚依据, 处罚类别, fine range in 万元))
    "market_regulation": (
        "乳市监罚",
        0.1,
        [
            (
                "经营超过保质期的食品",
                "在其经营场所销售超过保质期的食品",
                "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项",
                ["罚款", "没收违法所得"],
                (0.5, 5),
            ),
            (
                "销售不合格产品",
                "销售经抽样检验不合格的产品",
                "《中华人民共和国产品质量法》第四十九条",
                ["罚款", "没收违法所得"],
                (0.2, 3),
            ),
            (
                "使用未经定期检验的特种设备",
                "使用未经定期检验的电梯",
                "《中华人民共和国特种设备安全法》第八十四条第（一）项",
                ["罚款"],
                (3, 30),
            ),
            (
                "发布虚假广告",
                "通过微信公众号发布含有虚假内容的广告",
                "《中华人民共和国广告法》第五十五条第一款",
                ["罚款"],
                (1, 10),
            ),
            (
                "不按规定明码标价",
                "销售商品未按规定明码标价",
                "《中华人民共和国价格法》第四十二条",
                ["警告"],
                (0, 0),
            ),
            (
                "未取得食品经营许可从事食品经营活动",
                "未取得食品经营许可从事食品销售",
                "《中华人民共和国食品安全法》第一百二十二条第一款",
                ["没收违法所得", "罚款"],
                (0.5, 5),
            ),
        ],
    ),
    "ecology_environment": (
        "威环乳罚字",
        0.05,
        [
            (
                "超标排放大气污染物",
                "超过大气污染物排放标准排放大气污染物",
                "《中华人民共和国大气污染防治法》第九十九条第（二）项",
                ["罚款"],
                (10, 100),
            ),
            (
                "未批先建",
                "建设项目环境影响报告表未经批准擅自开工建设",
                "《中华人民共和国环境影响评价法》第三十一条第一款",
                ["罚款"],
                (5, 50),
            ),
            (
                "未按规定贮存危险废物",
                "未按照国家环境保护标准贮存危险废物",
                "《中华人民共和国固体废物污染环境防治法》第一百一十二条第一款第（六）项",
                ["罚款"],
                (10, 100),
            ),
            (
                "未按规定设置排污口",
                "未按照规定设置排污口",
                "《中华人民共和国水污染防治法》第八十四条第二款",
                ["罚款"],
                (2, 20),
            ),
        ],
    ),
    "urban_management": (
        "乳综执罚",
        0.4,
        [
            (
                "擅自设置户外广告",
                "未经批准擅自设置大型户外广告设施",
                "《城市市容和环境卫生管理条例》第三十六条第（四）项",
                ["罚款"],
                (0.05, 0.5),
            ),
            (
                "擅自占用城市道路",
                "未经批准擅自占用城市道路堆放物料",
                "《城市道路管理条例》第四十二条第（二）项",
                ["罚款"],
                (0.1, 2),
            ),
            (
                "违法建设",
                "未取得建设工程规划许可证进行建设",
                "《中华人民共和国城乡规划法》第六十四条",
                ["罚款"],
                (1, 20),
            ),
            (
                "随意倾倒建筑垃圾",
                "随意倾倒、抛撒建筑垃圾",
                "《城市建筑垃圾管理规定》第二十六条",
                ["罚款"],
                (0.5, 5),
            ),
        ],
    ),
    "transport": (
        "乳交罚",
        0.6,
        [
            (
                "未取得道路运输经营许可擅自从事道路运输经营",
                "未取得道路运输经营许可擅自从事道路客运经营",
                "《中华人民共和国道路运输条例》第六十三条",
                ["罚款", "没收违法所得"],
                (1, 10),
            ),
            (
                "车辆超限运输",
                "驾驶车货总重超过限定标准的车辆在公路上行驶",
                "《公路安全保护条例》第六十四条",
                ["罚款"],
                (0.1, 3),
            ),
            (
                "未按规定维护和检测运输车辆",
                "未按照规定对营运车辆进行综合性能检测",
                "《中华人民共和国道路运输条例》第七十条第一款",
                ["罚款"],
                (0.1, 0.3),
            ),
        ],
    ),
    "tax": (
        "乳税简罚",
        0.05,
        [
            (
                "未按照规定期限办理纳税申报",
                "未按照规定期限办理增值税纳税申报",
                "《中华人民共和国税收征收管理法》第六十二条",
                ["罚款"],
                (0.02, 0.2),
            ),
            (
                "未按规定开具发票",
                "应开具而未开具发票",
                "《中华人民共和国发票管理办法》第三十五条第（一）项",
                ["罚款"],
                (0.05, 1),
            ),
            (
                "丢失发票",
                "丢失增值税普通发票",
                "《中华人民共和国发票管理办法》第三十六条",
                ["罚款"],
                (0.01, 0.3),
            ),
        ],
    ),
}


def _yuan(rng: random.Random, lo: float, hi: float) -> int:
    return max(100, round(rng.uniform(lo, hi) * 100) * 100)  # whole hundreds of yuan


def build_penalties(
    city: City, rng: random.Random, dept: str, n: int, pool: list[Entity]
) -> list[Row]:
    prefix, person_share, templates = PENALTIES[dept]
    agency, agency_name = city.agencies[dept], city.catalog.department(dept).name_zh
    drafts = []
    for _ in range(n):
        subject = _pick_subject(city, rng, person_share, pool)
        wfxw, fact, basis, kinds, (lo, hi) = rng.choice(templates)
        decided = _rand_date(rng, date(2022, 1, 4), date(2022, 12, 30), workday=True)
        until = _add_years(decided, 1)
        values = _subject_values(
            "CF", subject, with_rep=isinstance(subject, Entity) and rng.random() < 0.6
        )
        content = []
        if "警告" in kinds:
            content.append("警告")
        if "没收违法所得" in kinds:
            gains = _yuan(rng, 0.01, max(lo, 0.05))
            values["CF_NR_WFFF"] = fmt_amount(Decimal(gains) / 10000)
            content.append(f"没收违法所得人民币{gains}元")
        if "罚款" in kinds:
            fine = _yuan(rng, lo, hi)
            values["CF_NR_FK"] = fmt_amount(Decimal(fine) / 10000)
            content.append(f"罚款人民币{fine}元")
        committed = decided - timedelta(days=rng.randint(20, 120))
        values.update(
            CF_WFXW=wfxw,
            CF_SY=f"经查，当事人于{_zh_date(committed)}{fact}。",
            CF_YJ=basis,
            CF_CFLB=rng.choice(("、", ";", "；")).join(kinds),
            CF_NR="，".join(content),
            CF_JDRQ=decided.isoformat(),
            CF_YXQ=until.isoformat(),
            CF_GSJZQ=until.isoformat(),
            CF_CFJG=agency_name,
            CF_CFJGDM=agency,
            CF_SJLY=agency_name,
            CF_SJLYDM=agency,
            CF_AJMC=f"{subject.name}{wfxw}案",  # pre-2019 field, only the old template carries it
        )
        drafts.append((decided, values))
    numbered = _numbered(drafts, rng, prefix, "CF_WSH")
    return [Row(values=v, entity=_entity_of(city, v, "CF")) for v in numbered]


def _entity_of(city: City, values: dict, prefix: str) -> Entity | None:
    code = values.get(f"{prefix}_XDR_SHXYM")
    return city.by_code.get(code) if code else None


LICENCES = {
    # department: (decision-number prefix, share of natural persons, templates
    #   (许可证书名称, 许可类别, 许可内容, years valid, numbering style, for persons))
    "approval": (
        "乳审服许",
        0.06,
        [
            (
                "食品经营许可证",
                "普通",
                "预包装食品（含冷藏冷冻食品）销售，散装食品（不含冷藏冷冻食品）销售",
                5,
                "JY",
                False,
            ),
            ("公共场所卫生许可证", "普通", "住宿场所", 4, "WS", False),
            ("建筑工程施工许可证", "普通", "准予办公楼及附属工程施工", 3, "SG", False),
            ("危险化学品经营许可证", "普通", "危险化学品经营（不带储存设施）", 3, "WH", False),
            ("道路运输经营许可证", "普通", "道路普通货物运输", 4, "YS", False),
            ("城市建筑垃圾处置核准", "核准", "同意建筑垃圾运输处置", 1, "HZ", False),
            ("取水许可证", "普通", "取用地下水，年取水量2万立方米", 5, "QS", False),
            ("道路运输从业人员从业资格证", "认可", "经营性道路货物运输驾驶员", 6, "CY", True),
        ],
    ),
    "market_regulation": (
        "乳市监许",
        0.0,
        [
            ("特种设备使用登记证", "登记", "电梯使用登记", 5, "TS", False),
            ("食品小作坊登记证", "登记", "食品小作坊生产：糕点、熟肉制品", 3, "XZF", False),
            ("食品生产许可证", "普通", "水产制品（干制水产品）生产", 5, "SC", False),
        ],
    ),
    "health": (
        "乳卫许",
        0.15,
        [
            ("公共场所卫生许可证", "普通", "美容美发场所", 4, "WS", False),
            ("医疗机构执业许可证", "普通", "诊疗科目：内科、外科、医学检验科", 5, "YL", False),
            ("放射诊疗许可证", "普通", "X射线影像诊断", 4, "FS", False),
            ("医师执业证书", "认可", "执业类别：临床；执业范围：内科专业", 5, "YS", True),
        ],
    ),
}


def _licence_number(rng: random.Random, style: str, decided: date, seq: int) -> str:
    if style == "JY":
        return f"JY{rng.choice('12')}{RUSHAN}{seq:07d}"
    if style == "SC":
        return f"SC{rng.randint(101, 131)}{RUSHAN}{seq:05d}"
    if style == "SG":
        return f"{RUSHAN}{decided:%Y%m%d}{seq:04d}"
    if style == "YS":
        return f"1{rng.randint(10, 99)}{RUSHAN}{decided.year}{seq:05d}"
    labels = {
        "WS": "鲁卫公证字",
        "WH": "鲁威乳危化经字",
        "YS": "鲁交运管许可威字",
        "HZ": "乳建垃核字",
        "QS": "取水（鲁威乳）字",
        "CY": "从业资格证字",
        "TS": "梯11鲁K",
        "XZF": "鲁食小作坊登字",
        "YL": "PDY",
        "FS": "鲁卫放证字",
    }
    return f"{labels.get(style, style)}〔{decided.year}〕第{RUSHAN}{seq:05d}号"


def build_licences(
    city: City, rng: random.Random, dept: str, n: int, pool: list[Entity]
) -> list[Row]:
    prefix, person_share, templates = LICENCES[dept]
    agency, agency_name = city.agencies[dept], city.catalog.department(dept).name_zh
    firm_templates = [t for t in templates if not t[5]]
    person_templates = [t for t in templates if t[5]] or firm_templates
    drafts = []
    for seq in range(1, n + 1):
        subject = _pick_subject(city, rng, person_share, pool)
        is_person = isinstance(subject, Person)
        zs, lb, content, years, style, _ = rng.choice(
            person_templates if is_person else firm_templates
        )
        decided = _rand_date(rng, date(2022, 1, 4), date(2022, 12, 30), workday=True)
        start = decided + timedelta(days=rng.choice((0, 0, 0, 1, 3)))
        values = _subject_values("XK", subject, with_rep=not is_person and rng.random() < 0.7)
        values.update(
            XK_XKWS=rng.choice(("准予行政许可决定书", "行政许可决定书")),
            XK_XKLB=lb,
            XK_XKZS=zs,
            XK_XKBH=_licence_number(rng, style, decided, seq + rng.randint(0, 9) * 1000),
            XK_NR=content,
            XK_JDRQ=decided.isoformat(),
            XK_YXQZ=start.isoformat(),
            XK_YXQZI=_add_years(start, years).isoformat(),
            XK_XKJG=agency_name,
            XK_XKJGDM=agency,
            XK_ZT=rng.choice(("有效", "有效", "有效", "1")),
            XK_LYDW=agency_name,
            XK_LYDWDM=agency,
        )
        drafts.append((decided, values))
    return [
        Row(values=v, entity=_entity_of(city, v, "XK"))
        for v in _numbered(drafts, rng, prefix, "XK_WSH")
    ]


ADMIN = {
    # (dataset, department): (field prefix, decision-number prefix, group size,
    #   templates (category, content, share of natural persons))
    ("admin_enforcement", "ecology_environment"): (
        "QZ",
        "威环乳查",
        1,
        [
            ("查封场所、设施或者财物", "对超标排放污染物的生产设施予以查封，查封期限三十日", 0.0),
            ("扣押财物", "对非法转移的危险废物予以扣押", 0.2),
        ],
    ),
    ("admin_enforcement", "urban_management"): (
        "QZ",
        "乳综执强",
        1,
        [
            ("查封场所、设施或者财物", "查封违法建设施工现场", 0.3),
            ("代履行", "对逾期未拆除的违法建设实施代履行拆除", 0.5),
            ("排除妨碍、恢复原状", "责令排除占道妨碍，恢复原状", 0.4),
        ],
    ),
    ("admin_confirmation", "civil_affairs"): (
        "QR",
        "乳民确",
        1,
        [
            ("身份确认", "最低生活保障对象认定", 1.0),
            ("身份确认", "特困人员认定", 1.0),
            ("资格确认", "社会组织年度检查结论：合格", 0.0),
        ],
    ),
    ("admin_confirmation", "human_resources"): (
        "QR",
        "乳人社工认",
        1,
        [
            ("法律事实确认", "工伤认定：认定为工伤", 1.0),
            ("资格确认", "职业技能等级认定：中级工", 1.0),
            ("资格确认", "劳务派遣单位年度经营情况报告审核", 0.0),
        ],
    ),
    ("admin_adjudication", "human_resources"): (
        "CJ",
        "乳劳人仲案字",
        1,
        [
            ("其他", "劳动争议裁决：用人单位支付拖欠工资", 0.5),
            ("损害赔偿裁决", "工伤保险待遇争议裁决：支付一次性伤残补助金", 0.5),
        ],
    ),
    ("admin_adjudication", "market_regulation"): (
        "CJ",
        "乳市监裁",
        1,
        [
            ("侵权纠纷裁决", "注册商标专用权侵权纠纷裁决：责令立即停止侵权行为", 0.1),
            ("权属纠纷裁决", "企业名称争议裁决：责令变更企业名称", 0.0),
        ],
    ),
    ("admin_reward", "emergency"): (
        "JL",
        "乳应急奖",
        6,
        [
            ("通报表扬", "2022年度安全生产工作先进单位", 0.0),
            ("发放奖金", "安全生产非法违法行为举报奖励", 1.0),
        ],
    ),
    ("admin_reward", "market_regulation"): (
        "JL",
        "乳市监奖",
        8,
        [
            ("授予荣誉称号", "守合同重信用企业", 0.0),
            ("通报表扬", "放心消费示范单位", 0.0),
            ("发放奖金", "食品安全违法行为举报奖励", 1.0),
        ],
    ),
    ("admin_inspection", "market_regulation"): (
        "JC",
        "乳市监检",
        1,
        [
            ("合格", "食品安全日常监督检查", 0.0),
            ("基本合格", "食品安全日常监督检查", 0.0),
            ("责令整改", "特种设备安全监督检查", 0.0),
            ("不合格", "“双随机、一公开”抽查：产品质量", 0.0),
            ("合格", "“双随机、一公开”抽查：登记事项", 0.05),
        ],
    ),
    ("admin_inspection", "emergency"): (
        "JC",
        "乳应急检",
        1,
        [
            ("合格", "安全生产执法检查", 0.0),
            ("责令整改", "安全生产执法检查：责令限期整改事故隐患", 0.0),
            ("基本合格", "危险化学品专项检查", 0.0),
        ],
    ),
}


def build_admin(
    city: City, rng: random.Random, dataset: str, dept: str, n: int, pool: list[Entity]
) -> list[Row]:
    prefix, wsh_prefix, group, templates = ADMIN[(dataset, dept)]
    agency, agency_name = city.agencies[dept], city.catalog.department(dept).name_zh
    societies = [e for e in city.orgs if e.kind == "社会组织"]
    decisions: list[
        tuple[date, list[dict]]
    ] = []  # one decision may name several subjects (rewards)
    total = 0
    while total < n:
        lb, content, person_share = rng.choice(templates)
        decided = _rand_date(rng, date(2022, 1, 4), date(2022, 12, 30), workday=True)
        size = min(n - total, rng.randint(1, group))
        candidates = societies if "社会组织" in content else pool
        subjects: list[Entity | Person] = []
        while len(subjects) < size:
            subject = city.person(rng) if rng.random() < person_share else rng.choice(candidates)
            if subject not in subjects:
                subjects.append(subject)
        group_rows = []
        for subject in subjects:
            values = _subject_values(prefix, subject, with_rep=False)
            values.update(
                {
                    f"{prefix}_LB": lb,
                    f"{prefix}_NR": content,
                    f"{prefix}_JDRQ": decided.isoformat(),
                    f"{prefix}_JG": agency_name,
                    f"{prefix}_JGDM": agency,
                    f"{prefix}_SJLY": agency_name,
                    f"{prefix}_SJLYDM": agency,
                }
            )
            group_rows.append(values)
        decisions.append((decided, group_rows))
        total += size
    decisions.sort(key=lambda item: item[0])
    number = rng.randint(1, 30)
    rows = []
    for _, group_rows in decisions:
        number += rng.choice((1, 1, 2))
        for values in group_rows:
            values[f"{prefix}_WSH"] = f"{wsh_prefix}〔2022〕{number}号"
            rows.append(Row(values=values, entity=_entity_of(city, values, prefix)))
    return rows


def build_register(entities: list[Entity], spares: list[Entity]) -> list[Row]:
    rows = []
    for entity in sorted(entities + spares, key=lambda e: (e.founded, e.uscc)):
        rows.append(
            Row(
                values={
                    "TYSHXYDM": entity.uscc,
                    "JGMC": entity.name,
                    "ZTLX": entity.kind,
                    "FDDBR": entity.rep.name,
                    "CLRQ": entity.founded.isoformat(),
                    "ZCZB": entity.capital,
                    "DJJG": entity.registrar,
                    "DJZT": entity.status,
                    "ZS": entity.address,
                },
                entity=entity,
                spare=entity in spares,
            )
        )
    return rows


def _months(rng: random.Random, first: int, last: int, min_len: int, max_len: int) -> list[int]:
    length = rng.randint(min_len, min(max_len, last - first + 1))
    start = rng.randint(first, last - length + 1)
    return list(range(start, start + length))


def _scale(entity: Entity) -> float:
    """Rough size of an entity for payment amounts."""
    if entity.kind == "个体工商户":
        return 0.05
    return float(Decimal(entity.capital or "50")) ** 0.5 / 10


def build_tax(city: City, rng: random.Random, n: int) -> list[Row]:
    pool = [e for e in city.firms if e.kind != "农民专业合作社"] + [
        e for e in city.firms if e.kind == "农民专业合作社"
    ][:5]
    rng.shuffle(pool)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        if entity.kind == "个体工商户":
            kinds = [("增值税", 3), ("个人所得税", 3)]
        else:
            kinds = [
                ("增值税", 1),
                ("城市维护建设税", 1),
                ("企业所得税", 3),
                ("印花税", 3),
                ("个人所得税", 1),
            ]
            kinds += [("房产税", 6), ("城镇土地使用税", 6)] if rng.random() < 0.3 else []
        months = _months(rng, 1, 12, 3, 12)
        scale = _scale(entity)
        for kind, period in kinds:
            for month in months:
                if (month - 1) % period:
                    continue
                start = date(2022, month, 1)
                end = _month_end(2022, month + period - 1 if month + period - 1 <= 12 else 12)
                due = Decimal(str(round(rng.uniform(0.01, 3) * scale * period, 4))).quantize(
                    Decimal("0.0001")
                )
                due = max(due, Decimal("0.0001"))
                roll = rng.random()
                if roll < 0.92:
                    paid, status = due, "正常"
                elif roll < 0.98:
                    paid, status = (
                        (due * Decimal(rng.choice(("0", "0.5")))).quantize(Decimal("0.0001")),
                        "欠缴",
                    )
                else:
                    paid, status = Decimal(0), "非正常户"
                values = {
                    "NSRSBH": entity.uscc,
                    "NSRMC": entity.name,
                    "SZ": kind,
                    "SSQQ": start.isoformat(),
                    "SSQZ": end.isoformat(),
                    "YNSE": fmt_amount(due),
                    "SJSE": fmt_amount(paid),
                    "QSE": fmt_amount(due - paid),
                    "JKRQ": (end + timedelta(days=rng.randint(1, 15))).isoformat()
                    if paid > 0
                    else None,
                    "NSZT": status,
                }
                rows.append(Row(values=values, entity=entity))
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["SSQQ"], r.values["NSRSBH"], r.values["SZ"]))
    return rows


SI_RATES = {
    "养老保险": "0.24",
    "医疗保险": "0.085",
    "失业保险": "0.01",
    "工伤保险": "0.006",
    "生育保险": "0.01",
}


def build_social_insurance(
    city: City, rng: random.Random, n: int, months: tuple[int, int], pool: list[Entity]
) -> list[Row]:
    pool = list(pool)
    rng.shuffle(pool)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        people = (
            rng.randint(1, 6)
            if entity.kind == "个体工商户"
            else rng.randint(3, 20) * max(1, round(_scale(entity) * 3))
        )
        wage = Decimal(rng.choice(("0.36", "0.42", "0.48", "0.55", "0.65")))  # 缴费基数（万元/人）
        for month in _months(rng, months[0], months[1], 2, 6):
            for kind, rate in SI_RATES.items():
                due = (people * wage * Decimal(rate)).quantize(Decimal("0.0001"))
                late = rng.random() < 0.04
                paid = (due * Decimal("0.5")).quantize(Decimal("0.0001")) if late else due
                rows.append(
                    Row(
                        values={
                            "TYSHXYDM": entity.uscc,
                            "DWMC": entity.name,
                            "XZ": kind,
                            "JFYF": f"2022-{month:02d}",
                            "CBRS": str(people),
                            "YJJE": fmt_amount(due),
                            "SJJE": fmt_amount(paid),
                            "QJJE": fmt_amount(due - paid),
                            "JFZT": "欠缴" if late else "正常",
                        },
                        entity=entity,
                    )
                )
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["JFYF"], r.values["TYSHXYDM"], r.values["XZ"]))
    return rows


def build_housing_fund(city: City, rng: random.Random, n: int) -> list[Row]:
    pool = city.companies + city.orgs
    pool = list(pool)
    rng.shuffle(pool)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        people = rng.randint(2, 40)
        per_head = Decimal(rng.choice(("0.05", "0.06", "0.08", "0.1", "0.12")))
        sealed_from = 13 if rng.random() < 0.95 else rng.randint(4, 12)
        for month in _months(rng, 1, 12, 4, 12):
            sealed = month >= sealed_from
            due = Decimal(0) if sealed else people * per_head
            late = not sealed and rng.random() < 0.03
            paid = Decimal(0) if late else due
            rows.append(
                Row(
                    values={
                        "TYSHXYDM": entity.uscc,
                        "DWMC": entity.name,
                        "JCYF": f"2022-{month:02d}",
                        "JCRS": 0 if sealed else people,  # numbers in JSON
                        "YJCE": float(due),
                        "SJCE": float(paid),
                        "QJE": float(due - paid),
                        "JCZT": "封存" if sealed else ("欠缴" if late else "正常缴存"),
                    },
                    entity=entity,
                )
            )
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["JCYF"], r.values["TYSHXYDM"]))
    return rows


UTILITIES = {
    # department: (能源类型, user-number style, billing months, bill range in yuan, mid-size firm)
    "water_supply": ("水", "RS{:08d}", list(range(1, 13)), (80, 6000)),
    "power_supply": ("电", "3710830{:06d}", list(range(1, 13)), (300, 90000)),
    "gas_supply": ("气", "RQ{:07d}", list(range(1, 13)), (150, 30000)),
    "heat_supply": ("暖", "RL{:06d}", [1, 2, 3, 11, 12], (2000, 80000)),
}


def build_utility(city: City, rng: random.Random, dept: str, n: int) -> list[Row]:
    kind, number_style, months, (lo, hi) = UTILITIES[dept]
    pool = list(city.firms + city.orgs)
    rng.shuffle(pool)
    serial = rng.randint(1000, 9000)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        serial += rng.randint(1, 40)
        user = number_style.format(serial)
        size = min(1.0, _scale(entity))
        span = [m for m in months if m >= rng.choice(months[: max(1, len(months) - 2)])]
        owed_months = 0
        for month in span:
            bill = Decimal(str(round(rng.uniform(lo, hi) * max(size, 0.02), 2))).quantize(
                Decimal("0.01")
            )
            bill = max(bill, Decimal("12.5"))
            unpaid = rng.random() < 0.03
            owed_months = owed_months + 1 if unpaid else 0
            paid = Decimal(0) if unpaid else bill
            rows.append(
                Row(
                    values={
                        "TYSHXYDM": entity.uscc,
                        "YHMC": entity.name,
                        "YHBH": user,
                        "NYLX": kind,
                        "ZDYF": f"2022-{month:02d}",
                        "YJFY": fmt_amount(bill),
                        "SJFY": fmt_amount(paid),
                        "QFJE": fmt_amount(bill - paid),
                        "QFYS": str(owed_months),
                        "JFZT": "欠费" if unpaid else "正常",
                    },
                    entity=entity,
                )
            )
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["ZDYF"], r.values["YHBH"]))
    return rows


# --- headers -------------------------------------------------------------------------------

# 威海市生态环境局乳山分局 still exports with the pre-2019 template (old codes, Chinese headers).
PENALTY_OLD_HEADERS = {
    "CF_AJMC": "CF_AJMC",
    "CF_WSH": "处罚决定书文号",
    "CF_XDR_MC": "当事人名称",
    "CF_XDR_LB": "行政相对人类别",
    "CF_XDR_SHXYM": "社会信用代码",
    "CF_XDR_GSZC": "CF_XDR_GSDJ",
    "CF_FRDB": "CF_FR",
    "CF_XDR_ZJLX": "证件类型",
    "CF_XDR_ZJHM": "CF_SFZ",
    "CF_WFXW": "违法行为类型",
    "CF_SY": "主要违法事实",
    "CF_YJ": "处罚依据",
    "CF_CFLB": "处罚类别",
    "CF_NR": "处罚内容",
    "CF_NR_FK": "罚款金额",
    "CF_JDRQ": "处罚日期",
    "CF_YXQ": "处罚有效期",
    "CF_GSJZQ": "公示截止期",
    "CF_CFJG": "CF_XZJG",
    "CF_CFJGDM": "处罚机关代码",
    "CF_SJLY": "数据来源单位",
    "CF_SJLYDM": "数据来源单位统一社会信用代码",
    "BZ": "备注",
}
# An export from a transport system nobody mapped: nothing matches the catalog.
PENALTY_ENGLISH_HEADERS = {
    "CF_XDR_MC": "Party Name",
    "CF_XDR_LB": "Party Category",
    "CF_XDR_SHXYM": "Credit Code",
    "CF_XDR_ZJHM": "ID Number",
    "CF_WSH": "Decision No",
    "CF_WFXW": "Violation",
    "CF_SY": "Facts",
    "CF_YJ": "Legal Basis",
    "CF_CFLB": "Penalty Kind",
    "CF_NR": "Penalty Content",
    "CF_NR_FK": "Fine 10k CNY",
    "CF_JDRQ": "Decision Date",
    "CF_YXQ": "Valid Until",
    "CF_CFJG": "Authority",
    "CF_CFJGDM": "Authority Code",
    "CF_SJLY": "Source Unit",
    "CF_SJLYDM": "Source Unit Code",
}
REGISTER_HEADERS = {  # the market regulation register export uses Chinese headers
    "TYSHXYDM": "统一社会信用代码",
    "JGMC": "企业名称",
    "ZTLX": "主体类型",
    "FDDBR": "法定代表人",
    "CLRQ": "成立日期",
    "ZCZB": "注册资本（万元）",
    "DJJG": "登记机关",
    "DJZT": "登记状态",
    "ZS": "住所",
}
TAX_HEADERS = {  # Chinese names from the catalog
    "NSRSBH": "纳税人识别号",
    "NSRMC": "纳税人名称",
    "SZ": "税种",
    "SSQQ": "所属期起",
    "SSQZ": "所属期止",
    "YNSE": "应纳税额（万元）",
    "SJSE": "实缴税额（万元）",
    "QSE": "欠税额（万元）",
    "JKRQ": "缴款日期",
    "NSZT": "纳税状态",
}


# --- the city's files ----------------------------------------------------------------------


class FeedSpec(NamedTuple):
    department: str
    file_name: str
    dataset: str
    fmt: str  # csv | xlsx | jsonl
    encoding: str  # utf-8-sig | utf-8 | gb18030 | utf-8+gb18030 | '' (xlsx)
    builder: str
    rows: int | None  # rows at entities=3000 (None: the register, one row per entity)
    plan: str  # "kind count [FIELD]; ..." -- count '*' = every row that fits


def parse_plan(plan: str) -> list[tuple[str, int | None, str | None]]:
    items = []
    for part in filter(None, (p.strip() for p in plan.split(";"))):
        kind, count, *field_code = part.split()
        items.append(
            (kind, None if count == "*" else int(count), field_code[0] if field_code else None)
        )
    return items


# fmt: off
FILES: list[FeedSpec] = [
    FeedSpec("market_regulation", "legal_entity_register_2022.csv", "legal_entity", "csv",
             "utf-8-sig", "register_market", None,
             "uscc_check_digit 4; uscc_excel_damage 2; wrong_kind_registration_number 3; "
             "wrong_kind_org_code 2; uscc_placeholder 1; required_missing 3 JGMC; "
             "invalid_date 3; value_not_allowed 3; invalid_amount 2; duplicate_row 3; "
             "uscc_fullwidth 2; uscc_lowercase 2; uscc_spaced 2; date_alt_format 4; "
             "amount_thousands 3; amount_unit 2"),
    FeedSpec("civil_affairs", "社会组织法人登记信息_2022.xlsx", "legal_entity", "xlsx", "",
             "register_civil", None,
             "uscc_check_digit 1; value_not_allowed 1 DJZT; uscc_spaced 1"),
    FeedSpec("approval", "行政许可信息_2022年.xlsx", "admin_license", "xlsx", "", "licence", 1200,
             "uscc_check_digit 3; uscc_excel_damage 2; wrong_kind_registration_number 2; "
             "wrong_kind_org_code 1; uscc_placeholder 1; rid_check_digit 2; required_missing 3; "
             "invalid_date 2; value_not_allowed 3; date_order 3; duplicate_row 2; "
             "uscc_fullwidth 1; uscc_lowercase 2; date_alt_format 3"),
    FeedSpec("market_regulation", "xzxk_scjg_2022.csv", "admin_license", "csv", "utf-8",
             "licence", 600,
             "uscc_check_digit 2; wrong_kind_org_code 2; required_missing 2; value_not_allowed 1; "
             "date_order 2; invalid_date 1; duplicate_row 1; ragged_row 1; formula_text 1; "
             "uscc_spaced 2; date_alt_format 2; uscc_check_digit 1 XK_XKJGDM"),
    FeedSpec("health", "health_licence_2022.jsonl", "admin_license", "jsonl", "utf-8",
             "licence", 250,
             "uscc_check_digit 1; rid_check_digit 1; required_missing 2; date_order 1; "
             "duplicate_row 1; uscc_lowercase 1; date_alt_format 1"),
    FeedSpec("market_regulation", "xzcf_scjg_2022.csv", "admin_penalty", "csv", "utf-8-sig",
             "penalty", 350,
             "uscc_check_digit 3; uscc_excel_damage 2; wrong_kind_registration_number 2; "
             "wrong_kind_org_code 2; uscc_placeholder 2; rid_check_digit 2; required_missing 3; "
             "invalid_date 2; value_not_allowed 2; invalid_amount 2; date_order 3; ragged_row 2; "
             "undecodable_bytes 1; uscc_fullwidth 2; uscc_lowercase 1; uscc_spaced 2; "
             "date_alt_format 3; formula_text 1; amount_unit 2; uscc_check_digit 1 CF_SJLYDM; "
             "duplicate_row 2"),
    # 威海市生态环境局乳山分局: GB18030, the pre-2019 template (old codes, Chinese headers)
    FeedSpec("ecology_environment", "环境行政处罚_2022.csv", "admin_penalty", "csv", "gb18030",
             "penalty_old", 150,
             "uscc_check_digit 2; required_missing 1; date_order 1; value_not_allowed 1; "
             "date_alt_format 2; amount_unit 1; duplicate_row 1"),
    # every all-digit code in this workbook is an Excel number (15 significant digits)
    FeedSpec("urban_management", "penalty_zhzf_2022.xlsx", "admin_penalty", "xlsx", "",
             "penalty_numeric", 200,
             "uscc_excel_numeric *; rid_check_digit 1; invalid_date 1; required_missing 1; "
             "uscc_fullwidth 1"),
    FeedSpec("tax", "税务行政处罚_2022.jsonl", "admin_penalty", "jsonl", "utf-8", "penalty", 120,
             "uscc_check_digit 1; wrong_kind_org_code 1; invalid_amount 1; date_alt_format 1; "
             "uscc_fullwidth 1"),
    # English headers nobody mapped: the whole file is rejected (unrecognized_header)
    FeedSpec("transport", "transport_penalty_export.csv", "admin_penalty", "csv", "utf-8",
             "penalty_english", 40, ""),
    FeedSpec("tax", "nashui_2022.csv", "tax_payment", "csv", "utf-8", "tax", 5600,
             "uscc_check_digit 4; uscc_excel_damage 3; wrong_kind_registration_number 2; "
             "wrong_kind_org_code 2; uscc_placeholder 1; required_missing 2; invalid_date 2; "
             "value_not_allowed 2; invalid_amount 2; date_order 3; ragged_row 1; amount_unit 2; "
             "date_alt_format 3; uscc_spaced 2; duplicate_row 3"),
    FeedSpec("human_resources", "shebao_2022H1.csv", "social_insurance", "csv", "utf-8",
             "si_hr", 2500,
             "uscc_check_digit 2; uscc_excel_damage 2; required_missing 2; value_not_allowed 2; "
             "invalid_amount 1; uscc_lowercase 1; duplicate_row 2"),
    FeedSpec("tax", "社会保险费_2022H2.csv", "social_insurance", "csv", "utf-8-sig",
             "si_tax", 2500,
             "uscc_check_digit 2; uscc_placeholder 1; value_not_allowed 1; uscc_fullwidth 1; "
             "amount_unit 1; duplicate_row 1"),
    FeedSpec("housing_fund", "gjj_jc_2022.jsonl", "housing_fund", "jsonl", "utf-8",
             "housing_fund", 2400,
             "uscc_check_digit 2; wrong_kind_registration_number 1; wrong_kind_org_code 1; "
             "required_missing 2; value_not_allowed 2; invalid_amount 2; uscc_spaced 1; "
             "duplicate_row 2"),
    # UTF-8 with a few lines in GB18030 (each line decodes on its own)
    FeedSpec("water_supply", "utility_water_2022.csv", "utility_payment", "csv",
             "utf-8+gb18030", "water_supply", 1500,
             "uscc_check_digit 2; value_not_allowed 1; invalid_amount 1; gb18030_line 4; "
             "amount_thousands 2; ragged_row 1; duplicate_row 1"),
    FeedSpec("power_supply", "utility_power_2022.xlsx", "utility_payment", "xlsx", "",
             "power_supply", 1500,
             "uscc_check_digit 2; uscc_excel_damage 2; required_missing 1; amount_thousands 2; "
             "duplicate_row 1"),
    FeedSpec("gas_supply", "燃气缴费_2022.csv", "utility_payment", "csv", "gb18030",
             "gas_supply", 900,
             "uscc_check_digit 1; value_not_allowed 1; invalid_amount 1; amount_unit 2; "
             "uscc_lowercase 1"),
    FeedSpec("heat_supply", "heat_utility_2022.jsonl", "utility_payment", "jsonl", "utf-8",
             "heat_supply", 600,
             "uscc_check_digit 1; wrong_kind_org_code 1; amount_thousands 1; duplicate_row 1"),
    FeedSpec("ecology_environment", "xzqz_2022.csv", "admin_enforcement", "csv", "utf-8-sig",
             "admin", 120,
             "uscc_check_digit 1; rid_check_digit 1; required_missing 1; invalid_date 1; "
             "value_not_allowed 1; date_alt_format 1; formula_text 1"),
    FeedSpec("urban_management", "行政强制_2022.jsonl", "admin_enforcement", "jsonl", "utf-8",
             "admin", 150,
             "uscc_check_digit 1; uscc_placeholder 1; invalid_date 1; date_alt_format 1; "
             "duplicate_row 1"),
    FeedSpec("civil_affairs", "xzqr_mz_2022.jsonl", "admin_confirmation", "jsonl", "utf-8",
             "admin", 150,
             "rid_check_digit 2; required_missing 1; value_not_allowed 1; date_alt_format 1"),
    FeedSpec("human_resources", "行政确认_2022.xlsx", "admin_confirmation", "xlsx", "",
             "admin", 150,
             "rid_check_digit 1; uscc_check_digit 1; invalid_date 1; duplicate_row 1"),
    FeedSpec("human_resources", "xzcj_rs_2022.csv", "admin_adjudication", "csv", "utf-8",
             "admin", 120,
             "uscc_check_digit 1; wrong_kind_registration_number 1; value_not_allowed 1; "
             "ragged_row 1; date_alt_format 1"),
    FeedSpec("market_regulation", "adjudication_scjg_2022.xlsx", "admin_adjudication", "xlsx",
             "", "admin", 100,
             "uscc_check_digit 1; required_missing 1; invalid_date 1"),
    FeedSpec("emergency", "xzjl_yj_2022.xlsx", "admin_reward", "xlsx", "", "admin", 120,
             "uscc_check_digit 1; value_not_allowed 1; duplicate_row 1"),
    FeedSpec("market_regulation", "reward_scjg_2022.jsonl", "admin_reward", "jsonl", "utf-8",
             "admin", 150,
             "uscc_check_digit 1; rid_check_digit 1; required_missing 1; uscc_lowercase 1"),
    FeedSpec("market_regulation", "xzjc_scjg_2022.csv", "admin_inspection", "csv", "utf-8-sig",
             "admin", 200,
             "uscc_check_digit 2; uscc_excel_damage 1; value_not_allowed 2; invalid_date 1; "
             "uscc_spaced 1; date_alt_format 1; duplicate_row 1"),
    FeedSpec("emergency", "inspection_yj_2022.csv", "admin_inspection", "csv", "utf-8",
             "admin", 150,
             "uscc_check_digit 1; wrong_kind_org_code 1; required_missing 1; formula_text 1"),
]
# fmt: on


def _columns(ds: Dataset, drop: tuple[str, ...] = ("CF_AJMC",)) -> list[str]:
    return [c for c in ds.field_codes if c not in drop]


def _build_rows(
    city: City, rng: random.Random, builder: str, dept: str, ds: Dataset, n: int, plan: list[tuple]
) -> list[Row]:
    firms = [e for e in city.firms if e.kind in ("企业", "个体工商户")]
    if builder in ("register_market", "register_civil"):
        spare_count = sum(count or 0 for kind, count, _ in plan if kind in QUARANTINE_KINDS)
        if builder == "register_market":
            spares = [city.spare_company() for _ in range(spare_count)]
            return build_register(city.market_register, spares)
        spares = [city.spare_social_org() for _ in range(spare_count)]
        return build_register(city.civil_register, spares)
    if builder == "licence":
        return build_licences(city, rng, dept, n, city.firms + city.orgs)
    if builder in ("penalty", "penalty_old", "penalty_english"):
        return build_penalties(city, rng, dept, n, firms)
    if builder == "penalty_numeric":
        # Excel turned every all-digit code into a number; the numeric ones are placed by the plan.
        safe = [e for e in firms if not e.all_digits]
        rows = build_penalties(city, rng, dept, n, safe)
        digits = [
            e for e in firms if e.all_digits and uscc_reasons(excel_digits(float(int(e.uscc))))
        ]
        legal = [r for r in rows if r.entity is not None]
        for row in rng.sample(legal, min(len(legal), max(2, len(rows) // 10), len(digits))):
            entity = rng.choice(digits)
            _reassign(row, "CF", entity)
        return rows
    if builder == "tax":
        return build_tax(city, rng, n)
    if builder == "si_hr":
        pool = [e for i, e in enumerate(city.active) if i % 2 == 0 and e.kind != "社会组织"]
        return build_social_insurance(city, rng, n, (1, 6), pool)
    if builder == "si_tax":
        pool = [e for i, e in enumerate(city.active) if i % 2 == 1 and e.kind != "社会组织"]
        return build_social_insurance(city, rng, n, (7, 12), pool)
    if builder == "housing_fund":
        return build_housing_fund(city, rng, n)
    if builder in UTILITIES:
        return build_utility(city, rng, builder, n)
    if builder == "admin":
        return build_admin(city, rng, ds.id, dept, n, firms + city.orgs[:5])
    raise ValueError(builder)


def _reassign(row: Row, prefix: str, entity: Entity) -> None:
    row.values[f"{prefix}_XDR_MC"] = entity.name
    row.values[f"{prefix}_XDR_LB"] = entity.subject_type
    row.values[f"{prefix}_XDR_SHXYM"] = entity.uscc
    if row.values.get(f"{prefix}_FRDB"):
        row.values[f"{prefix}_FRDB"] = entity.rep.name
        row.values[f"{prefix}_FR_ZJHM"] = entity.rep.rid
    row.entity = entity


# --- writers -------------------------------------------------------------------------------


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


# --- timeliness: when each feed was submitted, and its decision dates -----------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Submission(NamedTuple):
    at: str  # when the department delivered the file, Asia/Shanghai local time (the file's mtime)
    late: float = 0.0  # share of decision dates set more than the catalog deadline before `at`


# fmt: off
SUBMISSIONS: dict[str, Submission] = {
    "market_regulation/legal_entity_register_2022.csv": Submission("2022-12-30 16:05"),
    "civil_affairs/社会组织法人登记信息_2022.xlsx": Submission("2022-12-29 10:12"),
    "approval/行政许可信息_2022年.xlsx": Submission("2022-12-16 15:30", 0.02),
    "market_regulation/xzxk_scjg_2022.csv": Submission("2022-11-18 11:00", 0.04),
    "health/health_licence_2022.jsonl": Submission("2022-10-08 09:40", 0.10),  # an adjusted working Saturday
    "market_regulation/xzcf_scjg_2022.csv": Submission("2022-12-09 17:20", 0.03),
    "ecology_environment/环境行政处罚_2022.csv": Submission("2022-11-25 14:00", 0.08),
    "urban_management/penalty_zhzf_2022.xlsx": Submission("2022-12-02 10:30", 0.12),
    "tax/税务行政处罚_2022.jsonl": Submission("2022-10-14 10:05"),  # LATE_FEED
    "transport/transport_penalty_export.csv": Submission("2022-11-11 09:00"),
    "tax/nashui_2022.csv": Submission("2023-01-30 09:30"),  # after the Spring Festival; periods as they are
    "human_resources/shebao_2022H1.csv": Submission("2022-07-15 10:00"),
    "tax/社会保险费_2022H2.csv": Submission("2023-01-13 15:45"),
    "housing_fund/gjj_jc_2022.jsonl": Submission("2023-01-10 09:20"),
    "water_supply/utility_water_2022.csv": Submission("2023-01-06 11:30"),
    "power_supply/utility_power_2022.xlsx": Submission("2023-01-09 16:00"),
    "gas_supply/燃气缴费_2022.csv": Submission("2023-01-11 10:40"),
    "heat_supply/heat_utility_2022.jsonl": Submission("2023-01-12 14:10"),
    "ecology_environment/xzqz_2022.csv": Submission("2022-11-04 16:30", 0.05),
    "urban_management/行政强制_2022.jsonl": Submission("2022-12-23 09:15", 0.15),
    "civil_affairs/xzqr_mz_2022.jsonl": Submission("2022-12-20 10:00"),
    "human_resources/行政确认_2022.xlsx": Submission("2022-11-30 15:00", 0.03),
    "human_resources/xzcj_rs_2022.csv": Submission("2022-12-14 11:20", 0.06),
    "market_regulation/adjudication_scjg_2022.xlsx": Submission("2022-10-21 09:50", 0.02),
    "emergency/xzjl_yj_2022.xlsx": Submission("2022-12-28 17:00", 0.20),
    "market_regulation/reward_scjg_2022.jsonl": Submission("2022-12-27 10:30"),
    "market_regulation/xzjc_scjg_2022.csv": Submission("2022-12-01 00:20", 0.05),  # 30 November in UTC
    "emergency/inspection_yj_2022.csv": Submission("2022-11-15 14:30", 0.04),
}
# fmt: on
# The deliberately late feed: submitted Friday 14 October 2022, after the National Day holiday
# (1-7 October off, Saturday 8 and Sunday 9 October worked). Its decisions lie 8 or 9 working
# days before submission (late); some exactly 7 (the last day on time). A count that skipped
# the adjusted working weekend would call the 8-day ones on time; one that ignored the holiday
# would call the 7-day ones late.
LATE_FEED = "tax/税务行政处罚_2022.jsonl"
LATE_FEED_LAGS = (7, 8, 8, 9, 9)
# Records backfilled from before the holiday calendar's first year (2004): a warning, not a guess.
BACKFILLED = {"ecology_environment/环境行政处罚_2022.csv": (date(2003, 12, 30), 2)}
CN_DAY = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")


def _submitted_at(feed: Feed) -> datetime:
    return datetime.fromisoformat(SUBMISSIONS[feed.path].at).replace(tzinfo=SHANGHAI)


def _workday_before(day: date, lag: int) -> date:
    """The working day with exactly ``lag`` working days in (it, ``day``]."""
    counted = 0
    while counted < lag or not chinese_calendar.is_workday(day):
        counted += chinese_calendar.is_workday(day)
        day -= timedelta(days=1)
    return day


def _shift_row_dates(ds: Dataset, row: Row, delta: timedelta) -> None:
    """Move every date of a record by ``delta``: ISO date fields and 2022年3月1日 inside texts."""

    def shift_cn(match: re.Match) -> str:
        return _zh_date(date(*map(int, match.groups())) + delta)

    for spec in ds.fields:
        value = row.values.get(spec.code)
        if not isinstance(value, str) or not value:
            continue
        if spec.type is FieldType.DATE:
            row.values[spec.code] = (date.fromisoformat(value) + delta).isoformat()
        elif spec.type is FieldType.TEXT:
            row.values[spec.code] = CN_DAY.sub(shift_cn, value)


def set_submission(feed: Feed, seed: int) -> None:
    """Give the feed its submission time; re-date decisions relative to it (before defects are injected).

    Decisions sharing a date keep sharing one. The payment datasets keep their periods.
    """
    feed.submitted_at = _submitted_at(feed)
    rule = feed.dataset.timeliness
    if rule is None or feed.rejected or feed.dataset.category == "payment":
        return
    rng = random.Random(f"{seed}/{feed.path}/timeliness")
    submitted = feed.submitted_at.date()
    plan = SUBMISSIONS[feed.path]
    new_dates: dict[str, date] = {}
    for row in feed.rows:
        old = str(row.values[rule.date_field])
        if old not in new_dates:
            if feed.path == LATE_FEED:
                lag = rng.choice(LATE_FEED_LAGS)
            elif rng.random() < plan.late:
                lag = rng.randint(rule.working_days + 1, rule.working_days + 25)
            else:
                lag = rng.randint(0, rule.working_days)
            new_dates[old] = _workday_before(submitted, lag)
    if feed.path in BACKFILLED:
        day, count = BACKFILLED[feed.path]
        for old in rng.sample(sorted(new_dates), count):
            new_dates[old] = day
    for row in feed.rows:
        old = date.fromisoformat(str(row.values[rule.date_field]))
        _shift_row_dates(feed.dataset, row, new_dates[old.isoformat()] - old)


def _decision_date(row: Row, code: str) -> date | None:
    """A record's date as the loader reads it, from what the generator wrote (not from SQL)."""
    d = row.defect
    if d is not None and d.field == code:
        if d.defect == "date_alt_format":
            return date.fromisoformat(d.expected_value)
        if d.defect in ("invalid_date", "required_missing"):
            return None
    value = row.values.get(code)
    return date.fromisoformat(str(value)) if value not in (None, "") else None


def _elapsed_working_days(decided: date, submitted: date) -> int:
    """Working days in (decided, submitted], one day at a time; NotImplementedError outside the calendar."""
    days = (submitted - decided).days
    return sum(chinese_calendar.is_workday(decided + timedelta(days=i)) for i in range(1, days + 1))


def timeliness_truth(feed: Feed) -> dict:
    """Submission time and, for a dataset with a deadline, the verdict counts of the records read."""
    rule = feed.dataset.timeliness
    out = {
        "file": feed.path,
        "dataset_id": feed.dataset.id,
        "department": feed.department,
        "submitted_at": feed.submitted_at.isoformat(),
        "submitted_date": feed.submitted_at.date().isoformat(),
    }
    if rule is None or feed.rejected:
        return out  # no deadline, or no column could be read
    counts = Counter()
    submitted = feed.submitted_at.date()
    for row in feed.rows:
        if row.extra is not None or row.broken:
            continue  # rejected while reading: never reaches the raw layer
        decided = _decision_date(row, rule.date_field)
        if decided is None:
            counts["undated"] += 1
            continue
        try:
            late = _elapsed_working_days(decided, submitted) > rule.working_days
        except NotImplementedError:
            counts["outside_calendar"] += 1
            continue
        counts["late" if late else "on_time"] += 1
    records = sum(counts.values())
    return out | {
        "date_field": rule.date_field,
        "working_days": rule.working_days,
        "records": records,
        "on_time": counts["on_time"],
        "late": counts["late"],
        "undated": counts["undated"],
        "outside_calendar": counts["outside_calendar"],
        "numerator": counts["on_time"],
        "denominator": records - counts["outside_calendar"],
    }


# --- truth ---------------------------------------------------------------------------------

FILES_COLUMNS = [
    "file",
    "dataset_id",
    "department",
    "format",
    "encoding",
    "rows_in",
    "rows_loaded",
    "rows_quarantined",
    "status",
]
DEFECTS_COLUMNS = [
    "file",
    "dataset_id",
    "row",
    "field",
    "defect",
    "expected_reason",
    "expected_outcome",
    "expected_value",
]

TIMELINESS_COLUMNS = [
    "file",
    "dataset_id",
    "department",
    "submitted_at",
    "submitted_date",
    "date_field",
    "working_days",
    "records",
    "on_time",
    "late",
    "undated",
    "outside_calendar",
    "numerator",
    "denominator",
]


def _write_table(path: Path, columns: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def _make_feeds(city: City, seed: int, entities: int) -> list[Feed]:
    catalog = city.catalog
    feeds = []
    factor = entities / 3000
    for dept, file_name, dataset_id, fmt, encoding, builder, base, plan_text in FILES:
        ds = catalog.dataset(dataset_id)
        rng = random.Random(f"{seed}/{dept}/{file_name}")
        plan = parse_plan(plan_text)
        planned = sum(count or 0 for _, count, _ in plan)
        n = max(round((base or 0) * factor), 4 * planned + 30) if base else 0
        if builder == "penalty_english":
            n = max(round(base * factor), 12)
        rows = _build_rows(city, rng, builder, dept, ds, n, plan)
        feed = Feed(dept, file_name, ds, fmt, encoding, _columns(ds), rows)
        if builder == "penalty_old":
            feed.columns = list(PENALTY_OLD_HEADERS)
            feed.headers = PENALTY_OLD_HEADERS
            feed.newline = "\r\n"
        elif builder == "penalty_english":
            feed.columns = list(PENALTY_ENGLISH_HEADERS)
            feed.headers = PENALTY_ENGLISH_HEADERS
            feed.rejected = True
            for row in rows:
                row.defect = Defect("unrecognized_header", "", "unrecognized_header", "quarantine")
        elif builder == "register_market":
            feed.headers = REGISTER_HEADERS
            feed.newline = "\r\n"
        elif builder == "tax":
            feed.headers = TAX_HEADERS
        elif encoding == "gb18030":
            feed.newline = "\r\n"
        set_submission(feed, seed)
        Injector(feed, rng).apply(plan)
        feeds.append(feed)
    return feeds


def generate(data_root: Path, seed: int = 371083, entities: int = 3000) -> dict:
    """Write the sample city's feeds and ground truth under ``data_root``; return a summary."""
    data_root = Path(data_root)
    catalog = get_catalog()
    city = City(catalog, seed, entities)
    feeds = _make_feeds(city, seed, entities)

    inbox, truth = data_root / "inbox", data_root / "truth"
    file_rows, defect_rows, timeliness_rows = [], [], []
    kinds: Counter[str] = Counter()
    for feed in feeds:
        routed = catalog.route(feed.department, feed.file_name)
        if [d.id for d in routed] != [feed.dataset.id]:
            raise AssertionError(f"{feed.path} routes to {[d.id for d in routed]}")
        target = inbox / feed.department / feed.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(WRITERS[feed.fmt](feed))
        stamp = feed.submitted_at.timestamp()
        os.utime(target, (stamp, stamp))  # received = the file's mtime
        timeliness_rows.append(timeliness_truth(feed))
        quarantined = 0
        for number, row in enumerate(feed.rows, start=1):
            if row.defect is None:
                continue
            d = row.defect
            quarantined += d.outcome == "quarantine"
            kinds[d.defect] += 1
            defect_rows.append(
                {
                    "file": feed.path,
                    "dataset_id": feed.dataset.id,
                    "row": number,
                    "field": d.field,
                    "defect": d.defect,
                    "expected_reason": d.reason,
                    "expected_outcome": d.outcome,
                    "expected_value": d.expected_value,
                }
            )
        file_rows.append(
            {
                "file": feed.path,
                "dataset_id": feed.dataset.id,
                "department": feed.department,
                "format": feed.fmt,
                "encoding": feed.encoding,
                "rows_in": len(feed.rows),
                "rows_loaded": len(feed.rows) - quarantined,
                "rows_quarantined": quarantined,
                "status": "rejected" if feed.rejected else "loaded",
            }
        )
    truth.mkdir(parents=True, exist_ok=True)
    _write_table(truth / "files.csv", FILES_COLUMNS, file_rows)
    _write_table(truth / "defects.csv", DEFECTS_COLUMNS, defect_rows)
    _write_table(truth / "timeliness.csv", TIMELINESS_COLUMNS, timeliness_rows)
    return {
        "files": len(file_rows),
        "rows": sum(r["rows_in"] for r in file_rows),
        "defects": len(defect_rows),
        "rows_quarantined": sum(r["rows_quarantined"] for r in file_rows),
        "entities": len(city.market_register) + len(city.civil_register),
        "defects_by_kind": dict(sorted(kinds.items())),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write the 乳山市 sample city (feeds + truth).")
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--seed", type=int, default=371083)
    parser.add_argument("--entities", type=int, default=3000)
    args = parser.parse_args(argv)
    print(
        json.dumps(generate(args.data_root, args.seed, args.entities), ensure_ascii=False, indent=2)
    )


if __name__ == "__main__":
    main()
