"""The ingest steps as plain functions, shared by the CLI, the Airflow DAGs and the tests.

Inbox layout: ``<data root>/inbox/<department>/<file>``; the catalog routes a file to
its dataset by the department and the file name. A processed file leaves the inbox
for the content-addressed archive (``<data root>/archive/``), which keeps every
byte received; the warehouse keeps the rest.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import duckdb

from foundation.catalog import Catalog
from foundation.settings import Settings
from transforms.stage import Manifest, batch_id_for, file_sha256, stage_file
from warehouse.correction_file import CorrectionsReport, apply_corrections
from warehouse.db import open_warehouse
from warehouse.load import LoadResult, load_staged, record_unrouted

_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f;|&$`<>\\]")


class UnsafePathError(ValueError):
    """A path from a feed or a task argument points outside the inbox or looks like an attack."""


@dataclass(frozen=True)
class InboxFile:
    relpath: str  # relative to the inbox, forward slashes
    department: str
    dataset_id: str | None  # None when the file cannot be routed
    problem: str | None = None  # reason code when it cannot
    message: str = ""


def unsafe_name_reason(name: str) -> str | None:
    if _UNSAFE_NAME.search(name):
        return f"file name {name!r} contains control or shell characters"
    if name in {".", ".."} or name.startswith("-"):
        return f"file name {name!r} is not a plain file name"
    return None


def inbox_path(settings: Settings, relpath: str) -> Path:
    """Resolve a path relative to the inbox, refusing anything that escapes it."""
    pure = PurePosixPath(relpath)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise UnsafePathError(f"refusing path {relpath!r}: it must be relative to the inbox, without '..'")
    inbox = settings.inbox.resolve()
    path = (inbox / pure).resolve()
    if not path.is_relative_to(inbox):
        raise UnsafePathError(f"refusing path {relpath!r}: it resolves outside the inbox")
    if not path.is_file():
        raise UnsafePathError(f"{relpath!r} is not a regular file in the inbox")
    return path


def scan_inbox(settings: Settings, catalog: Catalog) -> list[InboxFile]:
    """Every file waiting in the inbox, with its dataset or the reason it has none."""
    found: list[InboxFile] = []
    if not settings.inbox.exists():
        return found
    for dept_dir in sorted(p for p in settings.inbox.iterdir() if p.is_dir()):
        department = dept_dir.name
        for path in sorted(p for p in dept_dir.rglob("*") if p.is_file()):
            if path.name.startswith(".") or path.suffix in {".part", ".tmp"}:
                continue  # still being written
            relpath = path.relative_to(settings.inbox).as_posix()
            if why := unsafe_name_reason(path.name):
                found.append(InboxFile(relpath, department, None, "unsafe_file_name", why))
            elif department not in catalog.departments:
                found.append(InboxFile(relpath, department, None, "unknown_dataset",
                                       f"folder '{department}' is not a department of the catalog"))
            else:
                matches = catalog.route(department, path.name)
                if len(matches) == 1:
                    found.append(InboxFile(relpath, department, matches[0].id))
                else:
                    which = ", ".join(d.id for d in matches) or "none"
                    found.append(InboxFile(relpath, department, None, "unknown_dataset",
                                           f"'{path.name}' from {department} matches datasets: {which}"))
    return found


def archive_file(settings: Settings, path: Path, sha256: str) -> Path:
    """Keep the received bytes by content hash (idempotent)."""
    target = settings.archive / sha256[:2] / f"{sha256}{path.suffix.lower()}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            os.link(path, tmp)  # same file system: no copy of a large file
        except OSError:
            shutil.copyfile(path, tmp)
        tmp.rename(target)
    return target


def stage(settings: Settings, catalog: Catalog, path: Path, dataset_id: str, department: str) -> Path:
    catalog.department(department)
    return stage_file(path, catalog.dataset(dataset_id), department, settings.staging)


def load(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    catalog: Catalog,
    staged: Path,
    *,
    replace: bool = False,
    run_id: str | None = None,
) -> LoadResult:
    """Load a staged batch (single writer) and drop its staging folder."""
    result = load_staged(con, settings, staged, catalog, replace=replace, run_id=run_id)
    shutil.rmtree(staged)
    return result


def ingest_file(
    settings: Settings,
    catalog: Catalog,
    path: Path,
    dataset_id: str,
    department: str,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    replace: bool = False,
    run_id: str | None = None,
) -> LoadResult:
    """Stage, load and export one file; the file itself is archived, not moved."""
    if why := unsafe_name_reason(path.name):
        raise UnsafePathError(why)
    staged = stage(settings, catalog, path, dataset_id, department)
    sha = Manifest.read(staged).file_sha256
    if con is None:
        with open_warehouse(settings, catalog) as own:
            result = load(own, settings, catalog, staged, replace=replace, run_id=run_id)
    else:
        result = load(con, settings, catalog, staged, replace=replace, run_id=run_id)
    archive_file(settings, path, sha)
    return result


def apply_corrections_file(
    settings: Settings,
    catalog: Catalog,
    path: Path,
    *,
    source: str,
    department: str | None = None,
    run_id: str | None = None,
) -> CorrectionsReport:
    """Apply a corrections file (old code -> new code) and archive it like any received file."""
    if why := unsafe_name_reason(path.name):
        raise UnsafePathError(why)
    if department is not None:
        catalog.department(department)
    with open_warehouse(settings, catalog) as con:
        report = apply_corrections(con, settings, catalog, path, source=source, department=department, run_id=run_id)
    archive_file(settings, path, report.file_sha256)
    return report


def settle(settings: Settings, relpath: str) -> None:
    """A loaded (or refused) inbox file moves to the archive and leaves the inbox."""
    path = inbox_path(settings, relpath)
    archive_file(settings, path, file_sha256(path))
    path.unlink()


def refuse(
    con: duckdb.DuckDBPyConnection, settings: Settings, item: InboxFile, run_id: str | None = None
) -> LoadResult:
    """Ledger a file no dataset accepts, archive it, and take it out of the inbox."""
    path = inbox_path(settings, item.relpath)
    sha = file_sha256(path)
    result = record_unrouted(
        con,
        batch_id=batch_id_for("unrouted", sha),
        department=item.department,
        source_file=path.name,
        file_sha256=sha,
        file_bytes=path.stat().st_size,
        reason=item.problem or "unknown_dataset",
        message=item.message,
        run_id=run_id,
    )
    settle(settings, item.relpath)
    return result


@dataclass
class IngestRun:
    """What one pass over inbox files did: a result per file, and the files that failed."""

    results: list[LoadResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "<relpath>: <what went wrong>"

    def totals(self) -> dict:
        """Counts over the batches loaded now (a duplicate counts as a batch, not its rows)."""
        fresh = [r for r in self.results if r.outcome != "duplicate"]
        return {
            "batches": len(self.results),
            "rows_in": sum(r.rows_in for r in fresh),
            "rows_loaded": sum(r.rows_loaded for r in fresh),
            "rows_quarantined": sum(r.rows_quarantined for r in fresh),
            "duplicates": len(self.results) - len(fresh),
            "loaded_batches": [r.batch_id for r in fresh],
        }


def ingest_inbox_file(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    catalog: Catalog,
    item: InboxFile,
    staged: Path | None = None,
    run_id: str | None = None,
) -> LoadResult:
    """One inbox file from start to end: refused when no dataset takes it, else staged (unless
    ``staged`` says where it already is) and loaded; then archived and taken out of the inbox."""
    if item.dataset_id is None:
        return refuse(con, settings, item, run_id=run_id)
    if staged is None:
        staged = stage(settings, catalog, inbox_path(settings, item.relpath), item.dataset_id, item.department)
    result = load(con, settings, catalog, staged, run_id=run_id)
    settle(settings, item.relpath)
    return result


def ingest_inbox_files(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    catalog: Catalog,
    work: Iterable[tuple[InboxFile, Path | None]],
    *,
    run_id: str | None = None,
    on_file: Callable[[InboxFile], None] | None = None,
) -> IngestRun:
    """The ingest loop of the CLI and the DAGs: every file in turn; one that fails does not stop the others."""
    run = IngestRun()
    for item, staged in work:
        if on_file:
            on_file(item)
        try:
            run.results.append(ingest_inbox_file(con, settings, catalog, item, staged, run_id=run_id))
        except Exception as exc:  # a bad file must not stop the others; it stays in the inbox
            run.failed.append(f"{item.relpath}: {exc}")
    return run
