"""Great Expectations 1.x on DuckDB, through SQLAlchemy and ``duckdb_engine``: the adapter.

In: a GX data context. Out: a GX data source of type ``credit_duckdb`` whose batches
are tables of one in-memory DuckDB database, with the project's value and identifier
macros installed on every connection, so expectations run as SQL inside DuckDB.

Why an adapter: GX's SQL engine runs each metric query in ``with engine.connect()``
and reads the rows after that block has closed the connection. Closing returns the
DBAPI connection to the pool, which rolls it back; duckdb_engine's cursors are the
DuckDB connection itself, so the rollback replaces the pending result and GX reads
no rows (``IndexError`` in ``resolve_metric_bundle``; GX issues #10738 and #11579, the
native engine of PR #12084 is not released). GX already keeps one connection open for
the dialects whose temp tables live in a connection (SQLite, SQL Server, ...); the
engine below does the same for DuckDB, and nothing else. With a static pool the data
source, its execution engine and the runner share one in-memory database.

Written against GX 1.24.1 (see ``GX_VERSION``); tests/test_expectations.py fails loudly
when an upgrade changes the behaviour this relies on.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import sqlalchemy as sa
from great_expectations.compatibility.typing_extensions import override
from great_expectations.datasource.fluent import SQLDatasource
from great_expectations.execution_engine import SqlAlchemyExecutionEngine

from foundation.settings import get_settings
from warehouse.identifier_sql import install_identifier_macros
from warehouse.value_sql import install_value_macros

GX_VERSION = "1.24.1"
IN_MEMORY = "duckdb:///:memory:"


def configure_connection(dbapi_connection, _record=None) -> None:
    """SQLAlchemy ``connect`` listener: DuckDB settings and the project's macros on a new connection."""
    settings = get_settings()
    dbapi_connection.execute("SET threads = ?", [settings.duckdb_threads])
    dbapi_connection.execute("SET memory_limit = ?", [settings.duckdb_memory_limit])
    install_value_macros(dbapi_connection)
    install_identifier_macros(dbapi_connection)


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """GX's SQLAlchemy engine with one persisted connection (results stay readable)."""

    def __init__(self, *args, **kwargs) -> None:
        if "engine" not in kwargs:
            kwargs.setdefault("poolclass", sa.StaticPool)  # one DBAPI connection = one in-memory database
        super().__init__(*args, **kwargs)
        sa.event.listen(self.engine, "connect", configure_connection)

    @override
    @contextmanager
    def get_connection(self) -> Iterator[sa.Connection]:
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
        yield self._connection

    @override
    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        super().close()


class DuckDBDatasource(SQLDatasource):
    """A GX data source over DuckDB (default: one in-memory database per process)."""

    # The ignore: GX's fluent data sources are a pydantic union discriminated by a Literal `type`;
    # each subclass narrows its parent's Literal, which mypy reports as an incompatible override.
    type: Literal["credit_duckdb"] = "credit_duckdb"  # type: ignore[assignment]
    connection_string: str = IN_MEMORY

    @property
    @override
    def execution_engine_type(self) -> builtins.type[SqlAlchemyExecutionEngine]:  # `type` is the field above
        return DuckDBExecutionEngine

    @override
    def get_engine(self) -> sa.Engine:
        # Table assets probe their table through this engine: it must see the same database.
        return self.get_execution_engine().engine


@contextmanager
def batch_connection(datasource: DuckDBDatasource) -> Iterator[sa.Connection]:
    """The connection GX validates on, to create or drop a batch's table (commits on exit)."""
    with datasource.get_execution_engine().get_connection() as connection:
        yield connection
        connection.commit()
