"""The scorecard (warehouse/scorecard.py) on the sample city, against the ground truth.

The sample city ran through every DAG once (fixture ``demo_city``), the quality report DAG
included, so ``mart.scorecard`` is there. Every one of its rows, at every level, must have the
numerator and denominator recomputed here from the generator's truth files (``files.csv``,
``defects.csv``, ``timeliness.csv``); 重错码率 as the end-to-end test recomputes it, from the
truth and the raw layer. Tests that write take a private copy (``demo_copy``).
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import credit_cli, truth_rows

from foundation.catalog import CatalogError, FieldType, get_catalog
from foundation.settings import get_settings
from foundation.sql_names import ident, table
from sample_city import LATE_FEED
from transforms.identifiers import normalize_code, validate
from transforms.reasons import CODE_REASONS, READ_REASONS, REGISTER_REASONS
from transforms.working_days import known_years
from warehouse.scorecard import LEVELS, METRICS, SCORECARD_COLUMNS, load_targets

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
CODE_REASON_PREFIXES = ("uscc_", "wrong_kind_", "not_in_register", "name_mismatch")


def _warehouse(data_root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(data_root / "warehouse.duckdb"), read_only=True)


def _batches(con) -> dict[str, tuple[str, str, str]]:
    """truth file path -> (batch_id, department, dataset_id) from the ledger."""
    rows = con.execute("SELECT department, source_file, batch_id, dataset_id FROM audit.batches").fetchall()
    return {f"{dept}/{name}": (batch, dept, ds) for dept, name, batch, ds in rows}


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFKC", "".join(name.split())).replace("有限责任公司", "有限公司")


def _code_sets(con, catalog, defects, batch_of) -> tuple[dict, dict]:
    """Per batch: distinct codes received, and the bad ones, as docs/code-error-rate.md defines them.

    错码 from the truth (a code defect on the field); 重码 from the raw names: one code under two or
    more names, or one name under two or more valid codes (but the register's own code for it).
    """
    received: dict[str, set] = defaultdict(set)
    bad: dict[str, set] = defaultdict(set)
    raw: dict[tuple, str] = {}
    quarantined = {(batch_of[d["file"]][0], int(d["row"])) for d in defects if d["expected_outcome"] == "quarantine"}
    register = {(normalize_code(code), _name_key(name)) for batch, row, code, name in con.execute(
        "SELECT batch_id, source_row, TYSHXYDM, JGMC FROM raw.legal_entity JOIN audit.batches USING (batch_id) "
        "WHERE status = 'loaded'").fetchall() if (batch, row) not in quarantined and name and name.strip()}
    for ds in catalog.datasets.values():
        fields = [f.code for f in ds.fields if f.type is FieldType.USCC]
        if not fields:
            continue
        cols = ", ".join(f"r.{ident(c)}" for c in [*fields, ds.subject.name_field])
        names: dict[tuple, set] = defaultdict(set)
        for batch, row, *values in con.execute(
            f"SELECT batch_id, source_row, {cols} FROM {table('raw', ds.id)} r "
            "JOIN audit.batches b USING (batch_id) WHERE b.status = 'loaded'"
        ).fetchall():
            *codes, subject = values
            for field, value in zip(fields, codes, strict=True):
                raw[(batch, row, field)] = value
                if normalize_code(value):
                    received[batch].add(normalize_code(value))
            code = normalize_code(codes[fields.index(ds.subject.uscc_field)]) if ds.subject.uscc_field else None
            if code and subject and subject.strip():
                names[(batch, code)].add(_name_key(subject))
        codes_of: dict[tuple, set] = defaultdict(set)
        for (batch, code), found in names.items():
            if len(found) > 1:
                bad[batch].add(code)
            if validate(code, "uscc").valid:
                for name in found:
                    codes_of[(batch, name)].add(code)
        spared = register if ds.category != "register" else set()
        for (batch, name), codes in codes_of.items():
            if len(codes) > 1:
                bad[batch] |= {c for c in codes if (c, name) not in spared}
    for d in defects:
        if d["expected_outcome"] == "quarantine" and d["expected_reason"].startswith(CODE_REASON_PREFIXES):
            batch = batch_of[d["file"]][0]
            value = raw.get((batch, int(d["row"]), d["field"]))
            if normalize_code(value):
                bad[batch].add(normalize_code(value))
    return received, bad


def _groups(dept: str, ds: str, batch: str | None) -> list[tuple]:
    keys = [("department_dataset", dept, ds, None), ("department", dept, None, None),
            ("dataset", None, ds, None), ("city", None, None, None)]
    return ([("batch", dept, ds, batch)] if batch else []) + keys


def expected_scorecard(data_root: Path) -> dict[tuple, tuple[int, int]]:
    """(level, department, dataset_id, batch_id, metric) -> (numerator, denominator), from the truth."""
    catalog = get_catalog()
    files = truth_rows(data_root, "files.csv")
    defects = truth_rows(data_root, "defects.csv")
    timely = {r["file"]: r for r in truth_rows(data_root, "timeliness.csv") if r["denominator"]}
    con = _warehouse(data_root)
    batch_of = _batches(con)
    received, bad = _code_sets(con, catalog, defects, batch_of)
    con.close()
    per_file = defaultdict(lambda: defaultdict(int))
    for d in defects:
        reason = d["expected_reason"]
        if reason in READ_REASONS:
            per_file[d["file"]]["unread"] += 1
        if reason.startswith("required_missing:"):
            per_file[d["file"]]["unfilled"] += 1
        if d["expected_outcome"] == "quarantine" and reason.split(":")[0] in {**CODE_REASONS, **REGISTER_REASONS}:
            per_file[d["file"]]["code_defects"] += 1
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    codes: dict[tuple, list[set]] = defaultdict(lambda: [set(), set()])
    for f in files:
        batch, dept, ds = batch_of[f["file"]]
        counts = per_file[f["file"]]
        n_required = sum(s.required for s in catalog.dataset(ds).fields)
        values = {"compliance": (int(f["rows_loaded"]), int(f["rows_in"]))}
        if f["status"] == "loaded":
            cells = (int(f["rows_in"]) - counts["unread"]) * n_required
            values["completeness"] = (cells - counts["unfilled"], cells)
        if f["file"] in timely:
            t = timely[f["file"]]
            values["timeliness"] = (int(t["numerator"]), int(t["denominator"]))
        for group in _groups(dept, ds, batch):
            for metric, (num, den) in values.items():
                sums[(*group, metric)][0] += num
                sums[(*group, metric)][1] += den
            if batch in received:
                codes[(*group, "code_error")][0] |= bad[batch]
                codes[(*group, "code_error")][1] |= received[batch]
            if group[0] != "batch" and counts["code_defects"]:
                sums[(*group, "correction")][1] += counts["code_defects"]  # nothing corrected in the demo
    expected = {key: (num, den) for key, (num, den) in sums.items() if den}
    expected |= {key: (len(b), len(r)) for key, (b, r) in codes.items() if r}
    return expected


@pytest.fixture(scope="module")
def scorecard(demo_city) -> list[dict]:
    con = _warehouse(demo_city)
    cur = con.execute("SELECT * FROM mart.scorecard")
    names = [c[0] for c in cur.description]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    return rows


def _key(row: dict) -> tuple:
    return (row["level"], row["department"], row["dataset_id"], row["batch_id"], row["metric"])


def test_every_numerator_and_denominator_equals_the_truth(demo_city, scorecard):
    """The batch and the all-time levels; the monthly levels add up to them (the next test)."""
    got = {_key(r): (r["numerator"], r["denominator"]) for r in scorecard if not r["level"].endswith("_month")}
    expected = expected_scorecard(demo_city)
    assert {k for k in got if k not in expected} == set(), "in the scorecard, not in the truth"
    assert {k for k in expected if k not in got} == set(), "in the truth, not in the scorecard"
    assert {k: v for k, v in got.items() if expected[k] != v} == {}
    assert {r["level"] for r in scorecard} == set(LEVELS)
    assert {r["metric"] for r in scorecard} == set(METRICS)


@pytest.mark.parametrize(("month_level", "level"), [("city_month", "city"), ("department_month", "department"),
                                                    ("dataset_month", "dataset"),
                                                    ("department_dataset_month", "department_dataset")])
def test_the_monthly_levels_add_up_to_the_all_time_levels(scorecard, month_level, level):
    """合规率, 完整率 and 及时率 count records and cells: a group's months sum to its all-time row; every batch
    counts in the month of its period, and each month row is the sum of its batches."""
    sums: dict[tuple, list[int]] = {}
    for r in scorecard:
        if r["level"] == month_level and r["metric"] in ("compliance", "completeness", "timeliness"):
            total = sums.setdefault((r["department"], r["dataset_id"], r["metric"]), [0, 0])
            total[0] += r["numerator"]
            total[1] += r["denominator"]
    whole = {(r["department"], r["dataset_id"], r["metric"]): [r["numerator"], r["denominator"]] for r in scorecard
             if r["level"] == level and r["metric"] in ("compliance", "completeness", "timeliness")}
    assert sums == whole and len(sums) > 0
    batches: dict[tuple, list[int]] = {}
    for r in scorecard:
        if r["level"] == "batch" and r["metric"] == "compliance":
            total = batches.setdefault((r["department"], r["month"]), [0, 0])
            total[0] += r["numerator"]
            total[1] += r["denominator"]
    if month_level == "department_month":
        assert {(r["department"], r["month"]): [r["numerator"], r["denominator"]] for r in scorecard
                if r["level"] == month_level and r["metric"] == "compliance"} == batches


def test_rates_targets_and_verdicts_follow_the_catalog(demo_city, scorecard):
    targets = load_targets(get_settings().catalog_dir)
    thresholds = {d.id: d.code_error_threshold for d in get_catalog().datasets.values()}
    sent = defaultdict(set)  # department -> datasets it sent codes in
    for r in scorecard:
        if r["level"] == "department_dataset" and r["metric"] == "code_error":
            sent[r["department"]].add(r["dataset_id"])
    for r in scorecard:
        assert r["rate"] == pytest.approx(r["numerator"] / r["denominator"]), r
        if r["metric"] == "code_error":  # the strictest threshold of the group's datasets
            datasets = {r["dataset_id"]} if r["dataset_id"] else sent[r["department"]] if r["department"] else {
                d for ds in sent.values() for d in ds}
            assert r["target"] == min(thresholds[d] for d in datasets), r
            assert r["meets_target"] == (r["numerator"] <= r["target"] * r["denominator"])
        else:
            target = targets[r["metric"]]
            assert (r["target"], r["direction"]) == (target.value, target.direction)
            assert r["meets_target"] == (r["numerator"] >= target.value * r["denominator"]), r


def test_received_dates_are_the_submission_days_in_shanghai(demo_city, scorecard):
    con = _warehouse(demo_city)
    batch_of = _batches(con)
    con.close()
    submitted = {batch_of[r["file"]][0]: date.fromisoformat(r["submitted_date"])
                 for r in truth_rows(demo_city, "timeliness.csv")}
    got = {r["batch_id"]: r["received_date"] for r in scorecard if r["level"] == "batch"}
    assert got and all(submitted[b] == d for b, d in got.items())
    # submitted 00:20 on 1 December in Shanghai, still 30 November in UTC
    night = batch_of["market_regulation/xzjc_scjg_2022.csv"][0]
    assert got[night] == date(2022, 12, 1)


def test_the_deliberately_late_feed(demo_city, scorecard):
    """Decided 28/29 Sep 2022 (late) or 30 Sep (on time), submitted Fri 14 Oct: across National Day
    (1-7 Oct off) and the worked Saturday 8 and Sunday 9 Oct. Dates are read and judged here by hand."""
    con = _warehouse(demo_city)
    batch = _batches(con)[LATE_FEED][0]
    dates = [d for (d,) in con.execute(f"SELECT CF_JDRQ FROM {table('raw', 'admin_penalty')} WHERE batch_id = ?",
                                        [batch]).fetchall()]
    con.close()
    by_hand = {"2022-09-28": "late", "2022-09-29": "late", "2022-09-30": "on_time"}
    assert set(dates) <= set(by_hand), set(dates) - set(by_hand)
    on_time = sum(by_hand[d] == "on_time" for d in dates)
    assert 0 < on_time < len(dates)
    row = next(r for r in scorecard if r["batch_id"] == batch and r["metric"] == "timeliness")
    truth = next(r for r in truth_rows(demo_city, "timeliness.csv") if r["file"] == LATE_FEED)
    assert (row["numerator"], row["denominator"]) == (on_time, len(dates))
    assert (row["numerator"], row["denominator"]) == (int(truth["numerator"]), int(truth["denominator"]))
    assert row["meets_target"] is False


def test_dates_outside_the_calendar_are_counted_as_warnings(demo_city, scorecard):
    truth = truth_rows(demo_city, "timeliness.csv")
    outside = sum(int(r["outside_calendar"] or 0) for r in truth)
    undated = sum(int(r["undated"] or 0) for r in truth)
    city = next(r for r in scorecard if r["level"] == "city" and r["metric"] == "timeliness")
    assert outside > 0 and (city["outside_calendar"], city["undated"]) == (outside, undated)


def test_parquet_export_equals_the_table_and_the_contract(demo_city, scorecard):
    path = demo_city / "parquet" / "mart_scorecard" / "scorecard.parquet"
    con = duckdb.connect()
    cur = con.execute("SELECT * FROM read_parquet(?)", [str(path)])
    names = [c[0] for c in cur.description]
    exported = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))",
                             [str(path)]).fetchall())
    con.close()
    assert exported == scorecard
    assert types == {name: sql_type for name, sql_type, _ in SCORECARD_COLUMNS}
    assert not [p for p in path.parent.iterdir() if p.name != "scorecard.parquet"]  # no temp file left


def test_a_batch_received_after_the_calendar_keeps_its_warning(demo_copy):
    """Received in a year the calendar does not know: no rate, every record a warning; no guess."""
    later = known_years()[1] + 1
    records = next(int(r["records"]) for r in truth_rows(demo_copy, "timeliness.csv")
                   if r["file"] == "civil_affairs/xzqr_mz_2022.jsonl")
    con = duckdb.connect(str(demo_copy / "warehouse.duckdb"))
    batch = con.execute("SELECT batch_id FROM audit.batches WHERE source_file = 'xzqr_mz_2022.jsonl'").fetchall()[0][0]
    con.execute("UPDATE audit.batches SET received_at = make_timestamptz(?, 3, 2, 10, 0, 0) WHERE batch_id = ?",
                [later, batch])
    con.close()
    done = credit_cli(["report", "--as-of", f"{later}-03-03"], demo_copy)  # as of a day after its receipt
    assert "Deliveries not checked" in done.stdout  # no deadline can be counted in that year either
    con = _warehouse(demo_copy)
    row = con.execute("SELECT numerator, denominator, rate, meets_target, outside_calendar FROM mart.scorecard "
                      "WHERE batch_id = ? AND metric = 'timeliness'", [batch]).fetchall()
    con.close()
    assert row == [(0, 0, None, None, records)]
    html = (demo_copy / "reports" / f"quality-report-{later}-03-03.html").read_text(encoding="utf-8")
    assert "超出节假日日历" in html


def test_recomputing_gives_the_same_scorecard(demo_copy, scorecard):
    credit_cli(["report", "--date", "2026-03-02"], demo_copy)
    credit_cli(["report", "--date", "2026-03-02"], demo_copy)
    con = _warehouse(demo_copy)
    cur = con.execute("SELECT * FROM mart.scorecard")
    names = [c[0] for c in cur.description]
    again = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    con.close()
    assert again == scorecard


def test_corrections_raise_the_correction_rate_and_leave_the_record_metrics(demo_copy, scorecard):
    """The register authority's corrections: 纠正率 counts them; the re-carried records are not received twice."""
    suggested = demo_copy / "corrections" / "register_authority.csv"
    credit_cli(["corrections", "suggest", "--out", str(suggested)], demo_copy)
    credit_cli(["corrections", "apply", str(suggested), "--source", "register_authority"], demo_copy)
    credit_cli(["report"], demo_copy)  # as of today: the corrections just applied count
    con = _warehouse(demo_copy)
    cur = con.execute("SELECT * FROM mart.scorecard")
    names = [c[0] for c in cur.description]
    after = {_key(r): r for r in (dict(zip(names, row, strict=True)) for row in cur.fetchall())}
    corrected = dict(con.execute("SELECT department || '/' || dataset_id, count(*) FROM quarantine.rows "
                                 "WHERE status = 'corrected' GROUP BY ALL").fetchall())
    fixes = con.execute("SELECT count(*) FROM audit.batches WHERE format = 'corrections'").fetchall()[0][0]
    con.close()
    before = {_key(r): r for r in scorecard}
    assert fixes > 0 and sum(corrected.values()) > 0
    records = ("compliance", "completeness", "timeliness")
    assert {k: v for k, v in after.items() if k[4] in records} == {k: v for k, v in before.items() if k[4] in records}
    for key, row in after.items():
        if key[4] == "correction" and key[0] == "department_dataset":
            assert row["numerator"] == corrected.get(f"{key[1]}/{key[2]}", 0), key
            assert row["denominator"] == before[key]["denominator"], key
    city = after[("city", None, None, None, "correction")]
    assert city["numerator"] == sum(corrected.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("compliance: {name_zh: 合规率, min: 0.99}\n", "expected exactly the metrics"),  # four are missing
        ("{}\n", "expected exactly the metrics"),
    ],
)
def test_targets_file_must_name_every_metric(tmp_path, text, message):
    (tmp_path / "quality_targets.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match=message):
        load_targets(tmp_path)


def test_a_target_takes_exactly_one_bound_within_zero_and_one(tmp_path):
    good = {m: "{name_zh: x, min: 0.9}" for m in METRICS}
    for broken, why in (("{name_zh: x, min: 0.9, max: 0.1}", "exactly one"), ("{name_zh: x, min: 1.5}", "less than"),
                        ("{name_zh: x, goal: 0.9}", "Extra inputs")):
        text = "".join(f"{m}: {broken if m == 'timeliness' else v}\n" for m, v in good.items())
        (tmp_path / "quality_targets.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(CatalogError, match=f"metric 'timeliness'.*{why}"):
            load_targets(tmp_path)


def test_the_shipped_targets_are_the_city_defaults():
    targets = load_targets(Path(__file__).parents[1] / "catalogs")
    assert {m: (t.direction, t.value) for m, t in targets.items()} == {
        "compliance": ("min", 0.99), "completeness": ("min", 0.99), "timeliness": ("min", 0.95),
        "code_error": ("max", 0.0001), "correction": ("min", 0.95),
    }
