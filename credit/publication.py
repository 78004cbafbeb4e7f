"""Releases to the credit website (信用网站): prepare a candidate, review it, approve or reject it.

``prepare_release`` computes, as of a day, every published-kind record and its status
(warehouse/public_records.py), and writes a *candidate* under
``<data root>/publication/candidates/<release id>/``: the public records per dataset, what changed
since the last published release (added, changed, expired, withdrawn), findings for the reviewer,
samples, ``manifest.json`` and the Chinese review page ``review.html``. Nothing is public yet.

``approve_release`` publishes an approved candidate as the immutable snapshot the website reads,
``<data root>/publication/<release id>/`` (``records/<dataset>.parquet``, ``index.parquet``, the
incremental ``diff/added.parquet`` and ``diff/withdrawn.parquet``, ``manifest.json`` with approver,
time and content hash), and points ``publication/CURRENT`` at it. Approving twice publishes once;
a rejected candidate publishes nothing; a candidate prepared against an older release than the
one now published is refused (prepare again). The ledger is ``audit.releases``; the contract of
the files is in docs/parquet-contract.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from foundation.catalog import Catalog
from foundation.parquet_out import write_query
from foundation.settings import Settings
from foundation.sql_names import ident
from warehouse.db import connect
from warehouse.public_records import (
    META_COLUMNS,
    install_publication_functions,
    public_columns,
    records_sql,
    register_terms,
)

CITY_TZ = ZoneInfo("Asia/Shanghai")
SAMPLES_PER_KIND = 20
CHANGE_KINDS = ("added", "changed", "expired", "withdrawn")

RELEASES_DDL = """
CREATE SCHEMA IF NOT EXISTS audit;
CREATE TABLE IF NOT EXISTS audit.releases (  -- publication to the credit website (credit/publication.py)
    release_id VARCHAR PRIMARY KEY,
    as_of DATE NOT NULL,
    governing VARCHAR NOT NULL,
    status VARCHAR NOT NULL,            -- prepared | published | rejected
    prepared_at TIMESTAMPTZ NOT NULL,
    prepared_by VARCHAR NOT NULL,
    previous_release VARCHAR,           -- the published release the diff is against
    content_hash VARCHAR NOT NULL,      -- sha256 over the published records (manifest.json)
    records BIGINT NOT NULL,
    added BIGINT NOT NULL,
    changed BIGINT NOT NULL,
    expired BIGINT NOT NULL,
    withdrawn BIGINT NOT NULL,
    findings BIGINT NOT NULL,
    decided_by VARCHAR,
    decided_at TIMESTAMPTZ,
    decision_note VARCHAR
);
"""


class ReleaseError(RuntimeError):
    """A release cannot be prepared, approved or rejected; the message says why in plain words."""


@dataclass(frozen=True)
class Release:
    release_id: str
    as_of: date
    status: str
    content_hash: str
    previous_release: str | None
    prepared_at: datetime
    prepared_by: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    records: int
    changes: dict[str, int]
    findings: int
    counts: dict
    folder: Path  # the published snapshot once published, else the candidate
    candidate: Path

    @property
    def review_page(self) -> Path:
        return self.candidate / "review.html"


def publication_root(settings: Settings) -> Path:
    return settings.data_root / "publication"


def candidate_dir_of(root: Path, release_id: str) -> Path:
    return root / "candidates" / _checked_id(release_id)


def _checked_id(release_id: str) -> str:
    """A release id names folders: only ``YYYYMMDD-NN`` is accepted (never a path from input)."""
    if not (len(release_id) == 11 and release_id[8] == "-" and release_id[:8].isdigit() and release_id[9:].isdigit()):
        raise ReleaseError(f"'{release_id}' is not a release id (they look like 20261130-01): "
                           "see `credit publish status`")
    return release_id


def ensure_releases(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RELEASES_DDL)


# --- prepare ---------------------------------------------------------------------------------------------

def prepare_release(settings: Settings, catalog: Catalog, as_of: date, *, prepared_by: str) -> Release:
    """Compute the public records as of ``as_of`` and write a candidate release for review."""
    root = publication_root(settings)
    with _warehouse(settings, catalog) as con:
        ensure_releases(con)
        previous = _latest_published(con)
        release_id = _next_id(con, as_of)
        work = root / "candidates" / f"{release_id}.tmp"
        shutil.rmtree(work, ignore_errors=True)
        (work / "records").mkdir(parents=True)
        register_terms(con, catalog.publication)
        install_publication_functions(con)
        summary = _write_records(con, settings, catalog, as_of, work, previous)
        prepared_at = datetime.now(UTC)
        manifest = {
            "release_id": release_id, "as_of": as_of.isoformat(), "governing": catalog.publication.governing,
            "prepared_at": prepared_at.isoformat(), "prepared_by": prepared_by, "previous_release": previous,
            "status": "prepared", **summary,
            "dataset_names": {d.id: d.name_zh for d in catalog.published()},
            "department_names": {code: d.name_zh for code, d in catalog.departments.items()},
            "severity_names": dict(catalog.publication.severities),
        }
        _write_json(work / "manifest.json", manifest)
        from credit.review_page import write_review_page

        write_review_page(work, catalog)
        final = candidate_dir_of(root, release_id)
        os.replace(work, final)
        con.execute(
            "INSERT INTO audit.releases VALUES (?, ?, ?, 'prepared', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
            [release_id, as_of, catalog.publication.governing, prepared_at, prepared_by, previous,
             summary["content_hash"], summary["records"], *(summary["changes"][k] for k in CHANGE_KINDS),
             summary["findings"]])
        return _release(con, settings, release_id)


def _write_records(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog, as_of: date, work: Path,
                   previous: str | None) -> dict:
    """records/<dataset>.parquet, index.parquet, changes.parquet, samples.parquet, findings.parquet; the
    manifest's counts."""
    cutoff = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), CITY_TZ)
    bind = {"as_of": as_of, "cutoff": cutoff}
    con.execute("CREATE OR REPLACE TEMP TABLE pub_status (dataset_id VARCHAR, record_key VARCHAR, "
                "department VARCHAR, severity VARCHAR, status VARCHAR, content_hash VARCHAR)")
    con.execute("CREATE OR REPLACE TEMP TABLE pub_findings (dataset_id VARCHAR, record_key VARCHAR, "
                "department VARCHAR, document VARCHAR, kind VARCHAR)")
    samples = []
    for n, ds in enumerate(catalog.published()):
        sql, params = records_sql(catalog, ds)
        temp = ident(f"pub_{n}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {temp} AS {sql}", params | bind)
        cols = ", ".join(ident(c) for c in [c.code for c in public_columns(ds)] + META_COLUMNS)
        write_query(con, f"SELECT {cols} FROM {temp} WHERE status = 'published' ORDER BY record_key", None,
                    work / "records" / f"{ds.id}.parquet")
        con.execute(f"INSERT INTO pub_status SELECT ?, record_key, department, severity, status, content_hash "
                    f"FROM {temp}", [ds.id])
        con.execute(f"""INSERT INTO pub_findings
            SELECT ?, record_key, department, document, 'unclassified' FROM {temp} WHERE status = 'unclassified'
            UNION ALL SELECT ?, record_key, department, document, 'no_rule_version' FROM {temp}
                WHERE status = 'no_rule_version'
            UNION ALL SELECT ?, record_key, department, document, 'end_disagrees' FROM {temp}
                WHERE end_disagrees AND status <> 'not_yet'""", [ds.id] * 3)
        samples.append((ds, temp))
    prev_index = (publication_root(settings) / previous / "index.parquet") if previous else None
    _diff(con, prev_index)
    _write_samples(con, settings, samples, previous, work)
    write_query(con, "SELECT dataset_id, record_key, department, severity, content_hash FROM pub_status "
                     "WHERE status = 'published' ORDER BY dataset_id, record_key", None, work / "index.parquet")
    write_query(con, "SELECT * FROM pub_changes ORDER BY dataset_id, change, record_key", None,
                work / "changes.parquet")
    write_query(con, f"SELECT f.*, {_FINDING_MESSAGE} AS message_zh FROM pub_findings f "
                     "ORDER BY dataset_id, kind, document", None, work / "findings.parquet")
    return _summary(con)


_FINDING_MESSAGE = """CASE kind
    WHEN 'unclassified' THEN '无法按规则判定严重程度（轻微/一般/严重），未予公示，请核定处罚类别后重新报送'
    WHEN 'no_rule_version' THEN '决定日期早于目录中任何公示规则的施行日期，未予公示'
    WHEN 'end_disagrees' THEN '报送的公示截止期超出规则允许的公示期限范围（按较早者截止）'
END"""


def _diff(con: duckdb.DuckDBPyConnection, prev_index: Path | None) -> None:
    """Temp table ``pub_changes``: added / changed against the previous release, and what left it (expired,
    or withdrawn with the reason: repaired, objection, revoked, list_exited, missing ...)."""
    if prev_index is None:
        con.execute("CREATE OR REPLACE TEMP TABLE prev_index AS SELECT * FROM pub_status WHERE false")
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE prev_index AS SELECT * FROM read_parquet(?)", [str(prev_index)])
    con.execute("""
CREATE OR REPLACE TEMP TABLE pub_changes AS
SELECT c.dataset_id, c.record_key, c.department, c.severity,
    CASE WHEN p.record_key IS NULL THEN 'added' ELSE 'changed' END AS change, NULL::VARCHAR AS reason
FROM pub_status c LEFT JOIN prev_index p USING (dataset_id, record_key)
WHERE c.status = 'published' AND (p.record_key IS NULL OR p.content_hash <> c.content_hash)
UNION ALL
SELECT p.dataset_id, p.record_key, p.department, p.severity,
    CASE WHEN c.status = 'expired' THEN 'expired' ELSE 'withdrawn' END, coalesce(c.status, 'missing')
FROM prev_index p LEFT JOIN pub_status c USING (dataset_id, record_key)
WHERE c.status IS DISTINCT FROM 'published'
""")


def _write_samples(con: duckdb.DuckDBPyConnection, settings: Settings, samples: list, previous: str | None,
                   work: Path) -> None:
    """samples.parquet: up to SAMPLES_PER_KIND records of each dataset and change, as JSON objects of their
    public columns (masked as published), for the review page."""
    con.execute("CREATE OR REPLACE TEMP TABLE pub_samples (dataset_id VARCHAR, change VARCHAR, record_key VARCHAR, "
                "department VARCHAR, severity VARCHAR, reason VARCHAR, record_json VARCHAR)")
    for ds, temp in samples:
        fields = [c.code for c in public_columns(ds)] + ["published_from", "published_until", "rule_version"]
        packed = "to_json(struct_pack(" + ", ".join(f"{ident(c)} := r.{ident(c)}" for c in fields) + "))"
        sources = [(temp, ("added", "changed"))]
        old = publication_root(settings) / previous / "records" / f"{ds.id}.parquet" if previous else None
        if old is not None and old.exists():
            con.execute("CREATE OR REPLACE TEMP TABLE prev_records AS SELECT * FROM read_parquet(?)", [str(old)])
            sources.append(("prev_records", ("expired", "withdrawn")))
        for source, kinds in sources:
            con.execute(f"""INSERT INTO pub_samples
                SELECT ch.dataset_id, ch.change, ch.record_key, ch.department, ch.severity, ch.reason, {packed}
                FROM pub_changes ch JOIN {source} r USING (record_key)
                WHERE ch.dataset_id = ? AND list_contains(?, ch.change)
                QUALIFY row_number() OVER (PARTITION BY ch.change ORDER BY ch.record_key) <= ?""",
                        [ds.id, list(kinds), SAMPLES_PER_KIND])
    write_query(con, "SELECT * FROM pub_samples ORDER BY dataset_id, change, record_key", None,
                work / "samples.parquet")


def _summary(con: duckdb.DuckDBPyConnection) -> dict:
    counts: dict = {}
    published = con.execute("SELECT dataset_id, department, coalesce(severity, '-'), count(*) FROM pub_status "
                            "WHERE status = 'published' GROUP BY ALL ORDER BY ALL").fetchall()
    for ds, dept, sev, n in published:
        counts.setdefault(ds, {}).setdefault(dept, {})[sev] = n
    status_counts: dict = {}
    for ds, status, n in con.execute("SELECT dataset_id, status, count(*) FROM pub_status GROUP BY ALL "
                                     "ORDER BY ALL").fetchall():
        status_counts.setdefault(ds, {})[status] = n
    changes = dict.fromkeys(CHANGE_KINDS, 0)
    by_dataset: dict = {}
    for ds, dept, change, n in con.execute("SELECT dataset_id, department, change, count(*) FROM pub_changes "
                                           "GROUP BY ALL ORDER BY ALL").fetchall():
        changes[change] += n
        by_dataset.setdefault(ds, {}).setdefault(dept, {})[change] = n
    records, digest = con.execute(
        "SELECT count(*), sha256(coalesce(string_agg(dataset_id || ':' || record_key || ':' || content_hash, '\n' "
        "ORDER BY dataset_id, record_key), '')) FROM pub_status WHERE status = 'published'").fetchall()[0]
    findings = con.execute("SELECT count(*) FROM pub_findings").fetchall()[0][0]
    return {"records": records, "content_hash": digest, "counts": counts, "status_counts": status_counts,
            "changes": changes, "changes_by_dataset": by_dataset, "findings": findings}


# --- approve / reject --------------------------------------------------------------------------------------

def approve_release(settings: Settings, catalog: Catalog, release_id: str, *, approver: str,
                    note: str | None = None) -> Release:
    """Publish an approved candidate. A published release is returned unchanged (approving twice
    publishes once); a rejected one, or one prepared against an older release than the one now
    published, is refused."""
    _checked_id(release_id)
    if not approver.strip():
        raise ReleaseError("an approval needs the approver's name (--by)")
    root = publication_root(settings)
    with _warehouse(settings, catalog) as con:
        ensure_releases(con)
        row = _row(con, release_id)
        if row["status"] == "published":
            return _release(con, settings, release_id)
        if row["status"] == "rejected":
            raise ReleaseError(f"release {release_id} was rejected by {row['decided_by']} ({row['decision_note']}): "
                               "it cannot be published; prepare a new one")
        latest = _latest_published(con)
        if latest != row["previous_release"]:
            raise ReleaseError(f"release {release_id} was prepared against {row['previous_release'] or 'no release'}, "
                               f"but {latest} has been published since: its changes are out of date; "
                               "run `credit publish prepare` again")
        candidate, final = candidate_dir_of(root, release_id), root / release_id
        decided_at = datetime.now(UTC)
        if not final.exists():  # else a publish cut short after the rename: the snapshot is whole, record it
            _publish_files(candidate, root / f"{release_id}.tmp", final, row, approver, decided_at, note)
        published = json.loads((final / "manifest.json").read_text(encoding="utf-8"))
        if published["content_hash"] != row["content_hash"]:
            raise ReleaseError(f"{final} holds content {published['content_hash'][:12]}…, not the reviewed "
                               f"{row['content_hash'][:12]}…: remove it and approve again")
        con.execute("UPDATE audit.releases SET status = 'published', decided_by = ?, decided_at = ?, "
                    "decision_note = ? WHERE release_id = ?",
                    [published["approved_by"], published["approved_at"], note, release_id])
        _write_current(root, release_id)
        return _release(con, settings, release_id)


def _publish_files(candidate: Path, work: Path, final: Path, row: dict, approver: str, decided_at: datetime,
                   note: str | None) -> None:
    """The snapshot: records, index, diff and manifest, written aside and renamed into place whole."""
    if not candidate.exists():
        raise ReleaseError(f"the candidate folder {candidate} is missing: prepare the release again")
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(candidate / "records", work / "records")
    shutil.copy2(candidate / "index.parquet", work / "index.parquet")
    (work / "diff").mkdir()
    with duckdb.connect() as con:
        changes = str(candidate / "changes.parquet")
        write_query(con, "SELECT dataset_id, record_key, change FROM read_parquet($f) "
                         "WHERE change IN ('added', 'changed') ORDER BY ALL", {"f": changes},
                    work / "diff" / "added.parquet")
        write_query(con, "SELECT dataset_id, record_key, change, reason FROM read_parquet($f) "
                         "WHERE change IN ('expired', 'withdrawn') ORDER BY ALL", {"f": changes},
                    work / "diff" / "withdrawn.parquet")
    manifest = json.loads((candidate / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(status="published", approved_by=approver, approved_at=decided_at.isoformat(), approval_note=note,
                    files={str(p.relative_to(work)): _sha256(p) for p in sorted(work.rglob("*.parquet"))})
    _write_json(work / "manifest.json", manifest)
    for path in work.rglob("*"):
        if path.is_file():
            path.chmod(0o444)  # immutable: the website reads it as it was approved
    os.replace(work, final)


def reject_release(settings: Settings, release_id: str, *, reviewer: str, reason: str) -> Release:
    """Record a rejection: nothing is published; the candidate stays for the record."""
    _checked_id(release_id)
    if not reviewer.strip() or not reason.strip():
        raise ReleaseError("a rejection needs the reviewer's name (--by) and a reason (--reason)")
    with _warehouse(settings, None) as con:
        ensure_releases(con)
        row = _row(con, release_id)
        if row["status"] == "published":
            raise ReleaseError(f"release {release_id} is already published (approved by {row['decided_by']}): "
                               "a published release is not withdrawn by rejecting it; publish a new one")
        if row["status"] == "prepared":
            con.execute("UPDATE audit.releases SET status = 'rejected', decided_by = ?, decided_at = ?, "
                        "decision_note = ? WHERE release_id = ?", [reviewer, datetime.now(UTC), reason, release_id])
        return _release(con, settings, release_id)


# --- reading ------------------------------------------------------------------------------------------------

def release_status(settings: Settings) -> list[Release]:
    """Every release, newest first."""
    if not settings.warehouse_path.exists():
        return []
    with _warehouse(settings, None) as con:
        ensure_releases(con)
        ids = [r[0] for r in con.execute("SELECT release_id FROM audit.releases ORDER BY prepared_at DESC, "
                                         "release_id DESC").fetchall()]
        return [_release(con, settings, i) for i in ids]


def show_release(settings: Settings, release_id: str) -> Release:
    _checked_id(release_id)
    with _warehouse(settings, None) as con:
        ensure_releases(con)
        return _release(con, settings, release_id)


def current_release(settings: Settings) -> str | None:
    """The release the website reads (``publication/CURRENT``)."""
    path = publication_root(settings) / "CURRENT"
    return path.read_text(encoding="utf-8").strip() or None if path.exists() else None


# --- helpers ------------------------------------------------------------------------------------------------

def _warehouse(settings: Settings, catalog: Catalog | None):
    from contextlib import closing

    return closing(connect(settings, catalog))


def _latest_published(con: duckdb.DuckDBPyConnection) -> str | None:
    rows = con.execute("SELECT release_id FROM audit.releases WHERE status = 'published' "
                       "ORDER BY decided_at DESC, release_id DESC LIMIT 1").fetchall()
    return rows[0][0] if rows else None


def _next_id(con: duckdb.DuckDBPyConnection, as_of: date) -> str:
    n = con.execute("SELECT count(*) FROM audit.releases WHERE as_of = ?", [as_of]).fetchall()[0][0]
    return f"{as_of:%Y%m%d}-{n + 1:02d}"


def _row(con: duckdb.DuckDBPyConnection, release_id: str) -> dict:
    cur = con.execute("SELECT * FROM audit.releases WHERE release_id = ?", [release_id])
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    if not rows:
        raise ReleaseError(f"no release {release_id}: see `credit publish status`")
    return dict(zip(names, rows[0], strict=True))


def _release(con: duckdb.DuckDBPyConnection, settings: Settings, release_id: str) -> Release:
    row = _row(con, release_id)
    root = publication_root(settings)
    candidate = candidate_dir_of(root, release_id)
    folder = root / release_id if row["status"] == "published" else candidate
    manifest_path = folder / "manifest.json"
    counts = json.loads(manifest_path.read_text(encoding="utf-8"))["counts"] if manifest_path.exists() else {}
    return Release(
        release_id=release_id, as_of=row["as_of"], status=row["status"], content_hash=row["content_hash"],
        previous_release=row["previous_release"], prepared_at=row["prepared_at"], prepared_by=row["prepared_by"],
        decided_by=row["decided_by"], decided_at=row["decided_at"], decision_note=row["decision_note"],
        records=row["records"], changes={k: row[k] for k in CHANGE_KINDS}, findings=row["findings"],
        counts=counts, folder=folder, candidate=candidate)


def _write_current(root: Path, release_id: str) -> None:
    tmp = root / "CURRENT.tmp"
    tmp.write_text(release_id + "\n", encoding="utf-8")
    os.replace(tmp, root / "CURRENT")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
