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
findings, not task failures. **rejected_files** fails, naming them, when a file of the run was
rejected as a whole (unreadable, unrecognized header, ...): it is ledgered and archived, and the
department must send it again. A loaded or rejected file moves to the archive; a file that fails
to load (a fault, not its content) stays in the inbox and fails the load task after the other
files are done. Loading updates the asset `credit://warehouse/clean/<dataset>`.
"""

from __future__ import annotations

from airflow.sdk import dag, get_parsing_context, task

from credit.dag_common import DEFAULT_ARGS, INGEST_EVERY, START, WRITER_POOL, clean_asset, ingest_dag_id
from foundation.catalog import Dataset, get_catalog
from foundation.settings import get_settings


def build_ingest_dag(dataset: Dataset):
    @dag(
        dag_id=ingest_dag_id(dataset.id),
        description=f"{dataset.name_zh}: inbox -> staging -> warehouse",
        schedule=INGEST_EVERY,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["credit", "ingest", dataset.category],
        doc_md=__doc__,
    )
    def ingest():
        @task
        def discover(data_interval_end=None) -> list[list[str]]:
            """Files of this dataset waiting in the inbox that were received before the run's data interval
            ended (paths relative to the inbox), in at most MAX_STAGE_TASKS groups: one file per stage task in
            everyday runs, several per task when a run catches up on a backlog (a backfill of a past interval
            takes what had arrived by then)."""
            from credit.inbox import received_before, scan_inbox, stage_groups

            settings = get_settings()
            files = [f for f in scan_inbox(settings, get_catalog()) if f.dataset_id == dataset.id]
            return stage_groups([f.relpath for f in received_before(settings, files, data_interval_end)])

        @task(max_active_tis_per_dagrun=2)
        def stage(relpaths: list[str]) -> list[dict[str, str]]:
            """Read each file and stage it as Parquet; data problems become quarantine reasons.

            A file the reader cannot open at all is handed on as an error: load rejects and archives it.
            """
            from credit import pipeline

            settings, catalog = get_settings(), get_catalog()
            out = []
            for relpath in relpaths:
                department = relpath.split("/", 1)[0]
                try:
                    staged = pipeline.stage(settings, catalog, pipeline.inbox_path(settings, relpath), dataset.id,
                                            department)
                except Exception as exc:  # noqa: BLE001 - recorded as the file's rejection by load
                    out.append({"relpath": relpath, "error": f"{type(exc).__name__}: {exc}"})
                else:
                    out.append({"relpath": relpath, "staged": staged.name})
            return out

        @task(pool=WRITER_POOL, outlets=[clean_asset(dataset.id)], trigger_rule="all_done")
        def load(staged: list[list[dict[str, str]] | None], run_id: str | None = None) -> dict:
            """Load every staged batch (one writer), export Parquet, archive the files."""
            from credit import pipeline
            from warehouse.db import open_warehouse

            settings, catalog = get_settings(), get_catalog()
            work = []
            # Index by length: iterating the lazy XCom sequence probes one past its end.
            for s in (item for i in range(len(staged)) for item in (staged[i] or [])):
                item = pipeline.InboxFile(s["relpath"], s["relpath"].split("/", 1)[0], dataset.id)
                if "error" in s:
                    work.append((pipeline.unreadable(item, s["error"]), None))
                else:
                    work.append((item, settings.staging / s["staged"]))
            with open_warehouse(settings, catalog) as con:
                run = pipeline.ingest_inbox_files(con, settings, catalog, work, run_id=run_id)
            if run.failed:
                raise RuntimeError("some files could not be loaded:\n" + "\n".join(run.failed))
            return run.totals()

        @task
        def rejected_files(totals: dict) -> int:
            """Fail visibly when a file of this run was rejected as a whole (ledgered and archived, no rows
            loaded): the department must send it again. The other files of the run are loaded either way."""
            from airflow.sdk.exceptions import AirflowFailException

            if totals["rejected"]:
                raise AirflowFailException("rejected files (see audit.batches):\n" + "\n".join(totals["rejected"]))
            return 0

        @task(pool=WRITER_POOL)
        def code_gate(totals: dict) -> int:
            """Record batches whose 重错码率 exceeds the catalog threshold (default 1/10000) in
            audit.gate_findings: a warning, the run stays green. Fail visibly when a rate is above the error
            threshold of catalogs/alerts.yaml (1%), naming department, dataset and batch.

            Runs after every file is loaded: the data is in clean or quarantine either way.
            """
            from airflow.sdk.exceptions import AirflowFailException

            from warehouse.alerts import load_alert_rules
            from warehouse.code_gate import check_batches
            from warehouse.db import open_warehouse

            settings = get_settings()
            error_above = load_alert_rules(settings.catalog_dir).rates.error_if_code_error_above
            with open_warehouse(settings, get_catalog()) as con:
                findings = check_batches(con, totals["loaded_batches"], error_above)
            errors = [f for f in findings if f.severity == "error"]
            if errors:
                raise AirflowFailException(f"重错码率 above the error threshold {error_above:.2%}:\n"
                                           + "\n".join(f.describe() for f in errors))
            return len(findings)

        @task(trigger_rule="all_done")
        def validate(totals: dict | None) -> list[dict]:
            """Check the batches loaded in this run against the dataset's Great Expectations suite: one GX
            validation per department over its batches of the run (a catch-up run of many months: one each).

            Runs inside an in-memory DuckDB over the batch's raw Parquet (the warehouse is not
            opened); stores the GX results under <data root>/gx/ (the monthly close and the daily report
            rebuild the Data Docs). Failed expectations are findings for the reviewers, not a task failure.
            """
            from expectations.run import gx_session, validate_batches

            batches = (totals or {}).get("loaded_batches", [])
            if not batches:
                return []
            settings, catalog = get_settings(), get_catalog()
            with gx_session(settings) as context:  # one validate task at a time rewrites GX's files
                found = validate_batches(settings, catalog, batches, context=context, docs=False)
            return [v.to_dict() for v in found]

        @task(pool=WRITER_POOL)
        def record_validation(validations: list[dict]) -> int:
            """Write the expectation results to audit.expectation_results (one warehouse writer)."""
            from expectations.run import BatchValidation, record_results
            from warehouse.db import open_warehouse

            if not validations:
                return 0
            with open_warehouse(get_settings(), get_catalog()) as con:
                return record_results(con, [BatchValidation.from_dict(v) for v in validations])

        totals = load(stage.expand(relpaths=discover()))
        rejected_files(totals)
        code_gate(totals)
        record_validation(validate(totals))

    return ingest()


# Airflow's dynamic-DAG guidance: a task process asks for one DAG, so build only that one.
# Each DAG registers itself when built (auto_register); no module globals needed.
_wanted = get_parsing_context().dag_id
for _dataset in get_catalog().datasets.values():
    if _wanted is None or _wanted == ingest_dag_id(_dataset.id):
        build_ingest_dag(_dataset)
