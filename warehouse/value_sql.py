"""DuckDB macros that normalize and type feed values, vectorized inside the database.

Installed on every connection (``install_value_macros``). Each takes the text as
received and returns the normalized or typed value, NULL when it cannot:
- ``clean_text(x)``   trim spaces, tabs, line ends and the ideographic space; '' -> NULL
- ``fold_width(x)``   full-width ASCII (U+FF01-FF5E) and U+3000 to half-width: the part of
                      NFKC that occurs in Chinese feeds; skipped for pure-ASCII values
- ``clean_enum(x)``   ``clean_text(fold_width(x))`` computed once per distinct value of a
                      2,048-row vector (an Arrow UDF): the enum columns, which hold a handful of
                      values and would otherwise pay ``translate()`` on every row
- ``parse_cn_date(x)`` 2022-07-26, 2022/7/26, 2022.7.26, 2022年7月26日, 20220726 (a time part is dropped)
- ``name_key(x)``     a subject name as compared with the register
- ``parse_amount(x, unit)`` 1,234.50 / 1234.5 followed by the field's own unit -> DECIMAL(18,6)
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from duckdb import sqltypes

from transforms.masking import scrub_texts

FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "

# 2022/7/26, 2022.7.26, 2022年7月26日, 2022-7-26, each optionally followed by a time of day.
CN_DATE = r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?$"

# These strings are constants of this module, bound as parameters below: nothing
# from a feed or the catalog is ever pasted into SQL.
_MACROS = [
    # Strings compare as bytes: x < '!' is "the first byte is a space, tab, line end or another
    # control character", one comparison for four of the leading cases (a control character
    # other than those takes the trim() path and comes back unchanged).
    """CREATE OR REPLACE MACRO clean_text(x) AS
        CASE
            WHEN x = '' THEN NULL
            WHEN x < '!' OR starts_with(x, '\u3000')
              OR ends_with(x, ' ') OR ends_with(x, '\u3000')
              OR ends_with(x, chr(9)) OR ends_with(x, chr(10)) OR ends_with(x, chr(13))
            THEN nullif(trim(x, ' \u3000' || chr(9) || chr(10) || chr(13)), '')
            ELSE x
        END""",
    # Only values holding a full-width character pay for translate().
    """CREATE OR REPLACE MACRO fold_width(x) AS
        CASE WHEN strlen(x) = length(x) OR NOT regexp_matches(x, '[\\x{FF01}-\\x{FF5E}\\x{3000}]') THEN x
             ELSE translate(x, getvariable('credit_full_width'), getvariable('credit_half_width')) END""",
    """CREATE OR REPLACE MACRO parse_cn_date(x) AS
        CASE
            WHEN regexp_full_match(x, '\\d{4}-\\d{2}-\\d{2}') THEN try_cast(x AS DATE)
            WHEN regexp_full_match(x, '\\d{8}') THEN try_strptime(x, '%Y%m%d')::DATE
            ELSE try(make_date(
                nullif(regexp_extract(x, getvariable('credit_cn_date'), 1), '')::INTEGER,
                nullif(regexp_extract(x, getvariable('credit_cn_date'), 2), '')::INTEGER,
                nullif(regexp_extract(x, getvariable('credit_cn_date'), 3), '')::INTEGER))
        END""",
    # How names are compared with the register: half-width, no spaces, one spelling of
    # 有限责任公司 / 有限公司 and of brackets.
    """CREATE OR REPLACE MACRO name_key(x) AS
        replace(replace(replace(regexp_replace(fold_width(x), '\\s+', '', 'g'), '有限责任公司', '有限公司'),
                        '〔', '('), '〕', ')')""",
    # ``unit`` is the catalog field's unit: only that unit may trail the number
    # (罚款 "0.2万元" in a 万元 field; "2000元" there is an error, not 0.2).
    """CREATE OR REPLACE MACRO parse_amount(x, unit) AS
        try_cast(CASE WHEN unit IS NOT NULL AND ends_with(x, unit)
                      THEN rtrim(left(x, length(x) - length(unit)))
                      ELSE x END.replace(',', '') AS DECIMAL(18, 6))""",
]


_FOLD = str.maketrans(FULL_WIDTH, HALF_WIDTH)
_BLANKS = " \u3000\t\n\r"  # what clean_text trims


def clean_enum(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``clean_text(fold_width(x))`` for each value, computed once per distinct value."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    cleaned = [v.translate(_FOLD).strip(_BLANKS) or None for v in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(cleaned, pa.string()), encoded.indices)


def install_value_macros(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET VARIABLE credit_full_width = ?", [FULL_WIDTH])
    con.execute("SET VARIABLE credit_half_width = ?", [HALF_WIDTH])
    con.execute("SET VARIABLE credit_cn_date = ?", [CN_DATE])
    for sql in _MACROS:
        con.execute(sql)
    # clean_enum: blank values come back NULL; scrub_text: free text fit for the clean export
    # (transforms/masking.py: ID numbers masked, control characters removed).
    for name, function in (("clean_enum", clean_enum), ("scrub_text", scrub_texts)):
        try:
            con.remove_function(name)
        except duckdb.InvalidInputException:
            pass  # not registered on this connection yet
        # The ignore: duckdb's stubs accept only the PythonUDFType / FunctionNullHandling enums, not the
        # strings the runtime takes (the enums moved module between duckdb 1.x and 2.x).
        con.create_function(  # type: ignore[call-overload]
            name, function, [sqltypes.VARCHAR], sqltypes.VARCHAR, type="arrow", null_handling="special",
            side_effects=False,
        )
