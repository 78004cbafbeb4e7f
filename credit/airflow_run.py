"""Run the project's DAGs once each, in process, with Airflow's ``dag.test()``.

This is how ``make demo`` and the end-to-end tests drive the pipeline: real DAG
runs recorded in a real metadata database (SQLite under the data root by default),
without a scheduler. Order: triage, the register (so later datasets can be checked
against it), then every other ingest DAG.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from credit.airflow_env import WRITER_POOL, airflow_environ, apply_airflow_environ
from foundation.settings import PROJECT_ROOT, Settings

REGISTER_FIRST = "credit_ingest_legal_entity"


@dataclass(frozen=True)
class DagRunOutcome:
    dag_id: str
    state: str
    task_states: dict[str, str]


def migrate_metadata_db(settings: Settings) -> None:
    """Create or upgrade Airflow's metadata database and the writer pool."""
    env = {**__import__("os").environ, **airflow_environ(settings)}
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    airflow = [sys.executable, "-m", "airflow"]
    for args in (["db", "migrate"], ["pools", "set", WRITER_POOL, "1", "DuckDB warehouse: one writer at a time"]):
        done = subprocess.run([*airflow, *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


def dag_order(dag_ids: list[str]) -> list[str]:
    def rank(dag_id: str) -> tuple[int, str]:
        if dag_id == "credit_inbox_triage":
            return (0, dag_id)
        if dag_id == REGISTER_FIRST:
            return (1, dag_id)
        return (2, dag_id)

    return sorted(dag_ids, key=rank)


def load_dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def task_log_path(settings: Settings) -> Path:
    """Where ``run_all`` writes what Airflow prints while the DAGs run (task logs, tracebacks)."""
    return settings.airflow_home / "logs" / "dag-test.log"


def run_all(settings: Settings, only: list[str] | None = None, on_start=None) -> list[DagRunOutcome]:
    """Run the DAGs; Airflow's own output (task logs, a failed task's traceback) goes to
    ``task_log_path``, appended, so the caller's terminal shows outcomes, not Airflow's internals."""
    apply_airflow_environ(settings)
    migrate_metadata_db(settings)
    log_path = task_log_path(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with log_path.open("a", encoding="utf-8") as log, redirect_stdout(log), redirect_stderr(log):
        dagbag = load_dagbag()
        if dagbag.import_errors:
            raise RuntimeError(f"DAG import errors: {dagbag.import_errors}")
        for dag_id in dag_order(only or list(dagbag.dag_ids)):
            if on_start:
                on_start(dag_id)
            print(f"===== {dag_id} =====", flush=True)
            run = dagbag.dags[dag_id].test()
            states = {ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state)
                      for ti in run.get_task_instances()}
            outcomes.append(DagRunOutcome(dag_id, str(run.state), states))
    return outcomes
