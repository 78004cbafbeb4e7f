"""Hive-partitioned Parquet folders of the warehouse, published through the ledger, and the
recovery that makes a ``kill -9`` at any moment harmless.

Layout: ``<base>/<dataset_id>/department=<code>/batch_id=<id>/<file>.parquet``, for the raw
layer (``<data root>/raw/``, restricted) and the exported clean layer (``<data root>/parquet/``).

A reader of the export never sees a batch the ledger (``audit.batches``) does not count:

1. the load writes the batch's new partitions in the work area
   ``<data root>/work/<batch_id>/raw/`` and ``.../clean/``, outside the exported trees (nothing,
   hidden or not, is written under them but finished partitions);
2. its transaction writes the ledger row and an ``audit.publish_intents`` row, and commits;
3. ``publish`` renames the partitions into place (one file system), moving the batch's older
   partitions (``--replace``) aside into ``<work>/<batch_id>/old/``, then clears the intent
   and removes the work folder.

Every step of 3 can be repeated: a work partition still there means "not yet in place". On
every writer start (``warehouse.db.connect``) ``recover`` finishes each intent it finds (the
load committed, its renames were cut short) and deletes each work folder without one (the
load never committed: the ledger does not count the batch and nothing was published), so the
warehouse ends as a clean run leaves it. Between the commit and the last rename a reader may
still see the batch's previous partition (``--replace``) or none yet; ``audit.publish_intents``
names the batches in that state. Recovery also removes what killed runs leave elsewhere:
hidden temp entries of older versions under the layers, DuckDB spill files, and staging
leftovers (``clean_staging``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from foundation.settings import Settings
from warehouse.crash_points import crash_point

STAGING_LOCK = ".stage.lock"  # held shared while staging (credit.pipeline.stage), exclusive to clean up
STALE_STAGING_SECONDS = 30 * 60  # a staging temp folder untouched this long is a killed stager's, lock or not


def batch_partitions(base: Path, batch_id: str) -> list[Path]:
    return list(base.glob(f"department=*/batch_id={batch_id}"))


def work_folders(settings: Settings, batch_id: str) -> tuple[Path, Path]:
    """Fresh, empty work folders for a batch's raw and clean partitions (anything older there is dropped)."""
    work = settings.work / batch_id
    if work.exists():
        shutil.rmtree(work)
    (work / "raw").mkdir(parents=True)
    (work / "clean").mkdir()
    return work / "raw", work / "clean"


def discard_work(settings: Settings, batch_id: str) -> None:
    """A load that did not commit: its work folder goes, nothing was published."""
    shutil.rmtree(settings.work / batch_id, ignore_errors=True)


def record_intent(
    con: duckdb.DuckDBPyConnection, batch_id: str, dataset_id: str, department: str, *, clean: bool, now: datetime
) -> None:
    """Inside the load's transaction: its partitions are to be published once it commits."""
    con.execute("DELETE FROM audit.publish_intents WHERE batch_id = ?", [batch_id])
    con.execute("INSERT INTO audit.publish_intents VALUES (?, ?, ?, ?, ?)",
                [batch_id, dataset_id, department, clean, now])


def _place(base: Path, new: Path | None, aside: Path, department: str, batch_id: str, layer: str) -> None:
    """Rename ``new`` into place as the batch's partition, its other partitions aside first.

    ``new`` gone means it is in place already (an earlier, interrupted publish): nothing to do.
    ``new`` None: the batch has no partition in this layer any more, only move the old ones aside.
    """
    if new is not None and not new.exists():
        return
    for old in batch_partitions(base, batch_id):
        aside.mkdir(parents=True, exist_ok=True)
        old.rename(aside / f"{old.parent.name}.{uuid.uuid4().hex[:8]}")
        crash_point(f"publish.{layer}_aside")
    if new is not None:
        final = base / f"department={department}" / f"batch_id={batch_id}"
        final.parent.mkdir(parents=True, exist_ok=True)
        new.rename(final)
        crash_point(f"publish.{layer}_in")


def publish(con: duckdb.DuckDBPyConnection, settings: Settings, batch_id: str) -> bool:
    """Finish the batch's committed publish intent, if it has one (idempotent); True when it had."""
    found = con.execute("SELECT dataset_id, department, clean FROM audit.publish_intents WHERE batch_id = ?",
                        [batch_id]).fetchall()
    if not found:
        return False
    dataset_id, department, clean = found[0]
    work = settings.work / batch_id
    _place(settings.raw_root / dataset_id, work / "raw", work / "old" / "raw", department, batch_id, "raw")
    _place(settings.parquet_root / dataset_id, work / "clean" if clean else None, work / "old" / "clean",
           department, batch_id, "clean")
    con.execute("DELETE FROM audit.publish_intents WHERE batch_id = ?", [batch_id])
    crash_point("publish.intent_cleared")
    shutil.rmtree(work, ignore_errors=True)
    return True


def recover(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Bring the data root to the state a clean run leaves; return the batches whose publish it finished.

    Call it holding the warehouse for writing (DuckDB's lock: no other writer, no reader).
    """
    pending = [b for (b,) in con.execute("SELECT batch_id FROM audit.publish_intents ORDER BY 1").fetchall()]
    finished = [b for b in pending if publish(con, settings, b)]
    if settings.work.is_dir():
        for leftover in settings.work.iterdir():  # no intent: rolled back, or published and cleared
            _remove(leftover)
    for layer in (settings.raw_root, settings.parquet_root):
        for pattern in (".tmp-*", ".old-*"):  # temp and replaced partitions of older versions, the scorecard's temp
            for leftover in layer.glob(f"*/{pattern}"):
                _remove(leftover)
    clean_duckdb_temp(settings.data_root / "duckdb_tmp")
    clean_staging(con, settings)
    return finished


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_duckdb_temp(folder: Path) -> None:
    """DuckDB's spill files of killed processes (``duckdb_temp_<pid>_...``; a clean close removes its own).

    Only warehouse connections spill here, and the writer calling this excludes every other one.
    """
    if not folder.is_dir():
        return
    mine = f"duckdb_temp_{os.getpid()}_"
    for leftover in folder.iterdir():
        if not leftover.name.startswith(mine):
            _remove(leftover)


@contextmanager
def staging_lock(staging: Path, *, exclusive: bool = False) -> Iterator[bool]:
    """``fcntl`` lock of the staging folder: stagers share it; the clean-up takes it alone, without waiting.

    Yields whether the lock is held (a stager always gets it, after at most a clean-up's wait). The
    kernel releases it when its process dies, so a killed stager never blocks the clean-up.
    """
    staging.mkdir(parents=True, exist_ok=True)
    with open(staging / STAGING_LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
            held = True
        except BlockingIOError:
            held = False
        try:
            yield held
        finally:
            if held:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _idle_seconds(folder: Path) -> float:
    try:
        newest = max([folder.stat().st_mtime] + [p.stat().st_mtime for p in folder.rglob("*")])
    except FileNotFoundError:  # removed meanwhile
        return 0.0
    return time.time() - newest


def clean_staging(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Staging leftovers of killed runs.

    - temp folders (``.<dataset>.<hex>.tmp`` of a stager, ``.<batch>.<hex>.check`` of a corrections
      file): removed when no stager holds the staging lock, else once untouched for 30 minutes
      (stage tasks run in parallel with loads);
    - staged batches (``<batch_id>/``) the ledger loaded after they were staged (the load was
      killed before removing its folder), and folders without a manifest (a removal or a
      corrections batch cut short): removed when no stager holds the lock. A batch staged again
      after its load (a duplicate, a ``--replace``) waits for its own load.
    """
    staging = settings.staging
    if not staging.is_dir():
        return
    has_ledger = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'audit' "
                             "AND table_name = 'batches'").fetchall()[0][0]
    with staging_lock(staging, exclusive=True) as alone:
        entries = [e for e in staging.iterdir() if e.name != STAGING_LOCK]
        names = [e.name for e in entries if not e.name.startswith(".")]
        loaded_at: dict[str, datetime] = {}
        if names and has_ledger:
            loaded_at = dict(con.execute("SELECT batch_id, loaded_at FROM audit.batches "
                                         "WHERE list_contains(?, batch_id) AND loaded_at IS NOT NULL",
                                         [names]).fetchall())
        for entry in entries:
            if not entry.is_dir():
                continue
            if entry.name.startswith("."):
                if alone or _idle_seconds(entry) > STALE_STAGING_SECONDS:
                    _remove(entry)
            elif alone:
                manifest = entry / "manifest.json"
                if not manifest.exists():
                    _remove(entry)
                elif entry.name in loaded_at:
                    staged_at = datetime.fromtimestamp(manifest.stat().st_mtime, UTC)
                    if staged_at < loaded_at[entry.name]:
                        _remove(entry)


def sql_path(path: Path) -> str:
    """A path as an SQL string literal (COPY TO and views cannot take bound parameters)."""
    return "'" + str(path).replace("'", "''") + "'"
