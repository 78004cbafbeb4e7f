"""Runtime settings, read from environment variables once.

Everything the pipeline writes lives under one data root (default ``./data``,
override with ``CREDIT_DATA_DIR``). The catalog is read from ``catalogs/`` in
the repository unless ``CREDIT_CATALOG_DIR`` points elsewhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_root: Path
    catalog_dir: Path
    duckdb_memory_limit: str
    duckdb_threads: int

    @property
    def inbox(self) -> Path:
        return self.data_root / "inbox"

    @property
    def staging(self) -> Path:
        return self.data_root / "staging"

    @property
    def archive(self) -> Path:
        """Every received file, kept by content hash: the raw layer's ground truth."""
        return self.data_root / "archive"

    @property
    def warehouse_path(self) -> Path:
        return self.data_root / "warehouse.duckdb"

    @property
    def raw_root(self) -> Path:
        """Raw batches as received (restricted: may hold unmasked personal IDs)."""
        return self.data_root / "raw"

    @property
    def parquet_root(self) -> Path:
        return self.data_root / "parquet"

    @property
    def work(self) -> Path:
        """The single writer's work area: a batch's partitions before they are published
        (``<work>/<batch_id>/``; holds raw rows, restricted). Outside the exported trees,
        on the same file system, so publishing is a rename."""
        return self.data_root / "work"

    @property
    def truth_dir(self) -> Path:
        return self.data_root / "truth"

    @property
    def airflow_home(self) -> Path:
        return self.data_root / "airflow"


def get_settings() -> Settings:
    return Settings(
        data_root=Path(os.environ.get("CREDIT_DATA_DIR", "data")).resolve(),
        catalog_dir=Path(os.environ.get("CREDIT_CATALOG_DIR", PROJECT_ROOT / "catalogs")).resolve(),
        duckdb_memory_limit=os.environ.get("CREDIT_DUCKDB_MEMORY_LIMIT", "1GB"),
        duckdb_threads=int(os.environ.get("CREDIT_DUCKDB_THREADS", "2")),
    )
