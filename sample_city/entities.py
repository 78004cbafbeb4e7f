"""The register of the sample city: its people, legal entities and agencies.

In: the catalog (departments), a seed and a number of entities; word lists from ``names``.
Out: ``City`` (market and civil registers, active firms / companies / organizations, agency
codes, a fresh ``Person`` on demand), ``make_uscc`` / ``agency_uscc``, and the date and amount
helpers the feed builders share (``_rand_date``, ``_add_years``, ``_month_end``, ``fmt_amount``,
``_zh_date``). Every random choice comes from ``random.Random(f"{seed}/city")``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from foundation.catalog import Catalog
from sample_city import names
from transforms.identifiers import (
    USCC_ALPHABET,
    gb11714_check_char,
    resident_id_reasons,
    rid_check_char,
    uscc_check_char,
    uscc_reasons,
)

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


NATURAL, LEGAL, INDIVIDUAL = "自然人", "法人及非法人组织", "个体工商户"


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
