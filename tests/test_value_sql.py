"""The value macros of warehouse/value_sql.py, and their shortcuts, give the exact values expected."""

from __future__ import annotations

import duckdb
import pytest

from warehouse.identifier_sql import install_identifier_macros
from warehouse.value_sql import install_value_macros

pytestmark = pytest.mark.unit

CLEAN_TEXT = [
    ("a", "a"),
    (" a", "a"),
    ("a ", "a"),
    ("\ta\t", "a"),
    ("\na\r\n", "a"),
    ("\u3000乳山\u3000", "乳山"),
    (" \u3000 ", None),
    ("", None),
    ("   ", None),
    ("\x01a", "\x01a"),  # another control character: taken to trim(), which leaves it
    ("!a", "!a"),  # the first byte just above the space
    ("乳 山", "乳 山"),  # inner spaces stay
    ("中文 ", "中文"),
    (None, None),
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    install_value_macros(connection)
    install_identifier_macros(connection)
    yield connection
    connection.close()


@pytest.mark.parametrize(("raw", "expected"), CLEAN_TEXT)
def test_clean_text(con, raw, expected):
    assert con.execute("SELECT clean_text(?::VARCHAR)", [raw]).fetchall()[0][0] == expected


ENUM_VALUES = [
    "罚款；警告", " 警告 ", "\u3000罚款\u3000", "", "  ", None, "ＡＢＣ１２３", "a\tb", "\t警告\r\n",
    "罚款、警告", "没收违法所得，没收非法财物", "　", "ｘ",
]


def test_clean_enum_is_clean_text_of_fold_width_once_per_distinct_value(con):
    # 5,000 rows over 13 values: each 2,048-row vector holds repeats, the case the UDF is for.
    con.execute("CREATE OR REPLACE TEMP TABLE enum_values (x VARCHAR)")
    con.executemany("INSERT INTO enum_values VALUES (?)", [[ENUM_VALUES[i % len(ENUM_VALUES)]] for i in range(5000)])
    rows = con.execute(
        "SELECT x, clean_enum(x), clean_text(fold_width(x)) FROM enum_values"
    ).fetchall()
    assert len(rows) == 5000
    assert [r for r in rows if r[1] != r[2]] == []
    folded = dict((r[0], r[1]) for r in rows)
    assert folded["罚款；警告"] == "罚款;警告"
    assert folded["ＡＢＣ１２３"] == "ABC123"
    assert folded["　"] is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("91371083MA3C000000", "91371083MA3C000000"),  # already normal: the shortcut
        ("91371083ma3c000000", "91371083MA3C000000"),
        (" 9137-1083 MA3C000000 ", "91371083MA3C000000"),
        ("９１３７１０８３ＭＡ３Ｃ０００００", "91371083MA3C00000"),
        ("", None),
        ("--", None),
        (None, None),
    ],
)
def test_normalize_code(con, raw, expected):
    assert con.execute("SELECT normalize_code(?::VARCHAR)", [raw]).fetchall()[0][0] == expected
