"""`make airflow-ui` itself: `airflow standalone` with this project's environment starts, its API
server answers, and the standalone admin sees every DAG of the catalog through the REST API.

Runs the Makefile target (as a developer does) on a free port (``AIRFLOW_PORT``) for a fresh data
root (``CREDIT_DATA_DIR``) with the embedded SQLite metadata database, in its own process group,
stopped as a whole at the end. ``[scheduler] use_job_schedule`` is off, so no DAG runs meanwhile.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from processes import free_port, stop_process_group

from foundation.catalog import get_catalog
from foundation.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HEALTH_TIMEOUT = 240  # make, a fresh SQLite metadata database, the API server
DAGS_TIMEOUT = 180  # the DAG processor's first parse




@dataclass
class Standalone:
    base_url: str
    airflow_home: Path
    log: Path
    proc: subprocess.Popen

    def output(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def wait(self, what: str, check, timeout: float, every: float = 2.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"make airflow-ui exited with {self.proc.returncode} while waiting for {what}:\n"
                            f"{self.output()}", pytrace=False)
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}:\n{self.output()}", pytrace=False)
            time.sleep(every)




@contextmanager
def run_standalone(data_root: Path, root: Path, extra_env: dict[str, str] | None = None) -> Iterator[Standalone]:
    """`make airflow-ui` for ``data_root`` on a free port, its output in ``root``; stopped as a group.

    ``extra_env``: more variables for Airflow (e.g. ``AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS``)."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("`make` is not installed (.ci/run installs it)", pytrace=False)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CREDIT_AIRFLOW"))}
    env.update({
        "CREDIT_DATA_DIR": str(data_root),
        # Only the UI: no schedules, no asset-triggered runs on the data root.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        # The scheduler's and triggerer's log servers listen on 8793 and 8794 by default: a developer's
        # Airflow may have them.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "NO_COLOR": "1",
        **(extra_env or {}),
    })
    log = root / "make-airflow-ui.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([make, "--no-print-directory", "airflow-ui", f"AIRFLOW_PORT={port}"],
                                cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    s = Standalone(f"http://127.0.0.1:{port}", data_root / "airflow", log, proc)
    try:
        yield s
    finally:
        stop_process_group(proc, grace=30)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory) -> Iterator[Standalone]:
    root = tmp_path_factory.mktemp("airflow-ui")
    with run_standalone(root / "data", root) as s:
        yield s


def healthy(s: Standalone) -> dict | None:
    try:
        r = httpx.get(f"{s.base_url}/api/v2/monitor/health", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def test_api_server_answers_and_every_component_is_healthy(standalone):
    """Standalone starts its parts as `airflow` from PATH: all healthy = the target's PATH is right."""
    health = standalone.wait("the API server's health endpoint", lambda: healthy(standalone), HEALTH_TIMEOUT)

    def all_up() -> dict | None:
        h = healthy(standalone) or {}
        return h if all((h.get(c) or {}).get("status") == "healthy" for c in COMPONENTS) else None

    health = standalone.wait("scheduler, triggerer and DAG processor heartbeats", all_up, 120)
    assert {c: health[c]["status"] for c in COMPONENTS} == dict.fromkeys(COMPONENTS, "healthy")


def test_the_admin_sees_every_catalog_dag(standalone):
    s = standalone
    s.wait("the API server's health endpoint", lambda: healthy(s), HEALTH_TIMEOUT)
    # Standalone's simple auth manager generates the admin's password into AIRFLOW_HOME.
    passwords = s.airflow_home / "simple_auth_manager_passwords.json.generated"
    s.wait(f"{passwords.name}", passwords.is_file, 30, every=1)
    password = json.loads(passwords.read_text())["admin"]
    r = httpx.post(f"{s.base_url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    assert r.status_code == 201, (r.status_code, r.text)
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert httpx.get(f"{s.base_url}/api/v2/dags", timeout=30).status_code == 401  # no token, no DAGs

    expected = {f"credit_ingest_{d}" for d in get_catalog().datasets} | {"credit_inbox_triage",
                                                                         "credit_quality_report",
                                                                         "credit_period_close",
                                                                         "credit_publication",
                                                                         "credit_scoring"}

    def listed() -> set[str] | None:
        r = httpx.get(f"{s.base_url}/api/v2/dags", params={"limit": 1000}, headers=headers, timeout=30)
        assert r.status_code == 200, (r.status_code, r.text)
        ids = {d["dag_id"] for d in r.json()["dags"]}
        return ids if expected <= ids else None

    dag_ids = s.wait("every catalog DAG in the API's DAG list", listed, DAGS_TIMEOUT)
    assert dag_ids == expected  # no example DAGs, nothing else
