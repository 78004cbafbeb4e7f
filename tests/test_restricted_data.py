"""Restricted data never reaches the clean export: ID numbers pasted into free text, control characters."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from restricted_scan import resident_ids_in, resident_ids_in_parquet
from test_ingest_files import csv_text, ingest, row

from transforms.masking import scrub_text

pytestmark = pytest.mark.integration

RID = "11010519491231002X"  # GB 11643's example: valid


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"当事人{RID}无证经营", "当事人110105********002X无证经营"),
        ("身份证 110105 19491231 002X 已缴款", "身份证 110105********002X 已缴款"),  # typed in groups
        ("身份证110105-19491231-002x", "身份证110105********002X"),
        ("１１０１０５１９４９１２３１００２Ｘ", "110105********002X"),  # full-width digits
        ("旧证号110105491231002", "旧证号110105*****1002"),  # the old 15-digit number
        ("身份证号：110105\u00a019491231\u00a0002X", "身份证号：110105********002X"),  # no-break spaces
        ("110105  19491231  002X", "110105********002X"),  # two spaces
        ("110105\t19491231\n002X", "110105********002X"),  # a tab, a line break
        (f"1{RID}", "111010*********002X"),  # a digit glued in front: found by its check character
        ("账号 6222021234567890123", "账号 6222021234567890123"),  # a bank account: no ID inside
        ("合同号20230101000000001", "合同号20230101000000001"),  # 17 digits: not an ID
        ("罚款\x000.2万元\x07", "罚款0.2万元"),  # NUL and BEL removed
        ("第一行\n第二行\t制表", "第一行\n第二行\t制表"),  # line breaks and tabs kept
    ],
)
def test_scrub_text(text, expected):
    assert scrub_text(text) == expected
    assert resident_ids_in(scrub_text(text)) == []


def test_ids_pasted_into_free_text_leave_masked_and_raw_keeps_them(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.csv"
    rows = [
        row(1, 违法事实=f"经查，当事人（身份证号{RID}）无照经营"),
        row(2, 备注="联系人身份证 110105 19491231 002X"),
        row(3, 违法事实="１１０１０５１９４９１２３１００２Ｘ 发布虚假广告", 备注="复核\x00通过"),
        row(4),
    ]
    path.write_text(csv_text(rows), encoding="utf-8")
    assert ingest(settings, catalog, path).rows_loaded == 4

    assert resident_ids_in_parquet(settings.parquet_root) == []
    clean = pq.read_table(next(settings.parquet_root.glob("admin_penalty/*/*/*.parquet"))).sort_by("source_row")
    assert clean.column("CF_SY").to_pylist() == [
        "经查，当事人（身份证号110105********002X）无照经营", "发布虚假广告", "110105********002X 发布虚假广告",
        "发布虚假广告",
    ]
    assert clean.column("BZ").to_pylist()[1:3] == ["联系人身份证 110105********002X", "复核通过"]
    # The raw layer (restricted) keeps the records as received.
    raw = resident_ids_in_parquet(settings.raw_root)
    assert sorted(column for _, column, _ in raw) == ["BZ", "CF_SY", "CF_SY"]
    assert "复核\x00通过" in pq.read_table(next(settings.raw_root.glob("admin_penalty/*/*/*.parquet"))).column(
        "BZ").to_pylist()
