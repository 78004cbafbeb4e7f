"""Review before release, end to end: `credit_publication` through a real scheduler and API server, the
reviewers answering through the REST API exactly as the UI's *Required actions* does, and the same
decisions through `credit publish` for reviewers without the UI.

On a copy of the sample city (conftest ``demo_city``: the snapshot city loaded through every DAG),
`make airflow-ui` (``airflow standalone``: scheduler, DAG processor, triggerer, API server, SQLite
metadata database) with two reviewers besides the admin. ``use_job_schedule`` is off: no schedule
starts a run, the runs the test triggers run. Each run waits in ``review`` in the ``awaiting_input``
state (Airflow 3.3: parked, not deferred) until a reviewer answers with
``PATCH /api/v2/dags/{dag}/dagRuns/{run}/taskInstances/review/-1/hitlDetails``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import httpx
import pytest
from test_airflow_ui import HEALTH_TIMEOUT, Standalone, healthy, run_standalone

from foundation.settings import Settings, get_settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "credit_publication"
APPROVE, REJECT = "批准发布", "驳回"  # the review's options (dags/credit_publication.py)
APPROVER, REJECTER = "wang.fang", "li.qiang"  # reviewers: the simple auth manager's role "user"
PARSE_TIMEOUT = 180  # the DAG processor's first parse of dags/
REVIEW_TIMEOUT = 300  # triggered -> prepare done -> review awaiting input
DECISION_TIMEOUT = 240  # answered -> publish or record_rejection done -> run finished
REQUEST_TIMEOUT = 120  # one API request: the SQLite metadata database can stall one for 40 s on a busy machine
AS_OF_APPROVED, AS_OF_REJECTED = date(2026, 11, 30), date(2026, 12, 1)
AS_OF_CLI, AS_OF_CLI_REJECTED = date(2026, 12, 15), date(2026, 12, 16)
CLI_PREPARER, CLI_APPROVER = "zhao.min", "zhang.li"
# The console script, as a reviewer without the UI types it.
CREDIT = [str(Path(sys.executable).with_name("credit"))]


@pytest.fixture(scope="module")
def city(demo_city, tmp_path_factory) -> Path:
    """A private copy of the sample city's data root: this module publishes into it."""
    target = tmp_path_factory.mktemp("publication") / "data"
    shutil.copytree(demo_city, target, symlinks=True)
    return target


def settings_for(data_root: Path) -> Settings:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDIT_DATA_DIR", str(data_root))
        return get_settings()


@dataclass
class Api:
    """The REST API of a running standalone, with a token per user."""

    s: Standalone
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def headers(self, user: str) -> dict[str, str]:
        if user not in self.tokens:
            passwords = self.s.airflow_home / "simple_auth_manager_passwords.json.generated"
            self.s.wait(passwords.name, passwords.is_file, 30, every=1)
            password = json.loads(passwords.read_text())[user]
            r = httpx.post(f"{self.s.base_url}/auth/token", json={"username": user, "password": password},
                           timeout=REQUEST_TIMEOUT)
            assert r.status_code == 201, (r.status_code, r.text)
            self.tokens[user] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return self.tokens[user]

    def call(self, method: str, path: str, user: str = "admin", **kwargs) -> httpx.Response:
        return httpx.request(method, f"{self.s.base_url}/api/v2{path}", headers=self.headers(user),
                             timeout=REQUEST_TIMEOUT, **kwargs)

    def ok(self, method: str, path: str, user: str = "admin", **kwargs):
        r = self.call(method, path, user, **kwargs)
        assert r.status_code in (200, 201), (method, path, r.status_code, r.text)
        return r.json()

    def run_path(self, run_id: str) -> str:
        return f"/dags/{DAG_ID}/dagRuns/{run_id}"

    def task_states(self, run_id: str) -> dict[str, str | None]:
        tis = self.ok("GET", f"{self.run_path(run_id)}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in tis}

    def trigger(self, as_of: date) -> str:
        run = self.ok("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None,
                                                              "conf": {"as_of": as_of.isoformat()}})
        return run["dag_run_id"]

    def wait_for_review(self, run_id: str) -> dict:
        """Wait until ``review`` awaits input (failing early when the run ends first); its HITL detail."""
        def parked() -> bool:
            run = self.ok("GET", self.run_path(run_id))
            assert run["state"] in ("queued", "running"), (run["state"], self.task_states(run_id))
            return self.task_states(run_id).get("review") == "awaiting_input"

        self.s.wait(f"{run_id}: review awaiting input", parked, REVIEW_TIMEOUT)
        return self.ok("GET", f"{self.run_path(run_id)}/taskInstances/review/-1/hitlDetails")

    def respond(self, run_id: str, user: str, option: str, note: str | None) -> httpx.Response:
        """What the UI's Required actions sends when a reviewer picks an option (updateHitlDetail)."""
        return self.call("PATCH", f"{self.run_path(run_id)}/taskInstances/review/-1/hitlDetails", user,
                         json={"chosen_options": [option], "params_input": {"note": note}})

    def wait_finished(self, run_id: str) -> str:
        def finished() -> str | None:
            state = self.ok("GET", self.run_path(run_id))["state"]
            return state if state in ("success", "failed") else None

        return self.s.wait(f"{run_id} to finish", finished, DECISION_TIMEOUT)

    def prepared(self, run_id: str) -> dict:
        """What ``prepare`` handed on (its XCom): release id, counts, changes, review page."""
        entry = self.ok("GET", f"{self.run_path(run_id)}/taskInstances/prepare/xcomEntries/return_value")
        value = entry["value"]
        return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def standalone_api(city) -> Iterator[Api]:
    users = f"admin:admin,{APPROVER}:user,{REJECTER}:user"
    with run_standalone(city, city.parent, {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": users}) as s:
        s.wait("the API server's health endpoint", lambda: healthy(s), HEALTH_TIMEOUT)
        api = Api(s)

        def parsed() -> bool:
            r = api.call("GET", f"/dags/{DAG_ID}")
            return r.status_code == 200

        s.wait(f"{DAG_ID} parsed", parsed, PARSE_TIMEOUT)
        api.ok("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
        yield api


@pytest.fixture
def api(standalone_api) -> Iterator[Api]:
    """The module's API server. A run that a failed test leaves waiting is failed afterwards: with
    max_active_runs=1 it would hold the next test's run in the queue."""
    yield standalone_api
    active = standalone_api.ok("GET", f"/dags/{DAG_ID}/dagRuns", params={"state": ["queued", "running"]})
    for run in active["dag_runs"]:
        standalone_api.ok("PATCH", standalone_api.run_path(run["dag_run_id"]), json={"state": "failed"})


def cli(args: list[str], data_root: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "CREDIT_DATA_DIR": str(data_root), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([*CREDIT, *args], env=env, capture_output=True, text=True, timeout=timeout)


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """A published folder's entries with their mtimes (ns) and the files' bytes: what "nothing new" compares."""
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in [folder, *sorted(folder.rglob("*"))]}


def test_an_approval_in_airflow_publishes_the_release_once(api, city):
    from credit.publication import show_release

    settings = settings_for(city)
    run_id = api.trigger(AS_OF_APPROVED)
    detail = api.wait_for_review(run_id)
    prepared = api.prepared(run_id)
    release_id = prepared["release_id"]
    assert prepared["as_of"] == AS_OF_APPROVED.isoformat()
    candidate = show_release(settings, release_id)
    assert candidate.status == "prepared"
    assert candidate.review_page.is_file()
    assert not (city / "publication" / release_id).exists()  # nothing before the approval

    # What the reviewer reads: the release, its four kinds of change and where the review page is.
    assert detail["options"] == [APPROVE, REJECT]
    assert detail["response_received"] is False
    assert release_id in detail["subject"]
    changes = candidate.changes
    assert f"| {changes['added']} | {changes['changed']} | {changes['expired']} | {changes['withdrawn']} |" \
        in detail["body"]
    assert str(candidate.review_page) in detail["body"]
    assert AS_OF_APPROVED.isoformat() in detail["body"]

    r = api.respond(run_id, APPROVER, APPROVE, "抽查样例已脱敏，同意发布")
    assert r.status_code == 200, r.text
    assert r.json()["responded_by"] == {"id": APPROVER, "name": APPROVER}
    assert api.wait_finished(run_id) == "success", api.task_states(run_id)
    assert api.task_states(run_id) == {"prepare": "success", "review": "success", "publish": "success",
                                       "record_rejection": "skipped"}

    release = show_release(settings, release_id)
    assert (release.status, release.decided_by, release.decision_note) == ("published", APPROVER,
                                                                           "抽查样例已脱敏，同意发布")
    published = city / "publication" / release_id
    assert release.folder == published and published.is_dir()
    manifest = json.loads((published / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["release_id"], manifest["status"]) == (release_id, "published")
    assert manifest["approved_by"] == APPROVER
    assert manifest["content_hash"] == release.content_hash == candidate.content_hash  # what was reviewed
    assert manifest["records"] == release.records == prepared["records"]
    assert {"index.parquet", "diff/added.parquet", "diff/withdrawn.parquet"} <= set(manifest["files"])
    assert (city / "publication" / "CURRENT").read_text().strip() == release_id  # what the website reads

    # The same answer again: the UI's request is refused, and the CLI's approval publishes nothing new.
    again = api.respond(run_id, APPROVER, APPROVE, None)
    assert again.status_code == 409, again.text
    before = snapshot(published)
    done = cli(["publish", "approve", release_id, "--by", REJECTER], city)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Release {release_id} as of {AS_OF_APPROVED}: published" in done.stdout
    assert f"approved by {APPROVER} " in done.stdout
    assert snapshot(published) == before
    assert show_release(settings, release_id) == release


def test_a_rejection_in_airflow_publishes_nothing(api, city):
    from credit.publication import show_release

    settings = settings_for(city)
    run_id = api.trigger(AS_OF_REJECTED)
    api.wait_for_review(run_id)
    release_id = api.prepared(run_id)["release_id"]

    reason = "变更样例中有一条记录的公示截止期有误，退回重新生成"
    r = api.respond(run_id, REJECTER, REJECT, reason)
    assert r.status_code == 200, r.text
    assert api.wait_finished(run_id) == "success", api.task_states(run_id)
    assert api.task_states(run_id) == {"prepare": "success", "review": "success", "publish": "skipped",
                                       "record_rejection": "success"}
    release = show_release(settings, release_id)
    assert (release.status, release.decided_by, release.decision_note) == ("rejected", REJECTER, reason)
    assert release.folder == release.candidate and release.candidate.is_dir()  # kept for the record
    assert not (city / "publication" / release_id).exists()
    assert not list((city / "publication").glob(f"{release_id}*"))  # nor a half-written one
    current = city / "publication" / "CURRENT"
    assert not current.exists() or current.read_text().strip() != release_id


def release_id_of(output: str) -> str:
    """The id `credit publish prepare | show | approve | reject` names first ("Release 20261215-01 as of ...")."""
    match = re.search(r"^Release (\d{8}-\d{2}) as of ", output, re.MULTILINE)
    assert match, output
    return match.group(1)


def test_the_cli_prepares_shows_approves_and_rejects(city):
    """For reviewers without the UI: the same library, the same rules (one approval publishes once, a rejected
    candidate can never be published)."""
    done = cli(["publish", "prepare", "--as-of", AS_OF_CLI.isoformat(), "--by", CLI_PREPARER], city)
    assert done.returncode == 0, done.stdout + done.stderr
    release_id = release_id_of(done.stdout)
    assert release_id.startswith(f"{AS_OF_CLI:%Y%m%d}-")
    assert f"Release {release_id} as of {AS_OF_CLI}: prepared" in done.stdout
    assert f"prepared by {CLI_PREPARER} " in done.stdout
    assert f"credit publish approve {release_id} --by <name>" in done.stdout
    review_page = city / "publication" / "candidates" / release_id / "review.html"
    assert f"review page: {review_page}" in done.stdout and review_page.is_file()
    assert not (city / "publication" / release_id).exists()

    done = cli(["publish", "show", release_id], city)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Release {release_id} as of {AS_OF_CLI}: prepared" in done.stdout
    assert "Public records (公示记录)" in done.stdout
    assert "approved by" not in done.stdout and "published snapshot" not in done.stdout

    done = cli(["publish", "approve", release_id, "--by", CLI_APPROVER, "--note", "已核对样例"], city)
    assert done.returncode == 0, done.stdout + done.stderr
    published = city / "publication" / release_id
    assert f"Release {release_id} as of {AS_OF_CLI}: published" in done.stdout
    assert f"approved by {CLI_APPROVER} " in done.stdout and "已核对样例" in done.stdout
    assert f"published snapshot: {published}" in done.stdout
    manifest = json.loads((published / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["approved_by"], manifest["approval_note"]) == (CLI_APPROVER, "已核对样例")
    before = snapshot(published)
    again = cli(["publish", "approve", release_id, "--by", "someone.else"], city)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"approved by {CLI_APPROVER} " in again.stdout
    assert snapshot(published) == before

    done = cli(["publish", "prepare", "--as-of", AS_OF_CLI_REJECTED.isoformat(), "--by", CLI_PREPARER], city)
    assert done.returncode == 0, done.stdout + done.stderr
    rejected_id = release_id_of(done.stdout)
    done = cli(["publish", "reject", rejected_id, "--by", REJECTER, "--reason", "撤回数据未同步，暂缓发布"], city)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Release {rejected_id} as of {AS_OF_CLI_REJECTED}: rejected" in done.stdout
    assert f"rejected by {REJECTER} " in done.stdout and "撤回数据未同步，暂缓发布" in done.stdout
    refused = cli(["publish", "approve", rejected_id, "--by", CLI_APPROVER], city)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"release {rejected_id} was rejected by {REJECTER}" in refused.stdout
    assert not (city / "publication" / rejected_id).exists()

    done = cli(["publish", "status"], city)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if re.search(r"\b\d{8}-\d{2}\b", line)]
    ids = [re.search(r"\b\d{8}-\d{2}\b", line).group(0) for line in rows]
    assert ids[:2] == [rejected_id, release_id], done.stdout  # newest first
    assert "rejected" in rows[0] and REJECTER in rows[0] and "← website" not in rows[0]
    assert "published" in rows[1] and CLI_APPROVER in rows[1] and "← website" in rows[1]
    assert sum("← website" in row for row in rows) == 1
    assert (city / "publication" / "CURRENT").read_text().strip() == release_id
