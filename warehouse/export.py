"""Export clean batches to Parquet for downstream systems (the contract: docs/parquet-contract.md).

Layout: ``<parquet root>/<dataset_id>/department=<code>/batch_id=<id>/part-0.parquet``
(Hive partitions). A partition is written under a hidden temporary name and
renamed into place, so a reader never sees half a file; re-exporting a batch
replaces its partition.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from credit.catalog import Dataset
from warehouse.sql_names import table

ROWS_PER_BATCH = 200_000


def _partitions(root: Path, dataset: Dataset, batch_id: str) -> list[Path]:
    return list((root / dataset.id).glob(f"department=*/batch_id={batch_id}"))


def export_batch(con: duckdb.DuckDBPyConnection, dataset: Dataset, batch_id: str, department: str, root: Path) -> Path | None:
    """Write one batch's clean rows; returns the partition folder, None when it has no clean rows."""
    base = root / dataset.id
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    rows = 0
    cursor = con.cursor()  # its own result stream, whatever ``con`` left unfinished
    try:
        reader = cursor.sql(
            f"SELECT * EXCLUDE (batch_id) FROM {table('clean', dataset.id)} WHERE batch_id = ? ORDER BY source_row",
            params=[batch_id],
        ).to_arrow_reader(ROWS_PER_BATCH)
        with pq.ParquetWriter(tmp / "part-0.parquet", reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        old = _partitions(root, dataset, batch_id)
        if rows == 0:
            for path in old:
                shutil.rmtree(path)
            return None
        final = base / f"department={department}" / f"batch_id={batch_id}"
        final.parent.mkdir(parents=True, exist_ok=True)
        trash = []
        for path in old:
            moved = base / f".old-{uuid.uuid4().hex}"
            path.rename(moved)
            trash.append(moved)
        tmp.rename(final)
        for path in trash:
            shutil.rmtree(path)
        return final
    finally:
        cursor.close()
        if tmp.exists():
            shutil.rmtree(tmp)
