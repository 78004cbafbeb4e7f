"""The serious-dishonesty list (严重失信主体名单) feeds of the history: entries, exits and repairs.

In: the register (its view of each period: who may be named), the history's first and last
month and a seed. Out: the list feeds (``list_feeds``), one per department and month of
``LIST_SENDERS`` inside the history, each with its period and submission time. The list has
no delivery rule: a department sends when its list changed, a few times a year, within the month
its file name states (after the month's last event): the month it arrives in is that month.

A file carries the month's new entries (列入, two or three, dated in the month; the first file
also one entry from before the history, so the truth reaches older rule versions), one exit
(移出) of an earlier entry and, from the third file on, sometimes a repair (信用修复) of another,
both dated in the month and naming the entry by its 认定文书号 and subject; every other entry
is never exited (it stays for the credit repair feeds to name). Entries name active
registered entities, each at most once; SX_YXQZ (有效期至) is blank for half of them, one or two
years after the entry for the others. The first file of each department carries one attack
string (``history_attacks``) in its 列入事由 or remark.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import NamedTuple

from foundation.catalog import Catalog
from sample_city.entities import Entity, _add_years, agency_uscc
from sample_city.history_attacks import plant
from sample_city.history_calendar import irregular_submission
from sample_city.history_plan import DEFAULT_MONTH_STYLE, MONTH_STYLES
from sample_city.history_register import Register
from sample_city.rows import Feed, Row
from sample_city.timeliness import is_workday
from transforms.periods import Period, parse_label


class ListSender(NamedTuple):
    list_name: str  # SX_MDLB 名单类别
    prefix: str  # 认定文书号 prefix
    fmt: str
    encoding: str
    chinese_headers: bool
    months: tuple[str, ...]
    old_entry: date  # an entry from before the history, sent with the department's first file
    reason: str  # SX_SY
    attack: int  # the attack (history_attacks.ATTACKS) of the first file


LIST_SENDERS: dict[str, ListSender] = {
    "market_regulation": ListSender(
        "严重违法失信名单", "乳市监信惩", "xlsx", "", False,
        ("2025-02", "2025-06", "2025-10", "2026-03", "2026-07", "2026-11"), date(2023, 1, 10),
        "提交虚假材料取得市场主体登记，情节严重", 6),
    "tax": ListSender(
        "重大税收违法失信主体", "乳税稽失信", "csv", "gb18030", True,
        ("2025-03", "2025-09", "2026-02", "2026-06", "2026-10"), date(2024, 5, 20),
        "虚开增值税普通发票，涉及金额100万元以上", 8),
    "ecology_environment": ListSender(
        "环境信用评价严重失信企业", "威环乳信", "csv", "utf-8-sig", False,
        ("2025-04", "2025-11", "2026-05", "2026-09"), date(2023, 6, 15),
        "环境信用评价为环保黑牌企业", 0),
    "human_resources": ListSender(
        "拖欠农民工工资失信联合惩戒对象名单", "乳人社失信", "jsonl", "utf-8", False,
        ("2025-05", "2025-12", "2026-04", "2026-08"), date(2024, 9, 3),
        "克扣、无故拖欠农民工工资达到认定拒不支付劳动报酬罪数额标准", 4),
}
LIST_FILE = "严重失信主体名单"
EXIT_REASON = "失信行为已纠正，移出名单"
REPAIR_REASON = "已完成信用修复，移出名单"


def list_file_name(department: str, period: Period, fmt: str) -> str:
    style = MONTH_STYLES.get(department, DEFAULT_MONTH_STYLE)
    return f"{LIST_FILE}_{style.format(y=period.start.year, m=period.start.month)}.{fmt}"


def _workdays(period: Period) -> list[date]:
    days = [period.start + timedelta(days=i) for i in range((period.end - period.start).days + 1)]
    return [d for d in days if is_workday(d)]


class _Department:
    """One department's list: its open entries and its decision numbers."""

    def __init__(self, catalog: Catalog, department: str, sender: ListSender, seed: int) -> None:
        self.department, self.sender, self.seed = department, sender, seed
        self.agency_name = catalog.department(department).name_zh
        self.numbers: dict[int, int] = {}
        self.open: list[dict] = []  # entries that may be exited or repaired on the list
        self.entered = 0

    def _entry(self, entity: Entity, day: date, rng: random.Random) -> dict:
        self.numbers[day.year] = self.numbers.get(day.year, rng.randint(1, 9)) + rng.choice((1, 1, 2))
        roll = rng.random()
        until = None if roll < 0.5 else _add_years(day, 1 if roll < 0.8 else 2)
        return {
            "SX_XDR_MC": entity.name,
            "SX_XDR_LB": entity.subject_type,
            "SX_XDR_SHXYM": entity.uscc,
            "SX_FRDB": entity.rep.name,
            "SX_MDLB": self.sender.list_name,
            "SX_SJLX": "列入",
            "SX_RDWH": f"{self.sender.prefix}〔{day.year}〕{self.numbers[day.year]}号",
            "SX_SY": self.sender.reason,
            "SX_RQ": day.isoformat(),
            "SX_YXQZ": until.isoformat() if until else None,
            **self._agency(),
        }

    def _agency(self) -> dict:
        code = agency_uscc(self.department)
        return {"SX_RDJG": self.agency_name, "SX_RDJGDM": code, "SX_SJLY": self.agency_name, "SX_SJLYDM": code}

    def _event(self, entry: dict, kind: str, day: date) -> dict:
        return entry | {"SX_SJLX": kind, "SX_RQ": day.isoformat(), "SX_YXQZ": None,
                        "SX_SY": EXIT_REASON if kind == "移出" else REPAIR_REASON}

    def rows(self, period: Period, index: int, first_file: bool, pool: list[Entity], used: set[str],
             rng: random.Random) -> list[dict]:
        days = _workdays(period)
        out = []
        if index >= 1 and self.open:  # an exit of an earlier entry
            out.append(self._event(self.open.pop(rng.randrange(len(self.open))), "移出", rng.choice(days)))
        if index >= 2 and self.open and rng.random() < 0.6:  # a repair noted on the list
            out.append(self._event(self.open.pop(rng.randrange(len(self.open))), "信用修复", rng.choice(days)))
        new_days = sorted(rng.sample(days, rng.randint(2, 3)))
        firms = [e for e in pool if e.kind in ("企业", "个体工商户")]
        entries = []
        for day in ([self.sender.old_entry] if first_file else []) + new_days:
            choices = [e for e in firms if e.uscc not in used and e.founded < day]
            entity = rng.choice(choices)
            used.add(entity.uscc)  # a subject is listed once in the whole city
            entries.append(self._entry(entity, day, rng))
        self.entered += len(entries)
        self.open += entries[self.entered % 2::2]  # every other entry stays on the list for credit repairs
        return entries + out


def list_feeds(catalog: Catalog, register: Register, seed: int, first: Period, last: Period) -> list[Feed]:
    """The list feeds of the history, each with its submission time, in order of submission."""
    ds = catalog.dataset("dishonesty_list")
    columns = ds.field_codes
    used: set[str] = set()
    feeds = []
    for department, sender in LIST_SENDERS.items():
        state = _Department(catalog, department, sender, seed)
        sent = 0
        for label in sender.months:
            period = parse_label(label)
            if not first.start <= period.start <= last.start:
                continue
            rng = random.Random(f"{seed}/history/list/{department}/{label}")
            values = state.rows(period, sent, sent == 0, register.view(period).firms, used, rng)
            feed = Feed(department, list_file_name(department, period, sender.fmt), ds, sender.fmt,
                        sender.encoding, list(columns), [Row(values=v) for v in values])
            if sender.chinese_headers:
                feed.headers = {f.code: f.name_zh for f in ds.fields}
            if sender.encoding == "gb18030":
                feed.newline = "\r\n"
            if sent == 0:
                plant(feed, sender.attack, "SX_SY", "BZ", rng)
            last_event = max(date.fromisoformat(str(v["SX_RQ"])) for v in values)
            feed.submitted_at = irregular_submission(period, last_event, rng)
            feeds.append(feed)
            sent += 1
    return sorted(feeds, key=lambda f: (f.submitted_at, f.path))
