"""重码 evidence: audit.code_conflicts names the other subjects, or the other codes, behind each 重码."""

from __future__ import annotations

import pytest
from test_ingest_files import csv_text, ingest, row

from sample_city import make_uscc
from warehouse.db import connect

pytestmark = pytest.mark.integration


def code(n: int) -> str:
    return make_uscc("91", "371083", f"MA{n:06d}")


def test_each_duplicate_code_comes_with_its_evidence(settings, catalog, tmp_path):
    path = tmp_path / "xzcf.csv"
    path.write_text(csv_text([
        row(1, 统一社会信用代码=code(1), 行政相对人名称="乳山市甲有限公司"),
        row(2, 统一社会信用代码=code(2), 行政相对人名称="乳山市甲有限责任公司"),  # 甲 again (name_key), another code
        row(3, 统一社会信用代码=code(3), 行政相对人名称="乳山市乙有限公司"),
        row(4, 统一社会信用代码=code(3), 行政相对人名称="乳山市丙有限公司"),  # 乙's code under 丙's name
        row(5, 统一社会信用代码=code(4)[:-1] + ("0" if code(4)[-1] != "0" else "1"),
            行政相对人名称="乳山市乙有限公司"),  # a malformed code is 错码, not evidence of 重码
    ]), encoding="utf-8")
    result = ingest(settings, catalog, path)
    con = connect(settings, catalog)
    got = con.execute(
        "SELECT batch_id, kind, code, name_key, others FROM audit.code_conflicts ORDER BY kind").fetchall()
    duplicates = con.execute("SELECT code FROM audit.batch_codes WHERE duplicate ORDER BY code").fetchall()
    con.close()
    assert got == [
        (result.batch_id, "one_code_several_names", code(3), None, ["乳山市丙有限公司", "乳山市乙有限公司"]),
        (result.batch_id, "one_name_several_codes", None, "乳山市甲有限公司", [code(1), code(2)]),
    ]
    assert duplicates == [(code(1),), (code(2),), (code(3),)]
