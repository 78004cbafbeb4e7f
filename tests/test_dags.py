"""DAG integrity: every DAG imports, follows the house policies, and one exists per dataset."""

from __future__ import annotations

import subprocess
import sys

import pytest

from credit.airflow_env import WRITER_POOL, apply_airflow_environ
from foundation.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import os

    from foundation.settings import get_settings

    os.environ["CREDIT_DATA_DIR"] = str(tmp_path_factory.mktemp("dagbag"))
    apply_airflow_environ(get_settings())
    from credit.airflow_run import load_dagbag

    return load_dagbag()


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_one_ingest_dag_per_catalog_dataset(dagbag, catalog):
    ingest = {d for d in dagbag.dag_ids if d.startswith("credit_ingest_")}
    assert ingest == {f"credit_ingest_{ds}" for ds in catalog.datasets}
    assert "credit_inbox_triage" in dagbag.dag_ids


NO_RETRY = {("credit_period_close", "notify")}  # a retry would send the digests that went out again


def test_policies_retries_tags_docs(dagbag):
    for dag_id in dagbag.dag_ids:
        dag = dagbag.dags[dag_id]
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            if (dag_id, task.task_id) in NO_RETRY:
                assert task.retries == 0, (dag_id, task.task_id)
            else:
                assert task.retries >= 1, (dag_id, task.task_id)


def test_warehouse_writers_share_one_pool(dagbag):
    writers = [
        (dag_id, t.task_id, t.pool)
        for dag_id in dagbag.dag_ids
        for t in dagbag.dags[dag_id].tasks
        if t.task_id in {"load", "refuse_unroutable"}
    ]
    assert writers and all(pool == WRITER_POOL for _, _, pool in writers)


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (PROJECT_ROOT / "dags").glob("*.py")))
def test_dag_files_import_nothing_heavy(dag_file):
    """Parsing must stay cheap: no pandas, duckdb, pyarrow, great_expectations or matplotlib at import."""
    code = (
        "import sys, runpy\n"
        f"sys.path.insert(0, {str(PROJECT_ROOT)!r})\n"
        f"runpy.run_path({str(PROJECT_ROOT / 'dags' / dag_file)!r})\n"
        "heavy = ('pandas', 'duckdb', 'pyarrow', 'great_expectations', 'matplotlib')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1:] in ([], [""])


def test_a_task_process_builds_only_its_own_dag(dagbag, monkeypatch):
    """Airflow sets the parsing context in a task's process: the ingest file then builds that DAG alone."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "credit_ingest_admin_penalty")
    one = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "credit_ingest.py"))
    assert one.import_errors == {}
    assert set(one.dag_ids) == {"credit_ingest_admin_penalty"}
    monkeypatch.delenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID")
    every = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "credit_ingest.py"))
    assert len(every.dag_ids) == len({d for d in dagbag.dag_ids if d.startswith("credit_ingest_")}) > 1
