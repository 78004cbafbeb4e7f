"""A loader killed with ``kill -9`` at any moment leaves nothing a reader can see wrongly, and the
next run restores exactly the state a clean run leaves.

The real CLI runs in a subprocess and is killed (SIGKILL) either at a named point of the load
path (``CREDIT_CRASH_AT``, warehouse/crash_points.py: before and after the commit, between the
renames of a publish, in the archive between link and rename, ...) or by a random timer. Right
after each kill, a reader of the Parquet export (``read_parquet('<root>/parquet/<dataset>/**')``,
the downstream contract) must see only batches the committed ledger counts, each with exactly
its counted rows, and miss none it counts except those whose publish is in flight
(``audit.publish_intents``). Then the same command runs again, and the warehouse, the archive
and the export must equal a clean run's, with no leftover (temp, work or staging folder, hidden
entry, DuckDB spill file).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from test_ingest_files import csv_text, row

from credit import pipeline
from foundation.settings import Settings
from warehouse.crash_points import POINTS
from warehouse.db import connect
from warehouse.partitions import STAGING_LOCK, staging_lock

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DATASET = "admin_penalty"
DEPARTMENT = "market_regulation"
RECEIVED = 1_767_225_600  # the feeds' mtime (their received time), the same in every data root
SEED = int(os.environ.get("CREDIT_CRASH_SEED", time.time_ns() % 1_000_000))


def _feed(path: Path, rows: int, tag: str) -> Path:
    """A penalty feed: every 10th record quarantined (bad check digit), the rest clean."""
    bad = {"统一社会信用代码": "91110000600037341X"}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(csv_text([row(n, **(bad if n % 10 == 0 else {}), 备注=tag) for n in range(1, rows + 1)]),
                    encoding="utf-8")
    os.utime(path, (RECEIVED, RECEIVED))
    return path


def _ingest(feed: Path, replace: bool = False) -> list[str]:
    return ["ingest", str(feed), "--dataset", DATASET, "--department", DEPARTMENT] + (["--replace"] if replace else [])


def _run(root: Path, args: list[str], crash_at: str | None = None, kill_after: float | None = None,
         ) -> subprocess.CompletedProcess:
    """The CLI for one data root; killed by a crash point, or by SIGKILL after ``kill_after`` seconds."""
    env = {**os.environ, "CREDIT_DATA_DIR": str(root), "COLUMNS": "200"}
    env.pop("CREDIT_CRASH_AT", None)
    if crash_at:
        env["CREDIT_CRASH_AT"] = crash_at
    proc = subprocess.Popen([sys.executable, "-m", "credit.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=kill_after or 600)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"{done.args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def _export_counts(folder: Path) -> dict[str, int]:
    """Rows per batch as a downstream reader of the export sees them (hidden entries included by ``**``)."""
    pattern = str(folder / "**" / "*.parquet").replace("'", "''")
    if not duckdb.sql(f"SELECT count(*) FROM glob('{pattern}')").fetchall()[0][0]:
        return {}
    return dict(duckdb.sql(f"SELECT batch_id, count(*) FROM read_parquet('{pattern}', hive_partitioning = true) "
                           "GROUP BY 1").fetchall())


def _digest(folder: Path) -> list[tuple]:
    """Per batch and department: rows and an order-free hash of their values."""
    pattern = str(folder / "**" / "*.parquet").replace("'", "''")
    if not duckdb.sql(f"SELECT count(*) FROM glob('{pattern}')").fetchall()[0][0]:
        return []
    return duckdb.sql(f"SELECT batch_id, department, count(*), sum(hash(t))::HUGEINT FROM read_parquet('{pattern}', "
                      "hive_partitioning = true) t GROUP BY ALL ORDER BY ALL").fetchall()


def _files(root: Path, *layers: str, sizes: bool = False) -> list:
    return sorted((str(p.relative_to(root)), p.stat().st_size if sizes else 0)
                  for layer in layers if (root / layer).exists() for p in (root / layer).rglob("*") if p.is_file())


def _check_reader_after_kill(root: Path, label: str) -> None:
    """Right after a kill: the export shows only counted batches, with their counted rows; it misses a
    counted batch only while its publish is in flight."""
    seen = _export_counts(root / "parquet" / DATASET)
    counted: dict[str, int] = {}
    pending: set[str] = set()
    if (root / "warehouse.duckdb").exists():
        con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
        try:
            tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() "
                                                "WHERE schema_name = 'audit'").fetchall()}
            if "batches" in tables:
                counted = dict(con.execute("SELECT batch_id, rows_loaded FROM audit.batches "
                                           "WHERE dataset_id = ? AND rows_loaded > 0", [DATASET]).fetchall())
            if "publish_intents" in tables:
                pending = {b for (b,) in con.execute("SELECT batch_id FROM audit.publish_intents").fetchall()}
        finally:
            con.close()
    wrong = {b: (n, counted.get(b)) for b, n in seen.items() if counted.get(b) != n}
    assert not wrong, f"{label}: the export shows batches the ledger does not count so (seen, counted): {wrong}"
    missed = set(counted) - set(seen) - pending
    assert not missed, f"{label}: the export misses counted batches with no publish in flight: {missed}"


def _snapshot(root: Path) -> dict:
    """The warehouse (ledger without times and run ids, quarantine, codes, subjects), export, raw, archive."""
    con = duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)
    try:
        state = {
            "batches": con.execute("SELECT * EXCLUDE (loaded_at, run_id) FROM audit.batches ORDER BY batch_id"
                                   ).fetchall(),
            "intents": con.execute("SELECT * FROM audit.publish_intents").fetchall(),
            "quarantine": con.execute("SELECT * FROM quarantine.rows ORDER BY batch_id, source_row").fetchall(),
            "batch_codes": con.execute("SELECT * FROM audit.batch_codes ORDER BY ALL").fetchall(),
            "conflicts": con.execute("SELECT * FROM audit.code_conflicts ORDER BY ALL").fetchall(),
            "subjects": con.execute("SELECT * EXCLUDE (first_batch, last_batch) FROM clean.subjects ORDER BY ALL"
                                    ).fetchall(),
        }
    finally:
        con.close()
    state["export"] = _digest(root / "parquet" / DATASET)
    state["raw"] = _digest(root / "raw" / DATASET)
    state["files"] = _files(root, "parquet", "raw", "inbox") + _files(root, "archive", sizes=True)
    return state


def _leftovers(root: Path) -> list[str]:
    """What a clean run never leaves: temp names, work or staging folders, hidden entries, spill files."""
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel == Path("staging") / STAGING_LOCK:
            continue
        if (rel.parts[0] in {"work", "staging", "duckdb_tmp"} and len(rel.parts) > 1) or path.name.startswith(".") \
                or ".tmp" in path.name or ".old" in path.name:
            found.append(str(rel))
    return sorted(found)


@dataclass(frozen=True)
class Kill:
    scenario: str  # ingest | replace | inbox (small feeds, aimed) | ingest-big | replace-big (random timer)
    crash_at: str | None = None  # a crash point (``name#n``: its n-th hit)
    share: tuple[float, float] | None = None  # a random timer: a uniform share of the clean run's time
    plain_rerun: bool = False  # replace: re-run without --replace

    @property
    def id(self) -> str:
        return f"{self.scenario}:{self.crash_at or f'timer{self.share}'}{':plain' if self.plain_rerun else ''}"


AIMED = [
    *[Kill("ingest", p) for p in ("load.before_commit", "load.after_commit", "publish.raw_in", "publish.clean_in",
                                  "publish.intent_cleared", "pipeline.loaded", "archive.linked")],
    *[Kill("replace", p) for p in ("load.before_commit", "load.after_commit", "publish.raw_aside", "publish.raw_in",
                                   "publish.clean_aside", "publish.clean_in", "publish.intent_cleared")],
    Kill("replace", "load.before_commit", plain_rerun=True),
    Kill("replace", "publish.clean_aside", plain_rerun=True),
    # The inbox, in this order: market_regulation/unknown.txt (refused), market_regulation/xzcf_a.csv,
    # tax/penalty_b.csv.
    *[Kill("inbox", p) for p in ("archive.linked#1", "publish.clean_in#1", "settle.archived#2",
                                 "load.after_commit#2")],
]
RANDOM = [Kill(scenario, share=(i / 2, (i + 1) / 2)) for scenario in ("ingest-big", "replace-big") for i in range(2)]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> dict:
    """The feeds, the data root each scenario starts from, and the state a clean run leaves."""
    base = tmp_path_factory.mktemp("crash")
    small = _feed(base / "feeds" / "xzcf_small.csv", 1_500, "small")
    big = _feed(base / "feeds" / "xzcf_big.csv", 25_000, "big")
    inbox = base / "start-inbox"
    _feed(inbox / "inbox" / DEPARTMENT / "xzcf_a.csv", 800, "a")
    _feed(inbox / "inbox" / "tax" / "penalty_b.csv", 600, "b")
    (inbox / "inbox" / DEPARTMENT / "unknown.txt").write_text("no dataset takes this\n", encoding="utf-8")
    empty = base / "start-empty"
    empty.mkdir()
    # A replace starts where a clean ingest of the same feed ends.
    start = {"ingest": empty, "ingest-big": empty, "inbox": inbox,
             "replace": base / "clean-ingest", "replace-big": base / "clean-ingest-big"}
    commands = {"ingest": _ingest(small), "ingest-big": _ingest(big), "inbox": ["ingest-inbox"],
                "replace": _ingest(small, replace=True), "replace-big": _ingest(big, replace=True)}
    expected, seconds = {}, {}
    for name, args in commands.items():
        root = base / f"clean-{name}"
        shutil.copytree(start[name], root)
        began = time.monotonic()
        _ok(_run(root, args))
        seconds[name] = time.monotonic() - began
        expected[name] = _snapshot(root)
        assert _leftovers(root) == []
    assert [b[0].split("-")[0] for b in expected["inbox"]["batches"]] == ["admin_penalty"] * 2 + ["unrouted"]
    assert len(expected["inbox"]["export"]) == 2 and len(expected["replace"]["export"]) == 1
    return {"start": start, "commands": commands, "expected": expected, "seconds": seconds}


def _kill_and_recover(bench: dict, kill: Kill, tmp_path: Path) -> subprocess.CompletedProcess:
    root = tmp_path / "data"
    shutil.copytree(bench["start"][kill.scenario], root)
    args = bench["commands"][kill.scenario]
    label = kill.id
    if kill.crash_at:
        done = _run(root, args, crash_at=kill.crash_at)
        assert done.returncode == -9, f"{label}: not killed there (rc {done.returncode}):\n{done.stderr[-2000:]}"
    else:
        assert kill.share is not None
        rng = random.Random(f"{SEED}-{kill.id}")
        low, high = kill.share
        after = max(0.2, bench["seconds"][kill.scenario] * rng.uniform(0.05 + 0.85 * low, 0.05 + 0.85 * high))
        label = f"{kill.id}, killed after {after:.2f} s (CREDIT_CRASH_SEED={SEED})"
        done = _run(root, args, kill_after=after)
        assert done.returncode in (-9, 0), f"{label}:\n{done.stderr[-2000:]}"
    _check_reader_after_kill(root, label)
    rerun = [a for a in args if a != "--replace"] if kill.plain_rerun else args
    _ok(_run(root, rerun))
    assert _snapshot(root) == bench["expected"][kill.scenario], f"{label}: the state differs from a clean run's"
    assert _leftovers(root) == [], label
    return done


@pytest.mark.parametrize("kill", AIMED, ids=lambda k: k.id)
def test_a_kill_at_a_crash_point_is_recovered_exactly(bench, kill, tmp_path):
    _kill_and_recover(bench, kill, tmp_path)


@pytest.mark.parametrize("kill", RANDOM, ids=lambda k: k.id)
def test_a_kill_at_a_random_moment_is_recovered_exactly(bench, kill, tmp_path):
    _kill_and_recover(bench, kill, tmp_path)


def test_every_crash_point_is_aimed_at():
    aimed = {k.crash_at.partition("#")[0] for k in AIMED if k.crash_at}
    assert aimed == set(POINTS)
    assert len(AIMED) + len(RANDOM) >= 20


# What a killed stager, an older version or DuckDB leaves, without a subprocess.

def _tmp_folder(settings: Settings, name: str) -> Path:
    folder = settings.staging / name
    folder.mkdir(parents=True)
    (folder / "rows.parquet").write_bytes(b"restricted rows")
    return folder


def _age(folder: Path, seconds: float) -> None:
    then = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (then, then))


def test_staging_leftovers_go_but_not_what_a_stager_is_writing(settings, catalog, tmp_path):
    connect(settings, catalog).close()
    busy = _tmp_folder(settings, ".admin_penalty.0123456789ab.tmp")
    with staging_lock(settings.staging) as held:  # a stage task runs in parallel with the load
        assert held
        connect(settings, catalog).close()
        assert busy.exists()
        _age(busy, 3600)  # ... but this folder has not moved for an hour: a killed stager's
        connect(settings, catalog).close()
        assert not busy.exists()
        fresh = _tmp_folder(settings, ".admin_penalty.ba9876543210.tmp")
        connect(settings, catalog).close()
        assert fresh.exists()
    connect(settings, catalog).close()  # nobody stages now: every temp folder is a leftover
    assert not fresh.exists()

    # A finished staged batch: kept until its load, removed once the ledger has it from a later load.
    feed = _feed(tmp_path / "xzcf.csv", 20, "t")
    pipeline.ingest_file(settings, catalog, feed, DATASET, DEPARTMENT)
    again = pipeline.stage(settings, catalog, feed, DATASET, DEPARTMENT)  # a duplicate (or --replace) to load
    connect(settings, catalog).close()
    assert again.exists()
    _age(again, 3600)  # staged before the ledger's load: its load was killed before removing it
    connect(settings, catalog).close()
    assert not again.exists()


def test_leftovers_of_older_versions_and_duckdb_spill_files_go(settings, catalog):
    connect(settings, catalog).close()
    legacy = [settings.parquet_root / DATASET / ".tmp-0f0f" / "part-0.parquet",
              settings.raw_root / DATASET / ".old-0f0f" / "rows.parquet",
              settings.parquet_root / "mart_scorecard" / ".tmp-0f0f.parquet",
              settings.data_root / "duckdb_tmp" / "duckdb_temp_4194999_0_storage_DEFAULT-0.tmp",
              settings.work / f"{DATASET}-00000000000000ff" / "raw" / "rows.parquet"]  # a load not committed
    for path in legacy:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    connect(settings, catalog).close()
    assert not [p for p in legacy if p.exists()]
    assert _leftovers(settings.data_root) == []


def test_archive_reuses_or_replaces_a_killed_runs_temp_link(settings, tmp_path):
    feed = _feed(tmp_path / "inbox" / "xzcf.csv", 5, "a")
    sha = pipeline.file_sha256(feed)
    target = settings.archive / sha[:2] / f"{sha}.csv"
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.parent.mkdir(parents=True)
    os.link(feed, tmp)  # killed between link and rename
    assert pipeline.archive_file(settings, feed, sha) == target
    assert target.read_bytes() == feed.read_bytes() and not tmp.exists()
    assert pipeline.archive_file(settings, feed, sha) == target  # archived already: nothing to do

    target.unlink()
    tmp.write_bytes(feed.read_bytes()[:7])  # a copy cut short
    pipeline.archive_file(settings, feed, sha)
    assert target.read_bytes() == feed.read_bytes() and not tmp.exists()
