"""Credit check (信用核查, 逢办必查): what an office must know about an applicant before serving it.

``check(con, catalog, query, variant=..., office=..., as_of=...)`` reads an open warehouse connection
(read-only, never writes) and returns a ``CheckResult``:

- the query resolved with the identifier engine (transforms/identifiers.py): a unified social credit
  code (统一社会信用代码), a resident ID (公民身份号码: its subject key is ``P:`` + sha256(salt || ID), as
  the loader makes it), an organization code (the USCC's positions 9-17), or a subject name. An
  invalid code gets the engine's reasons in English and Chinese; a name held by several subjects
  gives them all (``ambiguous``); no match gives ``not_found``;
- the register details (the latest register row behind the register fact of the credit-records mart);
- the latest score run's score, grade and explanation lines (mart.scores, mart.score_lines);
- the subject's facts of the credit-records mart on its latest day on or before the check day, by
  dataset; its list memberships (datasets published as lists, status published); its credit warnings
  (mart.credit_warnings); and the sanction / reward measures (catalogs/credit_measures.yaml) that
  apply for the office asking.

Variants. ``public``: only what the credit website may show: records of published, public datasets
(``catalog.published()``) whose status is ``published``, their public fields, text scrubbed as for the
website; no payment data, no score or grade (the score uses authorized payment data), hence no
measure that rests on a grade; no natural person's key. ``authorized`` (a department's own use):
everything, records in any status with their status, payment arrears, score and explanation.

Fast: a handful of point queries with bound parameters on tables ordered by subject key (zone maps),
no SQL built from the query text. Side-effect free: the catalog rules (scoring models, measures)
are read once per catalog object and kept.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import weakref
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import duckdb

from foundation.catalog import Catalog, Dataset, Disclosure, FieldType
from foundation.scoring_model import Measure, ScoringModels, load_measures, load_scoring_models
from foundation.sql_names import ident, table
from transforms.identifiers import normalize_code, resident_id_reasons, uscc_reasons, validate
from transforms.masking import has_birth_date, mask_id, scrub_public_text
from transforms.reasons import CODE_REASONS
from warehouse.credit_records import cutoff_of
from warehouse.db import id_salt

Variant = Literal["public", "authorized"]
Outcome = Literal["found", "ambiguous", "not_found", "invalid"]
VARIANTS: tuple[str, ...] = ("public", "authorized")
CITY_TZ = ZoneInfo("Asia/Shanghai")

VARIANT_ZH = {"public": "公开版", "authorized": "授权版（仅限本部门使用）"}
KIND_ZH = {"legal_entity": "法人和非法人组织", "natural_person": "自然人", "unidentified": "未识别代码的主体"}
STATUS_ZH = {
    "published": "公示中", "in_effect": "有效", "minor_not_published": "轻微不公示", "expired": "公示期满",
    "repaired": "已信用修复", "objection": "异议成立", "revoked": "决定已撤销", "unclassified": "无法分级",
    "no_rule_version": "无适用规则", "list_exited": "已移出名单", "not_yet": "未到公示日",
}
REPAIR_ZH = {"repair": "信用修复", "objection": "异议成立", "revoked": "决定撤销"}
POLARITY_ZH = {"negative": "失信", "positive": "守信", "neutral": "中性"}
FACT_KIND_ZH = {"record": "记录", "register": "登记", "arrears": "欠缴", "on_time_streak": "连续按时缴纳"}
MEASURE_KIND_ZH = {"sanction": "失信惩戒", "reward": "守信激励"}

# The identifier engine's reasons in plain English (Chinese: transforms/reasons.py CODE_REASONS).
REASON_EN = {
    "empty": "nothing was entered",
    "uscc_length": "a unified social credit code has 18 characters",
    "uscc_charset": "it holds characters a unified social credit code never uses (I, O, Z, S, V or others)",
    "uscc_authority_category": "the registering authority and category (characters 1-2) do not go together",
    "uscc_division": "the administrative division (characters 3-8) does not exist",
    "uscc_org_check": "the organization code's check character (character 17) is wrong",
    "uscc_check_digit": "the check character (character 18) is wrong: a character was probably mistyped",
    "uscc_placeholder": "it is a placeholder (all zeros or one repeated character), not a real code",
    "uscc_excel_damage": "the code looks damaged by Excel (its tail turned into 000)",
    "wrong_kind_registration_number": "it is an old 15-digit business registration number, not a unified "
                                      "social credit code",
    "wrong_kind_org_code": "it is a 9-character organization code, not a unified social credit code",
    "wrong_kind_resident_id": "it is a resident ID number, not a unified social credit code",
    "org_length": "an organization code has 9 characters",
    "org_charset": "it holds characters an organization code never uses",
    "org_check_digit": "the organization code's check character is wrong",
    "rid_length": "a resident ID number has 18 characters",
    "rid_charset": "a resident ID number is 17 digits and a digit or X",
    "rid_division": "the resident ID's division code (digits 1-6) does not exist",
    "rid_birth_date": "the resident ID's birth date (digits 7-14) is not a real date",
    "rid_check_digit": "the resident ID's check character (character 18) is wrong",
}
REASON_ZH = {**CODE_REASONS, "empty": "未输入查询内容"}
KIND_EN = {"uscc": "unified social credit code", "org_code": "organization code", "resident_id": "resident ID number",
           "uscc_or_resident_id": "unified social credit code or resident ID number"}
KIND_NAME_ZH = {"uscc": "统一社会信用代码", "org_code": "组织机构代码", "resident_id": "公民身份号码",
                "uscc_or_resident_id": "统一社会信用代码或公民身份号码"}
_CODE_SHAPE = re.compile(r"[0-9A-Z]+")
_RID_SHAPE = re.compile(r"\d{17}[\dX]")
_SAFE_USCC = re.compile(r"[0-9A-Z]{18}")
_BATCH_ID = re.compile(r"[a-z0-9][a-z0-9_]*(-[0-9a-f]+)?")  # batch ids and department codes: safe in a path


# --- the result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    key: str
    kind: str  # legal_entity | natural_person | unidentified
    uscc: str | None
    name: str | None
    in_register: bool

    @property
    def kind_zh(self) -> str:
        return KIND_ZH.get(self.kind, self.kind)

    def reference(self, variant: str) -> str:
        """How the subject is named besides its name: its USCC; a person only by a short pseudonymous
        key, in the authorized variant (never an ID number: the warehouse keeps only its salted hash)."""
        if self.uscc:
            return self.uscc
        if self.kind == "natural_person":
            return f"自然人（主体标识 {self.key[2:14]}…）" if variant == "authorized" else "自然人"
        return self.kind_zh

    @property
    def file_stem(self) -> str:
        """A file name for its report: the USCC when it is one (checked), else a hash of the key."""
        if self.uscc and _SAFE_USCC.fullmatch(self.uscc) and self.key == self.uscc:
            return self.uscc
        return "s-" + hashlib.sha256(self.key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RegisterField:
    code: str
    label: str
    value: str


@dataclass(frozen=True)
class Record:
    record_id: str
    dataset_id: str
    fact_kind: str
    record_kind: str | None
    polarity: str
    severity: str | None
    decided: date | None
    published_until: date | None
    status: str
    repair_kind: str | None
    repaired_on: date | None
    measure: float | None
    document: str | None
    department: str | None

    @property
    def status_zh(self) -> str:
        return STATUS_ZH.get(self.status, self.status)


@dataclass(frozen=True)
class RecordGroup:
    dataset_id: str
    name_zh: str
    payment: bool  # arrears and on-time facts (authorized only)
    records: tuple[Record, ...]

    @property
    def negative(self) -> int:
        return sum(1 for r in self.records if r.polarity == "negative")


@dataclass(frozen=True)
class ListEntry:
    dataset_id: str
    list_name: str
    list_kind: str | None
    document: str | None
    decided: date | None
    published_until: date | None
    department: str | None


@dataclass(frozen=True)
class WarningRecord:
    dataset_id: str
    dataset_name: str
    document: str | None
    decided: date | None
    severity: str | None
    published_until: date | None
    repairable: bool | None
    repairable_from: date | None
    steps: tuple[str, ...]


@dataclass(frozen=True)
class ScoreLine:
    line_no: int
    line_kind: str  # base | fact | measure | not_counted | cap | total_bound
    dimension: str
    text: str
    points: float


@dataclass(frozen=True)
class Score:
    run_id: str
    model_id: str
    model_name: str
    run_as_of: date
    score: float
    grade: str
    grade_name: str
    supervision_zh: str
    grade_by_points: str
    grade_limit_zh: str | None
    lines: tuple[ScoreLine, ...]


@dataclass(frozen=True)
class MeasureHit:
    id: str
    kind: str  # sanction | reward
    name_zh: str
    basis_zh: str
    matters: tuple[str, ...]
    because: tuple[str, ...]

    @property
    def kind_zh(self) -> str:
        return MEASURE_KIND_ZH.get(self.kind, self.kind)


@dataclass(frozen=True)
class CheckResult:
    query: str  # as shown: ID numbers masked
    query_kind: str  # uscc | org_code | resident_id | uscc_or_resident_id | name
    variant: str
    office: str | None
    office_name: str | None
    check_day: date
    outcome: Outcome
    message_en: str
    message_zh: str
    reasons: tuple[str, ...] = ()
    subject: Subject | None = None
    candidates: tuple[Subject, ...] = ()
    facts_as_of: date | None = None  # the credit-records mart's day read
    register: tuple[RegisterField, ...] = ()
    records: tuple[RecordGroup, ...] = ()
    lists: tuple[ListEntry, ...] = ()
    warnings_as_of: date | None = None
    warnings: tuple[WarningRecord, ...] = ()
    score: Score | None = None
    measures: tuple[MeasureHit, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def found(self) -> bool:
        return self.outcome == "found"

    @property
    def on_warning_list(self) -> bool:
        return bool(self.warnings)

    @property
    def list_member(self) -> bool:
        return bool(self.lists)

    @property
    def measure_ids(self) -> list[str]:
        return [m.id for m in self.measures]

    @property
    def grade(self) -> str | None:
        return self.score.grade if self.score else None

    @property
    def record_count(self) -> int:
        return sum(len(g.records) for g in self.records)


# --- the catalog rules, read once per catalog -------------------------------------------------------


@dataclass(frozen=True)
class _Rules:
    models: ScoringModels
    measures: list[Measure]
    published: frozenset[str]  # datasets the website shows
    lists: frozenset[str]  # datasets published as lists (名单)
    register: Dataset | None


_RULES: weakref.WeakKeyDictionary[Catalog, _Rules] = weakref.WeakKeyDictionary()


def _rules(catalog: Catalog) -> _Rules:
    rules = _RULES.get(catalog)
    if rules is None:
        models = load_scoring_models(catalog)
        register = next((d for d in catalog.datasets.values() if d.credit and d.credit.fact == "register"), None)
        rules = _Rules(models, load_measures(catalog, models), frozenset(d.id for d in catalog.published()),
                       frozenset(d.id for d in catalog.datasets.values()
                                 if d.publication and d.publication.basis == "list"), register)
        _RULES[catalog] = rules
    return rules


# --- resolving the query -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    shown: str
    kind: str
    valid: bool
    reasons: tuple[str, ...]
    keys: tuple[str, ...] = ()  # subject keys to look up
    org_code: str | None = None
    names: tuple[str, ...] = ()


def _shown(raw: str, normalized: str | None) -> str:
    """The query as an output may show it: ID numbers masked however typed, a mistyped one too (18 digits
    with a birth date in place that are not a valid USCC)."""
    if normalized and _RID_SHAPE.fullmatch(normalized) and (
            not resident_id_reasons(normalized) or (has_birth_date(normalized) and uscc_reasons(normalized))):
        return mask_id(normalized)
    return scrub_public_text(raw.strip())


def _name_variants(raw: str) -> tuple[str, ...]:
    """The forms a subject name may be held in: as typed, NFKC-folded, without spaces, full-width brackets."""
    base = raw.strip()
    folded = unicodedata.normalize("NFKC", base).strip()
    compact = "".join(folded.split())
    variants = [base, folded, compact, compact.replace("(", "（").replace(")", "）"), "".join(base.split())]
    return tuple(dict.fromkeys(v for v in variants if v))


def parse_query(raw: str | None) -> _Query:
    """What the query is: a code (valid or not, with the engine's reasons) or a name."""
    raw = raw or ""
    normalized = normalize_code(raw)
    shown = _shown(raw, normalized)
    if normalized is None:
        return _Query(shown, "uscc", False, ("empty",))
    if not (_CODE_SHAPE.fullmatch(normalized) and any(c.isdigit() for c in normalized)):
        return _Query(shown, "name", True, (), names=_name_variants(raw))
    result = validate(raw)
    if result.valid:
        if result.kind == "resident_id":
            key = "P:" + hashlib.sha256((id_salt() + normalized).encode()).hexdigest()
            return _Query(shown, "resident_id", True, (), keys=(key,))
        if result.kind == "org_code":
            return _Query(shown, "org_code", True, (), org_code=normalized)
        return _Query(shown, "uscc", True, (), keys=(normalized,))
    if _RID_SHAPE.fullmatch(normalized):  # 18 digits (or X): a mistyped code of either kind
        reasons = tuple(dict.fromkeys([*uscc_reasons(normalized), *resident_id_reasons(normalized)]))
        return _Query(shown, "uscc_or_resident_id", False, reasons)
    kind = result.kind if result.kind in KIND_EN else "uscc"
    return _Query(shown, kind, False, result.reasons)


def reason_text(kind: str, reasons: tuple[str, ...], shown: str) -> tuple[str, str]:
    """An invalid code's reasons in plain English and Chinese."""
    if reasons == ("empty",):
        return "nothing to check: give a unified social credit code, a resident ID number or a name", "未输入查询内容"
    en = "; ".join(REASON_EN.get(r, r) for r in reasons)
    zh = "；".join(REASON_ZH.get(r, r) for r in reasons)
    return (f"'{shown}' is not a valid {KIND_EN.get(kind, 'code')}: {en}",
            f"“{shown}”不是有效的{KIND_NAME_ZH.get(kind, '代码')}：{zh}")


_SUBJECT_COLUMNS = "subject_key, subject_kind, uscc, name, in_register"
_KIND_ORDER = "CASE subject_kind WHEN 'legal_entity' THEN 0 WHEN 'natural_person' THEN 1 ELSE 2 END"


def _find_subjects(con: duckdb.DuckDBPyConnection, q: _Query) -> list[Subject]:
    if q.keys:
        marks = ", ".join("?" for _ in q.keys)
        rows = con.execute(f"SELECT {_SUBJECT_COLUMNS} FROM clean.subjects WHERE subject_key IN ({marks})",
                           list(q.keys)).fetchall()
    elif q.org_code:
        rows = con.execute(f"SELECT {_SUBJECT_COLUMNS} FROM clean.subjects WHERE substr(uscc, 9, 9) = ? "
                           "ORDER BY subject_key", [q.org_code]).fetchall()
    else:  # a scan of the names: the form as typed first (an equality is the fastest scan), the others if need be
        order = f"ORDER BY {_KIND_ORDER}, uscc NULLS LAST, subject_key"
        rows = con.execute(f"SELECT {_SUBJECT_COLUMNS} FROM clean.subjects WHERE name = ? {order}",
                           [q.names[0]]).fetchall()
        if not rows and len(q.names) > 1:
            marks = ", ".join("?" for _ in q.names[1:])
            rows = con.execute(f"SELECT {_SUBJECT_COLUMNS} FROM clean.subjects WHERE name IN ({marks}) {order}",
                               list(q.names[1:])).fetchall()
    return [Subject(key, kind, uscc, name, bool(reg)) for key, kind, uscc, name, reg in rows]


# --- the check ------------------------------------------------------------------------------------------


def today() -> date:
    return datetime.now(CITY_TZ).date()


def check(con: duckdb.DuckDBPyConnection, catalog: Catalog, query: str, *, variant: Variant = "public",
          office: str | None = None, as_of: date | None = None) -> CheckResult:
    """Check one applicant (USCC, resident ID, organization code or name) as of ``as_of`` (default today,
    Asia/Shanghai) for ``office`` (a department code; None: measures of every office)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    if office is not None and office not in catalog.departments:
        raise ValueError(f"unknown office '{office}'; the catalog's departments: {', '.join(catalog.departments)}")
    day = as_of or today()
    q = parse_query(query)
    office_name = catalog.departments[office].name_zh if office else None
    base = CheckResult(query=q.shown, query_kind=q.kind, variant=variant, office=office, office_name=office_name,
                       check_day=day, outcome="invalid", message_en="", message_zh="")
    if not q.valid:
        en, zh = reason_text(q.kind, q.reasons, q.shown)
        return replace(base, message_en=en, message_zh=zh, reasons=q.reasons)
    subjects = _find_subjects(con, q)
    if not subjects:
        return replace(base, outcome="not_found", message_en=f"no subject in the warehouse matches '{q.shown}'",
                       message_zh=f"未查询到与“{q.shown}”匹配的主体")
    if len(subjects) > 1:
        what = "share the name" if q.kind == "name" else "share the organization code"
        return replace(base, outcome="ambiguous", candidates=tuple(subjects),
                       message_en=f"{len(subjects)} subjects {what} '{q.shown}': check again with the unified social "
                                  "credit code (a person: the ID number)",
                       message_zh=f"“{q.shown}”对应 {len(subjects)} 个主体，"
                                  "请以统一社会信用代码（自然人：身份证件号码）重新核查")
    return _report(con, catalog, subjects[0], base, office, day)


def _report(con: duckdb.DuckDBPyConnection, catalog: Catalog, subject: Subject, base: CheckResult,
            office: str | None, day: date) -> CheckResult:
    rules = _rules(catalog)
    public = base.variant == "public"
    # The days read, the latest score run and where the warehouse file is, in one round trip.
    facts_day, warnings_day, db_path, run = con.execute(f"""
        SELECT (SELECT max(as_of) FROM mart.credit_records WHERE as_of <= $day),
               (SELECT max(as_of) FROM mart.credit_warnings WHERE as_of <= $day),
               (SELECT path FROM duckdb_databases() WHERE database_name = current_database()),
               ({_LATEST_RUN})""", {"day": day}).fetchall()[0]
    facts, sources = _facts(con, subject.key, facts_day) if facts_day else ([], {})
    visible = [f for f in facts if _visible(f, rules, public)]
    register = _register(con, rules, subject, sources, facts_day, day, public, db_path)
    score = None if public or run is None else _score(con, catalog, rules, subject.key, run)
    warnings = _warnings(con, catalog, rules, subject.key, warnings_day, public) if warnings_day else ()
    lists = tuple(ListEntry(f.dataset_id, catalog.datasets[f.dataset_id].name_zh, _text(f.record_kind, public),
                            _text(f.document, public), f.decided, f.published_until, f.department)
                  for f in visible if f.dataset_id in rules.lists and f.status == "published")
    measures = _measures(catalog, rules, visible, score, office, public)
    notes = []
    if public:
        notes.append("公开版仅含在信用网站公示期内的公开信息；信用评价（等级、得分）依据授权共享的缴费信息，"
                     "不在公开版中显示，依据信用等级适用的措施亦不列出。")
    if facts_day is None:
        notes.append("信用记录库尚未生成（mart.credit_records 无核查日及以前的数据）。")
    return replace(
        base, outcome="found", message_en="found", message_zh="查询到该主体", subject=subject,
        facts_as_of=facts_day, register=register, records=_groups(catalog, visible, public), lists=lists,
        warnings_as_of=warnings_day, warnings=warnings, score=score, measures=measures, notes=tuple(notes))


# warehouse.scoring.latest_run as a subquery: the newest run on or before the day.
_LATEST_RUN = ("SELECT {'run_id': run_id, 'model_id': model_id, 'as_of': as_of} FROM mart.score_runs "
               "WHERE as_of <= $day ORDER BY as_of DESC, finished_at DESC LIMIT 1")
_FACT_COLUMNS = ("record_id, dataset_id, fact_kind, record_kind, polarity, severity, decided, published_until, status, "
                 "repair_kind, repaired_on, measure, document, department")


def _facts(con: duckdb.DuckDBPyConnection, key: str, day: date) -> tuple[list[Record], dict[str, tuple]]:
    """The subject's facts of the day, and where each register fact's row is (dataset -> batch, row)."""
    rows = con.execute(f"SELECT {_FACT_COLUMNS}, batch_id, source_row FROM mart.credit_records "
                       "WHERE as_of = ? AND subject_key = ? ORDER BY dataset_id, decided DESC NULLS LAST, record_id",
                       [day, key]).fetchall()
    sources = {row[1]: (row[14], row[15], row[13]) for row in rows if row[2] == "register"}
    return [Record(*row[:14]) for row in rows], sources


def _visible(f: Record, rules: _Rules, public: bool) -> bool:
    if f.fact_kind == "register":
        return False  # the register fact is the 基本信息 section
    if public:
        return f.fact_kind == "record" and f.dataset_id in rules.published and f.status == "published"
    return True


def _text(value: str | None, public: bool) -> str | None:
    """Free text as the website shows it (ID and phone numbers masked) in the public variant."""
    return scrub_public_text(value) if public and value else value


def _field_public(ds: Dataset, code: str | None) -> bool:
    if code is None:
        return True
    try:
        return ds.disclosure_of(ds.field(code)) is Disclosure.PUBLIC
    except KeyError:
        return False  # not a field of the catalog: not shown in public


def _groups(catalog: Catalog, facts: list[Record], public: bool) -> tuple[RecordGroup, ...]:
    """The facts by dataset, in catalog order; in the public variant the fields that are not public blanked."""
    by_ds: dict[str, list[Record]] = {}
    for f in facts:
        by_ds.setdefault(f.dataset_id, []).append(f)
    groups = []
    for ds_id, ds in catalog.datasets.items():
        if ds_id not in by_ds:
            continue
        records = by_ds[ds_id]
        if public:
            pub = ds.publication
            credit = ds.credit
            doc_ok = _field_public(ds, pub.document_field if pub else None)
            kind_ok = _field_public(ds, credit.kind_field if credit else None)
            date_ok = _field_public(ds, pub.date_field if pub else None)
            records = [Record(r.record_id, r.dataset_id, r.fact_kind, _text(r.record_kind, True) if kind_ok else None,
                              r.polarity, r.severity, r.decided if date_ok else None, r.published_until, r.status,
                              None, None, None, _text(r.document, True) if doc_ok else None, r.department)
                       for r in records]
        else:  # payments: the months in arrears first, then the on-time streak
            records.sort(key=lambda r: (r.fact_kind != "arrears", r.fact_kind != "record"))
        groups.append(RecordGroup(ds_id, ds.name_zh, ds.category == "payment", tuple(records)))
    return tuple(groups)


def _format(value: object, spec) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f")
        return f"{text} {spec.unit}" if spec.unit else text
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _register(con: duckdb.DuckDBPyConnection, rules: _Rules, subject: Subject, sources: dict[str, tuple],
              facts_day: date | None, day: date, public: bool, db_path: str | None) -> tuple[RegisterField, ...]:
    """The register's fields of the subject's latest register row (public fields only in the public variant)."""
    ds = rules.register
    if ds is None or subject.kind != "legal_entity":
        return ()
    shown = [s for s in ds.fields if s.code not in (ds.subject.uscc_field, ds.subject.name_field)
             and (not public or ds.disclosure_of(s) is Disclosure.PUBLIC) and s.type is not FieldType.RESIDENT_ID]
    cols = ", ".join(f"c.{ident(s.code)}" for s in shown)
    source = sources.get(ds.id)
    if source is not None:
        batch_id, source_row, department = source
        rows = _register_row(con, ds, cols, batch_id, source_row, department, db_path)
    elif facts_day is None:  # no credit-records mart yet: the register itself, as received by the check day
        rows = con.execute(f"""SELECT {cols} FROM {table('clean', ds.id)} c JOIN audit.batches b USING (batch_id)
                               WHERE c.subject_key = ? AND b.received_at < ? AND b.superseded_by IS NULL
                               ORDER BY b.received_at DESC, c.batch_id DESC, c.source_row DESC LIMIT 1""",
                           [subject.key, cutoff_of(day)]).fetchall()
    else:
        rows = []
    if not rows:
        return ()
    return tuple(RegisterField(s.code, s.name_zh, _text(_format(v, s), public) or "")
                 for s, v in zip(shown, rows[0], strict=True))


def _register_row(con: duckdb.DuckDBPyConnection, ds: Dataset, cols: str, batch_id: str, source_row: int,
                  department: str, db_path: str | None) -> list[tuple]:
    """One row of the register by batch and row: read from the batch's own partition
    (``<data root>/parquet/<dataset>/department=<code>/batch_id=<id>/``, next to the warehouse file) when it is
    there, a few ms; else through the clean view, which reads every partition's footer."""
    if _BATCH_ID.fullmatch(batch_id or "") and _BATCH_ID.fullmatch(department or ""):
        if db_path:
            folder = Path(db_path).parent / "parquet" / ds.id / f"department={department}" / f"batch_id={batch_id}"
            if folder.is_dir() and any(folder.glob("*.parquet")):
                try:
                    return con.execute(f"SELECT {cols} FROM read_parquet(?) c WHERE c.source_row = ?",
                                       [str(folder / "*.parquet"), source_row]).fetchall()
                except duckdb.Error:
                    pass  # a column missing from this batch's file: the view fills it in
    return con.execute(f"SELECT {cols} FROM {table('clean', ds.id)} c WHERE c.batch_id = ? AND c.source_row = ?",
                       [batch_id, source_row]).fetchall()


def _score(con: duckdb.DuckDBPyConnection, catalog: Catalog, rules: _Rules, key: str, run: dict) -> Score | None:
    """The subject's score in the run and its explanation lines (two point queries: both tables are ordered by
    subject within a run)."""
    run_id, model_id, run_day = run["run_id"], run["model_id"], run["as_of"]
    found = con.execute("SELECT score, grade, grade_by_points, grade_limit_zh FROM mart.scores "
                        "WHERE run_id = ? AND subject_key = ?", [run_id, key]).fetchall()
    if not found:
        return None
    score, grade, by_points, limit_zh = found[0]
    rows = con.execute("SELECT line_no, line_kind, dimension_id, indicator_id, document, decided, status, category, "
                       "age_months, measure, factor, points, note_zh FROM mart.score_lines "
                       "WHERE run_id = ? AND subject_key = ? ORDER BY line_no", [run_id, key]).fetchall()
    model = rules.models.models.get(model_id)
    severities = catalog.publication.severities
    dims = {d.id: d.name_zh for d in model.dimensions} if model else {}
    inds = {i.id: i for i in model.indicators()} if model else {}
    grade_info = next((g for g in model.grades if g.grade == grade), None) if model else None
    lines = []
    for (line_no, kind, dim, ind_id, document, decided, status, category, age, measure, factor, points,
         note) in rows:
        ind = inds.get(ind_id)
        name = ind.name_zh if ind else (ind_id or "")
        if ind and ind.category_of == "severity":
            category = severities.get(category, category)
        elif ind and ind.category_of == "polarity":
            category = POLARITY_ZH.get(category, category)
        what = " ".join(p for p in (document, category) if p)
        when = decided.isoformat() if decided else ""
        if kind == "base":
            text = "基础分"
        elif kind == "measure":
            unit = {"age_years": " 年", "count": " 条"}.get(ind.measure or "", "") if ind else ""
            text = f"{name}：{measure:g}{unit}" if measure is not None else name
        elif kind == "fact":
            decay = f"，距今 {age} 个月，按 {factor:g} 计" if factor is not None and factor != 1 else ""
            text = f"{name}：{what}（{when}{decay}）" if when or decay else f"{name}：{what}"
        elif kind == "not_counted":
            text = f"{name}：{what}（{note or STATUS_ZH.get(status or '', status or '')}）"
        elif kind == "cap":
            text = f"{name}：超过单项上限 {ind.cap:g} 分，调整" if ind and ind.cap else f"{name}：单项上限调整"
        else:
            text = "总分上下限调整"
        lines.append(ScoreLine(int(line_no), kind, dims.get(dim, dim or ""), text, float(points)))
    return Score(run_id, model_id, model.name_zh if model else model_id, run_day, float(score), grade,
                 grade_info.name_zh if grade_info else "", grade_info.supervision_zh if grade_info else "",
                 by_points, limit_zh, tuple(lines))


def _warnings(con: duckdb.DuckDBPyConnection, catalog: Catalog, rules: _Rules, key: str, wday: date,
              public: bool) -> tuple[WarningRecord, ...]:
    rows = con.execute("SELECT dataset_id, document, decided, severity, published_until, repairable, repairable_from, "
                       "steps_zh FROM mart.credit_warnings WHERE as_of = ? AND subject_key = ? "
                       "ORDER BY decided, record_id", [wday, key]).fetchall()
    out = []
    for ds_id, document, decided, severity, until, repairable, since, steps in rows:
        if public and ds_id not in rules.published:
            continue
        ds = catalog.datasets.get(ds_id)
        out.append(WarningRecord(ds_id, ds.name_zh if ds else ds_id, _text(document, public), decided, severity,
                                 until, repairable, since, tuple(steps or ())))
    return tuple(out)


def _measures(catalog: Catalog, rules: _Rules, facts: list[Record], score: Score | None, office: str | None,
              public: bool) -> tuple[MeasureHit, ...]:
    """The measures whose condition holds and that apply to the office. The public variant sees only the
    public facts and no grade, so a measure resting on a grade is not listed there."""
    hits = []
    for m in rules.measures:
        if not m.applies_to_office(office):
            continue
        because = []
        when = m.when
        for f in facts:
            if (f.dataset_id in when.datasets and f.status in when.statuses
                    and (not when.severities or f.severity in when.severities)):
                name = catalog.datasets[f.dataset_id].name_zh
                what = _text(f.document, public) or f.record_kind or ""
                sev = (f"，{catalog.publication.severities.get(f.severity, f.severity)}"
                       if when.severities and f.severity else "")
                because.append(f"{name}：{what}（{f.decided.isoformat() if f.decided else ''}{sev}）")
        if score is not None and score.grade in when.grades:
            because.append(f"信用等级 {score.grade}（{score.grade_name}）")
        if because:
            hits.append(MeasureHit(m.id, m.kind, m.name_zh, m.basis_zh, tuple(m.matters), tuple(because)))
    return tuple(hits)
