"""The attack corpus (tests/feed_corpus.py) through `credit ingest-inbox`, all of it in one run.

Every case is written into one inbox, `credit ingest-inbox` runs once in a subprocess (and once
more, to find nothing), and then: the run is clean (exit 0, no traceback); every file has its one
ledger row with the dataset, status, counts and reasons counted by hand; every byte received is
in the archive and the inbox is empty; no resident ID leaves in the clean export. The known bugs are
strict xfails: a case of the corpus on its own, or (when it would fail the whole run) a side run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from feed_corpus import CASES, SIDE_RUNS, Case
from restricted_scan import resident_ids_in_parquet

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LEDGER_COLUMNS = ("batch_id", "source_file", "dataset_id", "department", "status", "rows_in", "rows_loaded",
                  "rows_quarantined", "file_reasons", "message_zh", "notes", "encoding", "file_sha256")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ingest(data_root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CREDIT_DATA_DIR": str(data_root), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "credit.cli", "ingest-inbox"], env=env, capture_output=True,
                          text=True, encoding="utf-8", errors="replace", timeout=600)


@dataclass
class Snapshot:
    batches: list[dict]
    quarantine: dict[str, list[list[str]]]  # batch_id -> reasons of each quarantined row
    arrivals: list[tuple[str, str]]  # (source_file, outcome)


def _snapshot(data_root: Path) -> Snapshot:
    con = duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True)
    try:
        batches = [dict(zip(LEDGER_COLUMNS, r, strict=True))
                   for r in con.execute(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM audit.batches ORDER BY batch_id")
                   .fetchall()]
        quarantine: dict[str, list[list[str]]] = {}
        for batch_id, reasons in con.execute("SELECT batch_id, reasons FROM quarantine.rows").fetchall():
            quarantine.setdefault(batch_id, []).append(reasons)
        arrivals = con.execute("SELECT source_file, outcome FROM audit.arrivals ORDER BY arrival_id").fetchall()
    finally:
        con.close()
    return Snapshot(batches, quarantine, arrivals)


def _write(cases: list[Case], inbox: Path, outside: Path) -> dict[str, bytes]:
    written = {}
    for case in cases:
        path = case.path(inbox)
        os.makedirs(os.fsencode(path.parent), exist_ok=True)
        written[case.name] = case.write(path, outside)
    return written


def _left_in(inbox: Path) -> set[str]:
    return {p.relative_to(inbox).as_posix() for p in inbox.rglob("*") if not p.is_dir() or p.is_symlink()}


@dataclass
class CorpusRun:
    data_root: Path
    written: dict[str, bytes]
    first: subprocess.CompletedProcess
    after_first: Snapshot
    left_after_first: set[str]
    second: subprocess.CompletedProcess
    after_second: Snapshot
    left_after_second: set[str]

    def rows_of(self, source_file: str) -> list[dict]:
        return [b for b in self.after_first.batches if b["source_file"] == source_file]

    def clean_files(self, row: dict) -> list[Path]:
        folder = self.data_root / "parquet" / str(row["dataset_id"]) / f"department={row['department']}" \
            / f"batch_id={row['batch_id']}"
        return sorted(folder.glob("*.parquet"))


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> CorpusRun:
    base = tmp_path_factory.mktemp("corpus")
    data_root, outside = base / "data", base / "outside"
    inbox = data_root / "inbox"
    inbox.mkdir(parents=True)
    outside.mkdir()
    written = _write(CASES, inbox, outside)
    first = _ingest(data_root)
    after_first, left_after_first = _snapshot(data_root), _left_in(inbox)
    second = _ingest(data_root)
    return CorpusRun(data_root, written, first, after_first, left_after_first, second, _snapshot(data_root),
                     _left_in(inbox))


# ---------------------------------------------------------------- the corpus itself


def test_the_corpus_covers_at_least_60_kinds_each_under_its_own_name():
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)
    assert len({c.source_file for c in CASES}) == len(CASES)  # one ledger row each, found by its name


# ---------------------------------------------------------------- the run


def test_the_run_exits_0_without_a_traceback(corpus_run):
    for done in (corpus_run.first, corpus_run.second):
        output = done.stdout + done.stderr
        assert "Traceback" not in output, output[-5000:]
        assert done.returncode == 0, output[-5000:]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.bug)] if c.bug else [])
     for c in CASES],
)
def test_each_case_has_its_outcome(corpus_run, case):
    written = corpus_run.written[case.name]
    if case.status == "waiting":  # still being written: left alone, not ledgered
        assert corpus_run.rows_of(case.source_file) == []
        relpath = case.path(corpus_run.data_root / "inbox").relative_to(corpus_run.data_root / "inbox").as_posix()
        assert relpath in corpus_run.left_after_second
        return
    if case.status == "duplicate":  # the same bytes under another name: an arrival of the first one's batch
        assert corpus_run.rows_of(case.source_file) == []
        (original,) = corpus_run.rows_of(case.duplicate_of or "")
        assert original["file_sha256"] == _sha(written)
        assert (case.source_file, "duplicate") in corpus_run.after_first.arrivals
        return
    rows = corpus_run.rows_of(case.source_file)
    assert len(rows) == 1, f"{len(rows)} ledger rows for {case.source_file!r}"
    got = rows[0]
    assert (got["dataset_id"], got["department"], got["status"]) == (case.dataset_id, case.department_code,
                                                                     case.status), got["message_zh"]
    assert (got["rows_in"], got["rows_loaded"], got["rows_quarantined"]) == (
        case.rows_in, case.rows_loaded, case.rows_quarantined), (got["message_zh"], got["notes"])
    assert got["rows_in"] == got["rows_loaded"] + got["rows_quarantined"]
    assert got["file_sha256"] == _sha(written)
    # every quarantined row is there, each with a reason; every loaded row is in the clean export
    quarantined = corpus_run.after_first.quarantine.get(got["batch_id"], [])
    assert len(quarantined) == got["rows_quarantined"] and all(quarantined)
    clean = corpus_run.clean_files(got)
    assert sum(pq.read_metadata(p).num_rows for p in clean) == got["rows_loaded"]
    reasons = set(got["file_reasons"] or []) | {r for rs in quarantined for r in rs}
    if case.exact_reasons:
        assert reasons == set(case.reasons)
    else:
        assert set(case.reasons) <= reasons, reasons
    if case.text:
        said = [got["message_zh"] or "", *(got["notes"] or [])]
        assert any(case.text in s for s in said), said
    if case.encoding:
        assert got["encoding"] == case.encoding
    for column, values in case.clean.items():
        con = duckdb.connect()
        found = {v for (v,) in con.execute(f'SELECT DISTINCT "{column}"::VARCHAR FROM read_parquet(?)',
                                           [[str(p) for p in clean]]).fetchall()}
        con.close()
        assert found == values, column
    for path in clean:
        assert resident_ids_in_parquet(path.parent) == [], path


def test_nothing_is_ledgered_that_the_corpus_did_not_send(corpus_run):
    names = {c.source_file for c in CASES if c.status not in ("waiting", "duplicate")}
    assert {b["source_file"] for b in corpus_run.after_first.batches} <= names
    for batch in corpus_run.after_first.batches:
        assert batch["rows_in"] == batch["rows_loaded"] + batch["rows_quarantined"], batch


# ---------------------------------------------------------------- what is kept, what is left


def test_every_byte_received_is_archived(corpus_run):
    archive = corpus_run.data_root / "archive"
    held = {}
    for path in archive.rglob("*"):
        if path.is_file():
            assert not path.is_symlink() and not path.name.startswith("."), path  # no temp file left behind
            held[path.name.split(".")[0]] = _sha(path.read_bytes())
    assert all(name == content for name, content in held.items())  # named by the hash of what it holds
    missing = [c.name for c in CASES if c.status != "waiting" and _sha(corpus_run.written[c.name]) not in held]
    assert missing == []
    # a link is archived as its description, never as its target's bytes
    outside = corpus_run.data_root.parent / "outside"
    targets = {_sha(p.read_bytes()) for p in outside.rglob("*") if p.is_file()}
    assert not targets & set(held.values())


def test_the_inbox_is_left_empty_but_for_files_still_being_written(corpus_run):
    inbox = corpus_run.data_root / "inbox"
    waiting = {c.path(inbox).relative_to(inbox).as_posix() for c in CASES if c.status == "waiting"}
    assert corpus_run.left_after_first == waiting
    assert corpus_run.left_after_second == waiting


def _leaks(corpus_run) -> list[tuple[str, str, str]]:
    return resident_ids_in_parquet(corpus_run.data_root / "parquet")


def test_no_resident_id_leaves_in_the_clean_export(corpus_run):
    """Resident IDs are pasted into free text all through the corpus (spaced, full-width, glued to digits):
    none reaches the clean export."""
    assert _leaks(corpus_run) == []
    assert any(b["rows_loaded"] for b in corpus_run.rows_of("xzcf_rid.csv"))  # the pasted IDs did reach the export


def test_a_second_run_finds_nothing_and_changes_no_ledger_row(corpus_run):
    assert corpus_run.after_second.batches == corpus_run.after_first.batches
    assert corpus_run.after_second.arrivals == corpus_run.after_first.arrivals  # not one file seen again
    assert corpus_run.after_second.quarantine == corpus_run.after_first.quarantine


# ---------------------------------------------------------------- bugs that fail the whole run


@pytest.mark.parametrize(
    "group",
    list(SIDE_RUNS),
)
def test_side_run(tmp_path, group):
    """A few files in an inbox of their own: the run is clean, each is ledgered as counted, the inbox is left empty."""
    _, cases = SIDE_RUNS[group]
    data_root = tmp_path / "data"
    inbox = data_root / "inbox"
    inbox.mkdir(parents=True)
    written = _write(cases, inbox, tmp_path)
    done = _ingest(data_root)
    output = done.stdout + done.stderr
    assert "Traceback" not in output and done.returncode == 0, output[-3000:]
    assert _left_in(inbox) == set()
    ledger = {b["file_sha256"]: b for b in _snapshot(data_root).batches}
    for case in cases:
        batch = ledger[_sha(written[case.name])]
        assert (batch["status"], batch["rows_in"], batch["rows_loaded"]) == (case.status, case.rows_in,
                                                                             case.rows_loaded)
