"""Airflow as production runs it (docs/airflow-production.md): PostgreSQL metadata, LocalExecutor,
a real scheduler, DAG processor and API server, against a small sample city.

The test starts its own PostgreSQL from Debian's binaries (``initdb`` + ``pg_ctl``, as the
``postgres`` user when run as root) on 127.0.0.1 on a free port, in a temporary directory, and
stops it afterwards. Without those binaries it fails in CI (``CI=true``; ``make test`` and
``.ci/run`` install them) and is skipped elsewhere with the reason.

Then, with the environment of ``credit.airflow_env.airflow_environ`` plus the overrides below:
``airflow db migrate``, the ``warehouse_writer`` pool, ``airflow scheduler``, ``airflow
dag-processor`` and ``airflow api-server`` (Airflow 3 runs every task through the API server's
execution API) as subprocesses; ``airflow dags trigger`` for ``credit_ingest_admin_penalty``, then
for ``credit_quality_report``; each run is awaited (bounded) in the metadata database.
``[scheduler] use_job_schedule`` is off so that only the triggered runs happen (the ~30 other
DAGs, unpaused at creation, would otherwise all run their schedules on two cores).
"""

from __future__ import annotations

import base64
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa
from conftest import credit_cli
from processes import free_port, stop_process_group

from credit.airflow_env import WRITER_POOL, WRITER_POOL_DESCRIPTION, airflow_environ, api_environ
from foundation.settings import PROJECT_ROOT, get_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INGEST = "credit_ingest_admin_penalty"
REPORT = "credit_quality_report"
RUN_TIMEOUT = 360  # seconds per DAG run, queued to finished
START_TIMEOUT = 180  # API server healthy and both DAGs parsed into the metadata database
AIRFLOW = [sys.executable, "-m", "airflow"]
PG_USER, PG_PASSWORD, PG_DB = "airflow", "e2e-secret", "airflow"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> None:
    """CI promises the set-up (.ci/run, `make test`): there a missing piece fails; elsewhere it skips."""
    if in_ci():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)




def postgres_bindir() -> Path | None:
    """The newest Debian PostgreSQL server binaries (/usr/lib/postgresql/<ver>/bin)."""
    found = [b for b in Path("/usr/lib/postgresql").glob("*/bin") if (b / "initdb").exists()
             and (b / "pg_ctl").exists()]
    return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0) if found else None


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as e:
        return f"({path}: {e})"


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL on 127.0.0.1 (fsync off: test data only); its sync SQLAlchemy URL."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries not found in /usr/lib/postgresql/<ver>/bin: "
                    "apt-get install -y postgresql (as `make test` and .ci/run do)")
    assert bindir is not None
    run_as: list[str] = []
    owner = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        owner = "postgres"
        try:
            import pwd

            pwd.getpwnam(owner)
        except KeyError:
            unavailable("running as root, but there is no `postgres` user to run PostgreSQL as "
                        "(Debian's postgresql package creates it)")
        runuser = shutil.which("runuser")
        run_as = [runuser, "-u", owner, "--"] if runuser else []
        if not runuser:
            unavailable("running as root without `runuser` (util-linux) to start PostgreSQL as `postgres`")

    base = Path(tempfile.mkdtemp(prefix="credit-pg-"))  # not under pytest's root-only tmp dirs
    data, log, pwfile = base / "data", base / "postgres.log", base / "pwfile"

    def pg(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([*run_as, *args], cwd=base, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, (f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}\n"
                                      f"{tail(log) if log.exists() else ''}")
        return done

    try:
        pwfile.write_text(PG_PASSWORD + "\n")
        if owner:
            shutil.chown(base, owner, owner)
            shutil.chown(pwfile, owner, owner)
        pg(str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}", "-E", "UTF8",
           "--no-locale", "--auth-local=trust", "--auth-host=scram-sha-256")
        port = free_port()
        options = (f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off "
                   f"-c full_page_writes=off -c max_connections=200")
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    try:
        admin = sa.create_engine(f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/postgres",
                                 isolation_level="AUTOCOMMIT")
        with admin.connect() as con:
            con.execute(sa.text(f"CREATE DATABASE {PG_DB}"))
        admin.dispose()
        yield f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/{PG_DB}"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       cwd=base, capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


# --- Airflow ------------------------------------------------------------------------------------


@dataclass
class Cluster:
    data_root: Path
    env: dict[str, str]
    engine: sa.Engine
    logs: Path

    def airflow(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([*AIRFLOW, *args], env=self.env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, (f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n"
                                      f"{done.stderr[-5000:]}")
        return done

    def component_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{tail(p, 3000)}" for p in sorted(self.logs.glob("*.log")))




def wait_for(what: str, check, timeout: float, cluster: Cluster, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{cluster.component_logs()}",
                        pytrace=False)
        time.sleep(every)


def environment(data_root: Path, db_url: str, api_port: int) -> dict[str, str]:
    """The production variables (airflow_env, as docs/airflow-production.md has them) plus the test's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDIT_DATA_DIR", str(data_root))
        mp.setenv("CREDIT_AIRFLOW_DB_URL", db_url)
        mp.setenv("CREDIT_AIRFLOW_EXECUTOR", "LocalExecutor")
        mp.delenv("CREDIT_AIRFLOW_DB_URL_ASYNC", raising=False)
        production = airflow_environ(get_settings())
    from cryptography.fernet import Fernet

    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},  # nothing from the caller's Airflow
        **production,
        **api_environ(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),  # the scheduler's log server (8793)
        # One secret set for every component, as the production EnvironmentFile has it.
        "AIRFLOW__API_AUTH__JWT_SECRET": base64.b64encode(os.urandom(64)).decode(),
        "AIRFLOW__API__SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        # Only the runs this test triggers (no schedules, no asset-triggered runs).
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # Faster loops than production's defaults; two cores.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "300",
        "AIRFLOW__API__WORKERS": "1",
    }


@pytest.fixture(scope="module")
def cluster(postgres_url, tmp_path_factory) -> Iterator[Cluster]:
    """A sample city, a migrated PostgreSQL metadata database and the three components running."""
    root = tmp_path_factory.mktemp("airflow-pg")
    data_root = root / "data"
    api_port = free_port()
    env = environment(data_root, postgres_url, api_port)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == postgres_url
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].startswith("postgresql+psycopg_async://")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    logs = root / "components"
    logs.mkdir()
    engine = sa.create_engine(postgres_url)
    c = Cluster(data_root, env, engine, logs)
    with ThreadPoolExecutor(1) as pool:  # the sample city meanwhile
        city = pool.submit(credit_cli, ["demo-data", "--snapshot", "--entities", "120"], data_root)
        c.airflow("db", "migrate")
        c.airflow("pools", "set", WRITER_POOL, "1", WRITER_POOL_DESCRIPTION)
        city.result()

    procs: list[subprocess.Popen] = []
    try:
        for component in ("api-server", "scheduler", "dag-processor"):
            with (logs / f"{component}.log").open("wb") as out:
                procs.append(subprocess.Popen([*AIRFLOW, component], env=env, cwd=PROJECT_ROOT, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True))

        def ready() -> bool:
            for p in procs:
                if p.poll() is not None:
                    pytest.fail(f"{p.args[-1]} exited with {p.returncode}\n{c.component_logs()}", pytrace=False)
            try:
                import httpx

                if httpx.get(f"http://127.0.0.1:{api_port}/api/v2/monitor/health", timeout=5).status_code != 200:
                    return False
            except Exception:
                return False
            with engine.connect() as con:
                parsed = con.execute(sa.text("SELECT count(*) FROM serialized_dag WHERE dag_id IN (:a, :b)"),
                                     {"a": INGEST, "b": REPORT}).scalar()
            return parsed == 2

        wait_for("the API server and both DAGs parsed", ready, START_TIMEOUT, c)
        yield c
    finally:
        for p in procs:
            stop_process_group(p, grace=20)
        engine.dispose()


@dataclass(frozen=True)
class RunResult:
    run_id: str
    state: str
    tasks: dict[str, str]  # task_id or task_id[map_index] -> state
    seconds: float
    timeline: str  # per task: seconds from the trigger to queued, started, ended

    def describe(self) -> str:
        return f"{self.run_id}: {self.state} in {self.seconds:.0f}s\n{self.timeline}"


def trigger_and_wait(c: Cluster, dag_id: str, run_id: str) -> RunResult:
    started = time.monotonic()
    with c.engine.connect() as con:
        t0 = con.execute(sa.text("SELECT now()")).scalar()
    c.airflow("dags", "trigger", dag_id, "--run-id", run_id)

    def finished() -> str | None:
        with c.engine.connect() as con:
            state = con.execute(sa.text("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r"),
                                {"d": dag_id, "r": run_id}).scalar()
        return state if state in ("success", "failed") else None

    state = wait_for(f"{dag_id} run {run_id} to finish", finished, RUN_TIMEOUT, c)
    with c.engine.connect() as con:
        rows = con.execute(sa.text("SELECT task_id, map_index, state, queued_dttm, start_date, end_date "
                                   "FROM task_instance WHERE dag_id = :d AND run_id = :r ORDER BY start_date"),
                           {"d": dag_id, "r": run_id}).fetchall()
    tasks = {(t if m < 0 else f"{t}[{m}]"): str(s) for t, m, s, *_ in rows}

    def at(moment) -> str:
        return f"{(moment - t0).total_seconds():6.1f}" if moment else "     -"

    timeline = "\n".join(f"  {(t if m < 0 else f'{t}[{m}]'):20} {str(s):16} queued {at(q)} started {at(b)} "
                          f"ended {at(e)}" for t, m, s, q, b, e in rows)
    return RunResult(run_id, state, tasks, time.monotonic() - started, timeline)


@dataclass(frozen=True)
class Runs:
    cluster: Cluster
    ingest: RunResult
    report: RunResult
    report_triggered_at: float


@pytest.fixture(scope="module")
def runs(cluster) -> Runs:
    """The ingest run, then the report run (both take the one-slot writer pool), to their ends."""
    ingest = trigger_and_wait(cluster, INGEST, "e2e_postgres_ingest")
    report_at = time.time()
    report = trigger_and_wait(cluster, REPORT, "e2e_postgres_report")
    print(f"\n{ingest.describe()}\n{report.describe()}")
    return Runs(cluster, ingest, report, report_at)


def warehouse(data_root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True)


# --- the tests ----------------------------------------------------------------------------------


def test_the_async_metadata_url_reaches_postgres(cluster):
    """Airflow 3's async engine (API server) uses AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC: it connects."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def probe() -> int:
        engine = create_async_engine(cluster.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"])
        try:
            async with engine.connect() as con:
                return (await con.execute(sa.text("SELECT count(*) FROM dag"))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(probe()) >= 2


def test_ingest_run_loaded_and_the_code_gate_matches_the_findings(runs):
    run, c = runs.ingest, runs.cluster
    logs = c.component_logs()
    terminal = {"success", "failed", "upstream_failed", "skipped"}
    assert run.tasks and set(run.tasks.values()) <= terminal, (run.tasks, logs)
    assert run.tasks.get("load") == "success", (run.tasks, logs)
    for task in ("discover", "validate", "record_validation"):
        assert run.tasks.get(task) == "success", (task, run.tasks, logs)
    staged = [s for t, s in run.tasks.items() if t.startswith("stage[")]
    assert staged and set(staged) == {"success"}, run.tasks

    con = warehouse(c.data_root)
    batches = [b for (b,) in con.execute("SELECT batch_id FROM audit.batches WHERE run_id = ?",
                                         [run.run_id]).fetchall()]
    findings = con.execute("SELECT count(*) FROM audit.gate_findings WHERE list_contains(?, batch_id)",
                           [batches]).fetchone()[0]
    con.close()
    assert batches, "the run loaded no batch"
    # The dirty sample city is above 1/10000 on purpose: a failed gate is a data finding, recorded.
    assert run.tasks["code_gate"] == ("failed" if findings else "success"), (run.tasks, findings)
    if findings:  # a leaf task failed: so did the run
        assert run.state == "failed", run


def test_load_updated_the_clean_asset(runs):
    """The asset event the quality report is scheduled on, recorded by the scheduler's run."""
    with runs.cluster.engine.connect() as con:
        events = con.execute(sa.text(
            "SELECT count(*) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri = :uri AND e.source_dag_id = :d AND e.source_run_id = :r AND e.source_task_id = 'load'"),
            {"uri": "credit://warehouse/clean/admin_penalty", "d": INGEST, "r": runs.ingest.run_id}).scalar()
    assert events == 1


def test_ledger_counts_every_admin_penalty_file_of_the_sample_city(runs):
    data_root = runs.cluster.data_root
    with (data_root / "truth" / "files.csv").open(encoding="utf-8") as fh:
        expected = {
            (f["department"], Path(f["file"]).name): (int(f["rows_in"]), int(f["rows_loaded"]),
                                                      int(f["rows_quarantined"]), f["status"])
            for f in csv.DictReader(fh) if f["dataset_id"] == "admin_penalty"
        }
    con = warehouse(data_root)
    got = {
        (r[0], r[1]): tuple(r[2:6])
        for r in con.execute("SELECT department, source_file, rows_in, rows_loaded, rows_quarantined, status, run_id "
                             "FROM audit.batches WHERE dataset_id = 'admin_penalty'").fetchall()
        if r[6] == runs.ingest.run_id
    }
    con.close()
    assert expected and got == expected


def test_report_run_succeeded_and_wrote_latest_html(runs):
    run = runs.report
    assert run.state == "success", (run, runs.cluster.component_logs())
    assert set(run.tasks) == {"scorecard", "report"} and set(run.tasks.values()) == {"success"}, run.tasks
    latest = runs.cluster.data_root / "reports" / "latest.html"
    assert latest.is_file() and latest.stat().st_mtime >= runs.report_triggered_at - 1
    page = latest.read_text(encoding="utf-8")
    assert "<html" in page.lower() and "行政处罚" in page
