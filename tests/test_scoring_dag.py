"""The scoring DAG (dags/credit_scoring.py) through Airflow's ``dag.test()`` and a real metadata database.

On a copy of the sample city (conftest ``demo_city``: the snapshot city of 2022, loaded through every DAG;
its penalties were all published until 2023 at the latest, so no warning list of 2025 or later holds
anybody), the tax bureau sends two new penalties of May 2025 against one company
(``inbox/tax/税务行政处罚_2025-05.jsonl``, received 2025-06-03), then

    credit run-dags --dag credit_ingest_admin_penalty --dag credit_scoring --from 2025-05 --to 2025-05

runs, as a backfill closing May 2025 does, the ingest DAG and the scoring DAG for the interval
``[2025-06-01, 2025-07-01)`` (Asia/Shanghai): the scoring is as of 2025-06-30. Checked: the DAG run and
its tasks in the SQLite metadata database, its row in ``mart.score_runs`` (triggered by the Airflow run),
every registered subject scored (against the generator's truth and the clean register), the Parquet
exports, and the warning list: exactly the company with its two penalties, exported to Parquet.
The DAG's schedule (every clean asset, or the first of the month) and its as-of day are checked on
the parsed DAG file, the score task's skip of an asset-triggered run with nothing loaded since the day's
last score run by calling it on an empty warehouse, and the order ``credit run-dags`` runs it in on the
demo city's own run and in a backfill's plan.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from conftest import credit_cli, truth_rows

from credit.airflow_run import CLOSE_DAG, DAILY_REPORT, SCORING_DAG, backfill_plan, dag_order, month_start
from foundation.catalog import get_catalog
from foundation.scoring_model import load_warning_rules
from foundation.settings import PROJECT_ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")
AS_OF = date(2025, 6, 30)
MODEL = "city_2025"  # catalogs/scoring/city_2025.yaml: in force 2025-01-01 .. 2026-03-31
RUN_ID = f"{AS_OF:%Y%m%d}-{MODEL}-01"
LOGICAL = datetime(2025, 7, 1, tzinfo=SHANGHAI)  # the end of the interval of the close of May 2025
RECEIVED = datetime(2025, 6, 3, 10, 0, tzinfo=SHANGHAI)
NEW_FILE = "税务行政处罚_2025-05.jsonl"
# document, decision date, validity end = publication end
PENALTIES = [("乳税罚〔2025〕901号", date(2025, 5, 6), date(2026, 5, 5)),
             ("乳税罚〔2025〕902号", date(2025, 5, 20), date(2026, 5, 19))]


# --- end to end: ingest, then the scoring DAG ---------------------------------------------------------------


def _send_penalties(root: Path) -> dict:
    """Two penalties of the tax bureau against the company of the first row of its 2022 file (a valid row),
    with new documents and dates; returns that row."""
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    sha, first_row = con.execute(
        "SELECT b.file_sha256, min(c.source_row) FROM audit.batches b JOIN clean.admin_penalty c USING (batch_id) "
        "WHERE b.department = 'tax' GROUP BY ALL").fetchall()[0]
    con.close()
    lines = (root / "archive" / sha[:2] / f"{sha}.jsonl").read_text(encoding="utf-8").splitlines()
    template = json.loads(lines[first_row - 1])
    path = root / "inbox" / "tax" / NEW_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [template | {"CF_WSH": doc, "CF_JDRQ": decided.isoformat(), "CF_YXQ": until.isoformat(),
                        "CF_GSJZQ": until.isoformat()} for doc, decided, until in PENALTIES]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.utime(path, (RECEIVED.timestamp(), RECEIVED.timestamp()))
    return template


@pytest.fixture(scope="module")
def scored(demo_city, tmp_path_factory):
    """(data root, the penalised company's row): the demo city copied, the new file sent, both DAGs run."""
    root = tmp_path_factory.mktemp("scoring") / "data"
    shutil.copytree(demo_city, root, symlinks=True)
    company = _send_penalties(root)
    credit_cli(["run-dags", "--dag", "credit_ingest_admin_penalty", "--dag", SCORING_DAG,
                "--from", "2025-05", "--to", "2025-05"], root)
    return root, company


def _airflow(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / "airflow" / "airflow.db")


def _utc(value: datetime) -> str:
    return value.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S")


def _our_run(root: Path) -> tuple:
    """(run id, run type, state, data interval start, end) of the scoring run of the backfill."""
    db = _airflow(root)
    runs = db.execute("SELECT run_id, run_type, state, data_interval_start, data_interval_end FROM dag_run "
                      "WHERE dag_id = ? AND logical_date LIKE ?", [SCORING_DAG, _utc(LOGICAL) + "%"]).fetchall()
    db.close()
    assert len(runs) == 1, runs
    return runs[0]


def _warehouse(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)


@pytest.mark.e2e
@pytest.mark.slow
def test_the_dag_run_its_tasks_and_the_scores_asset(scored):
    root, _ = scored
    run_id, run_type, state, start, end = _our_run(root)
    assert (run_type, state) == ("manual", "success")
    # the interval of June 2025 in Shanghai
    assert (start[:19], end[:19]) == (_utc(datetime(2025, 6, 1, tzinfo=SHANGHAI)), _utc(LOGICAL))
    db = _airflow(root)
    tasks = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                            [SCORING_DAG, run_id]).fetchall())
    events = db.execute(
        "SELECT a.uri, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE e.source_dag_id = ? AND e.source_run_id = ?", [SCORING_DAG, run_id]).fetchall()
    summary = db.execute("SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = 'report_summary' "
                         "AND key = 'return_value'", [SCORING_DAG, run_id]).fetchall()
    ingest = db.execute("SELECT state FROM dag_run WHERE dag_id = 'credit_ingest_admin_penalty' "
                        "AND logical_date LIKE ?", [_utc(LOGICAL) + "%"]).fetchall()
    db.close()
    assert tasks == {"score": "success", "report_summary": "success"}
    assert [(uri, json.loads(extra)) for uri, extra in events] == [
        ("credit://warehouse/mart/scores", {"run_id": RUN_ID, "as_of": AS_OF.isoformat()})]
    assert ingest == [("success",)]
    value = json.loads(summary[0][0])
    assert value == {"run_id": RUN_ID, "as_of": AS_OF.isoformat(), "subjects": 300, "warned": 1,
                     "guided_this_year": 1, "target": load_warning_rules(get_catalog()).annual_target}


@pytest.mark.e2e
@pytest.mark.slow
def test_the_score_run_scores_every_registered_subject(scored):
    root, _ = scored
    run_id, *_ = _our_run(root)
    # the truth: every register row loaded is one company (300 entities asked for, loaded from two files)
    registered = sum(int(f["rows_loaded"]) for f in truth_rows(root, "files.csv") if f["dataset_id"] == "legal_entity")
    assert registered == 300
    con = _warehouse(root)
    runs = con.execute("SELECT run_id, model_id, as_of, subjects, facts, started_at <= finished_at "
                       "FROM mart.score_runs WHERE triggered_by = ?", [run_id]).fetchall()
    facts = con.execute("SELECT count(*) FROM mart.credit_records WHERE as_of = ?", [AS_OF]).fetchall()[0][0]
    register = {k for (k,) in con.execute(
        "SELECT DISTINCT c.subject_key FROM clean.legal_entity c JOIN audit.batches b USING (batch_id) "
        "WHERE b.received_at < ? AND b.superseded_by IS NULL", [LOGICAL]).fetchall()}
    scored_keys = {k for (k,) in con.execute("SELECT subject_key FROM mart.scores WHERE run_id = ?",
                                             [RUN_ID]).fetchall()}
    con.close()
    assert runs == [(RUN_ID, MODEL, AS_OF, registered, facts, True)]
    assert facts > registered  # every subject's register fact, and the records of every other dataset
    assert len(register) == registered and scored_keys == register
    assert not any(k.startswith(("P:", "N:")) for k in scored_keys)


@pytest.mark.e2e
@pytest.mark.slow
def test_the_parquet_exports_equal_the_tables(scored):
    root, _ = scored
    mart = root / "mart"
    scores = mart / "scores" / f"run_id={RUN_ID}"
    assert sorted(p.name for p in scores.iterdir()) == ["score_lines.parquet", "scores.parquet"]
    con = _warehouse(root)

    def same(parquet: Path, table_sql: str, columns: str, params: list) -> int:
        exported = con.execute(f"SELECT {columns} FROM read_parquet(?) ORDER BY ALL", [str(parquet)]).fetchall()
        stored = con.execute(f"SELECT {columns} FROM ({table_sql}) ORDER BY ALL", params).fetchall()
        assert exported == stored, parquet
        return len(exported)

    assert same(scores / "scores.parquet", "SELECT * FROM mart.scores WHERE run_id = ?",
                "run_id, subject_key, score, grade, grade_by_points", [RUN_ID]) == 300
    named = con.execute("SELECT count(*) FROM read_parquet(?) WHERE uscc = subject_key AND subject_name <> '' "
                        "AND model_id = ? AND as_of = ?", [str(scores / "scores.parquet"), MODEL, AS_OF]).fetchall()
    assert named == [(300,)]
    lines = same(scores / "score_lines.parquet", "SELECT * FROM mart.score_lines WHERE run_id = ?",
                 "subject_key, line_no, line_kind, points", [RUN_ID])
    assert lines >= 300  # a base line per subject at least
    # the explanation: a subject's lines add up to its score
    assert con.execute(
        "SELECT count(*) FROM read_parquet(?) s JOIN (SELECT subject_key, round(sum(points), 2) AS total "
        "FROM read_parquet(?) GROUP BY ALL) l USING (subject_key) WHERE abs(s.score - l.total) < 1e-9",
        [str(scores / "scores.parquet"), str(scores / "score_lines.parquet")]).fetchall() == [(300,)]
    facts = mart / "credit_records" / f"as_of={AS_OF}" / "credit_records.parquet"
    assert same(facts, "SELECT * FROM mart.credit_records WHERE as_of = ?",
                "record_id, subject_key, dataset_id, status", [AS_OF]) > 300
    con.close()


@pytest.mark.e2e
@pytest.mark.slow
def test_the_warning_list_holds_the_company_with_its_two_penalties(scored):
    root, company = scored
    uscc, name = company["CF_XDR_SHXYM"], company["CF_XDR_MC"]
    texts = " ".join(str(company.get(f) or "") for f in ("CF_NR", "CF_SY", "BZ"))
    severity = "minor" if "简易程序" in texts else "general"  # publication.yaml: 罚款 is general, 简易程序 minor
    # both decided under NDRC Order 58 (2023-05-01 .. 2026-03-31): 3 months' minimum, repairable
    expected = [(AS_OF, uscc, uscc, name, 2, "admin_penalty", doc, decided, severity, "ndrc_order_58", True,
                 date(decided.year, decided.month + 3, decided.day)) for doc, decided, _ in PENALTIES]
    columns = ("as_of, subject_key, uscc, subject_name, records, dataset_id, document, decided, severity, "
               "rule_version, repairable, repairable_from")
    parquet = root / "mart" / "credit_warnings" / f"as_of={AS_OF}" / "credit_warnings.parquet"
    con = _warehouse(root)
    exported = con.execute(f"SELECT {columns} FROM read_parquet(?) ORDER BY decided", [str(parquet)]).fetchall()
    stored = con.execute("SELECT count(*), count(DISTINCT subject_key) FROM mart.credit_warnings WHERE as_of = ?",
                         [AS_OF]).fetchall()
    steps = con.execute("SELECT DISTINCT steps_zh FROM read_parquet(?)", [str(parquet)]).fetchall()
    con.close()
    assert exported == expected
    assert stored == [(2, 1)]
    assert steps == [(load_warning_rules(get_catalog()).steps["admin_penalty"],)]


@pytest.mark.e2e
def test_run_dags_scores_after_every_ingest_and_before_the_close(demo_city):
    """`credit run-dags` (the demo city's own run) includes the scoring DAG, between the ingest DAGs and the
    monthly close, and it succeeded."""
    db = _airflow(demo_city)
    runs = db.execute("SELECT dag_id, state, start_date, end_date FROM dag_run ORDER BY start_date").fetchall()
    db.close()
    order = [r[0] for r in runs]
    assert order.count(SCORING_DAG) == 1 and [r[1] for r in runs if r[0] == SCORING_DAG] == ["success"]
    at = order.index(SCORING_DAG)
    assert {d for d in order[:at] if d.startswith("credit_ingest_")} == {
        f"credit_ingest_{d}" for d in get_catalog().datasets}
    assert order[at + 1:] == [CLOSE_DAG]


# --- the order and the backfill plan ------------------------------------------------------------------------


@pytest.mark.unit
def test_the_scoring_dag_runs_after_the_ingest_dags_and_before_the_close():
    ingest = [f"credit_ingest_{d}" for d in get_catalog().datasets]
    order = dag_order([CLOSE_DAG, SCORING_DAG, DAILY_REPORT, "credit_inbox_triage", *reversed(ingest)])
    assert order[0] == "credit_inbox_triage" and order[1] == "credit_ingest_legal_entity"
    assert order[-2:] == [SCORING_DAG, CLOSE_DAG]
    assert order.index("credit_ingest_credit_repair") < order.index(SCORING_DAG)  # repairs before scoring


@pytest.mark.unit
@pytest.mark.parametrize("every_month", [False, True])
def test_a_backfill_scores_each_closed_interval_just_before_its_close(every_month):
    ingest = ["credit_ingest_legal_entity", "credit_ingest_admin_penalty"]
    plan = backfill_plan([*ingest, SCORING_DAG, CLOSE_DAG, DAILY_REPORT], date(2025, 1, 1), date(2025, 3, 1),
                         ingest_every_month=every_month)
    ends = [month_start(date(2025, m, 1)) for m in (3, 4, 5)]  # the closes of Jan .. Mar run in Feb .. Apr
    monthly = [[(SCORING_DAG, end, None), (CLOSE_DAG, end, {"report": end == ends[-1]})] for end in ends]
    steps = [(p.dag_id, p.logical_date, p.conf) for p in plan]
    if every_month:
        assert steps == [s for end, m in zip(ends, monthly, strict=True) for s in [(d, end, None) for d in ingest] + m]
    else:
        assert steps == [(d, ends[-1], None) for d in ingest] + [s for m in monthly for s in m]
    assert DAILY_REPORT not in {p.dag_id for p in plan}
    only = backfill_plan([SCORING_DAG], date(2025, 5, 1), date(2025, 5, 1), ingest_every_month=False)
    assert [(p.dag_id, p.logical_date) for p in only] == [(SCORING_DAG, LOGICAL)]


# --- the parsed DAG: schedule, tasks, as-of day --------------------------------------------------------------

DAG_CHECK = """
import json, sys
from datetime import datetime
sys.path.insert(0, {root!r})
from credit.airflow_env import apply_airflow_environ
from foundation.settings import get_settings
apply_airflow_environ(get_settings())
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={dag!r})
dag = bag.dags["credit_scoring"]
timetable = dag.timetable
import importlib.util
spec = importlib.util.spec_from_file_location("credit_scoring_dag", {dag!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
cases = json.loads({cases!r})
print(json.dumps({{
    "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
    "schedule": type(timetable).__name__,
    "inner": type(timetable.timetable).__name__,
    "assets": sorted(a.uri for a in timetable.asset_condition.objects),
    "condition": type(timetable.asset_condition).__name__,
    "cron": timetable.timetable._expression,
    "timezone": str(timetable.timetable._timezone),
    "tasks": {{t.task_id: [t.pool, t.retries, sorted(o.uri for o in t.outlets)] for t in dag.tasks}},
    "downstream": {{t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}},
    "tags": sorted(dag.tags), "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
    "params": sorted(dag.params),
    "as_of": [module.scoring_as_of(c[0], datetime.fromisoformat(c[1]) if c[1] else None,
                                   datetime.fromisoformat(c[2]), c[3]).isoformat() for c in cases],
}}))
"""

AS_OF_CASES = [
    # run type, data interval end, run after, param -> as-of day
    (("scheduled", "2026-11-30T16:00:00+00:00", "2026-11-30T16:00:00+00:00", None), "2026-11-30"),  # 12-01 00:00
    (("backfill", "2025-07-01T00:00:00+08:00", "2025-07-01T00:00:00+08:00", None), "2025-06-30"),
    (("manual", "2026-12-01T00:00:00+08:00", "2026-12-02T03:00:00+00:00", None), "2026-11-30"),  # dag.test(): now
    (("asset_triggered", "2026-12-02T17:30:00+00:00", "2026-12-02T17:30:00+00:00", None), "2026-12-03"),  # 01:30
    (("asset_triggered", "2026-11-01T00:00:00+08:00", "2026-12-02T03:00:00+00:00", None), "2026-12-02"),
    (("manual", None, "2026-12-02T15:59:00+00:00", None), "2026-12-02"),  # no data interval: the day it runs
    (("manual", None, "2026-12-02T16:00:00+00:00", None), "2026-12-03"),
    (("scheduled", "2026-12-01T00:00:00+08:00", "2026-12-01T00:00:00+08:00", "2026-06-30"), "2026-06-30"),  # param
    (("asset_triggered", None, "2026-12-02T03:00:00+00:00", "2025-01-31"), "2025-01-31"),
]


@pytest.mark.integration
def test_the_dag_runs_monthly_and_on_every_clean_asset_and_emits_the_scores_asset(tmp_path):
    from credit.airflow_env import WRITER_POOL

    dag_file = PROJECT_ROOT / "dags" / "credit_scoring.py"
    code = DAG_CHECK.format(root=str(PROJECT_ROOT), dag=str(dag_file),
                            cases=json.dumps([list(c) for c, _ in AS_OF_CASES]))
    env = {**os.environ, "CREDIT_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    info = json.loads(done.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert (info["schedule"], info["inner"]) == ("AssetOrTimeSchedule", "CronDataIntervalTimetable")
    assert info["condition"] in ("AssetAny", "SerializedAssetAny")  # any one of the assets, as DagBag holds it
    assert info["assets"] == sorted(f"credit://warehouse/clean/{d}" for d in get_catalog().datasets)
    assert info["cron"] == "0 0 1 * *" and info["timezone"] == "Asia/Shanghai"
    assert info["tasks"] == {"score": [WRITER_POOL, 2, ["credit://warehouse/mart/scores"]],
                             "report_summary": ["default_pool", 2, []]}
    assert info["downstream"] == {"score": ["report_summary"], "report_summary": []}
    assert info["tags"] == ["credit", "scoring"] and info["catchup"] is False and info["max_active_runs"] == 1
    assert info["params"] == ["as_of"]
    assert info["as_of"] == [expected for _, expected in AS_OF_CASES]


TASK_CHECK = """
import json, sys
from datetime import datetime
from types import SimpleNamespace
sys.path.insert(0, {root!r})
from credit.airflow_env import apply_airflow_environ
from foundation.settings import get_settings
apply_airflow_environ(get_settings())
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowSkipException
score = DagBag(dag_folder={dag!r}).dags["credit_scoring"].get_task("score").python_callable
out = []
for step in json.loads({steps!r}):
    if step[0] == "load":  # a batch loaded now (an empty file: nothing else changes)
        import duckdb
        from foundation.catalog import get_catalog
        from warehouse.db import open_warehouse
        with open_warehouse(get_settings(), get_catalog()) as con:
            con.execute("INSERT INTO audit.batches (batch_id, dataset_id, department, source_file, file_sha256, "
                        "received_at, loaded_at, rows_in, rows_loaded, rows_quarantined, status) VALUES "
                        "(?, 'admin_penalty', 'tax', 'empty.csv', ?, now(), now(), 0, 0, 0, 'empty')",
                        [step[1], step[1]])
        continue
    run = SimpleNamespace(run_type=step[0], run_id=step[1], data_interval_end=None,
                          run_after=datetime.fromisoformat(step[2]))
    try:
        result = score(dag_run=run, params={{}}, outlet_events=None)
        out.append([result["run_id"], result["as_of"], result["subjects"]])
    except AirflowSkipException:
        out.append("skipped")
print(json.dumps(out))
"""


@pytest.mark.integration
def test_a_run_triggered_by_assets_scores_only_when_a_batch_was_loaded_since(tmp_path):
    """Every ingest run updates its clean asset, loaded or not: the asset-triggered run scores only after a load
    since the last score run of its day; a run by hand (or a monthly one) always scores."""
    now = "2026-12-02T03:00:00+00:00"
    steps = [["asset_triggered", "a1", now],  # no score run that day yet: scores
             ["asset_triggered", "a2", now],  # nothing loaded since: skipped
             ["load", "batch-1"],
             ["asset_triggered", "a3", now],  # a batch loaded since: scores again
             ["manual", "m1", now],  # by hand: scores whatever was loaded
             ["asset_triggered", "a4", "2026-12-03T03:00:00+00:00"]]  # a new day without a score run: scores
    code = TASK_CHECK.format(root=str(PROJECT_ROOT), dag=str(PROJECT_ROOT / "dags" / "credit_scoring.py"),
                             steps=json.dumps(steps))
    env = {**os.environ, "CREDIT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        ["20261202-city_2026-01", "2026-12-02", 0], "skipped", ["20261202-city_2026-02", "2026-12-02", 0],
        ["20261202-city_2026-03", "2026-12-02", 0], ["20261203-city_2026-01", "2026-12-03", 0]]
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True)
    by = con.execute("SELECT run_id, triggered_by FROM mart.score_runs ORDER BY run_id").fetchall()
    con.close()
    assert by == [("20261202-city_2026-01", "a1"), ("20261202-city_2026-02", "a3"), ("20261202-city_2026-03", "m1"),
                  ("20261203-city_2026-01", "a4")]
