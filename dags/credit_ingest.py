"""
### Ingest DAGs, one per dataset of the collection catalog (信用数据归集清单)

Generated from `catalogs/datasets/*.yaml`: adding a dataset file adds a DAG.
Each run picks up the dataset's files from `<data root>/inbox/<department>/`,
**stages** each file in parallel (read, map headers, write Parquet; no database),
then **loads** the staged batches into the DuckDB warehouse in one task that holds
the single `warehouse_writer` pool slot (DuckDB allows one writer process).
Every row ends in `clean.<dataset>` or `quarantine.rows`; the batch ledger
`audit.batches` records the counts. Then **code_gate** fails (without retry) when a
loaded batch's duplicate/erroneous code rate (重错码率) is above the dataset's catalog
threshold (default 1/10000); the batch is marked in `audit.gate_findings`. Alongside,
**validate** runs the dataset's Great Expectations suite (built from the catalog) on each
loaded batch inside DuckDB, storing results and Data Docs under `<data root>/gx/`, and
**record_validation** writes them to `audit.expectation_results`; failed expectations are
findings, not task failures. A loaded file moves to the archive; a file
that fails to load stays in the inbox and fails the load task after the other
files are done. Loading updates the asset `credit://warehouse/clean/<dataset>`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from credit.airflow_env import WRITER_POOL
from foundation.catalog import Dataset, get_catalog

DEFAULT_ARGS = {"owner": "credit-data", "retries": 2, "retry_delay": timedelta(seconds=20)}
START = pendulum.datetime(2026, 1, 1, tz="Asia/Shanghai")


def clean_asset(dataset_id: str) -> Asset:
    return Asset(name=f"clean_{dataset_id}", uri=f"credit://warehouse/clean/{dataset_id}")


def build_ingest_dag(dataset: Dataset):
    @dag(
        dag_id=f"credit_ingest_{dataset.id}",
        description=f"{dataset.name_zh}: inbox -> staging -> warehouse",
        schedule=timedelta(minutes=30),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["credit", "ingest", dataset.category],
        doc_md=__doc__,
    )
    def ingest():
        @task
        def discover() -> list[str]:
            """Files of this dataset waiting in the inbox (paths relative to it)."""
            from credit.pipeline import scan_inbox
            from foundation.catalog import get_catalog
            from foundation.settings import get_settings

            return [f.relpath for f in scan_inbox(get_settings(), get_catalog()) if f.dataset_id == dataset.id]

        @task(max_active_tis_per_dagrun=2)
        def stage(relpath: str) -> dict[str, str]:
            """Read one file and stage it as Parquet; data problems become quarantine reasons."""
            from credit import pipeline
            from foundation.catalog import get_catalog
            from foundation.settings import get_settings

            settings = get_settings()
            path = pipeline.inbox_path(settings, relpath)
            department = relpath.split("/", 1)[0]
            staged = pipeline.stage(settings, get_catalog(), path, dataset.id, department)
            return {"relpath": relpath, "staged": staged.name}

        @task(pool=WRITER_POOL, outlets=[clean_asset(dataset.id)], trigger_rule="all_done")
        def load(staged: list[dict[str, str] | None], run_id: str | None = None) -> dict[str, int]:
            """Load every staged batch (one writer), export Parquet, archive the files."""
            from credit import pipeline
            from foundation.catalog import get_catalog
            from foundation.settings import get_settings
            from warehouse.db import connect

            settings, catalog = get_settings(), get_catalog()
            totals = {"batches": 0, "rows_in": 0, "rows_loaded": 0, "rows_quarantined": 0, "duplicates": 0,
                      "loaded_batches": []}
            failed = []
            con = connect(settings, catalog)
            try:
                # Index by length: iterating the lazy XCom sequence probes one past its end.
                for item in (staged[i] for i in range(len(staged))):
                    if not item:
                        continue
                    try:
                        result = pipeline.load(con, settings, catalog, settings.staging / item["staged"], run_id=run_id)
                    except Exception as exc:  # one bad batch must not stop the others
                        failed.append(f"{item['relpath']}: {exc}")
                        continue
                    pipeline.settle(settings, item["relpath"])
                    totals["batches"] += 1
                    totals["duplicates"] += result.outcome == "duplicate"
                    if result.outcome != "duplicate":
                        totals["loaded_batches"].append(result.batch_id)
                        totals["rows_in"] += result.rows_in
                        totals["rows_loaded"] += result.rows_loaded
                        totals["rows_quarantined"] += result.rows_quarantined
            finally:
                con.close()
            if failed:
                raise RuntimeError("some files could not be loaded:\n" + "\n".join(failed))
            return totals

        @task(pool=WRITER_POOL)
        def code_gate(totals: dict) -> int:
            """Fail visibly when a batch's 重错码率 exceeds the catalog threshold (default 1/10000).

            Runs after every file is loaded: the data is in clean or quarantine either way;
            the finding is recorded in audit.gate_findings for the reviewers.
            """
            from airflow.sdk.exceptions import AirflowFailException

            from foundation.catalog import get_catalog
            from foundation.settings import get_settings
            from warehouse.code_gate import check_batches
            from warehouse.db import connect

            con = connect(get_settings(), get_catalog())
            try:
                findings = check_batches(con, totals["loaded_batches"])
            finally:
                con.close()
            if findings:
                raise AirflowFailException("重错码率 above target:\n" + "\n".join(f.describe() for f in findings))
            return len(totals["loaded_batches"])

        @task(trigger_rule="all_done")
        def validate(totals: dict | None) -> list[dict]:
            """Check every batch loaded in this run against the dataset's Great Expectations suite.

            Runs inside an in-memory DuckDB over the batch's raw Parquet (the warehouse is not
            opened); stores the GX results and updates Data Docs under <data root>/gx/. Failed
            expectations are findings for the reviewers, not a task failure.
            """
            from expectations.run import gx_session, validate_batch
            from foundation.catalog import get_catalog
            from foundation.settings import get_settings

            batches = (totals or {}).get("loaded_batches", [])
            if not batches:
                return []
            settings, catalog = get_settings(), get_catalog()
            with gx_session(settings) as context:  # one validate task at a time rewrites GX's files
                return [validate_batch(settings, catalog, b, context=context).to_dict() for b in batches]

        @task(pool=WRITER_POOL)
        def record_validation(validations: list[dict]) -> int:
            """Write the expectation results to audit.expectation_results (one warehouse writer)."""
            from expectations.run import BatchValidation, record_results
            from foundation.catalog import get_catalog
            from foundation.settings import get_settings
            from warehouse.db import connect

            if not validations:
                return 0
            con = connect(get_settings(), get_catalog())
            try:
                return record_results(con, [BatchValidation.from_dict(v) for v in validations])
            finally:
                con.close()

        totals = load(stage.expand(relpath=discover()))
        code_gate(totals)
        record_validation(validate(totals))

    return ingest()


for _dataset in get_catalog().datasets.values():
    globals()[f"credit_ingest_{_dataset.id}"] = build_ingest_dag(_dataset)
