"""Airflow's configuration for this project, as environment variables.

Airflow's home lives under the data root; the metadata database is a SQLite file
there by default (the embedded set-up of ``make demo`` and ``dag.test()``). In
production (docs/airflow-production.md) ``CREDIT_AIRFLOW_DB_URL`` points at
PostgreSQL (``postgresql+psycopg2://...``) and ``CREDIT_AIRFLOW_EXECUTOR`` picks the
executor (default ``LocalExecutor``, Airflow 3's own default). Nothing phones home:
Scarf / Great Expectations analytics and OpenTelemetry stay off.

``python -m credit.airflow_env [--format shell|systemd] [--api-port N]`` prints the
variables, for ``make airflow-ui`` (shell) or a systemd ``EnvironmentFile=``.

Imported at DAG-parse time (through ``credit.dag_common``): standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import warnings
from collections.abc import Mapping

from foundation.settings import PROJECT_ROOT, Settings

WRITER_POOL = "warehouse_writer"  # one slot: DuckDB has one writer process at a time
WRITER_POOL_DESCRIPTION = "DuckDB warehouse: one writer at a time"
DEFAULT_EXECUTOR = "LocalExecutor"


def metadata_db_url(settings: Settings) -> str:
    """The metadata database: ``CREDIT_AIRFLOW_DB_URL``, else a SQLite file in the data root's Airflow home."""
    return os.environ.get("CREDIT_AIRFLOW_DB_URL") or f"sqlite:///{settings.airflow_home / 'airflow.db'}"


def async_metadata_db_url(sync_url: str) -> str | None:
    """The URL Airflow 3's async engine uses for the same PostgreSQL database, or None for others.

    Left unset, Airflow derives ``postgresql+asyncpg://`` from the sync URL, but asyncpg takes
    none of libpq's query parameters (``?sslmode=require`` fails at connect). psycopg 3 (installed
    by ``apache-airflow[postgres]``) is a libpq driver, so the URL carries over unchanged; it is
    also the default upstream chose for later Airflow releases (apache/airflow#68496).
    """
    scheme, sep, rest = sync_url.partition("://")
    if sep and scheme.split("+", 1)[0] == "postgresql":
        return f"postgresql+psycopg_async://{rest}"
    return None


def api_environ(port: int, host: str = "127.0.0.1") -> dict[str, str]:
    """The API server on another port than 8080: where it listens and where task workers reach it.

    Airflow 3 runs every task through the API server's execution API; its default URL assumes
    ``http://localhost:8080``, so moving the port must move that URL too.
    """
    return {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{port}/execution/",
    }


def airflow_environ(settings: Settings) -> dict[str, str]:
    home = settings.airflow_home
    db_url = metadata_db_url(settings)
    environ = {
        "CREDIT_DATA_DIR": str(settings.data_root),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": os.environ.get("CREDIT_AIRFLOW_EXECUTOR") or DEFAULT_EXECUTOR,
        # Per data root; CREDIT_AIRFLOW_DB_URL points at another metadata database.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__METRICS__OTEL_ON": "False",
        "AIRFLOW__TRACES__OTEL_ON": "False",
        "SCARF_ANALYTICS": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "False",
    }
    async_url = os.environ.get("CREDIT_AIRFLOW_DB_URL_ASYNC") or async_metadata_db_url(db_url)
    if async_url:
        environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = async_url
    environ.update(smtp_environ())
    return environ


SMTP_DEFAULT = ("127.0.0.1", 8025)  # the local relay; `credit demo` runs a sink there (credit/mail_sink.py)


def smtp_host_port() -> tuple[str, int]:
    return os.environ.get("CREDIT_SMTP_HOST", SMTP_DEFAULT[0]), int(os.environ.get("CREDIT_SMTP_PORT",
                                                                                    SMTP_DEFAULT[1]))


def smtp_environ() -> dict[str, str]:
    """Airflow's ``smtp_default`` connection for the departments' digests (credit/notify.py).

    JSON, not a URI: in a URI the provider reads ``disable_ssl=false`` as true. SSL and STARTTLS are off
    for a local relay; host, port and sender come from CREDIT_SMTP_HOST / _PORT / _FROM.
    """
    host, port = smtp_host_port()
    sender = os.environ.get("CREDIT_SMTP_FROM", "credit-center@credit.rushan.example")
    conn = {"conn_type": "smtp", "host": host, "port": port,
            "extra": {"from_email": sender, "disable_ssl": True, "disable_tls": True, "timeout": 30}}
    return {"AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(conn), "AIRFLOW__EMAIL__EMAIL_CONN_ID": "smtp_default",
            "AIRFLOW__EMAIL__FROM_EMAIL": sender}


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


def format_environ(environ: Mapping[str, str], fmt: str = "shell") -> str:
    """``export K='v'`` lines for a POSIX shell, or ``K="v"`` lines for a systemd EnvironmentFile."""
    if fmt == "shell":
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in environ.items())
    if fmt == "systemd":
        def quoted(v: str) -> str:
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

        return "".join(f"{k}={quoted(v)}\n" for k, v in environ.items())
    raise ValueError(f"unknown format {fmt!r}: shell or systemd")


def main(argv: list[str] | None = None) -> int:
    from foundation.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m credit.airflow_env",
                                     description="Print Airflow's environment variables for this data root.")
    parser.add_argument("--format", choices=("shell", "systemd"), default="shell")
    parser.add_argument("--api-port", type=int, help="the API server's port, when not 8080")
    args = parser.parse_args(argv)
    settings = get_settings()
    environ = airflow_environ(settings)
    if args.api_port:
        environ.update(api_environ(args.api_port))
    sys.stdout.write(format_environ(environ, args.format))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
