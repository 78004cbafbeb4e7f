"""The credit repair (信用修复) feeds of the history: repairs, objections upheld, decisions revoked.

In: the ledger of published records (``history_publication.Ledger``: every penalty and list entry
as loaded, its class, file and arrival), the history's last month and a seed. Out: the repair
feeds (``repair_feeds``), each row with the design behind it, grouped into one file per
department and month of the repair's date (a few files a year: the dataset has no delivery
rule), sent within that month after its last repair (repairs are dated on working days).

Each department that made a finding (谁认定、谁修复) sends, per ``INTENTS``: repairs after the
minimum period under both governing choices (``valid``), repairs before it (``early``:
repair_before_minimum), objections upheld and revoked decisions (valid any time), a repair of
a 527 decision that may not be repaired early (``not_repairable``), and repairs naming no
record the warehouse holds: an unknown 文号 (``unknown_document``) or another subject
(``wrong_subject``): repair_unknown_record. Targets are loaded records whose file arrived at
least a day before the repair is dated (so before the repair's file). Invalid repairs are dated
only in ``INVALID_MONTHS`` (every row of them is quarantined: the months whose closes already
fail, away from the designs' turning points); urban_management sends from 2026-05 (after its
correction campaign), transport not in its missing months.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from datetime import date, timedelta
from typing import NamedTuple

from foundation.catalog import Catalog
from sample_city.entities import NATURAL, agency_uscc
from sample_city.history_calendar import irregular_submission, workday_on_or_after
from sample_city.history_plan import DEFAULT_MONTH_STYLE, MONTH_STYLES
from sample_city.history_publication import PUBLICATION_AS_OF, Ledger, Record, add_months
from sample_city.rows import Feed, Row
from transforms.periods import Period, parse_label, period_of_day


class RepairSender(NamedTuple):
    fmt: str
    encoding: str
    chinese_headers: bool
    since: str  # first month a repair may be dated in
    blocked: tuple[str, ...] = ()  # months it sends nothing


REPAIR_SENDERS: dict[str, RepairSender] = {
    "market_regulation": RepairSender("csv", "utf-8-sig", False, "2025-01"),
    "ecology_environment": RepairSender("csv", "gb18030", True, "2025-01"),
    "urban_management": RepairSender("xlsx", "", False, "2026-05"),
    "transport": RepairSender("csv", "utf-8", False, "2025-01", ("2025-07", "2025-08")),
    "tax": RepairSender("jsonl", "utf-8", False, "2025-01"),
    "human_resources": RepairSender("csv", "utf-8", False, "2025-01", ("2025-08",)),
}
INVALID_MONTHS = ("2025-05", "2025-06", "2025-07", "2025-08", "2026-05", "2026-06", "2026-07", "2026-08")
LAST_REPAIR_MONTH = "2026-10"  # repairs arrive by the as-of day (a file of a month comes after it)
KINDS = {"repair": "信用修复", "objection": "异议成立", "revoked": "决定撤销"}
EXPECTED = {"valid": "", "objection": "", "revoked": "", "early": "repair_before_minimum",
            "not_repairable": "repair_not_repairable", "unknown_document": "repair_unknown_record",
            "wrong_subject": "repair_unknown_record"}
NOTES = {
    "repair": "当事人已履行行政处罚决定并作出信用承诺，准予信用修复",
    "objection": "经核查，当事人提出的异议成立，予以更正",
    "revoked": "原决定经行政复议决定撤销",
}


class Intent(NamedTuple):
    department: str
    target: str  # admin_penalty | dishonesty_list
    design: str  # valid | early | objection | revoked | not_repairable | unknown_document | wrong_subject
    kind: str  # repair | objection | revoked


PENALTY_DEPARTMENTS = ("market_regulation", "ecology_environment", "urban_management", "transport", "tax")
LIST_DEPARTMENTS = ("market_regulation", "tax", "ecology_environment", "human_resources")
# The narrowest designs pick their targets first.
INTENTS: tuple[Intent, ...] = (
    Intent("market_regulation", "admin_penalty", "not_repairable", "repair"),
    *(Intent(d, "dishonesty_list", "valid", "repair") for d in LIST_DEPARTMENTS),
    *(Intent(d, "admin_penalty", "early", "repair") for d in PENALTY_DEPARTMENTS),
    *(Intent(d, "dishonesty_list", "early", "repair") for d in LIST_DEPARTMENTS),
    *(Intent(d, "admin_penalty", "valid", "repair") for d in PENALTY_DEPARTMENTS for _ in range(2)),
    Intent("market_regulation", "admin_penalty", "unknown_document", "repair"),
    Intent("transport", "admin_penalty", "unknown_document", "revoked"),
    Intent("tax", "admin_penalty", "wrong_subject", "objection"),
    *(Intent(d, "admin_penalty", design, design) for d in PENALTY_DEPARTMENTS for design in ("objection", "revoked")),
    *(Intent(d, "dishonesty_list", "objection", "objection") for d in LIST_DEPARTMENTS),
    Intent("tax", "dishonesty_list", "revoked", "revoked"),
)
_NUMBER = re.compile(r"〔(\d{4})〕\d+号")


class Planned(NamedTuple):
    intent: Intent
    record: Record
    day: date
    document: str
    subject: Record  # whose subject the row names (the record's, or another's)


class _Planner:
    """Finds each intent a target (a loaded record never targeted, with no list event) and a date."""

    def __init__(self, ledger: Ledger, last: Period, seed: int) -> None:
        self.ledger, self.rules = ledger, ledger.rules
        self.last_day = min(last.end, parse_label(LAST_REPAIR_MONTH).end)
        self.rng = random.Random(f"{seed}/history/repairs")
        self.used: set[int] = set()
        self.pools: dict[tuple[str, str], list[Record]] = {}  # loaded records per dataset and department

    def allowed(self, intent: Intent, day: date) -> bool:
        sender = REPAIR_SENDERS[intent.department]
        month = f"{day:%Y-%m}"
        invalid = EXPECTED[intent.design] != ""
        return (sender.since <= month and month not in sender.blocked and day <= self.last_day
                and (not invalid or month in INVALID_MONTHS))

    def min_months(self, record: Record) -> int:
        """The minimum under both governing choices (decision date, as-of day)."""
        assert record.decided is not None
        days = (record.decided, PUBLICATION_AS_OF)
        return max(self.rules.version_on(d).classes[record.severity].min_months for d in days)  # type: ignore[union-attr]

    def shift(self, intent: Intent, day: date) -> date:
        """The day, or the working day after it, or a working day of a later month it may be dated in."""
        while day <= self.last_day:  # (the holiday calendar ends with 2026)
            day = workday_on_or_after(day)
            if self.allowed(intent, day):
                break
            day = add_months(day.replace(day=1), 1) + timedelta(days=self.rng.randint(0, 9))
        return day

    def day_for(self, intent: Intent, r: Record) -> date | None:
        assert r.decided is not None
        arrived = r.received.date() + timedelta(days=1)
        design = intent.design
        version = self.rules.version_on(r.decided)
        assert version is not None
        if design in ("valid", "early", "not_repairable"):
            if r.severity not in version.classes:
                return None
            terms = version.classes[r.severity]
            if design == "not_repairable" and terms.repairable:
                return None
            if design == "valid" and (not terms.repairable or r.severity == "minor"):
                return None
            if design == "early" and r.severity not in ("general", "serious"):
                return None
        if design == "valid":
            start = max(add_months(r.decided, self.min_months(r)), arrived)
            day = self.shift(intent, start + timedelta(days=self.rng.randint(0, 30)))
            end = self.ledger.end(r, "decision")
            return day if end is None or day < end else None
        if design == "early":
            day = self.shift(intent, max(r.decided + timedelta(days=self.rng.randint(15, 60)), arrived))
            return day if day < add_months(r.decided, 3) else None
        if design == "not_repairable":
            return self.shift(intent, max(add_months(r.decided, terms.min_months), arrived))
        return self.shift(intent, arrived + timedelta(days=self.rng.randint(3, 60)))

    def candidates(self, intent: Intent) -> list[Record]:
        if not self.pools:
            for r in self.ledger.records:
                if not r.quarantined and r.decided is not None:
                    self.pools.setdefault((r.dataset_id, r.department), []).append(r)
        pool = self.pools.get((intent.target, intent.department), [])
        out = [r for r in pool if id(r) not in self.used and not r.withdrawals]
        self.rng.shuffle(out)
        return out

    def plan(self, intent: Intent) -> Planned | None:
        for r in self.candidates(intent):
            day = self.day_for(intent, r)
            if day is None or not self.allowed(intent, day):
                continue
            document, subject = r.document, r
            if intent.design == "unknown_document":
                document = _NUMBER.sub(lambda m: f"〔{m[1]}〕{9000 + len(self.used)}号", r.document)
            if intent.design == "wrong_subject":
                others = [o for o in self.pools[(r.dataset_id, r.department)]
                          if o.uscc and o.uscc != r.uscc and o.received.date() < day and o.subject_type != NATURAL]
                if not others:
                    continue
                subject = others[0]
            self.used.add(id(r))
            return Planned(intent, r, day, document, subject)
        return None


def _file_name(department: str, period: Period, fmt: str) -> str:
    style = MONTH_STYLES.get(department, DEFAULT_MONTH_STYLE)
    return f"信用修复_{style.format(y=period.start.year, m=period.start.month)}.{fmt}"


def _values(catalog: Catalog, p: Planned) -> dict:
    s = p.subject
    name = catalog.department(p.intent.department).name_zh
    return {
        "XF_XDR_MC": s.subject_name,
        "XF_XDR_LB": s.subject_type,
        "XF_XDR_SHXYM": s.uscc or None,
        "XF_XDR_ZJHM": s.rid if s.subject_type == NATURAL else None,
        "XF_XXLB": catalog.dataset(p.intent.target).name_zh,
        "XF_YWSH": p.document,
        "XF_LB": KINDS[p.intent.kind],
        "XF_JDRQ": p.day.isoformat(),
        "XF_JG": name,
        "XF_JGDM": agency_uscc(p.intent.department),
        "XF_SM": NOTES[p.intent.kind],
    }


def repair_feeds(catalog: Catalog, ledger: Ledger, seed: int, last: Period) -> list[tuple[Feed, list[str]]]:
    """The repair feeds and, per row, its design; in order of submission."""
    planner = _Planner(ledger, last, seed)
    grouped: dict[tuple[str, str], list[Planned]] = defaultdict(list)
    for intent in INTENTS:
        planned = planner.plan(intent)
        if planned is not None:
            grouped[(intent.department, f"{planned.day:%Y-%m}")].append(planned)
    ds = catalog.dataset("credit_repair")
    out = []
    for (department, month), items in sorted(grouped.items()):
        sender = REPAIR_SENDERS[department]
        period = period_of_day(date.fromisoformat(f"{month}-01"), "monthly")
        items.sort(key=lambda p: (p.day, p.document))
        feed = Feed(department, _file_name(department, period, sender.fmt), ds, sender.fmt, sender.encoding,
                    list(ds.field_codes), [Row(values=_values(catalog, p)) for p in items])
        if sender.chinese_headers:
            feed.headers = {f.code: f.name_zh for f in ds.fields}
        if sender.encoding == "gb18030":
            feed.newline = "\r\n"
        rng = random.Random(f"{seed}/history/repairs/{feed.path}")
        feed.submitted_at = irregular_submission(period, items[-1].day, rng)
        out.append((feed, [p.intent.design for p in items]))
    return sorted(out, key=lambda item: (item[0].submitted_at, item[0].path))
