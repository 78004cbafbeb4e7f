"""The vectorized identifier engine (transforms/identifiers_arrow.py) and its DuckDB UDFs
(warehouse/identifier_udf.py) against the pure-Python reference, value by value.

The inputs (about 30,000) are valid and damaged codes of every kind, every single-character
substitution of python-stdnum's own USCC test list, feed formatting (full-width, spaces,
hyphens, lower case), nulls and empty cells, and arbitrary Unicode. Check characters of valid
codes come from python-stdnum and a GB 11714 formula written out here, not from the code
under test.
"""

from __future__ import annotations

import random

import duckdb
import pyarrow as pa
import pytest
from test_identifiers import STDNUM_VALID_USCC, damage_code, fullwidth, gb11714_check, make_rid
from test_identifiers import make_uscc as make_uscc_parts

from transforms import identifiers as ref
from transforms import identifiers_arrow as fast
from transforms.divisions import division_codes
from transforms.reasons import CODE_REASONS
from warehouse.code_validation import validate_lines
from warehouse.identifier_sql import install_identifier_macros
from warehouse.identifier_udf import register_identifier_udfs

pytestmark = pytest.mark.unit

USCC_SET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GB_SET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
RUSHAN = "371083"
WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
HYPHENS = ["-", "\ufe63", "\uff0d", "\u2013"]
# Characters whose NFKC or case mapping is not the identity, composing marks, compatibility
# ideographs, characters outside the BMP: the rare inputs that take the reference's own path.
EXOTIC = list("①²ﬁßŉǰ¨´ÅÅé\u0301\u0308\uf900\uff5f\uff61ｶﾞ㍿ℌⅫ𝟘𝐀😀İı") + ["\u1e9e", "\u2028", "\x00", "\x7f"]


def make_uscc(pair: str, division: str, body: str) -> str:
    return make_uscc_parts(pair[0], pair[1], division, body)


def inputs() -> list[str | None]:
    rng = random.Random(20260601)
    divisions = sorted(division_codes())
    pairs = "11 12 13 19 21 31 35 51 52 53 61 71 81 91 92 93 A1 A9 N1 N2 N3 N9 Y1 94 B1 0A".split()
    out: list[str | None] = [None, "", " ", "\u3000", "-", "\t\n"]

    def division() -> str:
        return rng.choice([RUSHAN, rng.choice(divisions), f"{rng.randrange(10**6):06d}"])

    def uscc() -> str:
        body = "".join(rng.choice(USCC_SET) for _ in range(8)) if rng.random() < 0.5 else f"{rng.randrange(10**8):08d}"
        return make_uscc(rng.choice(pairs), division(), body)

    def rid() -> str:
        birth = rng.choice(
            [f"{rng.randrange(1895, 2030)}{rng.randrange(0, 14):02d}{rng.randrange(0, 33):02d}",
             f"{rng.randrange(1900, 2027)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}", "19000229",
             "20000229", "20261231", "20270101", "18991231", "19000101", "19800230"]
        )  # fmt: skip
        return make_rid(division(), birth, f"{rng.randrange(1000):03d}")

    def org() -> str:
        body = "".join(rng.choice(GB_SET) for _ in range(8))
        return body + gb11714_check(body)

    def decorate(code: str) -> str:
        chars = []
        for c in code:
            r = rng.random()
            chars.append(fullwidth(c) if r < 0.15 else c.lower() if r < 0.3 else c)
            if rng.random() < 0.08:
                chars.append(rng.choice(WHITESPACE + HYPHENS))
        return "".join(chars)

    def mutate(code: str) -> str:
        """The reference tests' damage (substitutions, drops, swaps, cuts), plus exotic characters and separators."""
        pos = rng.randrange(max(len(code), 1))
        match rng.randrange(4):
            case 0:
                return code[:pos] + rng.choice(EXOTIC + ["号", "Ｏ", "ａ"]) + code[pos + 1 :]
            case 1:
                return code[:pos] + rng.choice(WHITESPACE + HYPHENS) + code[pos:]
            case _:
                return damage_code(rng, code)

    # Every single-character substitution of stdnum's valid codes (Done-when item 1).
    for code in STDNUM_VALID_USCC:
        out.append(code)
        for pos, original in enumerate(code):
            for char in USCC_SET.replace(original, "") + "IOZSVa-#中":
                out.append(code[:pos] + char + code[pos + 1 :])
    generators = [
        uscc, uscc, rid, rid, org,
        lambda: mutate(uscc()), lambda: mutate(rid()), lambda: mutate(org()),
        lambda: decorate(rng.choice([uscc, rid, org])()),
        lambda: fullwidth(uscc()),
        lambda: f"{uscc()[:15]}000",  # Excel damage (or, 1 in 31, a valid code)
        lambda: make_uscc("91", division(), f"{rng.randrange(10**8):08d}")[:15] + "000",
        lambda: rng.choice(USCC_SET + "OIZ号") * 17 + rng.choice(USCC_SET + "号"),  # placeholders
        lambda: "0" * rng.randrange(1, 25),
        lambda: rng.choice(["00000000000000000X", "０" * 18, "0000-0000-0000-0000-00", "００００００００"]),
        lambda: f"{rng.choice(divisions)}{rng.randrange(10**9):09d}",  # 15-digit registration number
        lambda: org()[:8] + "-" + org()[8],
        lambda: "".join(rng.choice(USCC_SET) for _ in range(rng.randrange(25))),
        lambda: "".join(rng.choice("0123456789X") for _ in range(rng.choice([9, 15, 17, 18, 19]))),
        lambda: "".join(rng.choice(EXOTIC + WHITESPACE + list("0123456789Xa号-")) for _ in range(rng.randrange(20))),
        lambda: rng.choice(["无", "暂无", "/", "NULL", "null", "——", "9137108３MA3C8PL2XX"]),
    ]  # fmt: skip
    while len(out) < 30_000:
        out.append(rng.choice(generators)())
    return out


INPUTS = inputs()


def reference(raw: str | None, kind: str | None) -> tuple:
    r = ref.validate(raw, kind)
    return r.normalized, r.kind, r.valid, list(r.reasons)


def rows(batch: pa.RecordBatch) -> list[tuple]:
    columns = [batch.column(name).to_pylist() for name in ("normalized", "kind", "valid", "reasons")]
    return list(zip(*columns, strict=True))


def test_inputs_cover_every_reason_and_kind():
    seen = {reason for raw in INPUTS for kind in (None, *ref.KINDS) for reason in ref.validate(raw, kind).reasons}
    assert seen == set(CODE_REASONS) | {"empty"}
    assert set(fast.REASONS) == set(CODE_REASONS) | {"empty"}
    assert {ref.validate(raw).kind for raw in INPUTS} == {"uscc", "org_code", "resident_id", "unknown"}


@pytest.mark.parametrize("kind", [None, "uscc", "org_code", "resident_id"])
def test_validate_codes_equals_reference(kind):
    got = rows(fast.validate_codes(pa.array(INPUTS, pa.string()), kind))
    expected = [reference(raw, kind) for raw in INPUTS]
    mismatches = [(raw, g, e) for raw, g, e in zip(INPUTS, got, expected, strict=True) if g != e]
    assert mismatches[:5] == [] and len(got) == len(INPUTS)


def test_per_row_kinds_chunks_and_slices():
    """A kind per row (null: guess), more rows than one pass handles, sliced and chunked input."""
    rng = random.Random(7)
    many = INPUTS * 3  # 90,000 rows: more than _CHUNK
    kinds = [rng.choice([None, *ref.KINDS]) for _ in many]
    got = rows(fast.validate_codes(pa.array(many, pa.string()), pa.array(kinds, pa.string())))
    assert got == [reference(raw, kind) for raw, kind in zip(many, kinds, strict=True)]
    sliced = pa.array(many, pa.string()).slice(12_345, 40_000)
    assert rows(fast.validate_codes(sliced)) == [reference(raw, None) for raw in many[12_345:52_345]]
    chunked = pa.chunked_array([pa.array(INPUTS[:100], pa.string()), pa.array(INPUTS[100:], pa.string())])
    assert rows(fast.validate_codes(chunked, "uscc")) == [reference(raw, "uscc") for raw in INPUTS]
    with pytest.raises(ValueError):
        fast.validate_codes(pa.array(["x"]), "passport")


def test_only_clean_uscc_rows():
    """The all-rows path: every row 18 characters of the code set (a clean USCC column)."""
    codes = [c for c in INPUTS if c and len(c) == 18 and all(ch in USCC_SET for ch in c)]
    assert len(codes) > 10_000
    got = rows(fast.validate_codes(pa.array(codes, pa.string())))
    assert got == [reference(raw, None) for raw in codes]


def test_normalize_codes_equals_reference():
    got = fast.normalize_codes(pa.array(INPUTS, pa.string())).to_pylist()
    assert got == [ref.normalize_code(raw) for raw in INPUTS]
    sliced = pa.array(["  a-b ", "", None, "91 11"], pa.string()).slice(1)
    assert fast.normalize_codes(sliced).to_pylist() == [None, None, "9111"]


def test_reason_functions_on_any_string_equal_reference():
    """Like the reference, the *_reasons functions judge the string as given (normalized or not)."""
    for values in (INPUTS, [ref.normalize_code(raw) for raw in INPUTS]):
        array = pa.array(values, pa.string())
        for function, reference_function in [
            (fast.uscc_reasons, ref.uscc_reasons),
            (fast.org_code_reasons, ref.org_code_reasons),
            (fast.resident_id_reasons, ref.resident_id_reasons),
        ]:
            expected = [None if v is None else reference_function(v) for v in values]
            assert function(array).to_pylist() == expected, function.__name__
        assert fast.code_kinds(array).to_pylist() == [ref.guess_kind(v) for v in values]


# --- DuckDB UDFs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    install_identifier_macros(connection)
    register_identifier_udfs(connection)
    register_identifier_udfs(connection)  # idempotent
    connection.register("inputs", pa.table({"id": range(len(INPUTS)), "raw": pa.array(INPUTS, pa.string())}))
    yield connection
    connection.close()


def test_udfs_equal_reference(con):
    got = con.execute(
        """
        SELECT n, code_kind_fast(n), uscc_reasons_fast(n), org_code_reasons_fast(n), resident_id_reasons_fast(n),
               uscc_reasons_fast(raw), validate_code_fast(raw, NULL), validate_code_fast(raw, 'org_code')
        FROM (SELECT id, raw, normalize_code_fast(raw) AS n FROM inputs) ORDER BY id
        """
    ).fetchall()

    def on(function, value):
        return None if value is None else function(value)

    def as_dict(result: tuple) -> dict:
        return dict(zip(("normalized", "kind", "valid", "reasons"), result, strict=True))

    expected = []
    for raw in INPUTS:
        n = ref.normalize_code(raw)
        expected.append((
            n, ref.guess_kind(n), on(ref.uscc_reasons, n), on(ref.org_code_reasons, n),
            on(ref.resident_id_reasons, n), on(ref.uscc_reasons, raw),
            as_dict(reference(raw, None)), as_dict(reference(raw, "org_code")),
        ))  # fmt: skip
    mismatches = [(raw, g, e) for raw, g, e in zip(INPUTS, got, expected, strict=True) if g != e]
    assert mismatches[:3] == [] and len(got) == len(INPUTS)


def test_udfs_equal_sql_macros(con):
    """Each *_fast function returns what the macro of the same name returns (the macros fold only
    full-width ASCII, so normalize is compared where NFKC does no more than that)."""
    differences = con.execute(
        """
        SELECT raw FROM inputs
        WHERE uscc_reasons_fast(raw) IS DISTINCT FROM uscc_reasons(raw)
           OR org_code_reasons_fast(raw) IS DISTINCT FROM org_code_reasons(raw)
           OR resident_id_reasons_fast(raw) IS DISTINCT FROM resident_id_reasons(raw)
           OR code_kind_fast(raw) IS DISTINCT FROM code_kind(raw)
        """
    ).fetchall()
    assert differences == []
    exotic = [raw for raw in INPUTS if raw is not None and any(c in raw for c in EXOTIC)]
    normalize_differences = con.execute(
        "SELECT raw FROM inputs WHERE normalize_code_fast(raw) IS DISTINCT FROM normalize_code(raw)"
    ).fetchall()
    assert {raw for (raw,) in normalize_differences} <= set(exotic)
    assert len(normalize_differences) < len(exotic)  # most exotic inputs fold the same way too


# --- credit codes validate ------------------------------------------------------------------

# The former implementation of warehouse/code_validation.py: the SQL macros and DuckDB's to_json.
MACRO_JSON_SQL = """
WITH normalized AS (SELECT i, input, normalize_code(input) AS normalized FROM lines),
kinded AS (SELECT *, coalesce($kind, code_kind(normalized)) AS kind FROM normalized),
checked AS (
    SELECT *,
        CASE WHEN normalized IS NULL THEN ['empty']
             WHEN kind = 'org_code' THEN org_code_reasons(normalized)
             WHEN kind = 'resident_id' THEN resident_id_reasons(normalized)
             ELSE uscc_reasons(normalized) END AS reasons
    FROM kinded
)
SELECT to_json({'input': input, 'normalized': normalized, 'kind': kind,
                'valid': len(reasons) = 0, 'reasons': reasons})
FROM checked ORDER BY i
"""


@pytest.mark.parametrize("kind", [None, "resident_id"])
def test_validate_lines_writes_what_the_macro_implementation_wrote(con, kind):
    """Byte for byte, on every input the macros fold like NFKC (one line each, so no newlines)."""
    lines = [
        raw for raw in INPUTS
        if raw is not None and not any(c in raw for c in EXOTIC) and "\n" not in raw and "\r" not in raw
    ]  # fmt: skip
    con.register("lines", pa.table({"i": range(len(lines)), "input": pa.array(lines, pa.string())}))
    expected = [row for (row,) in con.execute(MACRO_JSON_SQL, {"kind": kind}).fetchall()]
    con.unregister("lines")
    got = list(validate_lines(line + "\n" for line in lines) if kind is None else validate_lines(lines, kind))
    assert len(lines) > 25_000 and got == expected
