"""Airflow's configuration for this project, as environment variables.

Airflow's home lives under the data root; the metadata database is a SQLite file
there by default (set CREDIT_AIRFLOW_DB_URL to use another). Nothing
phones home: Scarf / Great Expectations analytics and OpenTelemetry stay off.
"""

from __future__ import annotations

import os

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


def apply_airflow_environ(settings: Settings) -> None:
    """Set the variables in this process (before airflow is imported)."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.update(airflow_environ(settings))
