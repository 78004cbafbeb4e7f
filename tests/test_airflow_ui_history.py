"""The Airflow UI after months of operation: green where the data only warrants warnings, red exactly
where a monthly close found errors, read through the REST API of a running API server.

Takes a copy of the two-year city as `make demo` leaves it (conftest ``two_year_city``: 23 monthly
closes through ``dag.test()`` against its SQLite metadata database) and starts `make airflow-ui` on it
(no schedules run), then lists the runs of ``credit_period_close`` and of the ingest DAGs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import httpx
import pytest
from conftest import TWO_YEAR_TIMEOUT
from test_airflow_ui import HEALTH_TIMEOUT, Standalone, healthy, run_standalone

pytestmark = [pytest.mark.e2e, pytest.mark.slow, TWO_YEAR_TIMEOUT]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def standalone_history(two_year_city, tmp_path_factory) -> Iterator[Standalone]:
    root = tmp_path_factory.mktemp("airflow-ui-history")
    shutil.copytree(two_year_city, root / "data", symlinks=True)
    with run_standalone(root / "data", root) as s:
        yield s


def _headers(s: Standalone) -> dict:
    passwords = s.airflow_home / "simple_auth_manager_passwords.json.generated"
    s.wait(f"{passwords.name}", passwords.is_file, 30, every=1)
    password = json.loads(passwords.read_text())["admin"]
    r = httpx.post(f"{s.base_url}/auth/token", json={"username": "admin", "password": password}, timeout=30)
    assert r.status_code == 201, (r.status_code, r.text)
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_closes_are_red_exactly_where_errors_and_green_where_only_warnings(standalone_history, two_year_city):
    s = standalone_history
    s.wait("the API server's health endpoint", lambda: healthy(s), HEALTH_TIMEOUT)
    headers = _headers(s)
    r = httpx.get(f"{s.base_url}/api/v2/dags/credit_period_close/dagRuns", params={"limit": 100},
                  headers=headers, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)
    runs = r.json()["dag_runs"]
    con = duckdb.connect(str(two_year_city / "warehouse.duckdb"), read_only=True)
    severities = dict(con.execute(
        "SELECT as_of, list(DISTINCT severity ORDER BY severity) FROM audit.alerts GROUP BY as_of").fetchall())
    con.close()
    assert len(runs) == 23
    seen: dict = {}
    for run in runs:
        # The interval's end (UTC in the API): the close is as of the day before, in Asia/Shanghai.
        end = datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00")).astimezone(SHANGHAI)
        as_of = (end - timedelta(days=1)).date()
        kinds = severities.get(as_of, [])
        seen[as_of] = (run["state"], kinds)
        assert run["state"] == ("failed" if "error" in kinds else "success"), seen
    assert any(state == "success" and "warning" in kinds for state, kinds in seen.values()), seen
    assert any(state == "failed" for state, _ in seen.values()), seen
    # Ingest runs: red only where a batch's 重错码率 is above the error threshold or a file was rejected.
    r = httpx.get(f"{s.base_url}/api/v2/dags/~/dagRuns", params={"limit": 500}, headers=headers, timeout=30)
    assert r.status_code == 200, (r.status_code, r.text)
    states = {run["state"] for run in r.json()["dag_runs"] if run["dag_id"].startswith("credit_ingest_")}
    assert "success" in states
