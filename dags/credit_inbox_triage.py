"""
### Inbox triage: files no dataset accepts

A file whose department folder or name matches no catalog dataset (or matches
several), or whose name carries control or shell characters, is never guessed at:
it is recorded in `audit.batches` as `rejected` with the reason, archived by
content hash and taken out of the inbox so that the department can be told.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from credit.airflow_env import WRITER_POOL


@dag(
    dag_id="credit_inbox_triage",
    schedule=timedelta(minutes=30),
    start_date=pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "credit-data", "retries": 2, "retry_delay": timedelta(seconds=20)},
    tags=["credit", "ingest"],
    doc_md=__doc__,
)
def credit_inbox_triage():
    @task(pool=WRITER_POOL)
    def refuse_unroutable(run_id: str | None = None) -> int:
        """Ledger and archive every inbox file that has no dataset."""
        from credit import pipeline
        from foundation.catalog import get_catalog
        from foundation.settings import get_settings
        from warehouse.db import connect

        settings, catalog = get_settings(), get_catalog()
        refused = [f for f in pipeline.scan_inbox(settings, catalog) if f.dataset_id is None]
        if refused:
            con = connect(settings, catalog)
            try:
                for item in refused:
                    pipeline.refuse(con, settings, item, run_id=run_id)
            finally:
                con.close()
        return len(refused)

    refuse_unroutable()


credit_inbox_triage()
