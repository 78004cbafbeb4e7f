"""Hive-partitioned Parquet folders of the warehouse, replaced atomically.

Layout: ``<base>/<dataset_id>/department=<code>/batch_id=<id>/<file>.parquet``. A
partition is written in a hidden temporary folder and renamed into place, so a
reader never sees half a file; writing a batch again replaces its partition.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path


def temp_dir(base: Path) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    path = base / f".tmp-{uuid.uuid4().hex}"
    path.mkdir()
    return path


def batch_partitions(base: Path, batch_id: str) -> list[Path]:
    return list(base.glob(f"department=*/batch_id={batch_id}"))


def swap_in(base: Path, tmp: Path, department: str, batch_id: str) -> Path:
    """Move ``tmp`` into place as the batch's partition, replacing any older one."""
    final = base / f"department={department}" / f"batch_id={batch_id}"
    final.parent.mkdir(parents=True, exist_ok=True)
    trash = []
    for old in batch_partitions(base, batch_id):
        moved = base / f".old-{uuid.uuid4().hex}"
        old.rename(moved)
        trash.append(moved)
    tmp.rename(final)
    for path in trash:
        shutil.rmtree(path)
    return final


def remove_batch(base: Path, batch_id: str) -> None:
    for path in batch_partitions(base, batch_id):
        shutil.rmtree(path)


def sql_path(path: Path) -> str:
    """A path as an SQL string literal (COPY TO and views cannot take bound parameters)."""
    return "'" + str(path).replace("'", "''") + "'"
