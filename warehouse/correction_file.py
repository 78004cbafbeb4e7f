"""Apply a corrections file (纠错文件: old code -> new code) to the quarantined records it fixes.

In: a CSV (UTF-8 or GB18030), XLSX or JSON-lines file from a department or from the
register authority, with the columns 原代码 (old code) and 新代码 (new code), and
optionally 主体名称 (the correction then applies only to records of that subject) and
数据集 (a dataset id). Every open quarantined record whose code field holds the old code
(after normalization) and was quarantined for a problem in that field is rebuilt with the
new code and checked again with the ingest's own checks. Records that now pass form one
correction batch per dataset and department, loaded like any batch (ledger, clean
partition, subjects) and marked ``corrected`` in quarantine; records that still fail
stay open. Every outcome is a row of ``audit.corrections``. The same file applied twice
changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from foundation.catalog import Catalog, Dataset, FieldType
from foundation.settings import Settings
from transforms.identifiers import normalize_code, validate
from transforms.read_feed import read_feed
from transforms.stage import REJECT_SCHEMA, Manifest, file_sha256, row_schema
from warehouse.load import CorrectionBatch, LoadResult, check_and_write_clean, load_staged

HEADERS = {
    "old_code": ("原代码", "原统一社会信用代码", "错误代码", "old_code"),
    "new_code": ("新代码", "正确代码", "正确统一社会信用代码", "统一社会信用代码", "new_code"),
    "name": ("主体名称", "名称", "name"),
    "dataset_id": ("数据集", "dataset_id"),
}
_CORRECTABLE_TYPES = (FieldType.USCC, FieldType.ORG_CODE)


class CorrectionsFileError(ValueError):
    """The file cannot be read as corrections (no old/new code columns)."""


@dataclass
class Pair:
    line: int
    old_code: str | None
    new_code: str | None
    name: str | None
    dataset_id: str | None
    problem: str | None = None  # invalid_new_code | conflicting | incomplete
    reasons: list[str] = field(default_factory=list)


@dataclass
class CorrectionsReport:
    source_file: str
    file_sha256: str
    already_applied: bool = False
    pairs: int = 0
    corrected: int = 0
    still_invalid: int = 0
    unmatched_pairs: int = 0
    refused_pairs: int = 0
    batches: list[LoadResult] = field(default_factory=list)


def read_pairs(path: Path, catalog: Catalog) -> list[Pair]:
    """The (old code, new code) pairs of a corrections file, each checked on its own."""
    feed = read_feed(path)
    columns: dict[str, int] = {}
    for i, header in enumerate(feed.headers):
        for key, names in HEADERS.items():
            if header.strip() in names and key not in columns:
                columns[key] = i
    if "old_code" not in columns or "new_code" not in columns:
        raise CorrectionsFileError(
            f"{path.name}: a corrections file needs the columns 原代码 and 新代码 (old and new code); "
            f"found {feed.headers}"
        )
    pairs: list[Pair] = []
    def cells(data: dict, key: str) -> list[str | None]:
        values = data[str(columns[key])] if key in columns else [None] * len(data["_row"])
        return [(v.strip() or None) if isinstance(v, str) else None for v in values]

    for batch in feed.batches():
        data = batch.to_pydict()
        for line, old, new, name, dataset_id in zip(data["_row"], *(cells(data, k) for k in HEADERS), strict=True):
            pairs.append(Pair(line, normalize_code(old), normalize_code(new), name, dataset_id))
    seen: dict[tuple, str | None] = {}
    for pair in pairs:
        if not pair.old_code or not pair.new_code:
            pair.problem = "incomplete"
        elif pair.dataset_id and pair.dataset_id not in catalog.datasets:
            pair.problem, pair.reasons = "incomplete", ["unknown_dataset"]
        elif not (checked := validate(pair.new_code)).valid:
            pair.problem, pair.reasons = "invalid_new_code", list(checked.reasons)
        pair_key = (pair.old_code, pair.name, pair.dataset_id)
        if pair_key in seen and seen[pair_key] != pair.new_code:
            pair.problem = "conflicting"
        seen.setdefault(pair_key, pair.new_code)
    conflicted = {(p.old_code, p.name, p.dataset_id) for p in pairs if p.problem == "conflicting"}
    for pair in pairs:
        if (pair.old_code, pair.name, pair.dataset_id) in conflicted:
            pair.problem = "conflicting"
    return pairs


def _matches(con: duckdb.DuckDBPyConnection, dataset: Dataset, department: str | None) -> list[tuple]:
    """(batch, row, department, record, field, pair line, old, new) for each open record a pair fixes."""
    out = []
    name_path = f'$."{dataset.subject.name_field}"'
    for spec in dataset.fields:
        if spec.type not in _CORRECTABLE_TYPES:
            continue
        out += con.execute(
            """SELECT q.batch_id, q.source_row, q.department, q.record::VARCHAR, $field, p.line, p.old_code,
                p.new_code
            FROM quarantine.rows q
            JOIN pairs p ON normalize_code(json_extract_string(q.record, $path)) = p.old_code
            WHERE q.status = 'open' AND q.dataset_id = $dataset AND coalesce(p.dataset_id, $dataset) = $dataset
              AND ($department IS NULL OR q.department = $department)
              AND (p.name IS NULL OR name_key(json_extract_string(q.record, $name_path)) = name_key(p.name))
              AND list_contains(list_transform(q.reasons, lambda r: split_part(r, ':', 2)), $field)
            QUALIFY row_number() OVER (PARTITION BY q.batch_id, q.source_row ORDER BY p.name IS NULL, p.line) = 1
            ORDER BY q.batch_id, q.source_row""",
            {"field": spec.code, "path": f'$."{spec.code}"', "dataset": dataset.id, "department": department,
             "name_path": name_path},
        ).fetchall()
    return out


def _stage_rows(folder: Path, dataset: Dataset, records: list[dict], m: Manifest) -> None:
    folder.mkdir(parents=True)
    columns: dict[str, list[Any]] = {"_row": list(range(1, len(records) + 1))}
    columns |= {code: [r.get(code) for r in records] for code in dataset.field_codes}
    pq.write_table(pa.table(columns, schema=row_schema(dataset)), folder / "rows.parquet")
    pq.write_table(REJECT_SCHEMA.empty_table(), folder / "rejects.parquet")
    m.rows_staged = len(records)
    (folder / "manifest.json").write_text(json.dumps(asdict(m), ensure_ascii=False, indent=1), encoding="utf-8")


def _recheck(con: duckdb.DuckDBPyConnection, dataset: Dataset, folder: Path) -> dict[int, list[str]]:
    """The reasons each staged corrected record would still be quarantined for."""
    m = Manifest.read(folder)
    check_and_write_clean(con, dataset, m, folder / "rows.parquet", folder / "check", match=False)
    return dict(con.execute("SELECT source_row, reasons FROM problems").fetchall())


def _ledger(con: duckdb.DuckDBPyConnection, rows: list[tuple], now: datetime, source: str, path: Path,
            sha: str) -> None:
    """Outcomes that are not corrections (those are ledgered inside the load transaction)."""
    con.executemany(
        """INSERT INTO audit.corrections (applied_at, source_kind, source, source_file, file_sha256, dataset_id,
            department, orig_batch_id, orig_source_row, field, old_code, new_code, outcome, reasons)
        VALUES (?, 'corrections_file', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [[now, source, path.name, sha, *row] for row in rows],
    )


def apply_corrections(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    catalog: Catalog,
    path: Path,
    *,
    source: str,
    department: str | None = None,
    run_id: str | None = None,
) -> CorrectionsReport:
    """Apply ``path``; ``department`` limits it to that department's records (None: the register authority).

    ``con`` is a writer connection from ``warehouse.db.connect`` (which creates the ledger tables).
    """
    sha = file_sha256(path)
    report = CorrectionsReport(path.name, sha)
    if con.execute("SELECT count(*) FROM audit.corrections WHERE file_sha256 = ? AND source_kind = "
                   "'corrections_file'", [sha]).fetchall()[0][0]:
        report.already_applied = True
        return report
    pairs = read_pairs(path, catalog)
    report.pairs = len(pairs)
    usable = [p for p in pairs if p.problem is None]
    con.register("pairs_src", pa.Table.from_pylist(
        [{"line": p.line, "old_code": p.old_code, "new_code": p.new_code, "name": p.name,
          "dataset_id": p.dataset_id} for p in usable],
        schema=pa.schema([("line", pa.int64()), ("old_code", pa.string()), ("new_code", pa.string()),
                          ("name", pa.string()), ("dataset_id", pa.string())]),
    ))
    con.execute("CREATE OR REPLACE TEMP TABLE pairs AS SELECT * FROM pairs_src")
    con.unregister("pairs_src")
    now = datetime.now(UTC)
    used: set[int] = set()
    outcomes: list[tuple] = []
    for dataset in catalog.datasets.values():
        by_record: dict[tuple[str, int], dict] = {}
        for batch_id, row, dept, record, field_code, line, old, new in _matches(con, dataset, department):
            entry = by_record.setdefault((batch_id, row), {"department": dept, "record": json.loads(record),
                                                           "fixes": []})
            entry["record"][field_code] = new
            entry["fixes"].append((field_code, old, new))
            used.add(line)
        departments = sorted({e["department"] for e in by_record.values()})
        for dept in departments:
            items = [(k, e) for k, e in by_record.items() if e["department"] == dept]
            report.batches += _load_fixes(con, settings, catalog, dataset, dept, items, path, sha, source, now,
                                          run_id, outcomes)
    report.corrected = sum(r.rows_loaded for r in report.batches)
    report.still_invalid = sum(1 for o in outcomes if o[-2] == "still_invalid")
    for p in pairs:
        if p.problem:
            outcomes.append((p.dataset_id, department, None, None, None, p.old_code, p.new_code, p.problem,
                             p.reasons))
            report.refused_pairs += 1
        elif p.line not in used:
            outcomes.append((p.dataset_id, department, None, None, None, p.old_code, p.new_code, "no_match", []))
            report.unmatched_pairs += 1
    if outcomes:
        _ledger(con, outcomes, now, source, path, sha)
    elif not report.batches:
        _ledger(con, [(None, department, None, None, None, None, None, "no_match", [])], now, source, path, sha)
    return report


def _load_fixes(con, settings, catalog, dataset, department, items, path, sha, source, now, run_id, outcomes):
    """Re-check the corrected records of one dataset and department; load those that pass."""
    digest = hashlib.sha256(f"{sha}|{dataset.id}|{department}".encode()).hexdigest()
    batch_id = f"{dataset.id}-fix-{digest[:16]}"
    manifest = Manifest(batch_id=batch_id, dataset_id=dataset.id, department=department, source_file=path.name,
                        file_sha256=sha, file_bytes=path.stat().st_size, received_at=now.isoformat(),
                        format="corrections", encoding="utf-8", headers=list(dataset.field_codes))
    scratch = settings.staging / f".{batch_id}.{uuid.uuid4().hex[:8]}.check"
    try:
        _stage_rows(scratch, dataset, [e["record"] for _, e in items], manifest)
        problems = _recheck(con, dataset, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    passing = []
    for n, ((batch, row), entry) in enumerate(items, start=1):
        if n in problems:
            outcomes += [(dataset.id, department, batch, row, f, old, new, "still_invalid", problems[n])
                         for f, old, new in entry["fixes"]]
        else:
            passing.append(((batch, row), entry))
    if not passing:
        return []
    fixes = [{"_row": n, "orig_batch_id": batch, "orig_source_row": row, "field": f, "old_code": old,
              "new_code": new}
             for n, ((batch, row), entry) in enumerate(passing, start=1) for f, old, new in entry["fixes"]]
    folder = settings.staging / batch_id
    shutil.rmtree(folder, ignore_errors=True)
    _stage_rows(folder, dataset, [e["record"] for _, e in passing], manifest)
    try:
        result = load_staged(con, settings, folder, catalog, run_id=run_id,
                             correction=CorrectionBatch(source, pa.Table.from_pylist(fixes)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [result]


SUGGESTION_HEADERS = ["原代码", "新代码", "主体名称", "数据集"]


def suggest_from_register(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> list[list[str]]:
    """Corrections the register (法人基础信息) can vouch for: an open record quarantined for its
    subject code, whose subject name the register holds under exactly one code.

    Rows of ``SUGGESTION_HEADERS``, for the register authority to review and send back as a
    corrections file; nothing is changed here.
    """
    out: list[tuple[str, ...]] = []
    for dataset in catalog.datasets.values():
        s = dataset.subject
        if dataset.category == "register" or not s.uscc_field:
            continue
        out += con.execute(
            """WITH reg AS (
                SELECT name_key(name) AS name_key, any_value(uscc) AS uscc FROM clean.subjects
                WHERE in_register GROUP BY 1 HAVING count(DISTINCT uscc) = 1
            ),
            open_records AS (
                SELECT normalize_code(json_extract_string(q.record, $code_path)) AS old_code,
                    json_extract_string(q.record, $name_path) AS name
                FROM quarantine.rows q
                WHERE q.status = 'open' AND q.dataset_id = $dataset
                  AND list_contains(list_transform(q.reasons, lambda r: split_part(r, ':', 2)), $field)
            )
            SELECT DISTINCT o.old_code, reg.uscc, o.name, $dataset
            FROM open_records o JOIN reg ON reg.name_key = name_key(o.name)
            WHERE o.old_code IS NOT NULL AND o.old_code <> reg.uscc
            ORDER BY ALL""",
            {"code_path": f'$."{s.uscc_field}"', "name_path": f'$."{s.name_field}"', "dataset": dataset.id,
             "field": s.uscc_field},
        ).fetchall()
    return [list(r) for r in out]
