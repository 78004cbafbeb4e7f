from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("SCARF_ANALYTICS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pytest  # noqa: E402

from foundation.catalog import get_catalog  # noqa: E402
from foundation.settings import Settings, get_settings  # noqa: E402


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """A fresh, empty data root for one test."""
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path / "data"))
    return get_settings()


@pytest.fixture(scope="session")
def catalog():
    return get_catalog()


CREDIT = [sys.executable, "-m", "credit.cli"]


def credit_cli(args: list[str], data_root: Path, timeout: int = 1200) -> subprocess.CompletedProcess:
    """Run the `credit` CLI in a subprocess, as `make demo` does, for one data root.

    A subprocess, because Airflow reads its configuration (home, metadata database) at import.
    """
    env = {**os.environ, "CREDIT_DATA_DIR": str(data_root), "COLUMNS": "200"}
    done = subprocess.run([*CREDIT, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"credit {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


def catalog_governed_by(tmp_path: Path, governing: str, monkeypatch) -> Path:
    """A copy of the catalog whose publication rules use ``governing`` (decision_date | publication_date),
    made the settings' catalog (CREDIT_CATALOG_DIR) for the test."""
    import yaml

    from foundation.settings import PROJECT_ROOT

    copy = tmp_path / "catalogs"
    shutil.copytree(PROJECT_ROOT / "catalogs", copy)
    rules = yaml.safe_load((copy / "publication.yaml").read_text(encoding="utf-8"))
    rules["governing"] = governing
    (copy / "publication.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CREDIT_CATALOG_DIR", str(copy))
    return copy


def write_csv_feed(path: Path, header: list[str], rows: list[list[str]], received: datetime) -> Path:
    """A small CSV feed as a department sends it, its mtime the arrival time (what the inbox reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    stamp = received.timestamp()
    os.utime(path, (stamp, stamp))
    return path


def truth_rows(data_root: Path, name: str) -> list[dict]:
    """A ground-truth file the demo generator wrote under <data root>/truth/."""
    with (data_root / "truth" / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def truth_monthly_rates(data_root: Path, received_by: date | None = None) -> dict[tuple, list[int]]:
    """(department, month, metric) -> [numerator, denominator] of 合规率 and 及时率, from the generator's truth:
    the files received by ``received_by`` (all without it), less the first file of a period re-sent corrected."""
    timely = {r["file"]: r for r in truth_rows(data_root, "timeliness.csv")}
    deliveries = truth_rows(data_root, "deliveries.csv")
    resent = {(d["department"], d["dataset_id"], d["period"]) for d in deliveries if d["resent"] == "true"}
    replaced = {d["file"] for d in deliveries
                if (d["department"], d["dataset_id"], d["period"]) in resent and d["resent"] != "true"}
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for f in truth_rows(data_root, "files.csv"):
        t = timely[f["file"]]
        if f["file"] in replaced or (received_by and datetime.fromisoformat(t["submitted_at"]).date() > received_by):
            continue
        key = (f["department"], f["month"])
        sums[key + ("compliance",)][0] += int(f["rows_loaded"])
        sums[key + ("compliance",)][1] += int(f["rows_in"])
        if t.get("denominator"):
            sums[key + ("timeliness",)][0] += int(t["numerator"])
            sums[key + ("timeliness",)][1] += int(t["denominator"])
    return {k: v for k, v in sums.items() if v[1] > 0}


@pytest.fixture(scope="session")
def demo_city(tmp_path_factory) -> Path:
    """The sample city (300 entities) run once through every Airflow DAG; shared, treat as read-only.

    Tests that change the warehouse take ``demo_copy`` instead.
    """
    data_root = tmp_path_factory.mktemp("demo") / "data"
    credit_cli(["demo-data", "--snapshot", "--entities", "300"], data_root)
    credit_cli(["run-dags"], data_root)
    return data_root


HISTORY_BACKFILL = ["run-dags", "--from", "2025-01", "--to", "2025-03", "--ingest-every-month"]


@pytest.fixture(scope="session")
def history_city(tmp_path_factory) -> Path:
    """Four months of the two-year city (300 entities) and a strict backfill closing 2025-01 .. 2025-03
    through Airflow (every ingest DAG before each monthly close); shared, treat as read-only."""
    data_root = tmp_path_factory.mktemp("history") / "data"
    credit_cli(["demo-data", "--entities", "300", "--to", "2025-04"], data_root)
    credit_cli(HISTORY_BACKFILL, data_root)
    return data_root


# The first test that asks for ``two_year_city`` builds it (11-15 minutes here, more on a busy machine): its module
# takes this timeout instead of the suite's 15 minutes.
TWO_YEAR_TIMEOUT = pytest.mark.timeout(3300)


@pytest.fixture(scope="session")
def two_year_city(tmp_path_factory) -> Path:
    """The demo's two-year city (3000 entities, 2025-01 .. 2026-11) as `make demo` runs it: every ingest DAG
    once, then the 23 monthly closes; shared, treat as read-only."""
    data_root = tmp_path_factory.mktemp("two-years") / "data"
    credit_cli(["demo-data"], data_root)
    credit_cli(["run-dags", "--from", "2025-01", "--to", "2026-11"], data_root, timeout=3000)
    return data_root


@pytest.fixture
def demo_copy(demo_city, tmp_path) -> Path:
    """A private copy of the demo city's data root, for tests that change it."""
    target = tmp_path / "data"
    shutil.copytree(demo_city, target, symlinks=True)
    return target


TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config, items):
    """Every test belongs to a tier (`make test-fast` = unit + integration), so none is silently skipped."""
    untiered = [item.nodeid for item in items if not any(item.get_closest_marker(t) for t in TIERS)]
    if untiered:
        raise pytest.UsageError("tests without a tier marker (unit / integration / e2e):\n  " + "\n  ".join(untiered))
