"""Run the project's DAGs once each, in process, with Airflow's ``dag.test()``.

This is how ``make demo`` and the end-to-end tests drive the pipeline: real DAG
runs recorded in a real metadata database (SQLite under the data root by default),
without a scheduler. Order: triage, the register (so later datasets can be checked
against it), then every other ingest DAG, the scoring DAG (it reads what they loaded), then the
monthly close (it writes the quality report, whose warning section shows the list scoring wrote).
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from credit.airflow_env import WRITER_POOL, airflow_environ, apply_airflow_environ
from foundation.settings import PROJECT_ROOT, Settings

REGISTER_FIRST = "credit_ingest_legal_entity"
CLOSE_DAG = "credit_period_close"
SCORING_DAG = "credit_scoring"
DAILY_REPORT = "credit_quality_report"
# Waits for a reviewer (human-in-the-loop): dag.test() would wait with it. Run only when named (--dag).
PUBLICATION_DAG = "credit_publication"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class DagRunOutcome:
    dag_id: str
    state: str
    task_states: dict[str, str]
    logical_date: str = ""  # ISO, Asia/Shanghai; "" for a run at the current time


@dataclass(frozen=True)
class DagRunPlan:
    """One ``dag.test()`` call: the DAG, its logical date (None: now) and run conf."""

    dag_id: str
    logical_date: datetime | None = None
    conf: dict | None = None


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=SHANGHAI)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def backfill_plan(dag_ids: list[str], first: date, last: date, ingest_every_month: bool) -> list[DagRunPlan]:
    """Runs that close the months ``first`` .. ``last`` (reporting months) in order.

    The close of month M runs in the interval of the month after it, so every file of M is due.
    The scoring DAG runs for the same interval just before each close, as the scheduler would run it
    at the same hour: it scores as of the same day (the interval's last day), and the close's report
    shows that day's warning list.
    ``ingest_every_month``: before each close, every ingest DAG runs for the interval ending when the
    close's interval ends (a strict backfill: each month takes only the files received by then).
    Otherwise the ingest DAGs run once, for the interval ending with the last close, then the scoring
    runs and closes: the same result, because both count only files received by their own last day.
    """
    # The daily report DAG is dated by the clock; in a backfill each close writes its own report.
    ingest = dag_order([d for d in dag_ids if d not in (CLOSE_DAG, DAILY_REPORT, SCORING_DAG)])
    ends, month = [], first
    while month <= last:
        ends.append(month_start(next_month(next_month(month))))  # the end of the close's interval
        month = next_month(month)

    def monthly(end: datetime) -> list[DagRunPlan]:
        runs = [DagRunPlan(SCORING_DAG, end)] if SCORING_DAG in dag_ids else []
        if CLOSE_DAG in dag_ids:
            runs.append(DagRunPlan(CLOSE_DAG, end, {"report": end == ends[-1]}))
        return runs

    plan: list[DagRunPlan] = []
    for end in ends:
        if ingest_every_month or end == ends[-1]:
            plan += [DagRunPlan(d, end) for d in ingest]
        if ingest_every_month:
            plan += monthly(end)
    if not ingest_every_month:
        plan += [run for end in ends for run in monthly(end)]
    return plan


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
    from foundation.catalog import get_catalog

    catalog = get_catalog()

    def rank(dag_id: str) -> tuple[int, int, str]:
        if dag_id == "credit_inbox_triage":
            return (0, 0, dag_id)
        if dag_id == REGISTER_FIRST:
            return (1, 0, dag_id)
        if dag_id == SCORING_DAG:  # after the ingest DAGs (repairs included): it scores what they loaded
            return (3, 0, dag_id)
        if dag_id == CLOSE_DAG:  # after the ingest DAGs: it checks what they loaded; its report shows the scoring
            return (4, 0, dag_id)
        # Repairs after the datasets whose records they name.
        return (2, catalog.load_rank(dag_id.removeprefix("credit_ingest_")), dag_id)

    return sorted(dag_ids, key=rank)


def load_dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def task_log_path(settings: Settings) -> Path:
    """Where ``run_all`` writes what Airflow prints while the DAGs run (task logs, tracebacks)."""
    return settings.airflow_home / "logs" / "dag-test.log"


def run_all(settings: Settings, only: list[str] | None = None, on_start=None,
            months: tuple[date, date] | None = None, ingest_every_month: bool = False) -> list[DagRunOutcome]:
    """Run the DAGs; Airflow's own output (task logs, a failed task's traceback) goes to
    ``task_log_path``, appended, so the caller's terminal shows outcomes, not Airflow's internals.

    ``months`` (first, last reporting month): a backfill that closes those months (``backfill_plan``);
    without it, every DAG runs once for the current time. The publication DAG runs only when ``only``
    names it: its review waits for a reviewer's answer (Airflow UI or REST API)."""
    apply_airflow_environ(settings)
    migrate_metadata_db(settings)
    log_path = task_log_path(settings)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with log_path.open("a", encoding="utf-8") as log, redirect_stdout(log), redirect_stderr(log):
        dagbag = load_dagbag()
        if dagbag.import_errors:
            raise RuntimeError(f"DAG import errors: {dagbag.import_errors}")
        dag_ids = only or [d for d in dagbag.dag_ids if d != PUBLICATION_DAG]
        if months is None:
            plan = [DagRunPlan(d) for d in dag_order(dag_ids)]
        else:
            plan = backfill_plan(dag_ids, *months, ingest_every_month=ingest_every_month)
        for step in plan:
            if on_start:
                on_start(step.dag_id, len(plan))
            when = step.logical_date.isoformat() if step.logical_date else ""
            print(f"===== {step.dag_id} {when} =====", flush=True)
            kwargs: dict = {"run_conf": step.conf} if step.conf else {}
            if step.logical_date is not None:
                kwargs["logical_date"] = step.logical_date
            run = dagbag.dags[step.dag_id].test(**kwargs)
            states = {ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": str(ti.state)
                      for ti in run.get_task_instances()}
            outcomes.append(DagRunOutcome(step.dag_id, str(run.state), states, when))
    return outcomes
