"""Great Expectations suites from the catalog, run inside DuckDB (expectations/).

- suites: one per catalog dataset, with the catalog's rules;
- the adapter canary: GX version pinned, GX's plain SQL engine still loses DuckDB results,
  and through the adapter a known unexpected count comes back from SQL;
- a hand-made batch with known failures, through the real runner (file context, Data Docs,
  audit.expectation_results), and the same suite through GX's pandas engine;
- the demo city (every DAG run once): GX's stored unexpected counts per expectation equal
  the ground truth (truth/defects.csv), exactly; Data Docs name every suite.
"""

from __future__ import annotations

import json
import multiprocessing
import re
from collections import Counter
from pathlib import Path

import duckdb
import great_expectations as gx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import truth_rows
from great_expectations.execution_engine import SqlAlchemyExecutionEngine

from expectations.custom import ExpectColumnValuesToBeValidUscc
from expectations.data_docs import REMOTE_REFERENCE
from expectations.duckdb_engine import GX_VERSION, DuckDBExecutionEngine, batch_connection
from expectations.run import (
    DATASOURCE,
    BatchValidation,
    docs_index,
    gx_root,
    record_results,
    validate_batch,
)
from expectations.suites import build_suite, suite_name, typed_column
from transforms.identifiers import gb11714_check_char, rid_check_char, uscc_check_char
from transforms.reasons import CODE_REASONS, FILE_REASONS, READ_REASONS, REGISTER_REASONS, VALUE_REASONS

pytestmark = pytest.mark.integration

RUSHAN = "371083"


def _uscc(prefix: str, body: str) -> str:
    first17 = prefix + RUSHAN + body + gb11714_check_char(body)
    return first17 + uscc_check_char(first17)


def _rid(born: str, seq: str) -> str:
    first17 = RUSHAN + born + seq
    return first17 + rid_check_char(first17)


def _rules(suite) -> Counter:
    return Counter((e.meta["rule"], e.meta["field"]) for e in suite.expectations)


# --- suites --------------------------------------------------------------------------------------


def test_every_catalog_dataset_gets_a_suite_with_its_rules(catalog):
    for ds in catalog.datasets.values():
        suite = build_suite(ds)
        assert suite.name == suite_name(ds) == f"credit_{ds.id}"
        rules = _rules(suite)
        twice = [k for k, n in rules.items() if n > 1 and k[0] != "date_order"]  # two orders may end on one field
        assert not twice, f"{ds.id}: built twice: {twice}"
        for f in ds.fields:
            assert (("required_missing", f.code) in rules) == f.required, (ds.id, f.code)
            assert (("value_not_allowed", f.code) in rules) == bool(f.allowed_values), (ds.id, f.code)
            assert (("valid_code", f.code) in rules) == (f.type.value in {"uscc", "org_code", "resident_id"})
            assert (("out_of_range", f.code) in rules) == (f.min_value is not None or f.max_value is not None)
        assert sum(n for (r, _), n in rules.items() if r == "date_order") == len(ds.date_order)
        assert rules[("duplicate_row", "")] == 1
        # GX accepts the suite as configuration (it round-trips through its JSON form).
        again = gx.ExpectationSuite(**json.loads(json.dumps(suite.to_json_dict())))
        assert _rules(again) == rules


def test_penalty_suite_holds_the_catalog_values(catalog):
    ds = catalog.dataset("admin_penalty")
    by_rule = {(e.meta["rule"], e.meta["field"]): e for e in build_suite(ds).expectations}
    kinds = by_rule[("value_not_allowed", "CF_CFLB")]  # multi: 罚款、没收违法所得
    assert kinds.expectation_type == "expect_column_values_to_be_joined_from_set"
    assert "行政拘留" in kinds.value_set and len(kinds.value_set) == 14
    fine = by_rule[("out_of_range", "CF_NR_FK")]
    assert (fine.column, fine.min_value, fine.max_value) == ("CF_NR_FK__t", 0, 100000)
    order = by_rule[("date_order", "CF_YXQ")]
    assert (order.column_A, order.column_B, order.or_equal) == ("CF_YXQ__t", "CF_JDRQ__t", True)
    assert by_rule[("duplicate_row", "")].column_list == ["CF_WSH", "CF_XDR_MC"]
    assert by_rule[("invalid_date", "CF_JDRQ")].column_B == typed_column(ds.field("CF_JDRQ"))
    kinds_of_codes = Counter(e.expectation_type for (rule, _), e in by_rule.items() if rule == "valid_code")
    assert kinds_of_codes == {"expect_column_values_to_be_valid_uscc": 3,
                              "expect_column_values_to_be_valid_org_code": 1,
                              "expect_column_values_to_be_valid_resident_id": 2}


# --- the adapter canary --------------------------------------------------------------------------------


def test_adapter_canary_gx_version_and_a_count_through_the_sql_engine():
    """Fails loudly when a GX upgrade changes what expectations/duckdb_engine.py relies on."""
    assert gx.__version__ == GX_VERSION, (
        f"great_expectations {gx.__version__} is not the {GX_VERSION} the DuckDB adapter was checked against: "
        "re-run this file, re-read expectations/duckdb_engine.py, then update GX_VERSION"
    )
    plain = SqlAlchemyExecutionEngine(connection_string="duckdb:///:memory:")
    assert plain.execute_query(sa.text("SELECT 42")).fetchall() == [], (
        "GX's own SQL engine now reads DuckDB results (GX #10738/#11579 fixed?): the adapter may no longer be needed"
    )
    plain.close()

    good = _uscc("91", "MA3C8P5J")
    bad = good[:17] + ("1" if good[17] == "0" else "0")
    context = gx.get_context(mode="ephemeral")
    datasource = context.data_sources.add_credit_duckdb(name="canary")
    with batch_connection(datasource) as connection:
        connection.exec_driver_sql("CREATE TABLE codes AS SELECT unnest([?, ?, ?, NULL]) AS code", (good, bad, good))
    batch = datasource.add_table_asset("codes", table_name="codes").add_batch_definition_whole_table("all")
    suite = context.suites.add(gx.ExpectationSuite(name="canary", expectations=[
        ExpectColumnValuesToBeValidUscc(column="code"),
        gx.expectations.ExpectColumnValuesToNotBeNull(column="code"),
    ]))
    results = context.validation_definitions.add(gx.ValidationDefinition(name="canary", data=batch, suite=suite)).run()
    assert isinstance(datasource.get_execution_engine(), DuckDBExecutionEngine)
    valid, filled = results.results
    assert not valid.exception_info.get("raised_exception"), valid.exception_info
    assert (valid.success, valid.result["element_count"], valid.result["unexpected_count"]) == (False, 4, 1)
    assert valid.result["partial_unexpected_list"] == [bad[:6] + "********" + bad[-4:]]  # masked
    assert (filled.success, filled.result["unexpected_count"]) == (False, 1)


# --- a hand-made batch -------------------------------------------------------------------------------

BATCH = "admin_penalty-00000000000000a1"
PERSON = _rid("19800101", "123")
BAD_ID = PERSON[:17] + ("1" if PERSON[17] == "0" else "0")
AGENCY = _uscc("11", "00712345")


def _penalty_rows(catalog) -> tuple[list[dict], Counter]:
    """Ten rows: one valid, and each other one with known failures (rule, field) -> count."""
    ds = catalog.dataset("admin_penalty")
    base = {f.code: None for f in ds.fields} | {
        "CF_XDR_MC": "乳山市宏达水产有限公司", "CF_XDR_LB": "法人及非法人组织", "CF_XDR_SHXYM": _uscc("91", "MA3C8P5J"),
        "CF_WSH": "乳市监罚〔2022〕1号", "CF_WFXW": "销售不合格产品", "CF_SY": "销售经抽样检验不合格的产品",
        "CF_YJ": "《中华人民共和国产品质量法》第四十九条", "CF_CFLB": "罚款、没收违法所得", "CF_NR": "罚款人民币5000元",
        "CF_NR_FK": "0.5", "CF_JDRQ": "2022-03-01", "CF_YXQ": "2023-02-28", "CF_CFJG": "乳山市市场监督管理局",
        "CF_CFJGDM": AGENCY, "CF_SJLY": "乳山市市场监督管理局", "CF_SJLYDM": AGENCY,
    }

    def row(n: int, **changes) -> dict:
        return base | {"CF_WSH": f"乳市监罚〔2022〕{n}号"} | changes

    rows = [
        row(1, CF_XDR_SHXYM="９１" + base["CF_XDR_SHXYM"][2:].lower()),  # full-width, lower case: normalized, valid
        row(1, CF_XDR_SHXYM=base["CF_XDR_SHXYM"]),  # the same key again
        row(3, CF_XDR_SHXYM=base["CF_XDR_SHXYM"][:17] + "0"),  # check character
        row(4, CF_XDR_LB="个人"),
        row(5, CF_CFLB="罚款；罚金"),
        row(6, CF_JDRQ="2022年2月30日"),  # no such day; date order not checked then
        row(7, CF_NR_FK="200000万元"),  # parses (its unit), above 100000
        row(8, CF_YXQ="2022-01-31"),  # before the decision date
        row(9, CF_SY="\u3000 "),  # blank counts as missing
        row(10, CF_XDR_LB="自然人", CF_XDR_SHXYM=None, CF_XDR_ZJHM=BAD_ID, CF_NR_FK="伍仟元"),
    ]
    expected = Counter({
        ("duplicate_row", ""): 1, ("valid_code", "CF_XDR_SHXYM"): 1, ("value_not_allowed", "CF_XDR_LB"): 1,
        ("value_not_allowed", "CF_CFLB"): 1, ("invalid_date", "CF_JDRQ"): 1, ("out_of_range", "CF_NR_FK"): 1,
        ("date_order", "CF_YXQ"): 1, ("required_missing", "CF_SY"): 1, ("valid_code", "CF_XDR_ZJHM"): 1,
        ("invalid_amount", "CF_NR_FK"): 1,
    })
    return rows, expected


def _write_batch(settings, catalog) -> Counter:
    rows, expected = _penalty_rows(catalog)
    codes = catalog.dataset("admin_penalty").field_codes
    table = pa.table({"_row": list(range(1, len(rows) + 1)), **{c: [r[c] for r in rows] for c in codes}},
                     schema=pa.schema([("_row", pa.int64()), *[(c, pa.string()) for c in codes]]))
    folder = settings.raw_root / "admin_penalty" / "department=market_regulation" / f"batch_id={BATCH}"
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "rows.parquet")
    return expected


def test_a_hand_made_batch_fails_exactly_where_it_should(settings, catalog):
    expected = _write_batch(settings, catalog)
    validation = validate_batch(settings, catalog, BATCH)

    assert (validation.dataset_id, validation.department, validation.suite) == (
        "admin_penalty", "market_regulation", "credit_admin_penalty")
    assert not validation.success
    got = Counter({(r.rule, r.field): r.unexpected_count for r in validation.results if r.unexpected_count})
    assert got == expected
    assert {(r.rule, r.field) for r in validation.failed} == set(expected)
    assert all(r.element_count == 10 for r in validation.results)
    examples = {(r.rule, r.field): r.examples for r in validation.failed}
    assert examples[("value_not_allowed", "CF_CFLB")] == ["罚款;罚金"]  # enums are checked half-width
    assert examples[("invalid_amount", "CF_NR_FK")] == ["伍仟元"]
    assert examples[("valid_code", "CF_XDR_ZJHM")] == [BAD_ID[:6] + "********" + BAD_ID[-4:]]
    # No resident ID leaves unmasked: not in the summary, not in GX's stored results or Data Docs.
    stored = "\n".join(p.read_text(encoding="utf-8") for p in gx_root(settings).rglob("*") if p.suffix in {
        ".json", ".html"})
    assert BAD_ID[6:14] not in stored and BAD_ID[6:14] not in json.dumps(validation.to_dict(), ensure_ascii=False)
    assert "乳市监罚〔2022〕1号 | 乳山市宏达水产有限公司 (×2)" in examples[("duplicate_row", "")]

    # Results go to the warehouse through the writer's connection, replaced on a re-run.
    con = duckdb.connect(str(settings.data_root / "results.duckdb"))
    again = BatchValidation.from_dict(json.loads(json.dumps(validation.to_dict())))
    assert record_results(con, [validation]) == record_results(con, [again]) == len(validation.results)
    counts = con.execute("SELECT rule, field, unexpected_count FROM audit.expectation_results "
                         "WHERE batch_id = ? AND unexpected_count > 0", [BATCH]).fetchall()
    con.close()
    assert Counter({(r, f): n for r, f, n in counts}) == expected

    index = docs_index(settings)
    assert index.exists() and "credit_admin_penalty" in index.read_text(encoding="utf-8")
    assert "dataContextId" not in index.read_text(encoding="utf-8")
    _assert_offline(index.parent)


def _assert_offline(site):
    """Every page loads its styles and scripts from the site itself: nothing from outside."""
    pages = [p for p in [*site.rglob("*.html"), *site.rglob("*.css")] if "vendor" not in p.parts]
    assert len(pages) >= 3
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not REMOTE_REFERENCE.search(text), (page, REMOTE_REFERENCE.search(text))
        for ref in re.findall(r'(?:src|href)="([^"#?]*static/vendor/[^"]+)"', text):
            assert (page.parent / ref).resolve().is_file(), (page, ref)
    assert (site / "static" / "vendor" / "fontawesome" / "webfonts" / "fa-solid-900.woff2").is_file()


def test_the_same_suite_through_gx_pandas_engine_gives_the_same_counts(settings, catalog):
    """The bench runs the suite on pandas too: its custom expectations must agree with SQL."""
    from warehouse.checks_sql import build_typed_sql
    from warehouse.identifier_sql import install_identifier_macros
    from warehouse.value_sql import install_value_macros

    expected = _write_batch(settings, catalog)
    ds = catalog.dataset("admin_penalty")
    sql, params = build_typed_sql(ds)
    con = duckdb.connect()
    install_value_macros(con)
    install_identifier_macros(con)
    rows = next(settings.raw_root.rglob("rows.parquet"))
    frame = con.execute(f"{sql} ORDER BY source_row", {**params, "rows": str(rows)}).df()
    con.close()
    context = gx.get_context(mode="ephemeral")
    batch = (context.data_sources.add_pandas("frames").add_dataframe_asset("admin_penalty")
             .add_batch_definition_whole_dataframe("all"))
    suite = context.suites.add(build_suite(ds))
    result = context.validation_definitions.add(gx.ValidationDefinition(name="pandas", data=batch, suite=suite)).run(
        batch_parameters={"dataframe": frame})
    assert not [r.expectation_config.type for r in result.results if r.exception_info.get("raised_exception")]
    got = Counter({(r.expectation_config.meta["rule"], r.expectation_config.meta["field"]): r.result["unexpected_count"]
                   for r in result.results if r.result.get("unexpected_count")})
    assert got == expected


def test_an_unknown_batch_is_refused(settings, catalog):
    from expectations.run import BatchNotFoundError

    for batch_id in ("admin_penalty-0000000000000000", "../../etc-0000000000000000", "admin_penalty"):
        with pytest.raises(BatchNotFoundError):
            validate_batch(settings, catalog, batch_id)


def _validate_elsewhere(batch_id: str) -> tuple[str, int]:
    """In a process of its own, as Airflow runs a validate task."""
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings

    validation = validate_batch(get_settings(), get_catalog(), batch_id)
    return validation.batch_id, len(validation.results)


@pytest.mark.slow  # four processes start GX (about 25 s)
def test_validations_side_by_side_keep_every_asset(settings, catalog):
    """Four datasets validated at once in four processes: GX's configuration keeps all four assets."""
    ids = ["admin_license", "admin_penalty", "tax_payment", "utility_payment"]
    batches = []
    for n, dataset_id in enumerate(ids):
        ds = catalog.dataset(dataset_id)
        batch_id = f"{dataset_id}-{n:016x}"
        folder = settings.raw_root / dataset_id / f"department={ds.departments[0]}" / f"batch_id={batch_id}"
        folder.mkdir(parents=True)
        table = pa.table({"_row": [1, 2], **{c: [None, "x"] for c in ds.field_codes}},
                         schema=pa.schema([("_row", pa.int64()), *[(c, pa.string()) for c in ds.field_codes]]))
        pq.write_table(table, folder / "rows.parquet")
        batches.append(batch_id)

    with multiprocessing.get_context("spawn").Pool(len(batches)) as pool:
        done = pool.map(_validate_elsewhere, batches)

    assert [b for b, _ in done] == batches
    assert all(n == len(build_suite(catalog.dataset(b.rsplit("-", 1)[0])).expectations) for b, n in done)
    context = gx.get_context(mode="file", project_root_dir=settings.data_root)
    assert sorted(a.name for a in context.data_sources.get(DATASOURCE).assets) == ids
    assert sorted(s.name for s in context.suites.all()) == sorted(f"credit_{i}" for i in ids)


# --- the demo city -----------------------------------------------------------------------------------

NOT_IN_A_BATCH = set(READ_REASONS) | set(FILE_REASONS)  # rejected before the rows are staged
NEEDS_THE_WAREHOUSE = set(REGISTER_REASONS)  # the register cross-check reads clean.subjects


def _truth_counts(demo: Path) -> tuple[Counter, set[str]]:
    """Truth rows per (batch, rule, field), with the reasons no suite covers."""
    con = duckdb.connect(str(demo / "warehouse.duckdb"), read_only=True)
    batches = {(d, f): b for b, d, f in con.execute(
        "SELECT batch_id, department, source_file FROM audit.batches").fetchall()}
    con.close()
    expected, uncovered = Counter(), set()
    for d in truth_rows(demo, "defects.csv"):
        if d["expected_outcome"] != "quarantine":
            continue
        path = Path(d["file"])
        batch = batches[(path.parts[0], path.name)]
        code, _, field = d["expected_reason"].partition(":")
        if code in VALUE_REASONS:
            expected[(batch, code, field)] += 1
        elif code in CODE_REASONS:
            expected[(batch, "valid_code", field)] += 1
        else:
            uncovered.add(code)
    return expected, uncovered


def _stored_results(demo: Path) -> dict[str, dict]:
    """GX's stored validation results, latest run per batch (run name = batch id)."""
    latest: dict[str, tuple[str, Path]] = {}
    for path in (demo / "gx" / "uncommitted" / "validations").glob("credit_*/*/*/*.json"):
        batch, run_time = path.parent.parent.name, path.parent.name
        if batch not in latest or run_time > latest[batch][0]:
            latest[batch] = (run_time, path)
    return {b: json.loads(p.read_text(encoding="utf-8")) for b, (_, p) in latest.items()}


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_city_unexpected_counts_equal_the_truth(demo_city):
    expected, uncovered = _truth_counts(demo_city)
    assert uncovered <= NOT_IN_A_BATCH | NEEDS_THE_WAREHOUSE, uncovered
    stored = _stored_results(demo_city)
    con = duckdb.connect(str(demo_city / "warehouse.duckdb"), read_only=True)
    ledger = {b for (b,) in con.execute("SELECT batch_id FROM audit.batches").fetchall()}
    recorded = con.execute("SELECT batch_id, rule, field, unexpected_count, success FROM audit.expectation_results"
                           ).fetchall()
    con.close()
    assert set(stored) == ledger, "every loaded batch validated by its DAG"

    got = Counter()
    for batch, result in stored.items():
        for r in result["results"]:
            assert not r["exception_info"].get("raised_exception"), (batch, r["expectation_config"])
            meta = r["expectation_config"]["meta"]
            if r["result"].get("unexpected_count"):
                got[(batch, meta["rule"], meta["field"])] += r["result"]["unexpected_count"]
    assert got == expected
    assert sum(expected.values()) > 150

    from_warehouse = Counter()
    for b, r, f, n, _ in recorded:
        from_warehouse[(b, r, f)] += n or 0
    from_warehouse += Counter()  # drop zeros
    assert from_warehouse == expected
    assert all(ok == ((n or 0) == 0) for *_, n, ok in recorded)


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_city_data_docs_name_every_suite(demo_city, catalog):
    index = demo_city / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    html = index.read_text(encoding="utf-8")
    con = duckdb.connect(str(demo_city / "warehouse.duckdb"), read_only=True)
    validated = {d for (d,) in con.execute("SELECT DISTINCT dataset_id FROM audit.batches WHERE status = 'loaded'")
                 .fetchall()}
    con.close()
    assert len(validated) >= 12
    for ds in (d for d in catalog.datasets.values() if d.id in validated):  # a suite is on the index once run
        assert suite_name(ds) in html, ds.id
        assert (index.parent / "expectations" / f"{suite_name(ds)}.html").exists()
    assert "dataContextId" not in html and "newsletter" not in html
    assert not re.search(r"[0-9]{17}[0-9X]", html)  # no raw ID-like value on the index
    _assert_offline(index.parent)
