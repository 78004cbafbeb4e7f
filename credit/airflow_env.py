"""Airflow's configuration for this project, as environment variables.

Airflow's home lives under the data root; the metadata database is a SQLite file
there by default (set CREDIT_AIRFLOW_DB_URL to use another). Nothing
phones home: Scarf / Great Expectations analytics and OpenTelemetry stay off.
"""

from __future__ import annotations

import os
import warnings

from foundation.settings import PROJECT_ROOT, Settings

WRITER_POOL = "warehouse_writer"  # one slot: DuckDB has one writer process at a time


def airflow_environ(settings: Settings) -> dict[str, str]:
    home = settings.airflow_home
    return {
        "CREDIT_DATA_DIR": str(settings.data_root),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        # Per data root; CREDIT_AIRFLOW_DB_URL points at another metadata database.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
            "CREDIT_AIRFLOW_DB_URL", f"sqlite:///{home / 'airflow.db'}"
        ),
        "AIRFLOW__METRICS__OTEL_ON": "False",
        "AIRFLOW__TRACES__OTEL_ON": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "False",
    }


def quiet_known_warnings() -> None:
    """Silence the warnings of Airflow's own dependencies that a user can do nothing about, one by one."""
    from starlette.exceptions import StarletteDeprecationWarning

    # dag.test() runs tasks through Airflow's in-process execution API, which imports svcs, whose
    # FastAPI integration imports fastapi.testclient (for type hints); Starlette 1.x there asks
    # for the httpx2 package instead of httpx, which Airflow's own API client is built on: nothing
    # for this project to change.
    warnings.filterwarnings(
        "ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated",
        category=StarletteDeprecationWarning, module=r"fastapi\.testclient",
    )


def apply_airflow_environ(settings: Settings) -> None:
    """Set the variables in this process (before airflow is imported), and quiet its known warnings."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_environ(settings))
    quiet_known_warnings()
