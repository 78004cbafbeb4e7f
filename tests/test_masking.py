"""The one masking rule for resident IDs (transforms/masking.py), in Python and in SQL."""

from __future__ import annotations

import duckdb
import pytest

from transforms.masking import mask_id, mask_id_sql, mask_ids_in_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11010519491231002X", "110105********002X"),  # GB 11643 example: 6 + 8 stars + 4
        ("110105491231002", "110105*****1002"),  # the old 15-digit number
        ("12345678901", "123456*8901"),  # 11 characters: one star
        ("1234567890", "**********"),  # 10 or fewer: nothing of it shown
        ("123", "***"),
        ("", ""),
    ],
)
def test_mask_id_python_and_sql_agree(value, expected):
    assert mask_id(value) == expected
    assert duckdb.execute(f"SELECT {mask_id_sql('$v')}", {"v": value}).fetchone()[0] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("违法人 11010519491231002X 已处罚", "违法人 110105********002X 已处罚"),
        ("key 110105491231002 | 2", "key 110105*****1002 | 2"),
        ("id 11010519491231002x", "id 110105********002x"),  # lowercase check character
        ("a11010519491231002X1", "a110105********002X1"),  # glued to other characters: still masked
        ("913710830000000000", "913710830000000000"),  # 18 digits, no birth date in place: a code, kept
        ("合同 123", "合同 123"),
    ],
)
def test_mask_ids_in_text(text, expected):
    assert mask_ids_in_text(text) == expected
