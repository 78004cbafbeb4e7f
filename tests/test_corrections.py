"""The correction loop (纠正率): a quarantined record is re-checked and moves to clean when a
correction arrives, as a corrections file (old code -> new code) or as a re-sent record."""

from __future__ import annotations

import pytest
from test_ingest_files import csv_text, ingest, row

from sample_city import make_uscc
from warehouse.correction_file import CorrectionsFileError, apply_corrections
from warehouse.db import connect

pytestmark = pytest.mark.integration


def code(n: int) -> str:
    return make_uscc("91", "371083", f"MA{n:06d}")


def bad_check(valid: str) -> str:
    return valid[:-1] + ("0" if valid[-1] != "0" else "1")


@pytest.fixture
def loaded(settings, catalog, tmp_path):
    """A register of four entities and a penalty feed with five quarantined records."""
    register = tmp_path / "legal_entity_register.csv"
    register.write_text(csv_text(
        [[code(n), f"乳山市{name}有限公司", "企业"] for n, name in enumerate("甲乙丙丁", start=1)],
        ["统一社会信用代码", "机构名称", "主体类型"],
    ), encoding="utf-8")
    ingest(settings, catalog, register, "legal_entity", "market_regulation")
    feed = tmp_path / "xzcf.csv"
    feed.write_text(csv_text([
        row(1, 统一社会信用代码=code(1), 行政相对人名称="乳山市甲有限公司"),
        row(2, 统一社会信用代码=bad_check(code(2)), 行政相对人名称="乳山市乙有限公司"),  # fixed by the file
        row(3, 统一社会信用代码=bad_check(code(3)), 行政相对人名称="乳山市丙有限公司", 处罚机关=""),  # stays: 2 faults
        row(4, 统一社会信用代码="000000000000000000", 行政相对人名称="乳山市丁有限公司"),  # fixed, by name
        row(5, 统一社会信用代码="000000000000000000", 行政相对人名称="乳山市戊有限公司"),  # no pair for 戊
        row(6, 统一社会信用代码=bad_check(code(4)), 行政相对人名称="乳山市丁有限公司"),  # re-sent later
    ]), encoding="utf-8")
    result = ingest(settings, catalog, feed)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 5)
    return result


def corrections_csv(path, rows):
    path.write_text(csv_text(rows, ["原代码", "新代码", "主体名称"]), encoding="utf-8")
    return path


def test_a_corrections_file_moves_fixed_records_to_clean_and_ledgers_every_outcome(settings, catalog, tmp_path,
                                                                                     loaded):
    path = corrections_csv(tmp_path / "纠错_市场监管局.csv", [
        [bad_check(code(2)), code(2), ""],
        [bad_check(code(3)), code(3), ""],          # matches, but the record also lacks 处罚机关
        ["000000000000000000", code(4), "乳山市丁有限公司"],
        [code(7), bad_check(code(7)), ""],  # the new code itself is invalid
        [code(9), code(8), ""],                      # matches nothing
    ])
    con = connect(settings, catalog)
    report = apply_corrections(con, settings, catalog, path, source="market_regulation",
                               department="market_regulation")
    assert (report.pairs, report.corrected, report.still_invalid, report.refused_pairs, report.unmatched_pairs) == \
        (5, 2, 1, 1, 1)
    [batch] = report.batches
    assert (batch.dataset_id, batch.rows_in, batch.rows_loaded, batch.rows_quarantined) == ("admin_penalty", 2, 2, 0)
    statuses = con.execute("SELECT source_row, status, corrected_by FROM quarantine.rows "
                           "WHERE batch_id = ? ORDER BY source_row", [loaded.batch_id]).fetchall()
    assert statuses == [(2, "corrected", batch.batch_id), (3, "open", None), (4, "corrected", batch.batch_id),
                        (5, "open", None), (6, "open", None)]
    clean = con.execute("SELECT CF_XDR_MC, CF_XDR_SHXYM FROM clean.admin_penalty WHERE batch_id = ? "
                        "ORDER BY CF_XDR_MC", [batch.batch_id]).fetchall()
    assert clean == [("乳山市丁有限公司", code(4)), ("乳山市乙有限公司", code(2))]
    outcomes = con.execute("SELECT outcome, orig_source_row, reasons FROM audit.corrections "
                           "ORDER BY outcome, orig_source_row").fetchall()
    assert outcomes == [
        ("corrected", 2, None), ("corrected", 4, None),
        ("invalid_new_code", None, ["uscc_check_digit"]),
        ("no_match", None, []),
        ("still_invalid", 3, ["required_missing:CF_CFJG"]),
    ]
    rate = con.execute("SELECT rows_detected, rows_corrected, rows_open, rate FROM audit.correction_rate "
                       "WHERE dataset_id = 'admin_penalty'").fetchall()
    assert rate == [(5, 2, 3, 2 / 5)]
    # 重错码率 measures what departments send: the correction batch adds no codes to it.
    assert con.execute("SELECT count(*) FROM audit.batch_codes WHERE batch_id = ?", [batch.batch_id]).fetchall() \
        == [(0,)]
    again = apply_corrections(con, settings, catalog, path, source="market_regulation")
    assert again.already_applied and not again.batches
    assert con.execute("SELECT count(*) FROM audit.corrections").fetchall() == [(5,)]
    con.close()


def test_a_re_sent_record_corrects_the_quarantined_one(settings, catalog, tmp_path, loaded):
    resent = tmp_path / "xzcf_resent.csv"
    resent.write_text(csv_text([row(6, 统一社会信用代码=code(4), 行政相对人名称="乳山市丁有限公司"),
                                row(7, 统一社会信用代码=code(1), 行政相对人名称="乳山市甲有限公司")]), encoding="utf-8")
    second = ingest(settings, catalog, resent)
    assert (second.rows_loaded, second.rows_quarantined) == (2, 0)
    con = connect(settings, catalog)
    assert con.execute("SELECT source_row, corrected_by FROM quarantine.rows WHERE status = 'corrected'").fetchall() \
        == [(6, second.batch_id)]
    assert con.execute("SELECT source_kind, orig_source_row, corrected_source_row FROM audit.corrections").fetchall() \
        == [("resent", 6, 1)]
    con.close()
    # Re-running either batch keeps the correction, once.
    ingest(settings, catalog, resent, replace=True)
    ingest(settings, catalog, tmp_path / "xzcf.csv", replace=True)
    con = connect(settings, catalog)
    assert con.execute("SELECT source_row, corrected_by FROM quarantine.rows WHERE status = 'corrected'").fetchall() \
        == [(6, second.batch_id)]
    assert con.execute("SELECT count(*) FROM audit.corrections").fetchall() == [(1,)]
    con.close()


def test_a_file_without_code_columns_is_refused_in_plain_words(settings, catalog, tmp_path, loaded):
    path = tmp_path / "notes.csv"
    path.write_text("名称,备注\n乳山市甲有限公司,无\n", encoding="utf-8")
    con = connect(settings, catalog)
    with pytest.raises(CorrectionsFileError, match="原代码 and 新代码"):
        apply_corrections(con, settings, catalog, path, source="market_regulation")
    con.close()


def test_the_register_suggests_the_codes_it_can_vouch_for(settings, catalog, tmp_path, loaded):
    from typer.testing import CliRunner

    from credit.cli import app

    out = tmp_path / "suggested.csv"
    done = CliRunner().invoke(app, ["corrections", "suggest", "--out", str(out)])
    assert done.exit_code == 0, done.output
    # 乙 and 丙 have one registered code each; 丁 twice (rows 4 and 6, two wrong codes); 戊 is not registered.
    assert out.read_text(encoding="utf-8").splitlines() == [
        "原代码,新代码,主体名称,数据集",
        f"000000000000000000,{code(4)},乳山市丁有限公司,admin_penalty",
        f"{bad_check(code(2))},{code(2)},乳山市乙有限公司,admin_penalty",
        f"{bad_check(code(3))},{code(3)},乳山市丙有限公司,admin_penalty",
        f"{bad_check(code(4))},{code(4)},乳山市丁有限公司,admin_penalty",
    ]
    done = CliRunner().invoke(app, ["corrections", "apply", str(out), "--source", "register_authority"])
    assert done.exit_code == 0, done.output
    assert "3 records corrected, 1 still invalid" in done.output
    status = CliRunner().invoke(app, ["corrections", "status"])
    assert status.exit_code == 0 and "60.00%" in status.output  # 3 of 5 detected records corrected
