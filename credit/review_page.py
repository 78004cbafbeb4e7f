"""The review page of a candidate release (发布审核页): one self-contained HTML file in Chinese.

In: a candidate folder prepared by credit/publication.py, ``<data root>/publication/candidates/<release id>/``:
``manifest.json`` (release, as-of date, governing rule choice, counts, status counts, changes, names),
``changes.parquet`` (every added / changed / expired / withdrawn record and why), ``samples.parquet``
(up to 20 masked records per dataset and change) and ``findings.parquet`` (records the rules could not
place). ``records/`` is not read: the page's counts are the manifest's, cross-checked against the
Parquet files (一致性核对).
Out: ``<candidate>/review.html``, written to a temporary file and renamed.

What the reviewer at the credit center reads, in order: the release and its rule choice, the checks
that must hold before approving (manifest against files, masking), the findings (errors first), the
changes per dataset and department, published counts per dataset and severity class, why records are
not published, samples of each change with the fields' Chinese names (catalog) and the masked parts
highlighted, and how to approve or reject (Airflow's ``review`` task of ``credit_publication``, or
``credit publish approve|reject``).

The page loads nothing from the network (inline CSS, no script) and every value from the data is
escaped by Jinja2's autoescape: feed text holding HTML, script or spreadsheet formulas shows as text.
Masking is checked again here: a sample or finding value that still holds a resident ID or a phone
number is masked on the page and flagged as a defect of the candidate, and the finished page is
refused if it still shows a valid resident ID (``credit.report.assert_no_resident_id``).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from credit.report import TEMPLATES, assert_no_resident_id, write_atomic
from foundation.catalog import Catalog, CatalogError, FieldType
from transforms.identifiers import uscc_reasons
from transforms.masking import mask_id, scrub_public_text

CHANGES = ("added", "changed", "expired", "withdrawn")
CHANGE_ZH = {"added": "新增", "changed": "变更", "expired": "到期撤下", "withdrawn": "修复或撤销撤下"}
REASON_ZH = {"repaired": "信用修复", "objection": "异议成立", "revoked": "决定撤销", "list_exited": "移出名单",
             "expired": "公示期满", "missing": "源数据中已无此记录"}
# Why a record of the warehouse is, or is not, in the release (manifest ``status_counts``).
STATUSES = {
    "published": ("公示中", "在公示期内，本版本公示"),
    "minor_not_published": ("轻微不公示", "轻微失信信息，适用规则原则上不予公示"),
    "expired": ("公示期满", "已超过适用规则的最长公示期限，或已过报送的公示截止期"),
    "repaired": ("已信用修复", "信用修复后终止公示"),
    "objection": ("异议成立", "异议申诉成立，终止公示"),
    "revoked": ("决定已撤销", "原决定被撤销，终止公示"),
    "unclassified": ("无法分级", "规则无法判定严重程度，不公示，待人工复核（见问题清单）"),
    "no_rule_version": ("无适用规则", "没有在相应日期有效的规则版本，不公示（见问题清单）"),
    "list_exited": ("已移出名单", "已移出严重失信主体名单"),
    "not_yet": ("未到公示日", "公示起始日期晚于数据截至日期"),
}
# Finding kinds: label and level. A record the rules cannot place is not published: an error to look at.
FINDINGS = {
    "unclassified": ("无法判定严重程度", "error"),
    "no_rule_version": ("无适用规则版本", "error"),
    "end_disagrees": ("公示截止期与规则不一致", "warning"),
}
LEVEL_ZH = {"error": "错误", "warning": "警告"}
GOVERNING_ZH = {
    "decision_date": ("按决定日期适用规则", "每条记录适用其决定日期当时有效的规则版本"),
    "publication_date": ("按公示日期适用规则", "仍在公示的记录一律适用数据截至日期当时有效的规则版本"),
}
STATUS_ZH = {"prepared": "待审核", "published": "已批准发布", "rejected": "已驳回"}
NO_SEVERITY = "-"  # datasets published without a severity class (validity, fixed period)
FINDINGS_SHOWN = 200  # rows listed per finding kind; the counts are complete
MASK_RUN = re.compile(r"\*{2,}")


class ReviewPageError(RuntimeError):
    """The candidate folder does not follow the layout the page reads; nothing is written."""


@dataclass(frozen=True)
class Counts:
    """One line of a table: a dataset, or a department under it, with counts by column key."""

    key: str
    name: str
    values: dict[str, int]
    note: str = ""  # e.g. the reasons of the withdrawn records

    @property
    def total(self) -> int:
        return sum(self.values.values())


@dataclass
class CountTable:
    columns: list[tuple[str, str]]  # (key, Chinese label)
    datasets: list[tuple[Counts, list[Counts]]]  # a dataset line and its department lines

    @property
    def totals(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for line, _ in self.datasets:
            for key, n in line.values.items():
                out[key] += n
        return out


@dataclass(frozen=True)
class Segment:
    text: str
    masked: bool  # a run of * put there by masking


@dataclass(frozen=True)
class Shown:
    """A field of a sample or a finding as the page shows it."""

    code: str
    label: str
    segments: list[Segment]
    leaked: bool = False  # the candidate held it unmasked: masked here, flagged

    @property
    def masked(self) -> bool:
        return any(s.masked for s in self.segments)


@dataclass(frozen=True)
class Sample:
    record_key: Shown
    department: str
    severity: str
    reason: str
    fields: list[Shown]
    unreadable: bool = False  # record_json is not a JSON object


@dataclass(frozen=True)
class SampleGroup:
    change: str
    label: str
    total: int  # records of this change in the dataset (manifest)
    samples: list[Sample]


@dataclass(frozen=True)
class Finding:
    level: str
    kind: str
    kind_zh: str
    dataset: str
    department: str
    document: Shown
    record_key: Shown
    message: Shown


@dataclass(frozen=True)
class FindingKind:
    kind: str
    label: str
    level: str
    count: int
    by_dataset: list[tuple[str, int]]
    shown: list[Finding]


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


@dataclass
class ReviewData:
    release_id: str
    as_of: str
    governing: str
    governing_zh: tuple[str, str]
    prepared_at: str
    prepared_by: str
    previous_release: str | None
    status: str
    content_hash: str
    records: int
    change_totals: dict[str, int]
    changes: CountTable
    changes_by_department: list[Counts]
    published: CountTable
    status_table: CountTable
    findings: list[FindingKind]
    samples: list[tuple[str, str, list[SampleGroup]]]  # dataset id, name, its groups
    checks: list[Check] = field(default_factory=list)
    leaks: int = 0

    @property
    def findings_by_level(self) -> dict[str, int]:
        out = {level: 0 for level in LEVEL_ZH}
        for kind in self.findings:
            out[kind.level] = out.get(kind.level, 0) + kind.count
        return out

    @property
    def failed_checks(self) -> int:
        return sum(not c.ok for c in self.checks)


class _Names:
    """Chinese names of datasets, departments, severity classes and fields: the manifest's, else the catalog's."""

    def __init__(self, manifest: dict, catalog: Catalog) -> None:
        self.catalog = catalog
        self.datasets: dict[str, str] = dict(manifest.get("dataset_names") or {})
        self.departments: dict[str, str] = dict(manifest.get("department_names") or {})
        self.severities: dict[str, str] = {**catalog.publication.severities, **(manifest.get("severity_names") or {})}

    def dataset(self, code: str) -> str:
        if code in self.datasets:
            return self.datasets[code]
        ds = self.catalog.datasets.get(code)
        return ds.name_zh if ds else code

    def department(self, code: str | None) -> str:
        if not code:
            return "—"
        if code in self.departments:
            return self.departments[code]
        dept = self.catalog.departments.get(code)
        return dept.name_zh if dept else code

    def severity(self, code: str | None) -> str:
        if code is None or code == NO_SEVERITY:
            return "不分级"
        return self.severities.get(code, code)

    def field(self, dataset_id: str, code: str) -> tuple[str, FieldType | None, bool]:
        """(Chinese name, type, whether IDs typed into it are masked); the code itself when unknown."""
        try:
            spec = self.catalog.dataset(dataset_id).field(code)
        except (KeyError, CatalogError):
            return code, None, True
        return spec.name_zh, spec.type, spec.mask_ids


class _Masker:
    """Values shown on the page, masked again; counts what the candidate left unmasked."""

    def __init__(self) -> None:
        self.leaks = 0

    def show(self, code: str, label: str, value: object, field_type: FieldType | None = None,
             mask_ids: bool = True) -> Shown:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        shown = text
        if field_type is FieldType.RESIDENT_ID:
            if text and "*" not in text:
                shown = mask_id(text.strip())
        elif mask_ids and not (field_type is FieldType.USCC and not uscc_reasons(text)):
            # A valid USCC can be shaped like an ID; a licence number (mask_ids: false) too.
            shown = scrub_public_text(text)
        leaked = shown != text
        self.leaks += leaked
        return Shown(code, label, _segments(shown), leaked)


def _segments(text: str) -> list[Segment]:
    out, at = [], 0
    for match in MASK_RUN.finditer(text):
        if match.start() > at:
            out.append(Segment(text[at:match.start()], False))
        out.append(Segment(match.group(), True))
        at = match.end()
    if at < len(text):
        out.append(Segment(text[at:], False))
    return out


def _ordered(first: Iterable[str], *others: Iterable[str]) -> list[str]:
    """``first`` in its order, then every other key met, sorted."""
    seen = list(dict.fromkeys(first))
    extra = {str(k) for keys in others for k in keys}
    return seen + sorted(extra - set(seen))


def _read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReviewPageError(f"{path}: cannot read the manifest: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ReviewPageError(f"{path}: not valid JSON: {exc}") from exc
    missing = [k for k in ("release_id", "as_of", "governing", "status", "content_hash", "records", "counts",
                           "status_counts", "changes", "changes_by_dataset", "findings") if k not in manifest]
    if missing:
        raise ReviewPageError(f"{path}: missing {', '.join(missing)}")
    return manifest


def _parquet(folder: Path, name: str) -> str:
    path = folder / name
    if not path.is_file():
        raise ReviewPageError(f"{path}: missing from the candidate")
    return str(path)


def _changes(manifest: dict, names: _Names, datasets: list[str], reasons: dict[str, dict[str, int]]) -> CountTable:
    by_ds = manifest["changes_by_dataset"]
    lines = []
    for ds in datasets:
        depts = by_ds.get(ds, {})
        sub = [Counts(d, names.department(d), {c: int(depts[d].get(c, 0)) for c in CHANGES})
               for d in _ordered(list(names.departments), depts) if d in depts]
        totals = {c: sum(line.values[c] for line in sub) for c in CHANGES}
        found = reasons.get(ds, {})
        note = "，".join(f"{REASON_ZH.get(r, r)} {found[r]}" for r in _ordered(list(REASON_ZH), found) if r in found)
        lines.append((Counts(ds, names.dataset(ds), totals, note), sub))
    return CountTable([(c, CHANGE_ZH[c]) for c in CHANGES], lines)


def _by_department(table: CountTable, names: _Names) -> list[Counts]:
    sums: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(CHANGES, 0))
    for _, sub in table.datasets:
        for line in sub:
            for c, n in line.values.items():
                sums[line.key][c] += n
    return [Counts(d, names.department(d), sums[d]) for d in _ordered(list(names.departments), sums) if d in sums]


def _published(manifest: dict, names: _Names, datasets: list[str]) -> CountTable:
    counts = manifest["counts"]
    met = {sev for depts in counts.values() for sevs in depts.values() for sev in sevs}
    classes = [s for s in names.severities if s in met or s in (manifest.get("severity_names") or {})]
    classes += sorted(met - set(classes) - {NO_SEVERITY})
    if NO_SEVERITY in met:
        classes.append(NO_SEVERITY)
    lines = []
    for ds in datasets:
        depts = counts.get(ds, {})
        sub = [Counts(d, names.department(d), {s: int(depts[d].get(s, 0)) for s in classes})
               for d in _ordered(list(names.departments), depts) if d in depts]
        lines.append((Counts(ds, names.dataset(ds), {s: sum(x.values[s] for x in sub) for s in classes}), sub))
    return CountTable([(s, names.severity(s)) for s in classes], lines)


def _statuses(manifest: dict, names: _Names, datasets: list[str]) -> CountTable:
    status_counts = manifest["status_counts"]
    keys = _ordered(list(STATUSES), *(v.keys() for v in status_counts.values()))
    lines: list[tuple[Counts, list[Counts]]] = [
        (Counts(ds, names.dataset(ds), {k: int(status_counts.get(ds, {}).get(k, 0)) for k in keys}), [])
        for ds in datasets if ds in status_counts]
    return CountTable([(k, STATUSES[k][0] if k in STATUSES else k) for k in keys], lines)


def _findings(con: duckdb.DuckDBPyConnection, path: str, names: _Names, masker: _Masker) -> list[FindingKind]:
    per = con.execute("SELECT kind, dataset_id, count(*) FROM read_parquet(?) GROUP BY ALL ORDER BY ALL",
                      [path]).fetchall()
    rows = con.execute(
        """SELECT kind, dataset_id, department, document, record_key, message_zh FROM read_parquet(?)
           QUALIFY row_number() OVER (PARTITION BY kind ORDER BY dataset_id, department, document, record_key) <= ?
           ORDER BY kind, dataset_id, department, document, record_key""", [path, FINDINGS_SHOWN]).fetchall()
    counted: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for kind, ds, n in per:
        counted[kind].append((names.dataset(ds), n))
    listed: dict[str, list[Finding]] = defaultdict(list)
    for kind, ds, dept, document, record_key, message in rows:
        label, level = FINDINGS.get(kind, (kind, "error"))  # an unknown kind is looked at, not hidden
        listed[kind].append(Finding(
            level, kind, label, names.dataset(ds), names.department(dept),
            masker.show("document", "决定书文号", document or ""),
            masker.show("record_key", "记录键", record_key or ""),
            masker.show("message_zh", "说明", message or "")))
    kinds = [FindingKind(k, FINDINGS.get(k, (k, "error"))[0], FINDINGS.get(k, (k, "error"))[1],
                         sum(n for _, n in counted[k]), counted[k], listed[k]) for k in counted]
    level_order = list(LEVEL_ZH)
    return sorted(kinds, key=lambda k: (level_order.index(k.level), list(FINDINGS).index(k.kind)
                                        if k.kind in FINDINGS else len(FINDINGS), k.kind))


def _sample(row: tuple, names: _Names, masker: _Masker) -> Sample:
    ds, _change, record_key, dept, severity, record_json, reason = row
    try:
        record = json.loads(record_json) if record_json else {}
    except json.JSONDecodeError:
        record = None
    key = masker.show("record_key", "记录键", record_key or "")
    if not isinstance(record, dict):
        raw = masker.show("record_json", "record_json", record_json or "")
        return Sample(key, names.department(dept), names.severity(severity), "", [raw], unreadable=True)
    try:
        order = names.catalog.dataset(ds).field_codes
    except CatalogError:
        order = []
    shown = []
    for code in _ordered([c for c in order if c in record], record):
        value = record[code]
        if value is None or value == "":
            continue
        label, field_type, mask_ids = names.field(ds, code)
        shown.append(masker.show(code, label, value, field_type, mask_ids))
    return Sample(key, names.department(dept), names.severity(severity),
                  REASON_ZH.get(reason, reason) if reason else "", shown)


def collect(candidate_dir: Path, catalog: Catalog) -> ReviewData:
    """What the page shows, read from the candidate folder."""
    manifest = _read_manifest(candidate_dir)
    names = _Names(manifest, catalog)
    masker = _Masker()
    changes_path = _parquet(candidate_dir, "changes.parquet")
    samples_path = _parquet(candidate_dir, "samples.parquet")
    findings_path = _parquet(candidate_dir, "findings.parquet")
    datasets = _ordered(list(names.datasets), manifest["counts"], manifest["changes_by_dataset"],
                        manifest["status_counts"])

    con = duckdb.connect()
    try:
        change_rows = con.execute(
            "SELECT dataset_id, change, reason, count(*) FROM read_parquet(?) GROUP BY ALL ORDER BY ALL",
            [changes_path]).fetchall()
        sample_rows = con.execute(
            """SELECT dataset_id, change, record_key, department, severity, record_json, reason
               FROM read_parquet(?) ORDER BY dataset_id, change, department, record_key""", [samples_path]).fetchall()
        findings = _findings(con, findings_path, names, masker)
    finally:
        con.close()

    # The reasons of the records taken down, per dataset (changes.parquet): what the withdrawn count holds.
    reasons: dict[str, dict[str, int]] = defaultdict(dict)
    file_changes: dict[str, int] = defaultdict(int)
    for ds, change, reason, n in change_rows:
        file_changes[change] += n
        if change == "withdrawn" and reason:
            reasons[ds][reason] = reasons[ds].get(reason, 0) + n
    changes = _changes(manifest, names, datasets, reasons)

    grouped: dict[str, dict[str, list[Sample]]] = defaultdict(lambda: defaultdict(list))
    for row in sample_rows:
        grouped[row[0]][row[1]].append(_sample(row, names, masker))
    totals = {line.key: line.values for line, _ in changes.datasets}
    samples = []
    for ds in _ordered(datasets, grouped):
        groups = [SampleGroup(c, CHANGE_ZH.get(c, c), totals.get(ds, {}).get(c, 0), grouped[ds].get(c, []))
                  for c in _ordered(list(CHANGES), grouped[ds])
                  if grouped[ds].get(c) or totals.get(ds, {}).get(c)]
        if groups:
            samples.append((ds, names.dataset(ds), groups))

    governing = str(manifest["governing"])
    data = ReviewData(
        release_id=str(manifest["release_id"]),
        as_of=str(manifest["as_of"]),
        governing=governing,
        governing_zh=GOVERNING_ZH.get(governing, (governing, "未知的规则适用方式：请核实目录设置")),
        prepared_at=str(manifest.get("prepared_at") or "—"),
        prepared_by=str(manifest.get("prepared_by") or "—"),
        previous_release=manifest.get("previous_release"),
        status=str(manifest["status"]),
        content_hash=str(manifest["content_hash"]),
        records=int(manifest["records"]),
        change_totals={c: int(manifest["changes"].get(c, 0)) for c in CHANGES},
        changes=changes,
        changes_by_department=_by_department(changes, names),
        published=_published(manifest, names, datasets),
        status_table=_statuses(manifest, names, datasets),
        findings=findings,
        samples=samples,
        leaks=masker.leaks,
    )
    data.checks = _checks(data, manifest, file_changes, sum(k.count for k in findings),
                          sum(s.unreadable for _, _, groups in samples for g in groups for s in g.samples))
    return data


def _checks(data: ReviewData, manifest: dict, file_changes: dict[str, int], file_findings: int,
            unreadable: int) -> list[Check]:
    """What must hold before approving: the manifest agrees with itself and with the files, masking held."""
    checks = []
    published = data.published.totals
    total = sum(published.values())
    checks.append(Check(total == data.records,
                        f"公示记录数：清单总数 {data.records}，各数据集合计 {total}"))
    by_table = data.changes.totals
    for c in CHANGES:
        counts = (data.change_totals[c], by_table.get(c, 0), file_changes.get(c, 0))
        checks.append(Check(len(set(counts)) == 1, f"{CHANGE_ZH[c]}：清单 {counts[0]}，按数据集部门合计 {counts[1]}，"
                                                   f"changes.parquet {counts[2]}"))
    checks.append(Check(int(manifest["findings"]) == file_findings,
                        f"问题记录：清单 {manifest['findings']}，findings.parquet {file_findings}"))
    status_published = {line.key: line.values.get("published", 0) for line, _ in data.status_table.datasets}
    differ = [line.name for line, _ in data.published.datasets if status_published.get(line.key, 0) != line.total]
    checks.append(Check(not differ, "各数据集“公示中”状态数与公示记录数一致" if not differ
                        else f"“公示中”状态数与公示记录数不一致：{'、'.join(differ)}"))
    checks.append(Check(data.leaks == 0, "样例与问题清单中的身份证号、手机号均已脱敏" if data.leaks == 0
                        else f"候选版本有 {data.leaks} 个值含未脱敏的身份证号或手机号（本页已代为遮盖，标红）："
                             "脱敏有缺陷，应驳回"))
    if unreadable:
        checks.append(Check(False, f"{unreadable} 条样例的 record_json 不是 JSON 对象"))
    return checks


def render(data: ReviewData) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True,
                      undefined=StrictUndefined)
    html = env.get_template("release_review.html.j2").render(
        data=data, statuses=STATUSES, status_zh=STATUS_ZH, level_zh=LEVEL_ZH, change_zh=CHANGE_ZH,
        findings_shown=FINDINGS_SHOWN)
    assert_no_resident_id(html)
    return html


def write_review_page(candidate_dir: Path, catalog: Catalog) -> Path:
    """``<candidate>/review.html`` from the candidate's manifest and Parquet files; returns its path."""
    html = render(collect(candidate_dir, catalog))
    path = candidate_dir / "review.html"
    write_atomic(path, html)
    return path
