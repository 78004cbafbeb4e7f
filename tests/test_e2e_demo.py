"""End to end: the sample city through real Airflow DAG runs (dag.test against a
SQLite metadata database) into a real DuckDB file, compared with the ground truth.

Runs the `credit` CLI in subprocesses, as `make demo` does, so Airflow reads its
configuration (home, metadata database) for this test's own data root.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import credit_cli as _credit
from conftest import truth_rows as _truth

from foundation.catalog import get_catalog
from foundation.settings import PROJECT_ROOT
from foundation.sql_names import ident, table
from warehouse.alerts import load_alert_rules

CATALOG_DIR = PROJECT_ROOT / "catalogs"

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
def _warehouse(data_root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True)


def test_every_task_succeeded_and_the_code_gate_failed_exactly_where_rates_exceed(demo_city):
    """The snapshot city: the code gate fails only above the error threshold of catalogs/alerts.yaml (a rate
    above 1/10000 but below it is a warning, recorded in audit.gate_findings), and the monthly close fails on
    the feeds it still misses (this city sent one file per feed, in 2022)."""
    db = sqlite3.connect(demo_city / "airflow" / "airflow.db")
    states = db.execute("SELECT dag_id, task_id, map_index, state FROM task_instance").fetchall()
    runs = dict(db.execute("SELECT dag_id, state FROM dag_run").fetchall())
    db.close()
    # One ingest DAG per dataset, the inbox triage, the quality report, the monthly close and the scoring (the
    # publication DAG waits for a reviewer: `credit run-dags` leaves it out).
    assert len(runs) == len(get_catalog().datasets) + 4
    # A dataset the city sent no file of has nothing to stage: its mapped stage task is skipped.
    sent = {f"credit_ingest_{f['dataset_id']}" for f in _truth(demo_city, "files.csv")}
    skipped = {t[0] for t in states if t[1] == "stage" and t[-1] == "skipped"}
    assert skipped == {f"credit_ingest_{d}" for d in get_catalog().datasets} - sent == {
        "credit_ingest_credit_repair", "credit_ingest_dishonesty_list"}
    others = [t for t in states if t[1] not in {"code_gate", "rejected_files", "check_errors"}
              and not (t[1] == "stage" and t[0] in skipped)]
    assert others and {t[-1] for t in others} == {"success"}, [t for t in others if t[-1] != "success"]
    con = _warehouse(demo_city)
    with_rejected = {f"credit_ingest_{d}" for (d,) in con.execute(
        "SELECT DISTINCT dataset_id FROM audit.batches WHERE status = 'rejected' AND dataset_id IS NOT NULL"
    ).fetchall()}
    rejected_task = {dag_id: state for dag_id, task_id, _, state in states if task_id == "rejected_files"}
    assert with_rejected and {d for d, s in rejected_task.items() if s == "failed"} == with_rejected
    error_above = load_alert_rules(CATALOG_DIR).rates.error_if_code_error_above
    rates = con.execute(
        """SELECT c.dataset_id,
                  count(DISTINCT c.code) FILTER (WHERE c.erroneous OR c.duplicate) / count(DISTINCT c.code),
                  t.code_error_threshold
           FROM audit.batch_codes c JOIN ref.dataset_thresholds t USING (dataset_id)
           GROUP BY c.batch_id, c.dataset_id, t.code_error_threshold"""
    ).fetchall()
    errors = {f"credit_ingest_{d}" for d, rate, _ in rates if rate > error_above}
    warned = sum(1 for _, rate, threshold in rates if rate > threshold)
    marked = con.execute("SELECT count(*) FROM audit.gate_findings").fetchall()[0][0]
    missing = con.execute("SELECT count(*) FROM audit.deliveries WHERE status = 'missing'").fetchall()[0][0]
    con.close()
    gate = {dag_id: state for dag_id, task_id, _, state in states if task_id == "code_gate"}
    assert errors, "the demo city's injected code defects put some batches above 1%"
    assert {d for d, s in gate.items() if s == "failed"} == errors
    assert {d for d, s in gate.items() if s == "success"} == set(gate) - errors
    assert marked == warned > len(errors)  # every batch above 1/10000 is marked, warnings included
    assert missing > 0
    assert {d for d, s in runs.items() if s == "failed"} == errors | with_rejected | {"credit_period_close"}


def test_ledger_counts_equal_the_truth_per_file(demo_city):
    expected = {
        (f["department"], Path(f["file"]).name): (
            f["dataset_id"], int(f["rows_in"]), int(f["rows_loaded"]), int(f["rows_quarantined"]), f["status"]
        )
        for f in _truth(demo_city, "files.csv")
    }
    con = _warehouse(demo_city)
    got = {
        (r[0], r[1]): tuple(r[2:])
        for r in con.execute(
            "SELECT department, source_file, dataset_id, rows_in, rows_loaded, rows_quarantined, status "
            "FROM audit.batches"
        ).fetchall()
    }
    con.close()
    assert got == expected


def test_conservation_holds_for_every_batch(demo_city):
    con = _warehouse(demo_city)
    rows = con.execute(
        "SELECT batch_id, dataset_id, rows_in, rows_loaded, rows_quarantined FROM audit.batches"
    ).fetchall()
    for batch_id, dataset_id, rows_in, loaded, quarantined in rows:
        clean = con.execute(
            f"SELECT count(*) FROM {table('clean', dataset_id)} WHERE batch_id = ?", [batch_id]
        ).fetchone()[0]
        held = con.execute("SELECT count(*) FROM quarantine.rows WHERE batch_id = ?", [batch_id]).fetchone()[0]
        assert (rows_in, loaded, quarantined) == (clean + held, clean, held), batch_id
    con.close()


def test_every_injected_defect_found_with_its_reason_and_nothing_else(demo_city):
    expected = {
        (Path(d["file"]).parts[0], Path(d["file"]).name, int(d["row"]), (d["expected_reason"],))
        for d in _truth(demo_city, "defects.csv")
        if d["expected_outcome"] == "quarantine"
    }
    con = _warehouse(demo_city)
    got = {
        (dept, name, row, tuple(reasons))
        for dept, name, row, reasons in con.execute(
            "SELECT q.department, q.source_file, q.source_row, q.reasons FROM quarantine.rows q"
        ).fetchall()
    }
    con.close()
    assert got - expected == set(), "flagged but not injected"
    assert expected - got == set(), "injected but not found"


def test_normalized_values_reach_the_clean_layer(demo_city):
    con = _warehouse(demo_city)
    checked = 0
    for d in _truth(demo_city, "defects.csv"):
        if d["expected_outcome"] != "normalized" or not d["field"]:
            continue
        path = Path(d["file"])
        value = con.execute(
            f"SELECT c.{ident(d['field'])}::VARCHAR FROM {table('clean', d['dataset_id'])} c "
            "JOIN audit.batches b USING (batch_id) WHERE b.department = ? AND b.source_file = ? AND c.source_row = ?",
            [path.parts[0], path.name, int(d["row"])],
        ).fetchone()
        assert value is not None, d
        if d["defect"].startswith("amount"):
            assert Decimal(value[0]) == Decimal(d["expected_value"]), d
        else:
            assert value[0] == d["expected_value"], d
        checked += 1
    con.close()
    assert checked > 50


def test_inbox_is_emptied_and_parquet_exported(demo_city):
    assert [p for p in (demo_city / "inbox").rglob("*") if p.is_file()] == []
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT count(*) FROM read_parquet('{demo_city}/parquet/admin_penalty/*/*/*.parquet', hive_partitioning=true)"
    ).fetchone()[0]
    con.close()
    loaded = sum(int(f["rows_loaded"]) for f in _truth(demo_city, "files.csv") if f["dataset_id"] == "admin_penalty")
    assert rows == loaded


def test_dropping_the_same_files_again_adds_nothing(demo_copy):
    def snapshot():
        con = _warehouse(demo_copy)
        counts = con.execute(
            "SELECT (SELECT count(*) FROM audit.batches), (SELECT sum(rows_loaded) FROM audit.batches), "
            "(SELECT count(*) FROM quarantine.rows), (SELECT count(*) FROM clean.admin_penalty), "
            "(SELECT count(*) FROM raw.tax_payment)"
        ).fetchone()
        duplicates = con.execute("SELECT count(*) FROM audit.arrivals WHERE outcome = 'duplicate'").fetchone()[0]
        con.close()
        return counts, duplicates

    before, dup_before = snapshot()
    _credit(["demo-data", "--snapshot", "--entities", "300"], demo_copy)  # same seed: the same bytes again
    _credit(["run-dags"], demo_copy)
    after, dup_after = snapshot()
    assert after == before
    assert dup_after - dup_before == len(_truth(demo_copy, "files.csv"))


def test_code_error_rate_matches_the_injected_code_defects(demo_city):
    """重错码率 numerators and denominators, recomputed from the truth file and the raw layer."""
    from transforms.identifiers import normalize_code, validate

    catalog = get_catalog()
    uscc_fields = {ds.id: [f.code for f in ds.fields if f.type.value == "uscc"] for ds in catalog.datasets.values()}
    code_reasons = ("uscc_", "wrong_kind_", "not_in_register", "name_mismatch")
    con = _warehouse(demo_city)
    bad: dict[tuple[str, str], set[str]] = {}
    for d in _truth(demo_city, "defects.csv"):
        if d["expected_outcome"] != "quarantine" or not d["expected_reason"].startswith(code_reasons):
            continue
        if d["field"] not in uscc_fields[d["dataset_id"]]:
            continue
        path = Path(d["file"])
        (raw,) = con.execute(
            f"SELECT {ident(d['field'])} FROM {table('raw', d['dataset_id'])} WHERE batch_id = "
            "(SELECT batch_id FROM audit.batches WHERE department = ? AND source_file = ?) AND source_row = ?",
            [path.parts[0], path.name, int(d["row"])],
        ).fetchone()
        bad.setdefault((path.parts[0], d["dataset_id"]), set()).add(normalize_code(raw))
    quarantined = {(Path(d["file"]).name, int(d["row"])) for d in _truth(demo_city, "defects.csv")
                   if d["expected_outcome"] == "quarantine"}
    register = {
        (normalize_code(code), unicodedata.normalize("NFKC", "".join(name.split())).replace("有限责任公司", "有限公司"))
        for source_file, row, code, name in con.execute(
            "SELECT b.source_file, r.source_row, r.TYSHXYDM, r.JGMC FROM raw.legal_entity r "
            "JOIN audit.batches b USING (batch_id) WHERE b.status = 'loaded'").fetchall()
        if (source_file, row) not in quarantined and name and name.strip()
    }
    received: dict[tuple[str, str], set[str]] = {}
    duplicated: dict[tuple[str, str], set[str]] = {}  # 重码: one subject code under two or more names in a batch
    for ds in catalog.datasets.values():
        if not ds.subject.uscc_field:
            continue
        names: dict[tuple, set[str]] = {}
        for dept, batch, value, name in con.execute(
            f"SELECT b.department, batch_id, r.{ident(ds.subject.uscc_field)}, r.{ident(ds.subject.name_field)} "
            f"FROM {table('raw', ds.id)} r JOIN audit.batches b USING (batch_id) WHERE b.status = 'loaded'"
        ).fetchall():
            if normalize_code(value) and name and name.strip():
                key = unicodedata.normalize("NFKC", "".join(name.split())).replace("有限责任公司", "有限公司")
                names.setdefault((dept, ds.id, batch, normalize_code(value)), set()).add(key)
        for (dept, dataset_id, _, code), found in names.items():
            if len(found) > 1:
                duplicated.setdefault((dept, dataset_id), set()).add(code)
        # ... or one subject name under two or more well-formed codes, but the register's own code for it
        codes_of: dict[tuple, set[str]] = {}
        for (dept, dataset_id, batch, code), found in names.items():
            if validate(code, "uscc").valid:
                for name in found:
                    codes_of.setdefault((dept, dataset_id, batch, name), set()).add(code)
        for (dept, dataset_id, _, name), codes in codes_of.items():
            if len(codes) > 1:
                spared = register if ds.category != "register" else set()
                duplicated.setdefault((dept, dataset_id), set()).update(c for c in codes if (c, name) not in spared)
    for dataset_id, fields in uscc_fields.items():
        for field in fields:
            rows = con.execute(
                f"SELECT b.department, r.{ident(field)} FROM {table('raw', dataset_id)} r "
                "JOIN audit.batches b USING (batch_id) WHERE b.status = 'loaded'"
            ).fetchall()
            for dept, value in rows:
                if normalize_code(value):
                    received.setdefault((dept, dataset_id), set()).add(normalize_code(value))
    got = {
        (dept, ds): (n, err, dup)
        for dept, ds, n, err, dup in con.execute(
            "SELECT department, dataset_id, codes_received, codes_erroneous, codes_duplicate "
            "FROM audit.code_error_rate WHERE dataset_id IS NOT NULL"
        ).fetchall()
    }
    con.close()
    expected = {
        key: (len(codes), len(bad.get(key, set())), len(duplicated.get(key, set()))) for key, codes in received.items()
    }
    assert got == expected
    assert sum(d for _, _, d in got.values()) >= 1  # the demo's shared placeholder code is one 重码


def test_register_corrections_fix_exactly_the_code_defects_the_register_can_vouch_for(demo_copy):
    """纠正率 on the sample city: the register authority's corrections, recomputed from the truth and raw layer."""
    def key(name: str | None) -> str | None:
        text = unicodedata.normalize("NFKC", "".join((name or "").split())).replace("有限责任公司", "有限公司")
        return text or None

    from transforms.identifiers import normalize_code

    catalog = get_catalog()
    defects = _truth(demo_copy, "defects.csv")
    quarantined = {(Path(d["file"]).name, int(d["row"])) for d in defects if d["expected_outcome"] == "quarantine"}
    con = _warehouse(demo_copy)
    registered: dict[str, set[str]] = {}
    for name_file, row, code, name in con.execute(
        "SELECT b.source_file, r.source_row, r.TYSHXYDM, r.JGMC FROM raw.legal_entity r JOIN audit.batches b "
        "USING (batch_id) WHERE b.status = 'loaded'"
    ).fetchall():
        if (name_file, row) not in quarantined and key(name):
            registered.setdefault(key(name), set()).add(normalize_code(code))
    expected = set()
    for d in defects:
        ds = catalog.datasets[d["dataset_id"]]
        if (d["expected_outcome"] != "quarantine" or ds.category == "register" or not ds.subject.uscc_field
                or d["expected_reason"] not in {f"{r}:{ds.subject.uscc_field}" for r in
                                                ("uscc_length", "uscc_charset", "uscc_authority_category",
                                                 "uscc_division", "uscc_org_check", "uscc_check_digit",
                                                 "uscc_placeholder", "uscc_excel_damage", "not_in_register",
                                                 "wrong_kind_registration_number", "wrong_kind_org_code",
                                                 "wrong_kind_resident_id")}):
            continue
        path = Path(d["file"])
        (batch_id, old, name) = con.execute(
            f"SELECT batch_id, {ident(ds.subject.uscc_field)}, {ident(ds.subject.name_field)} "
            f"FROM {table('raw', ds.id)} WHERE batch_id = (SELECT batch_id FROM audit.batches "
            "WHERE department = ? AND source_file = ?) AND source_row = ?",
            [path.parts[0], path.name, int(d["row"])],
        ).fetchone()
        codes = registered.get(key(name), set())
        if len(codes) == 1 and normalize_code(old) and normalize_code(old) not in codes:
            expected.add((batch_id, int(d["row"])))
    before = con.execute("SELECT rows_detected, rows_corrected FROM audit.correction_rate "
                         "WHERE department IS NULL").fetchone()
    con.close()
    assert len(expected) >= 10, "the demo has code defects the register can fix"
    suggested = demo_copy / "corrections" / "register_authority.csv"
    _credit(["corrections", "suggest", "--out", str(suggested)], demo_copy)
    _credit(["corrections", "apply", str(suggested), "--source", "register_authority"], demo_copy)
    con = _warehouse(demo_copy)
    corrected = set(con.execute("SELECT batch_id, source_row FROM quarantine.rows WHERE status = 'corrected'")
                    .fetchall())
    after = con.execute("SELECT rows_detected, rows_corrected, rows_open FROM audit.correction_rate "
                        "WHERE department IS NULL").fetchone()
    in_clean = con.execute("SELECT sum(rows_loaded) FROM audit.batches WHERE format = 'corrections'").fetchone()[0]
    con.close()
    assert corrected == expected
    assert before[1] == 0 and after == (before[0], len(expected), before[0] - len(expected))
    assert in_clean == len(expected)


def test_no_resident_id_in_any_clean_parquet_string_column(demo_city):
    """The export downstream systems read: every string column of every file scanned."""
    from restricted_scan import resident_ids_in_parquet

    assert resident_ids_in_parquet(demo_city / "parquet") == []
    assert resident_ids_in_parquet(demo_city / "raw")  # the scan finds them where they are kept


def test_licence_numbers_shaped_like_ids_are_kept(demo_city):
    """许可编号 371083 + 20220107 + serial looks like an ID number; the catalog says it is not one (mask_ids)."""
    con = duckdb.connect()
    root = demo_city
    rows = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE c.XK_XKBH = r.XK_XKBH),
                   count(*) FILTER (WHERE regexp_full_match(r.XK_XKBH, '371083\\d{{12}}'))
            FROM read_parquet('{root}/parquet/admin_license/*/*/*.parquet', hive_partitioning=true) c
            JOIN read_parquet('{root}/raw/admin_license/*/*/*.parquet', hive_partitioning=true, file_row_number=true) r
              ON r.batch_id = c.batch_id AND coalesce(r._row, r.file_row_number + 1) = c.source_row
            WHERE r.XK_XKBH IS NOT NULL"""
    ).fetchone()
    assert rows[0] > 0 and rows[1] == rows[0] and rows[2] > 0, rows
