"""Open the warehouse (one DuckDB file): ``connect`` and the ``warehouse`` context manager.

A writer connection installs the SQL macros, recovers from a writer killed before it
(``warehouse.partitions.recover``: interrupted publishes finished, uncommitted ones and
temp folders removed) and brings the schema (warehouse/schema.py) in step with the catalog.
DuckDB allows one writer process at a time: the DAGs take the ``warehouse_writer`` pool slot
before opening it for writing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from foundation.catalog import Catalog
from foundation.settings import Settings
from warehouse.identifier_sql import install_identifier_macros
from warehouse.identifier_udf import register_identifier_udfs
from warehouse.partitions import recover
from warehouse.schema import ensure_publish_intents, ensure_schema
from warehouse.value_sql import install_value_macros


def connect(settings: Settings, catalog: Catalog | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file with the memory and thread limits of the settings."""
    path: Path = settings.warehouse_path
    if read_only and not path.exists():
        raise FileNotFoundError(f"no warehouse yet at {path}: run an ingest first (make demo)")
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(path),
        read_only=read_only,
        config={
            "memory_limit": settings.duckdb_memory_limit,
            "threads": settings.duckdb_threads,
            "temp_directory": str(settings.data_root / "duckdb_tmp"),
        },
    )
    if not read_only:
        install_value_macros(con)
        install_identifier_macros(con)
        register_identifier_udfs(con)  # the vectorized engine: code checks of a batch plan in a few ms
        # What a killed writer left: publishes finished or rolled back, temp folders removed
        # (warehouse/partitions.py). Before the views are refreshed, which read the partitions.
        ensure_publish_intents(con)
        recover(con, settings)
        if catalog is not None:
            ensure_schema(con, catalog, settings)
    return con


@contextmanager
def open_warehouse(
    settings: Settings, catalog: Catalog | None = None, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``with open_warehouse(settings, catalog) as con:`` a connection closed however the block ends."""
    con = connect(settings, catalog, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def id_salt() -> str:
    """Salt for hashing personal IDs. Set CREDIT_ID_SALT in production; the default serves the demo."""
    return os.environ.get("CREDIT_ID_SALT", "rushan-demo-salt")
