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


NO_RETRY = {
    ("credit_period_close", "notify"),  # a retry would send the digests that went out again
    ("credit_publication", "review"),  # a retry would put the same, by then stale, candidate to review again
}


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


def test_publication_waits_for_a_reviewer_and_branches_on_the_answer(dagbag):
    """review is a human-in-the-loop task: its two options lead to publish or record_rejection; it takes no
    writer slot while it waits, the tasks that write the release do; an unanswered review fails in time."""
    from datetime import timedelta

    dag = dagbag.dags["credit_publication"]
    review = dag.get_task("review")
    assert review.options_mapping == {"批准发布": "publish", "驳回": "record_rejection"}
    assert review.downstream_task_ids == {"publish", "record_rejection"}
    assert set(review.serialized_params) == {"note"}  # the run's as_of is not a question to the reviewer
    assert review.response_timeout == timedelta(days=10)
    assert review.pool != WRITER_POOL
    assert {t: dag.get_task(t).pool for t in ("prepare", "publish", "record_rejection")} == dict.fromkeys(
        ("prepare", "publish", "record_rejection"), WRITER_POOL)
    assert not dag.catchup and dag.max_active_runs == 1
    assert "as_of" in dag.params


def _publication_module():
    import importlib.util

    path = PROJECT_ROOT / "dags" / "credit_publication.py"
    spec = importlib.util.spec_from_file_location("credit_publication_dag", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("param", "interval_end", "as_of"), [
    (None, "2026-12-01T01:00:00+00:00", "2026-12-01"),  # a scheduled interval ends on the 1st at 09:00 Shanghai
    (None, "2026-11-30T16:00:00+00:00", "2026-12-01"),  # midnight in Shanghai: the 1st there, the 30th in UTC
    ("2026-06-30", "2026-12-01T01:00:00+00:00", "2026-06-30"),  # a run by hand with as_of: the param wins
])
def test_publication_as_of_day(dagbag, param, interval_end, as_of):
    from datetime import date, datetime

    assert _publication_module().release_as_of(param, datetime.fromisoformat(interval_end)) == date.fromisoformat(as_of)


@pytest.mark.parametrize(("response", "expected"), [
    ({"responded_by_user": {"id": "wang.fang", "name": "wang.fang"}, "params_input": {"note": " 同意 "}},
     ("wang.fang", "同意")),  # the note as typed, trimmed
    ({"responded_by_user": {"id": "li.qiang", "name": "li.qiang"}, "params_input": {"note": None}},
     ("li.qiang", None)),  # no note
    ({"responded_by_user": {"id": "li.qiang", "name": "li.qiang"}, "params_input": {}}, ("li.qiang", None)),
])
def test_publication_reviewer_from_the_response(dagbag, response, expected):
    assert _publication_module().reviewer(response) == expected


def test_publication_needs_a_named_reviewer(dagbag):
    """A response without a user (a timeout's defaults) can never approve a release."""
    with pytest.raises(ValueError, match="names no user"):
        _publication_module().reviewer({"responded_by_user": None, "params_input": {}})
