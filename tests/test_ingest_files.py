"""One file at a time through stage -> load -> export: formats, encodings and bad input.

Every row that enters leaves in clean or in quarantine with a reason; bad files get
a clear reason and never lose rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from credit import inbox, pipeline
from warehouse.db import connect

pytestmark = pytest.mark.integration

CODE = "91110000600037341L"  # python-stdnum's own valid example
HEADERS = ["行政相对人名称", "行政相对人类别", "统一社会信用代码", "行政处罚决定书文号", "违法行为类型", "违法事实",
           "处罚依据", "处罚类别", "处罚内容", "罚款金额（万元）", "处罚决定日期", "处罚有效期", "处罚机关",
           "处罚机关统一社会信用代码", "数据来源单位", "数据来源单位统一社会信用代码", "备注"]


def row(n: int, **over) -> list[str]:
    values = {
        "行政相对人名称": f"乳山市测试{n}有限公司", "行政相对人类别": "法人及非法人组织", "统一社会信用代码": CODE,
        "行政处罚决定书文号": f"乳市监罚〔2022〕{n}号", "违法行为类型": "违反广告法", "违法事实": "发布虚假广告",
        "处罚依据": "《广告法》第五十五条", "处罚类别": "罚款", "处罚内容": "罚款0.2万元", "罚款金额（万元）": "0.2",
        "处罚决定日期": "2022-07-26", "处罚有效期": "2023-07-26", "处罚机关": "乳山市市场监督管理局",
        "处罚机关统一社会信用代码": CODE, "数据来源单位": "乳山市市场监督管理局", "数据来源单位统一社会信用代码": CODE,
        "备注": "",
    }
    values.update(over)
    return [values[h] for h in HEADERS]


def csv_text(rows: list[list[str]], headers: list[str] = HEADERS) -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def ingest(settings, catalog, path: Path, dataset="admin_penalty", department="market_regulation", **kw):
    return pipeline.ingest_file(settings, catalog, path, dataset, department, **kw)


def quarantine(settings, catalog) -> list[tuple]:
    con = connect(settings, catalog)
    rows = con.execute("SELECT source_row, reasons, message_zh FROM quarantine.rows ORDER BY source_row").fetchall()
    con.close()
    return rows


def clean_values(settings, catalog, columns: str) -> list[tuple]:
    con = connect(settings, catalog)
    rows = con.execute(f"SELECT {columns} FROM clean.admin_penalty ORDER BY source_row").fetchall()
    con.close()
    return rows


def test_utf8_with_bom_normalizes_codes_dates_and_amounts(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.csv"
    rows = [
        row(1),
        row(2, 统一社会信用代码="９１１１００００６０００３７３４１Ｌ", 处罚决定日期="2022/7/26"),
        row(
            3, 统一社会信用代码="9111-0000 6000 3734 1l", 处罚决定日期="2022年7月26日",
            **{"罚款金额（万元）": "1,234.5万元"},
        ),
    ]
    path.write_text("\ufeff" + csv_text(rows), encoding="utf-8")
    result = ingest(settings, catalog, path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (3, 3, 0)
    assert clean_values(settings, catalog, "CF_XDR_SHXYM, CF_JDRQ::VARCHAR, CF_NR_FK::VARCHAR") == [
        (CODE, "2022-07-26", "0.200000"),
        (CODE, "2022-07-26", "0.200000"),
        (CODE, "2022-07-26", "1234.500000"),
    ]


def test_gb18030_file(settings, catalog, tmp_path):
    path = tmp_path / "xzcf_gbk.csv"
    path.write_bytes(csv_text([row(1), row(2)]).encode("gb18030"))
    result = ingest(settings, catalog, path)
    assert (result.rows_loaded, result.rows_quarantined) == (2, 0)
    assert clean_values(settings, catalog, "CF_XDR_MC") == [("乳山市测试1有限公司",), ("乳山市测试2有限公司",)]


def test_mixed_encodings_and_undecodable_line(settings, catalog, tmp_path):
    path = tmp_path / "xzcf_mixed.csv"
    lines = csv_text([row(1), row(2), row(3), row(4)]).splitlines(keepends=True)
    data = (
        lines[0].encode() + lines[1].encode() + lines[2].encode("gb18030") + b"\xff\xfe\xff broken\n"
        + lines[3].encode() + lines[4].encode("gb18030")
    )
    path.write_bytes(data)
    result = ingest(settings, catalog, path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (5, 4, 1)
    assert quarantine(settings, catalog)[0][:2] == (3, ["undecodable_bytes"])
    con = connect(settings, catalog)
    assert con.execute("SELECT encoding FROM audit.batches").fetchone()[0] == "gb18030+utf-8+undecodable"
    con.close()


def test_ragged_rows_are_quarantined_with_their_ordinal(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.csv"
    text = csv_text([row(1), row(2) + ["extra"], row(3), row(4)[:-3]])
    path.write_text(text, encoding="utf-8")
    result = ingest(settings, catalog, path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (4, 2, 2)
    assert [q[:2] for q in quarantine(settings, catalog)] == [(2, ["ragged_row"]), (4, ["ragged_row"])]


def test_row_level_reasons_and_chinese_message(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.csv"
    rows = [
        row(1),
        row(2, 行政相对人名称=""),
        row(3, 处罚决定日期="2022-13-45"),
        row(4, 处罚类别="罚款;打板子"),
        row(5, 统一社会信用代码="91110000600037341X"),
        row(6, **{"罚款金额（万元）": "2000元"}),
        row(7, 处罚有效期="2021-01-01"),
        row(1),
    ]
    path.write_text(csv_text(rows), encoding="utf-8")
    result = ingest(settings, catalog, path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (8, 1, 7)
    got = {q[0]: q[1] for q in quarantine(settings, catalog)}
    assert got == {
        2: ["required_missing:CF_XDR_MC"],
        3: ["invalid_date:CF_JDRQ"],
        4: ["value_not_allowed:CF_CFLB"],
        5: ["uscc_check_digit:CF_XDR_SHXYM"],
        6: ["invalid_amount:CF_NR_FK"],
        7: ["date_order:CF_YXQ"],
        8: ["duplicate_row"],
    }
    messages = {q[0]: q[2] for q in quarantine(settings, catalog)}
    assert messages[2] == "行政相对人名称：必填项为空"
    assert messages[5] == "统一社会信用代码：统一社会信用代码校验位错误"


def test_file_level_rejections_keep_every_row(settings, catalog, tmp_path):
    cases = {
        "xzcf_english.csv": (["name", "code", "date"], ["unrecognized_header"]),
        "xzcf_dup.csv": (HEADERS + ["CF_XDR_MC"], ["duplicate_header:CF_XDR_MC"]),
        "xzcf_missing.csv": ([h for h in HEADERS if h != "行政处罚决定书文号"], ["missing_required_column:CF_WSH"]),
    }
    for name, (headers, _) in cases.items():
        path = tmp_path / name
        rows = [[f"v{i}{j}" for j in range(len(headers))] for i in range(3)]
        path.write_text(csv_text(rows, headers), encoding="utf-8")
        result = ingest(settings, catalog, path)
        assert (result.status, result.rows_in, result.rows_loaded, result.rows_quarantined) == ("rejected", 3, 0, 3)
    con = connect(settings, catalog)
    got = con.execute("SELECT source_file, reasons, count(*) FROM quarantine.rows GROUP BY ALL ORDER BY 1").fetchall()
    record = json.loads(con.execute(
        "SELECT record FROM quarantine.rows WHERE source_file = 'xzcf_english.csv' AND source_row = 2"
    ).fetchone()[0])
    con.close()
    assert got == [(n, r, 3) for n, (_, r) in sorted(cases.items())]
    assert record == {"name": "v10", "code": "v11", "date": "v12"}  # the row as received


def test_empty_and_header_only_files(settings, catalog, tmp_path):
    empty = tmp_path / "xzcf_empty.csv"
    empty.write_bytes(b"")
    header_only = tmp_path / "xzcf_header.csv"
    header_only.write_text(csv_text([]), encoding="utf-8")
    assert ingest(settings, catalog, empty).status == "rejected"
    result = ingest(settings, catalog, header_only)
    assert (result.status, result.rows_in) == ("empty", 0)
    con = connect(settings, catalog)
    reasons = con.execute(
        "SELECT file_reasons, message_zh FROM audit.batches WHERE source_file = 'xzcf_empty.csv'"
    ).fetchone()
    con.close()
    assert reasons[0] == ["empty_file"] and "empty" in reasons[1]


def test_formula_cells_stay_inert_text(settings, catalog, tmp_path):
    formula = "=cmd|' /C calc'!A0"
    path = tmp_path / "xzcf.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    sheet.append(row(1, 备注=formula))
    book.save(path)
    assert ingest(settings, catalog, path).rows_loaded == 1
    assert clean_values(settings, catalog, "BZ") == [(formula,)]


def test_xlsx_numeric_code_is_read_as_excel_shows_it(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.xlsx"
    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    values = row(1)
    values[2] = float("913710831234567891")  # an 18-digit code typed into Excel as a number
    sheet.append(values)
    book.save(path)
    result = ingest(settings, catalog, path)
    assert result.rows_quarantined == 1
    con = connect(settings, catalog)
    raw = con.execute("SELECT CF_XDR_SHXYM FROM raw.admin_penalty").fetchone()[0]
    reasons = con.execute("SELECT reasons FROM quarantine.rows").fetchone()[0]
    con.close()
    assert raw == "913710831234568000"  # Excel kept 15 significant digits; the reader never makes it a float
    assert reasons == ["uscc_excel_damage:CF_XDR_SHXYM"]


def test_jsonl_with_a_broken_line(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.jsonl"
    objects = [dict(zip(HEADERS, row(i), strict=True)) for i in (1, 2)]
    path.write_text(
        json.dumps(objects[0], ensure_ascii=False) + "\n{not json\n"
        + json.dumps(objects[1], ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    result = ingest(settings, catalog, path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    assert quarantine(settings, catalog)[0][:2] == (2, ["malformed_json"])


@pytest.mark.slow
def test_a_200_mb_field_is_quarantined_not_fatal(settings, catalog, tmp_path):
    path = tmp_path / "xzcf_huge.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(csv_text([row(1)]))
        fh.write(csv_text([row(2, 违法事实="违" * (200 * 1024 * 1024 // 3))], headers=[]).split("\n", 1)[1])
        fh.write(csv_text([row(3)]).split("\n", 1)[1])
    result = ingest(settings, catalog, path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    (source_row, reasons, _), = quarantine(settings, catalog)
    assert (source_row, reasons) == (2, ["field_too_long:CF_SY"])


@pytest.mark.parametrize("relpath", ["../etc/passwd", "/etc/passwd", "market_regulation/../../x.csv"])
def test_paths_outside_the_inbox_are_refused(settings, relpath):
    settings.inbox.mkdir(parents=True)
    with pytest.raises(inbox.UnsafePathError):
        inbox.inbox_path(settings, relpath)


def test_shell_characters_in_a_file_name_are_refused(settings, catalog):
    folder = settings.inbox / "market_regulation"
    folder.mkdir(parents=True)
    (folder / "xzcf;rm -rf ~.csv").write_text(csv_text([row(1)]), encoding="utf-8")
    (items,) = [inbox.scan_inbox(settings, catalog)]
    assert [(i.dataset_id, i.problem) for i in items] == [(None, "unsafe_file_name")]
    con = connect(settings, catalog)
    result = pipeline.refuse(con, settings, items[0])
    ledger = con.execute("SELECT status, file_reasons FROM audit.batches").fetchall()
    con.close()
    assert result.status == "rejected" and ledger == [("rejected", ["unsafe_file_name"])]
    assert not any(folder.iterdir())  # out of the inbox, kept in the archive
    assert len(list(settings.archive.rglob("*.csv"))) == 1


def test_same_file_twice_is_loaded_once_and_replace_does_not_duplicate(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.csv"
    path.write_text(csv_text([row(1), row(2), row(3, 处罚决定日期="bad")]), encoding="utf-8")
    first = ingest(settings, catalog, path)
    copy = tmp_path / "xzcf_copy.csv"
    copy.write_bytes(path.read_bytes())
    second = ingest(settings, catalog, copy)
    third = ingest(settings, catalog, path, replace=True)
    assert (first.outcome, second.outcome, third.outcome) == ("loaded", "duplicate", "replaced")
    con = connect(settings, catalog)
    counts = con.execute(
        "SELECT (SELECT count(*) FROM raw.admin_penalty), (SELECT count(*) FROM clean.admin_penalty), "
        "(SELECT count(*) FROM quarantine.rows), (SELECT count(*) FROM audit.batches), "
        "(SELECT list(outcome ORDER BY arrival_id) FROM audit.arrivals)"
    ).fetchone()
    con.close()
    assert counts == (3, 2, 1, 1, ["loaded", "duplicate", "replaced"])
    parts = list(settings.parquet_root.glob("admin_penalty/department=*/batch_id=*/*.parquet"))
    assert len(parts) == 1 and pq.read_table(parts[0]).num_rows == 2
    assert not list(settings.parquet_root.rglob(".tmp-*"))


def test_parquet_export_is_hive_partitioned_and_masks_ids(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.csv"
    person = row(1, 行政相对人类别="自然人", 统一社会信用代码="")
    headers = HEADERS + ["证件号码"]
    path.write_text(csv_text([person + ["11010519491231002X"], row(2) + [""]], headers), encoding="utf-8")
    assert ingest(settings, catalog, path).rows_loaded == 2
    rows = duckdb.sql(
        f"SELECT department, CF_XDR_ZJHM, CF_XDR_ZJHM_HASH IS NOT NULL, subject_key LIKE 'P:%' "
        f"FROM read_parquet('{settings.parquet_root}/admin_penalty/*/*/*.parquet', hive_partitioning=true) "
        f"ORDER BY source_row"
    ).fetchall()
    assert rows == [("market_regulation", "110105********002X", True, True), ("market_regulation", None, False, False)]


def test_cli_ingest_and_status(settings, tmp_path):
    from typer.testing import CliRunner

    from credit.cli import app

    path = tmp_path / "xzcf.csv"
    path.write_text(csv_text([row(1), row(2, 处罚决定日期="bad")]), encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["ingest", str(path), "--dataset", "admin_penalty", "--department", "market_regulation"])
    assert done.exit_code == 0, done.output
    assert "loaded" in done.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "admin_pe" in status.output  # narrow terminal: names are cut
    unknown = runner.invoke(app, ["ingest", str(path), "--dataset", "no_such", "--department", "market_regulation"])
    assert unknown.exit_code == 2 and "unknown dataset 'no_such'" in unknown.output


def test_codes_are_cross_checked_against_the_register(settings, catalog, tmp_path):
    from sample_city import make_uscc

    def code(n: int) -> str:
        return make_uscc("91", "371083", f"MA{n:06d}")

    register = tmp_path / "legal_entity_register.csv"
    register.write_text(csv_text(
        [[code(1), "乳山市甲有限责任公司", "企业"], [code(2), "乳山市乙商贸有限公司（分公司）", "企业"]],
        ["统一社会信用代码", "机构名称", "主体类型"],
    ), encoding="utf-8")
    assert ingest(settings, catalog, register, "legal_entity", "market_regulation").rows_loaded == 2
    path = tmp_path / "xzcf.csv"
    path.write_text(csv_text([
        row(1, 统一社会信用代码=code(1), 行政相对人名称="乳山市甲有限公司"),  # 有限公司 / 有限责任公司: same name
        row(2, 统一社会信用代码=code(2), 行政相对人名称="乳山市乙商贸有限公司(分公司)"),  # bracket width
        row(3, 统一社会信用代码=code(3), 行政相对人名称="乳山市丙有限公司"),  # valid code, not registered
        row(4, 统一社会信用代码=code(2), 行政相对人名称="乳山市丁有限公司"),  # registered to someone else
        # bad check char only
        row(5, 统一社会信用代码=code(4)[:-1] + "0" if code(4)[-1] != "0" else code(4)[:-1] + "1"),
    ]), encoding="utf-8")
    result = ingest(settings, catalog, path)
    assert (result.rows_loaded, result.rows_quarantined) == (2, 3)
    con = connect(settings, catalog)
    got = con.execute("SELECT source_row, reasons, evidence FROM quarantine.rows WHERE dataset_id = 'admin_penalty' "
                      "ORDER BY source_row").fetchall()
    con.close()
    assert [(r, reasons) for r, reasons, _ in got] == [
        (3, ["not_in_register:CF_XDR_SHXYM"]),
        (4, ["name_mismatch:CF_XDR_MC"]),
        (5, ["uscc_check_digit:CF_XDR_SHXYM"]),  # a malformed code is not also reported as unregistered
    ]
    assert json.loads(got[1][2]) == {"register_name": "乳山市乙商贸有限公司（分公司）"}
    con = connect(settings, catalog)
    rates = con.execute(
        "SELECT department, dataset_id, codes_received, codes_erroneous, codes_duplicate, codes_bad, rate, threshold "
        "FROM audit.code_error_rate ORDER BY department NULLS LAST, dataset_id NULLS FIRST"
    ).fetchall()
    con.close()
    # penalty feed: its 4 subject codes + the agency code; bad: unregistered code(3), the
    # malformed one, and code(2) reported under another subject's name (错码 and 重码)
    assert rates == [
        ("market_regulation", None, 5, 3, 1, 3, 3 / 5, 0.0001),  # distinct over its datasets
        ("market_regulation", "admin_penalty", 5, 3, 1, 3, 3 / 5, 0.0001),
        ("market_regulation", "legal_entity", 2, 0, 0, 0, 0.0, 0.0001),
        (None, None, 5, 3, 1, 3, 3 / 5, 0.0001),
    ]


def test_one_subject_under_several_codes_is_counted_as_duplicate_codes(settings, catalog, tmp_path):
    """重码 also covers one subject reported under two well-formed codes; the register's own code is spared."""
    from sample_city import make_uscc

    def code(n: int) -> str:
        return make_uscc("91", "371083", f"MA{n:06d}")

    def rates() -> tuple:
        con = connect(settings, catalog)
        got = con.execute("SELECT codes_received, codes_erroneous, codes_duplicate, codes_bad FROM "
                          "audit.code_error_rate WHERE dataset_id = 'admin_penalty'").fetchall()[0]
        con.close()
        return got

    feed = [row(1, 统一社会信用代码=code(1), 行政相对人名称="乳山市甲有限公司"),
            row(2, 统一社会信用代码=code(2), 行政相对人名称="乳山市甲有限责任公司"),  # the same subject (name_key)
            row(3, 统一社会信用代码=code(3), 行政相对人名称="乳山市乙有限公司")]
    path = tmp_path / "xzcf_1.csv"
    path.write_text(csv_text(feed), encoding="utf-8")
    ingest(settings, catalog, path)
    assert rates() == (4, 0, 2, 2)  # code(1..3) + the agency code; no register yet: both of 甲's codes count
    register = tmp_path / "legal_entity_register.csv"
    register.write_text(csv_text([[code(1), "乳山市甲有限公司", "企业"], [code(3), "乳山市乙有限公司", "企业"]],
                                 ["统一社会信用代码", "机构名称", "主体类型"]), encoding="utf-8")
    ingest(settings, catalog, register, "legal_entity", "market_regulation")
    path.write_text(csv_text(feed) + "\n", encoding="utf-8")  # re-sent as new bytes, now checked against the register
    ingest(settings, catalog, path)
    # batch 2: code(2) is not in the register (错码) and one of 甲's codes (重码); code(1) is the register's own.
    con = connect(settings, catalog)
    by_batch = con.execute(
        "SELECT code, erroneous, duplicate FROM audit.batch_codes WHERE batch_id = (SELECT max(batch_id) FROM "
        "audit.batches WHERE dataset_id = 'admin_penalty' AND loaded_at = (SELECT max(loaded_at) FROM audit.batches "
        "WHERE dataset_id = 'admin_penalty')) AND field = 'CF_XDR_SHXYM' ORDER BY code").fetchall()
    con.close()
    assert by_batch == [(code(1), False, False), (code(2), True, True), (code(3), False, False)]


def test_checking_in_slices_gives_the_same_result_as_one_pass(catalog, tmp_path, monkeypatch):
    """A large batch is checked a slice of rows at a time; repeats and 重码 that span slices still count."""
    from foundation.settings import get_settings
    from sample_city import make_uscc
    from warehouse import load

    other = make_uscc("91", "371083", "MA000777")
    feed = tmp_path / "xzcf.csv"
    feed.write_text(csv_text([
        row(1), row(2, 处罚决定日期="bad"), row(3),
        row(1),  # a repeat of row 1, in another slice
        row(5, 统一社会信用代码=other, 行政相对人名称="乳山市测试5有限公司"),
        row(6, 统一社会信用代码=other, 行政相对人名称="乳山市另一家有限公司"),  # 重码 across slices
        row(7, 统一社会信用代码=CODE[:-1] + "0"),
    ]), encoding="utf-8")

    def run(slice_rows: int) -> tuple:
        monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path / f"data{slice_rows}"))
        monkeypatch.setattr(load, "CHECK_SLICE_ROWS", slice_rows)
        settings = get_settings()
        result = ingest(settings, catalog, feed)
        con = connect(settings, catalog)
        seen = (
            (result.rows_loaded, result.rows_quarantined),
            con.execute("SELECT source_row, reasons, evidence FROM quarantine.rows ORDER BY 1").fetchall(),
            con.execute("SELECT field, code, erroneous, duplicate FROM audit.batch_codes ORDER BY ALL").fetchall(),
            con.execute("SELECT * EXCLUDE (batch_id) FROM clean.admin_penalty ORDER BY source_row").fetchall(),
        )
        con.close()
        return seen

    sliced, whole = run(2), run(1_000_000)
    assert sliced == whole
    assert sliced[0] == (4, 3)
    assert [r[0] for r in sliced[1]] == [2, 4, 7]
    assert ("CF_XDR_SHXYM", other, False, True) in sliced[2]
    assert len(list((tmp_path / "data2" / "parquet" / "admin_penalty").glob("*/*/part-*.parquet"))) == 4
