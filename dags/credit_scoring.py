"""
### Credit scoring (信用评价、信用预警): scores with explanations and the credit-warning list

Runs once a month (Asia/Shanghai data interval `[first day, first day of the next month)`, started at
00:00 on the 1st) and whenever an ingest DAG updates one of the assets `credit://warehouse/clean/<dataset>`.

The as-of day:

- a monthly (scheduled, backfill or `dag.test()`) run: the last day of its data interval, i.e. the last
  day of the month. Only files received by the end of that day count, so a re-run or a backfill of a
  past month (`credit run-dags --from 2025-01 --to 2026-11`) scores it again the same way;
- a run triggered by new clean data: its day in Asia/Shanghai (today). Every ingest run updates its
  asset, loaded or not: such a run scores only when a batch was loaded since the last score run of
  that day, otherwise **score** is skipped (nothing changed, no new score run);
- the param `as_of` (YYYY-MM-DD), for a run by hand, wins over both.

1. **score** (`credit.scoring_job.score_days`, as `credit score run` does): the day's facts
   `mart.credit_records`, a score run (`mart.score_runs`, `mart.scores`, the explanation
   `mart.score_lines`) with the scoring model in force that day, and the day's credit-warning list
   `mart.credit_warnings`, each exported to Parquet under `<data root>/mart/`. The run's
   `triggered_by` is the Airflow run id. It updates the asset `credit://warehouse/mart/scores`
   (event extra: run id, as-of day) that downstream DAGs can schedule on. A malformed scoring
   catalog (catalogs/scoring/, credit_warnings.yaml, credit_measures.yaml) fails it without retries,
   before anything is written.
2. **report_summary** logs grades, the warning list and the year's repair guidance against the
   annual target (catalogs/credit_warnings.yaml), and returns them.

**score** opens the DuckDB warehouse, so it takes the one-slot `warehouse_writer` pool.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pendulum
from airflow.sdk import AssetAny, Param, dag, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.interval import CronDataIntervalTimetable

from credit.dag_common import DEFAULT_ARGS, START, TIME_ZONE, WRITER_POOL, clean_asset, scores_asset
from foundation.catalog import get_catalog
from foundation.settings import get_settings

SCORING_DAG_ID = "credit_scoring"
MONTHLY = "0 0 1 * *"  # 00:00 on the 1st, Asia/Shanghai: the month before is scored as of its last day


def scoring_as_of(run_type: str, data_interval_end: datetime | None, run_after: datetime,
                  param: str | None = None) -> date:
    """The run's as-of day: the ``as_of`` param; else for a run triggered by assets (or one without a data
    interval) the day of ``run_after``; else the last day inside the data interval. Asia/Shanghai."""
    if param:
        return date.fromisoformat(param)
    if str(getattr(run_type, "value", run_type)) == "asset_triggered" or data_interval_end is None:
        return pendulum.instance(run_after).in_timezone(TIME_ZONE).date()
    return (pendulum.instance(data_interval_end).in_timezone(TIME_ZONE) - timedelta(microseconds=1)).date()


@dag(
    dag_id=SCORING_DAG_ID,
    description="信用评价与信用预警: mart.credit_records -> mart.scores / score_lines -> mart.credit_warnings",
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable(MONTHLY, timezone=TIME_ZONE),
        assets=AssetAny(*(clean_asset(d) for d in get_catalog().datasets)),
    ),
    start_date=START,
    catchup=False,
    max_active_runs=1,  # run ids of a day are numbered in order
    default_args=DEFAULT_ARGS,
    tags=["credit", "scoring"],
    doc_md=__doc__,
    params={"as_of": Param(None, type=["null", "string"], format="date", title="as_of 评价日期",
                           description="Score as of this day (YYYY-MM-DD); empty: the last day of the run's "
                                       "data interval, or today for a run triggered by new data")},
)
def credit_scoring():
    @task(pool=WRITER_POOL, outlets=[scores_asset()])
    def score(dag_run=None, params=None, outlet_events=None) -> dict:
        """Facts, scores with explanations and the warning list as of the run's day, exported to Parquet."""
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from credit.scoring_job import score_days
        from foundation.catalog import CatalogError
        from warehouse.db import open_warehouse

        settings, catalog = get_settings(), get_catalog()
        as_of = scoring_as_of(dag_run.run_type, dag_run.data_interval_end, dag_run.run_after,
                              (params or {}).get("as_of"))
        if str(getattr(dag_run.run_type, "value", dag_run.run_type)) == "asset_triggered":
            with open_warehouse(settings, catalog) as con:
                loaded, scored = con.execute(
                    "SELECT (SELECT max(loaded_at) FROM audit.batches), "
                    "(SELECT max(started_at) FROM mart.score_runs WHERE as_of = ?)", [as_of]).fetchall()[0]
            if scored is not None and (loaded is None or loaded <= scored):
                raise AirflowSkipException(f"no batch loaded since the last score run as of {as_of} ({scored})")
        try:
            (outcome,) = score_days(settings, catalog, [as_of], triggered_by=dag_run.run_id)
        except CatalogError as exc:  # a retry cannot fix a malformed model file
            raise AirflowFailException(f"nothing was scored: the scoring catalog is invalid:\n{exc}") from exc
        run = outcome.run
        if outlet_events is not None:
            outlet_events[scores_asset()].extra = {"run_id": run.run_id, "as_of": as_of.isoformat()}
        return {"as_of": as_of.isoformat(), "run_id": run.run_id, "model_id": run.model_id,
                "subjects": run.subjects, "facts": outcome.facts, "grades": dict(run.grades),
                "warned": outcome.warned, "scores_folder": str(run.folder) if run.folder else None,
                "guidance": [{"year": g.year, "subjects_guided": g.subjects_guided,
                              "repairs_completed": g.repairs_completed, "repairs_by_guided": g.repairs_by_guided,
                              "target": g.target} for g in outcome.guidance]}

    @task
    def report_summary(scored: dict) -> dict:
        """Grades, the warning list and the repair guidance of the run's year, in the task log."""
        import logging

        log = logging.getLogger("credit.scoring")
        grades = ", ".join(f"{g}: {n}" for g, n in sorted(scored["grades"].items()))
        log.info("score run %s (model %s) as of %s: %d subjects, %d facts; grades %s; %d subject(s) warned (信用预警)",
                 scored["run_id"], scored["model_id"], scored["as_of"], scored["subjects"], scored["facts"],
                 grades or "none", scored["warned"])
        year = date.fromisoformat(scored["as_of"]).year
        this_year = next((g for g in scored["guidance"] if g["year"] == year), None)
        for g in scored["guidance"]:
            log.info("%d: %d subject(s) guided of the target %d, %d repair(s) completed (%d after guidance)",
                     g["year"], g["subjects_guided"], g["target"], g["repairs_completed"], g["repairs_by_guided"])
        return {"run_id": scored["run_id"], "as_of": scored["as_of"], "subjects": scored["subjects"],
                "warned": scored["warned"],
                "guided_this_year": this_year["subjects_guided"] if this_year else 0,
                "target": this_year["target"] if this_year else None}

    report_summary(score())


credit_scoring()
