"""
### Inbox triage: files no dataset accepts

A file whose department folder or name matches no catalog dataset (or matches
several), or whose name carries control or shell characters, is never guessed at:
it is recorded in `audit.batches` as `rejected` with the reason, archived by
content hash and taken out of the inbox so that the department can be told.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from credit.dag_common import DEFAULT_ARGS, START, WRITER_POOL
from foundation.catalog import get_catalog
from foundation.settings import get_settings


@dag(
    dag_id="credit_inbox_triage",
    schedule=timedelta(minutes=30),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["credit", "ingest"],
    doc_md=__doc__,
)
def credit_inbox_triage():
    @task(pool=WRITER_POOL)
    def refuse_unroutable(run_id: str | None = None) -> int:
        """Ledger and archive every inbox file that has no dataset."""
        from credit import pipeline
        from credit.inbox import scan_inbox
        from warehouse.db import open_warehouse

        settings, catalog = get_settings(), get_catalog()
        refused = [(f, None) for f in scan_inbox(settings, catalog) if f.dataset_id is None]
        if not refused:
            return 0
        with open_warehouse(settings, catalog) as con:
            run = pipeline.ingest_inbox_files(con, settings, catalog, refused, run_id=run_id)
        if run.failed:
            raise RuntimeError("some files could not be refused:\n" + "\n".join(run.failed))
        return len(run.results)

    refuse_unroutable()


credit_inbox_triage()
