"""The publication truth of the history: which record the credit website shows as of one day.

In: every written feed of a published dataset (``Ledger.add``: the rows as the loader reads them,
the file's arrival, the designed class of each penalty from ``history_severity``), the list's
exit and repair events (``Ledger.add``), the repair rows sent (``Ledger.judge_repair``) and the
rule versions of ``catalogs/publication.yaml`` (terms only: the class of a penalty is the
design's, never the catalog's severity rules run again). Out, under ``<data_root>/truth/``:

* ``publication.csv``: one row per record of a published dataset (penalties, licences, the
  fixed-basis datasets, list entries): its class and rule versions, CF_GSJZQ and whether it
  disagrees with the rules, the exclusive end of publication under each governing choice, the
  earliest valid withdrawal under ``decision_date`` (``repair_kind`` / ``repair_date`` /
  ``repair_source``, whatever its date), whether the row is quarantined, published / reason
  as of ``PUBLICATION_AS_OF`` under ``decision_date`` and ``publication_date`` governing, and
  ``kind``: the record's kind as loaded (the raw value of the dataset's ``credit.kind_field``,
  e.g. CF_CFLB, SX_MDLB, JC_LB; '' when the dataset names none), for the credit scores;
* ``repairs.csv``: one row per repair row sent, the design behind it and the expected outcome
  under the catalog's governing (``expected_outcome`` / ``expected_reason``) and under the
  other (``*_publication``: minimum and repairability of the version in force on the as-of day),
  the day its file arrived (``received``) and its XF_LB as written (``credit_kind``: 信用修复 /
  异议成立 / 决定撤销, the kind of its fact in the credit records).

The rules, plainly: the governing version is the one in force on the decision date
(``decision_date``) or on the as-of day (``publication_date``). A ``severity`` record is shown
on day D iff it loaded, its file arrived by D, its class is published, decided <= D < end with
end = decided + max_months (calendar months, clamped to the month's end) and, with a CF_GSJZQ,
end = min(end, CF_GSJZQ + 1 day); ``fixed``: decided <= D < decided + max_months; ``validity``:
decided <= D <= 有效期至; ``list``: entry <= D, D <= SX_YXQZ, D < entry + the serious class's
max_months. A valid withdrawal (repair, objection, revocation; a list exit or list repair)
dated <= D whose file arrived by D ends it. A repair (信用修复) is valid once the class's
min_months under the governing version has passed and the class is repairable; an objection
upheld or a revocation any time; a repair naming no loaded record that arrived before it is
invalid. The reason given is the first that holds of: quarantined, not_yet (file not arrived or
not decided by D), unclassified, minor_not_published, the withdrawal (repaired | objection |
revoked | list_exited) when it came before the end, expired, published.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from foundation.catalog import Catalog
from foundation.publication_rules import ClassTerms
from sample_city.rows import Feed, Row
from sample_city.truth import _write_table

PUBLICATION_AS_OF = date(2026, 11, 30)
GOVERNING = ("decision", "publication")  # decision_date | publication_date
WITHDRAWAL_REASON = {"repair": "repaired", "objection": "objection", "revoked": "revoked", "exit": "list_exited",
                     "list_repair": "list_exited"}
PUBLICATION_COLUMNS = [
    "as_of", "dataset_id", "department", "file", "row", "received", "document", "subject_name", "uscc",
    "decided", "severity", "version_decision", "version_publication", "gsjzq", "gsjzq_disagreement",
    "end_decision", "end_publication", "repair_kind", "repair_date", "repair_source", "expected_quarantined",
    "published_decision", "reason_decision", "published_publication", "reason_publication", "kind",
]
REPAIRS_COLUMNS = [
    "file", "row", "department", "target_dataset", "document", "subject_name", "uscc", "kind", "date", "design",
    "target_file", "target_row", "expected_outcome", "expected_reason", "expected_outcome_publication",
    "expected_reason_publication", "received", "credit_kind",
]


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months: the same day of the month, or the month's last day (01-31 + 1 -> 02-28)."""
    year, month = divmod(day.month - 1 + months, 12)
    first = date(day.year + year, month + 1, 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first.replace(day=min(day.day, last.day))


def loaded_value(row: Row, code: str) -> object:
    """A field as the loader keeps it: a normalized defect's expected value, else the value written."""
    d = row.defect
    if d is not None and d.outcome == "normalized" and d.field == code and d.expected_value:
        return d.expected_value
    return row.values.get(code)


def _day(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


@dataclass
class Withdrawal:
    kind: str  # repair | objection | revoked (credit_repair) | exit | list_repair (the list's events)
    day: date
    received: datetime
    valid: dict[str, bool]  # governing -> valid
    source: str  # credit_repair | dishonesty_list


@dataclass
class Record:
    dataset_id: str
    basis: str
    department: str
    file: str
    row: int
    received: datetime
    document: str
    subject_name: str
    uscc: str
    rid: str
    subject_type: str
    decided: date | None
    severity: str  # designed class; '' outside the severity and list bases
    end_field: date | None  # CF_GSJZQ / 有效期至 / SX_YXQZ
    max_months: int | None  # fixed basis
    quarantined: bool
    kind: str  # the raw value of the dataset's credit.kind_field ('' when it names none)
    withdrawals: list[Withdrawal] = field(default_factory=list)


class Ledger:
    """Every record of a published dataset, as written; judges repairs and writes the truth."""

    def __init__(self, catalog: Catalog, designs: dict[tuple[str, str], str]) -> None:
        self.catalog, self.rules = catalog, catalog.publication
        self.designs = designs
        self.published = {d.id for d in catalog.published()}
        self.records: list[Record] = []
        self.by_document: dict[tuple[str, str], list[Record]] = {}
        self.repair_rows: list[dict] = []

    # the records
    def add(self, feed: Feed) -> None:
        ds = feed.dataset
        if ds.id not in self.published or ds.publication is None:
            return
        pub, subject = ds.publication, ds.subject
        kind_field = ds.credit.kind_field if ds.credit else None
        assert feed.submitted_at is not None
        for number, row in enumerate(feed.rows, start=1):
            quarantined = feed.rejected or (row.defect is not None and row.defect.outcome == "quarantine")
            document = str(row.values.get(pub.document_field) or "")
            if pub.basis == "list" and pub.events.get(str(row.values.get(pub.event_field or ""))) != "entry":
                self._list_event(feed, row, quarantined)
                continue
            if pub.basis == "severity":
                severity = self.designs[(feed.department, document)]
            else:
                severity = pub.list_severity or ""
            record = Record(
                dataset_id=ds.id, basis=pub.basis, department=feed.department, file=feed.path, row=number,
                received=feed.submitted_at, document=document,
                subject_name=str(row.values.get(subject.name_field) or ""),
                uscc=str(loaded_value(row, subject.uscc_field) or "") if subject.uscc_field else "",
                rid=str(row.values.get(subject.id_field) or "") if subject.id_field else "",
                subject_type=str(row.values.get(subject.type_field) or "") if subject.type_field else "",
                decided=_day(loaded_value(row, pub.date_field)), severity=severity,
                end_field=_day(loaded_value(row, pub.end_field)) if pub.end_field else None,
                max_months=pub.max_months, quarantined=quarantined,
                kind=str(loaded_value(row, kind_field) or "") if kind_field else "",
            )
            self.records.append(record)
            self.by_document.setdefault((ds.id, document), []).append(record)

    def _list_event(self, feed: Feed, row: Row, quarantined: bool) -> None:
        assert feed.submitted_at is not None
        if quarantined:
            return
        pub = feed.dataset.publication
        assert pub is not None and pub.event_field is not None
        kind = {"exit": "exit", "repair": "list_repair"}[pub.events[str(row.values[pub.event_field])]]
        target = self.find("dishonesty_list", str(row.values["SX_RDWH"]), str(row.values["SX_XDR_MC"]),
                           str(row.values.get("SX_XDR_SHXYM") or ""), feed.submitted_at)
        assert target is not None, f"{feed.path}: a list event of an entry never sent"
        day = _day(row.values["SX_RQ"])
        assert day is not None
        target.withdrawals.append(
            Withdrawal(kind, day, feed.submitted_at, dict.fromkeys(GOVERNING, True), "dishonesty_list"))

    def find(self, dataset_id: str, document: str, name: str, uscc: str, before: datetime) -> Record | None:
        """The loaded record a repair names (dataset, 文号, subject), in a file that arrived before."""
        for r in self.by_document.get((dataset_id, document), []):
            if not r.quarantined and r.received < before:
                if (r.uscc == uscc) if uscc else (r.subject_name == name):
                    return r
        return None

    # the rules
    def governing_day(self, record: Record, governing: str) -> date:
        assert record.decided is not None
        return record.decided if governing == "decision" else PUBLICATION_AS_OF

    def version(self, record: Record, governing: str) -> str:
        """The rule version governing a severity or list record ('' for the other bases)."""
        if record.basis not in ("severity", "list") or record.decided is None:
            return ""
        version = self.rules.version_on(self.governing_day(record, governing))
        assert version is not None
        return version.id

    def terms(self, record: Record, governing: str) -> tuple[str, ClassTerms] | None:
        if record.basis not in ("severity", "list") or record.severity == "unclassified":
            return None
        version = self.rules.version_on(self.governing_day(record, governing))
        assert version is not None
        return version.id, version.classes[record.severity]

    def end(self, record: Record, governing: str) -> date | None:
        """The first day the record is no longer shown (exclusive end), before any withdrawal."""
        if record.decided is None:
            return None
        if record.basis == "fixed":
            assert record.max_months is not None
            return add_months(record.decided, record.max_months)
        if record.basis == "validity":
            return record.end_field + timedelta(days=1) if record.end_field else None
        found = self.terms(record, governing)
        if found is None:
            return None
        end = add_months(record.decided, found[1].max_months)
        if record.end_field:
            end = min(end, record.end_field + timedelta(days=1))
        return end

    def disagrees(self, record: Record) -> bool:
        """CF_GSJZQ before the minimum or after the last day of the maximum (decision-date version)."""
        if record.basis != "severity" or record.end_field is None or record.decided is None:
            return False
        found = self.terms(record, "decision")
        if found is None:
            return False
        terms = found[1]
        return not (add_months(record.decided, terms.min_months) <= record.end_field
                    < add_months(record.decided, terms.max_months))

    def repair_reason(self, record: Record | None, kind: str, day: date, governing: str) -> str:
        """'' when valid, else the quarantine reason."""
        if record is None:
            return "repair_unknown_record"
        if kind != "repair":
            return ""
        found = self.terms(record, governing)
        assert found is not None and record.decided is not None, "repairs of unclassified records are not designed"
        terms = found[1]
        if not terms.repairable:
            return "repair_not_repairable"
        if day < add_months(record.decided, terms.min_months):
            return "repair_before_minimum"
        return ""

    def status(self, record: Record, governing: str, end: date | None, as_of: date = PUBLICATION_AS_OF) -> str:
        """The reason the record is or is not shown on ``as_of``; ``end`` is ``self.end(record, governing)``."""
        if record.quarantined:
            return "quarantined"
        if record.decided is None or record.received.date() > as_of or record.decided > as_of:
            return "not_yet"
        if record.basis == "severity":
            found = self.terms(record, governing)
            if found is None:
                return "unclassified"
            if not found[1].publish:
                return "minor_not_published"
        withdrawn = self.withdrawal(record, governing, as_of)
        if withdrawn and (end is None or withdrawn.day < end):
            return WITHDRAWAL_REASON[withdrawn.kind]
        if end is not None and as_of >= end:
            return "expired"
        return "published"

    @staticmethod
    def withdrawal(record: Record, governing: str, as_of: date = PUBLICATION_AS_OF) -> Withdrawal | None:
        valid = [w for w in record.withdrawals
                 if w.valid[governing] and w.day <= as_of and w.received.date() <= as_of]
        return min(valid, key=lambda w: w.day, default=None)

    # repairs
    def judge_repair(self, feed: Feed, number: int, design: str) -> str:
        """Record repair row ``number`` of ``feed``; attach it to its record when valid. Returns the
        expected quarantine reason under the catalog's governing ('' when it loads)."""
        assert feed.submitted_at is not None
        v = feed.rows[number - 1].values
        target_id = next(d.id for d in self.catalog.datasets.values() if d.name_zh == v["XF_XXLB"])
        kind = self.catalog.dataset("credit_repair").repairs.kinds[str(v["XF_LB"])]  # type: ignore[union-attr]
        day = _day(v["XF_JDRQ"])
        assert day is not None
        record = self.find(target_id, str(v["XF_YWSH"]), str(v["XF_XDR_MC"]), str(v.get("XF_XDR_SHXYM") or ""),
                           feed.submitted_at)
        reasons = {g: self.repair_reason(record, kind, day, g) for g in GOVERNING}
        if record is not None and not all(reasons.values()):
            record.withdrawals.append(Withdrawal(kind, day, feed.submitted_at,
                                                 {g: not reasons[g] for g in GOVERNING}, "credit_repair"))
        default = "decision" if self.rules.governing == "decision_date" else "publication"
        self.repair_rows.append({
            "file": feed.path, "row": number, "department": feed.department, "target_dataset": target_id,
            "document": v["XF_YWSH"], "subject_name": v["XF_XDR_MC"], "uscc": v.get("XF_XDR_SHXYM") or "",
            "kind": kind, "date": day.isoformat(), "design": design,
            "target_file": record.file if record else "", "target_row": record.row if record else "",
            "expected_outcome": "quarantine" if reasons["decision"] else "loaded",
            "expected_reason": reasons["decision"],
            "expected_outcome_publication": "quarantine" if reasons["publication"] else "loaded",
            "expected_reason_publication": reasons["publication"],
            "received": feed.submitted_at.date().isoformat(), "credit_kind": v["XF_LB"],
        })
        return reasons[default]

    # the truth
    def rows(self) -> list[dict]:
        out = []
        for r in self.records:
            withdrawn = self.withdrawal(r, "decision", date.max)
            ends = {g: self.end(r, g) for g in GOVERNING}
            reasons = {g: self.status(r, g, ends[g]) for g in GOVERNING}
            out.append({
                "as_of": PUBLICATION_AS_OF.isoformat(), "dataset_id": r.dataset_id, "department": r.department,
                "file": r.file, "row": r.row, "received": r.received.date().isoformat(), "document": r.document,
                "subject_name": r.subject_name, "uscc": r.uscc,
                "decided": r.decided.isoformat() if r.decided else "", "severity": r.severity,
                "version_decision": self.version(r, "decision"),
                "version_publication": self.version(r, "publication"),
                "gsjzq": r.end_field.isoformat() if r.basis == "severity" and r.end_field else "",
                "gsjzq_disagreement": _flag(self.disagrees(r)),
                "end_decision": ends["decision"].isoformat() if ends["decision"] else "",
                "end_publication": ends["publication"].isoformat() if ends["publication"] else "",
                "repair_kind": withdrawn.kind if withdrawn else "",
                "repair_date": withdrawn.day.isoformat() if withdrawn else "",
                "repair_source": withdrawn.source if withdrawn else "",
                "expected_quarantined": _flag(r.quarantined),
                "published_decision": _flag(reasons["decision"] == "published"),
                "reason_decision": reasons["decision"],
                "published_publication": _flag(reasons["publication"] == "published"),
                "reason_publication": reasons["publication"],
                "kind": r.kind,
            })
        return out

    def write(self, truth: Path) -> list[dict]:
        """Write ``publication.csv`` and ``repairs.csv``; the rows of ``publication.csv``."""
        rows = self.rows()
        truth.mkdir(parents=True, exist_ok=True)
        _write_table(truth / "publication.csv", PUBLICATION_COLUMNS, rows)
        _write_table(truth / "repairs.csv", REPAIRS_COLUMNS, self.repair_rows)
        return rows


def publication_summary(rows: list[dict], repairs: list[dict]) -> dict:
    """Records per dataset, published as of the day under each governing choice, repairs by outcome."""
    return {
        "as_of": PUBLICATION_AS_OF.isoformat(),
        "records": dict(sorted(Counter(r["dataset_id"] for r in rows).items())),
        "published_decision": sum(r["published_decision"] == "true" for r in rows),
        "published_publication": sum(r["published_publication"] == "true" for r in rows),
        "repairs": dict(sorted(Counter(f"{r['kind']}:{r['expected_reason'] or 'loaded'}" for r in repairs).items())),
    }


def _flag(value: bool) -> str:
    return "true" if value else "false"
