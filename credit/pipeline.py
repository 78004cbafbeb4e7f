"""The ingest steps as plain functions, shared by the CLI, the Airflow DAGs and the tests.

Inbox layout: ``<data root>/inbox/<department>/<file>``; the catalog routes a file to
its dataset by the department and the file name. A processed file leaves the inbox
for the content-addressed archive (``<data root>/archive/``), which keeps every
byte received; the warehouse keeps the rest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from credit.inbox import InboxFile, UnsafePathError, inbox_path, lexical_inbox_path, unsafe_name_reason
from foundation.catalog import Catalog
from foundation.settings import Settings
from transforms.stage import Manifest, batch_id_for, file_sha256, stage_file
from warehouse.correction_file import CorrectionsReport, apply_corrections
from warehouse.crash_points import crash_point
from warehouse.db import open_warehouse
from warehouse.load import LoadResult, load_staged, record_unrouted
from warehouse.partitions import staging_lock


def archive_file(settings: Settings, path: Path, sha256: str) -> Path:
    """Keep the received bytes by content hash: idempotent, and whole after a kill at any point.

    The bytes go to a hidden ``.<name>.tmp`` first (a hard link, else a copy), then are
    renamed into place. A ``.tmp`` a killed run left is reused when it is a link of this
    very file, else replaced (a copy may be cut short); a target already there with the
    same size is the same content (its name is the hash): nothing to do.
    """
    target = settings.archive / sha256[:2] / f"{sha256}{path.suffix.lower()}"
    size = path.stat().st_size
    if _same_size(target, size):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    if not (tmp.exists() and os.path.samefile(tmp, path)):
        tmp.unlink(missing_ok=True)
        try:
            os.link(path, tmp)  # same file system: no copy of a large file
        except FileExistsError:  # another process archives the same bytes right now
            pass
        except OSError:
            shutil.copyfile(path, tmp)
    crash_point("archive.linked")
    try:
        os.replace(tmp, target)
    except FileNotFoundError:  # the other process renamed it first
        if not _same_size(target, size):
            raise
    return target


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def stage(settings: Settings, catalog: Catalog, path: Path, dataset_id: str, department: str) -> Path:
    """Stage one file, holding the staging lock (shared): a writer's start-up clean-up then
    leaves this stager's temp folder alone (warehouse.partitions.clean_staging)."""
    catalog.department(department)
    with staging_lock(settings.staging):
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
    """Load a staged batch (single writer) and drop its staging folder.

    Killed before the folder is gone, the next writer's start removes it (its batch is in the
    ledger, loaded after it was staged).
    """
    result = load_staged(con, settings, staged, catalog, replace=replace, run_id=run_id)
    crash_point("pipeline.loaded")
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
    crash_point("settle.archived")  # killed here, the next run finds the file loaded and archived
    path.unlink()


def refuse(
    con: duckdb.DuckDBPyConnection, settings: Settings, item: InboxFile, run_id: str | None = None
) -> LoadResult:
    """Ledger a file that cannot be ingested as rejected, archive what was received, take it out of the inbox.

    A link or another non-regular entry is never followed or opened: what is archived and ledgered
    is its description (``symbolic link to …``), and the entry itself is removed.
    """
    path = lexical_inbox_path(settings, item.relpath)
    if path.is_symlink() or not path.is_file():
        what = (f"symbolic link {item.relpath} to {os.readlink(path)}" if path.is_symlink()
                else f"{item.relpath}: not a regular file")
        data = what.encode("utf-8", "backslashreplace")
        sha = hashlib.sha256(data).hexdigest()
        note = settings.staging / f"{sha}.link"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_bytes(data)
        archive_file(settings, note, sha)
        note.unlink()
        size = len(data)
    else:
        sha, size = file_sha256(path), path.stat().st_size
    result = record_unrouted(
        con,
        batch_id=batch_id_for("unrouted", sha),  # not the batch id a later, successful load takes
        dataset_id=item.dataset_id,
        department=item.department,
        source_file=path.name,
        file_sha256=sha,
        file_bytes=size,
        reason=item.problem or "unknown_dataset",
        message=item.message,
        run_id=run_id,
    )
    if path.is_symlink() or not path.is_file():
        path.unlink()
    else:
        settle(settings, item.relpath)
    return result if result.outcome == "duplicate" else replace(result, outcome="refused")


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
            "loaded_batches": [r.batch_id for r in fresh if r.outcome != "refused"],
            "rejected": [f"{r.department}/{r.source_file}: {r.message}" for r in fresh if r.status == "rejected"],
        }


def unreadable(item: InboxFile, error: str) -> InboxFile:
    """``item`` to refuse because staging failed with ``error`` (a file the reader cannot open at all)."""
    message = (f"文件无法读取（{error}），已拒收并存档；请重新导出为 UTF-8 CSV 或 XLSX 后再报送 / "
               f"the file could not be read ({error}); it was rejected and archived. "
               "Please export it again as UTF-8 CSV or XLSX and send it again.")
    return replace(item, problem="unreadable_file", message=message)


def ingest_inbox_file(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    catalog: Catalog,
    item: InboxFile,
    staged: Path | None = None,
    run_id: str | None = None,
) -> LoadResult:
    """One inbox file from start to end: refused when no dataset takes it (or ``item.problem`` says why
    not), else staged (unless ``staged`` says where it already is) and loaded; then archived and taken
    out of the inbox. A file the reader cannot open at all is refused, never left waiting."""
    if item.dataset_id is None or item.problem:
        return refuse(con, settings, item, run_id=run_id)
    if staged is None:
        try:
            staged = stage(settings, catalog, inbox_path(settings, item.relpath), item.dataset_id, item.department)
        except Exception as exc:  # the reader failed in a way it does not know: the file is rejected, not stuck
            return refuse(con, settings, unreadable(item, f"{type(exc).__name__}: {exc}"), run_id=run_id)
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
