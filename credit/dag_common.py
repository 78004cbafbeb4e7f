"""What every DAG file shares: default arguments, start date, time zone and the asset definitions.

Imported at DAG-parse time, so it stays light: Airflow's SDK and the standard library only.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset

from credit.airflow_env import WRITER_POOL

TIME_ZONE = "Asia/Shanghai"
START = pendulum.datetime(2025, 1, 1, tz=TIME_ZONE)  # the first month the catalog expects deliveries
DEFAULT_ARGS = {"owner": "credit-data", "retries": 2, "retry_delay": timedelta(seconds=20)}
INGEST_EVERY = timedelta(minutes=30)

__all__ = ["DEFAULT_ARGS", "INGEST_EVERY", "START", "TIME_ZONE", "WRITER_POOL", "clean_asset", "ingest_dag_id",
           "scores_asset"]


def ingest_dag_id(dataset_id: str) -> str:
    return f"credit_ingest_{dataset_id}"


def clean_asset(dataset_id: str) -> Asset:
    """The asset an ingest DAG's load task updates and the quality report is scheduled on."""
    return Asset(name=f"clean_{dataset_id}", uri=f"credit://warehouse/clean/{dataset_id}")


def scores_asset() -> Asset:
    """The asset the scoring DAG updates: a new score run (``mart.score_runs``, ``mart.scores``, the explanations)
    and that day's credit-warning list (``mart.credit_warnings``), each exported under ``<data root>/mart/``."""
    return Asset(name="mart_scores", uri="credit://warehouse/mart/scores")
