"""Nothing waits in the inbox for ever: links, undecodable names, stray files and unreadable feeds are
ledgered, archived and taken out, and the files after them are loaded."""

from __future__ import annotations

import hashlib
import os

import duckdb
import pytest
from test_ingest_files import csv_text, row
from typer.testing import CliRunner

from credit.cli import app
from credit.inbox import readable_name, scan_inbox

pytestmark = pytest.mark.integration


def _ledger(settings) -> dict[str, tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    rows = con.execute("SELECT source_file, dataset_id, department, status, file_reasons, rows_in, message_zh "
                       "FROM audit.batches").fetchall()
    con.close()
    return {r[0]: r[1:] for r in rows}


def _archived(settings) -> set[str]:
    return {p.name.split(".")[0] for p in settings.archive.rglob("*") if p.is_file()}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.unit
def test_readable_name():
    gbk = os.fsdecode("行政处罚.csv".encode("gbk"))
    assert gbk != "行政处罚.csv" and readable_name(gbk) == "行政处罚.csv"
    assert readable_name(os.fsdecode(b"\xff\xfe.csv")) == "\\xff\\xfe.csv"
    assert readable_name("xzcf_2024.csv") == "xzcf_2024.csv"


def test_awkward_entries_never_block_the_inbox(settings, catalog, tmp_path):
    dept = settings.inbox / "market_regulation"
    dept.mkdir(parents=True)
    feed = csv_text([row(1), row(2)]).encode()
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the warehouse", encoding="utf-8")
    # A name in GBK bytes (a Windows share): renamed to its reading, routed and loaded.
    gbk_name = "行政处罚_2024.csv".encode("gbk")
    with open(os.fsencode(dept) + b"/" + gbk_name, "wb") as fh:
        fh.write(csv_text([row(3)]).encode())
    (dept / "link_xzcf.csv").symlink_to(secret)  # a link out of the inbox: never followed
    (dept / "linked_folder").symlink_to(tmp_path)  # a linked folder: never entered
    os.mkfifo(dept / "pipe_xzcf.csv")  # not a regular file: never opened (would block)
    (settings.inbox / "xzcf_in_the_root.csv").write_bytes(feed)  # outside every department folder
    (dept / "xzcf_ok.csv").write_bytes(feed)  # and a good file after all of them

    items = {i.relpath: i for i in scan_inbox(settings, catalog)}
    assert "market_regulation/行政处罚_2024.csv" in items  # renamed on the scan
    assert {k: (v.dataset_id, v.problem) for k, v in items.items()} == {
        "market_regulation/行政处罚_2024.csv": ("admin_penalty", None),
        "market_regulation/link_xzcf.csv": (None, "unsafe_link"),
        "market_regulation/linked_folder": (None, "unsafe_link"),
        "market_regulation/pipe_xzcf.csv": (None, "not_a_regular_file"),
        "market_regulation/xzcf_ok.csv": ("admin_penalty", None),
        "xzcf_in_the_root.csv": (None, "unknown_dataset"),
    }

    done = CliRunner().invoke(app, ["ingest-inbox"])
    assert done.exit_code == 0, done.output
    assert done.exception is None
    ledger = _ledger(settings)
    assert {k: (v[0], v[2], v[4]) for k, v in ledger.items()} == {
        "行政处罚_2024.csv": ("admin_penalty", "loaded", 1),
        "xzcf_ok.csv": ("admin_penalty", "loaded", 2),
        "link_xzcf.csv": (None, "rejected", 0),
        "linked_folder": (None, "rejected", 0),
        "pipe_xzcf.csv": (None, "rejected", 0),
        "xzcf_in_the_root.csv": (None, "rejected", 0),
    }
    assert ledger["link_xzcf.csv"][3] == ["unsafe_link"] and str(secret) in ledger["link_xzcf.csv"][5]
    assert ledger["xzcf_in_the_root.csv"][1] == "-"
    # Everything received is archived (a link as its description, never its target's bytes) ...
    link_text = f"symbolic link market_regulation/link_xzcf.csv to {secret}"
    assert {_sha(feed), _sha(link_text.encode())} <= _archived(settings)
    assert not any(p.read_bytes() == secret.read_bytes() for p in settings.archive.rglob("*") if p.is_file())
    # ... and the inbox is empty; the link's target is untouched.
    assert [p for p in settings.inbox.rglob("*") if not p.is_dir() or p.is_symlink()] == []
    assert secret.read_text(encoding="utf-8") == "not for the warehouse"
    # A second run finds nothing left.
    again = CliRunner().invoke(app, ["ingest-inbox"])
    assert again.exit_code == 0 and _ledger(settings) == ledger


def test_a_file_the_reader_cannot_open_is_rejected_not_stuck(settings, catalog, monkeypatch):
    """A reader failure it does not know (here injected) rejects that file; the next one still loads."""
    import transforms.stage

    dept = settings.inbox / "market_regulation"
    dept.mkdir(parents=True)
    (dept / "xzcf_a_broken.csv").write_bytes(csv_text([row(1)]).encode())
    (dept / "xzcf_b_good.csv").write_bytes(csv_text([row(2), row(3)]).encode())
    real = transforms.stage.read_feed

    def read_feed(path, *args, **kwargs):
        if "broken" in path.name:
            raise RuntimeError("the reader met something new")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(transforms.stage, "read_feed", read_feed)
    done = CliRunner().invoke(app, ["ingest-inbox"])
    assert done.exit_code == 0, done.output
    ledger = _ledger(settings)
    assert (ledger["xzcf_b_good.csv"][2], ledger["xzcf_b_good.csv"][4]) == ("loaded", 2)
    broken = ledger["xzcf_a_broken.csv"]
    assert broken[:4] == ("admin_penalty", "market_regulation", "rejected", ["unreadable_file"])
    assert "the reader met something new" in broken[5] and "请重新导出" in broken[5]
    assert _sha(csv_text([row(1)]).encode()) in _archived(settings)
    assert list(settings.inbox.rglob("*.csv")) == []
