"""
### Monthly close (月度结账): missing feeds, rates with a severity, department digests, the report

One run per calendar month (Asia/Shanghai data interval `[first day, first day of the next month)`);
it reports the **month before** its interval, whose files are all due within it (catalog `delivery`:
N working days after the period, Chinese calendar with 调休). Nothing reads the clock: the run counts
only files received by the last day of its interval, so a backfill of past months (`airflow dags
backfill`, or `credit run-dags --from 2025-01 --to 2026-11`) and any re-run give the same result.

1. **close** recomputes `mart.scorecard` as of the interval's last day, the expected deliveries
   `audit.deliveries` (on time / late / missing, days overdue) and the findings `audit.alerts`, with
   the severities of `catalogs/alerts.yaml` (dbt-style warn_if / error_if).
2. **check_errors** fails, naming department, dataset and period, when a finding is an error: a rate
   far from its target, a rate that got worse than last month, a file missing past its deadline.
   Warnings leave the run green.
3. **notify** sends one digest per department with findings (Airflow's SMTP notifier), never one per record.
4. **report** rebuilds the GX Data Docs and writes the Chinese quality report as of the interval's last
   day (a backfill writes only its last month's: run conf `{"report": false}` for the others).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from credit.dag_common import DEFAULT_ARGS, TIME_ZONE, WRITER_POOL
from foundation.catalog import get_catalog
from foundation.settings import get_settings

CLOSE_DAG_ID = "credit_period_close"


@dag(
    dag_id=CLOSE_DAG_ID,
    description="月度结账: 逾期未报、质量告警、部门通报、质量报告",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=TIME_ZONE),
    start_date=pendulum.datetime(2025, 2, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["credit", "quality", "close"],
    doc_md=__doc__,
    params={"report": Param(True, type="boolean",
                            description="Write the quality report (a backfill writes only its last month's)")},
)
def credit_period_close():
    @task(pool=WRITER_POOL)
    def close(data_interval_start=None, data_interval_end=None) -> dict:
        """Scorecard, deliveries and findings as of the interval's last day."""
        from credit.period_close import close_interval
        from warehouse.db import open_warehouse

        settings, catalog = get_settings(), get_catalog()
        with open_warehouse(settings, catalog) as con:
            result = close_interval(con, settings, catalog, data_interval_start, data_interval_end)
        return {"as_of": result.as_of.isoformat(), "period": result.period, "deliveries": result.deliveries,
                "alerts": [a.as_dict() for a in result.alerts]}

    @task
    def check_errors(closed: dict) -> int:
        """Fail on error findings, naming department, dataset and period; warnings pass."""
        from airflow.sdk.exceptions import AirflowFailException

        errors = [a for a in closed["alerts"] if a["severity"] == "error"]
        if errors:
            lines = [f"{a['department']} / {a['dataset_id']} / {a['period']}: {a['message_zh']}" for a in errors]
            raise AirflowFailException(f"{len(errors)} error(s) in the close of {closed['period']}:\n"
                                       + "\n".join(lines))
        return len(closed["alerts"])

    @task(retries=0)  # a retry would send the digests that went out a second time
    def notify(closed: dict) -> int:
        """One digest per department with findings, through Airflow's SMTP notifier."""
        from credit.notify import build_digests, send_digests

        return send_digests(build_digests(closed["alerts"], get_catalog(), closed["period"]))

    @task(pool=WRITER_POOL)
    def report(closed: dict, params=None) -> str:
        """The Chinese quality report as of the interval's last day (unless the run's params say not to)."""
        from datetime import date

        from credit.report import build_report
        from expectations.run import build_docs
        from warehouse.db import open_warehouse

        if params is not None and not params.get("report", True):
            return "not written (params.report = false)"
        settings, catalog = get_settings(), get_catalog()
        build_docs(settings)  # the GX Data Docs the report links to, with every result stored so far
        with open_warehouse(settings, catalog) as con:
            return str(build_report(con, settings, catalog, date.fromisoformat(closed["as_of"])))

    closed = close()
    check_errors(closed)
    notify(closed)
    report(closed)


credit_period_close()
