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

from airflow.sdk import AssetAny, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from credit.dag_common import DEFAULT_ARGS, START, TIME_ZONE, WRITER_POOL, clean_asset, scores_asset
from foundation.catalog import get_catalog
from foundation.settings import get_settings


@dag(
    dag_id="credit_quality_report",
    description="数据质量评分卡与报告: mart.scorecard -> reports/quality-report-<date>.html",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 7 * * *", timezone=TIME_ZONE),
        # new clean data, or new scores (its warning section shows the list scoring wrote)
        assets=AssetAny(*(clean_asset(d) for d in get_catalog().datasets), scores_asset()),
    ),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["credit", "quality", "report"],
    doc_md=__doc__,
)
def credit_quality_report():
    @task(pool=WRITER_POOL)
    def scorecard(dag_run=None) -> dict:
        """Recompute the five rates (per batch, month, department, dataset and city), the deliveries due and
        the findings as of the run's day; export the scorecard as Parquet."""
        from zoneinfo import ZoneInfo

        from credit.period_close import state_as_of
        from warehouse.db import open_warehouse

        settings, catalog = get_settings(), get_catalog()
        as_of = dag_run.run_after.astimezone(ZoneInfo(TIME_ZONE)).date()
        with open_warehouse(settings, catalog) as con:
            state = state_as_of(con, settings, catalog, as_of)
            rows = state.scorecard.rows
        return {"as_of": as_of.isoformat(), "rows": rows, "alerts": len(state.alerts),
                "errors": len(state.errors)}

    @task(pool=WRITER_POOL)
    def report(dag_run=None) -> str:
        """Write the Chinese HTML report for the run's day; returns its path."""
        from zoneinfo import ZoneInfo

        from credit.report import build_report
        from expectations.run import build_docs
        from warehouse.db import open_warehouse

        settings, catalog = get_settings(), get_catalog()
        as_of = dag_run.run_after.astimezone(ZoneInfo(TIME_ZONE)).date()
        build_docs(settings)  # the GX Data Docs the report links to, with every result stored so far
        with open_warehouse(settings, catalog) as con:
            return str(build_report(con, settings, catalog, as_of))

    scorecard() >> report()


credit_quality_report()
