"""
### Quality report (数据质量报告): the department scorecard and the reviewers' HTML report

Runs every morning at 07:00 (Asia/Shanghai), and whenever an ingest DAG updates one of the
assets `credit://warehouse/clean/<dataset>`.

1. **scorecard** recomputes `mart.scorecard` — 合规率, 完整率, 及时率 (Chinese working days,
   holidays and adjusted working weekends), 重错码率 and 纠正率 with numerator, denominator and
   target, per batch, department, dataset and for the city — and exports it to
   `<data root>/parquet/mart_scorecard/scorecard.parquet`.
2. **report** writes `<data root>/reports/quality-report-<date>.html` and `latest.html`: a
   self-contained page in Chinese (no network resources), dated by the run (Asia/Shanghai).

Both tasks open the DuckDB warehouse, so both take the one-slot `warehouse_writer` pool.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, AssetAny, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from credit.airflow_env import WRITER_POOL
from foundation.catalog import get_catalog

TIME_ZONE = "Asia/Shanghai"


def clean_asset(dataset_id: str) -> Asset:
    """The asset an ingest DAG's load task updates (same name and URI as in credit_ingest.py)."""
    return Asset(name=f"clean_{dataset_id}", uri=f"credit://warehouse/clean/{dataset_id}")


@dag(
    dag_id="credit_quality_report",
    description="数据质量评分卡与报告: mart.scorecard -> reports/quality-report-<date>.html",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 7 * * *", timezone=TIME_ZONE),
        assets=AssetAny(*(clean_asset(d) for d in get_catalog().datasets)),
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "credit-data", "retries": 2, "retry_delay": timedelta(seconds=20)},
    tags=["credit", "quality", "report"],
    doc_md=__doc__,
)
def credit_quality_report():
    @task(pool=WRITER_POOL)
    def scorecard() -> dict:
        """Recompute the five rates per batch, department, dataset and city; export them as Parquet."""
        from foundation.catalog import get_catalog
        from foundation.settings import get_settings
        from warehouse.db import connect
        from warehouse.scorecard import write_scorecard

        settings, catalog = get_settings(), get_catalog()
        con = connect(settings, catalog)
        try:
            result = write_scorecard(con, settings, catalog)
        finally:
            con.close()
        return {"rows": result.rows, "parquet": str(result.parquet), "outside_calendar": result.outside_calendar}

    @task(pool=WRITER_POOL)
    def report(dag_run=None) -> str:
        """Write the Chinese HTML report for the run's day; returns its path."""
        from zoneinfo import ZoneInfo

        from credit.report import build_report
        from foundation.catalog import get_catalog
        from foundation.settings import get_settings
        from warehouse.db import connect

        settings, catalog = get_settings(), get_catalog()
        as_of = dag_run.run_after.astimezone(ZoneInfo(TIME_ZONE)).date()
        con = connect(settings, catalog)
        try:
            return str(build_report(con, settings, catalog, as_of))
        finally:
            con.close()

    scorecard() >> report()


credit_quality_report()
