"""Identifier engine: transforms/identifiers.py (reference) and warehouse/identifier_sql.py (SQL).

Valid codes are built here with check characters computed independently of the code under
test: pos 18 with python-stdnum, pos 17 with the GB 11714 formula written out below.
"""

from __future__ import annotations

import dataclasses
import random

import duckdb
import pyarrow as pa
import pytest
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc
from stdnum.exceptions import ValidationError

from transforms.divisions import division_codes
from transforms.identifiers import (
    CodeResult,
    guess_kind,
    normalize_code,
    org_code_reasons,
    resident_id_reasons,
    uscc_reasons,
    validate,
)
from transforms.reasons import CODE_REASONS
from warehouse.identifier_sql import install_identifier_macros

pytestmark = pytest.mark.unit

USCC_SET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
RUSHAN = "371083"

USCC_REASONS = {
    "uscc_length", "uscc_charset", "uscc_authority_category", "uscc_division",
    "uscc_org_check", "uscc_check_digit", "uscc_placeholder", "uscc_excel_damage",
    "wrong_kind_registration_number", "wrong_kind_org_code", "wrong_kind_resident_id",
}  # fmt: skip
ORG_REASONS = {"org_length", "org_charset", "org_check_digit"}
RID_REASONS = {"rid_length", "rid_charset", "rid_division", "rid_birth_date", "rid_check_digit"}

# A sample of the codes python-stdnum's own tests list as valid
# (tests/test_cn_uscc.doctest in arthurdejong/python-stdnum).
STDNUM_VALID_USCC = """
121200004013590816 91110000600037341L 91110000710926094P 91120224064012553U 911522010783710635
91152201078371135X 9115220107837757XE 9115220107837941X1 9115220107839138X8 91310000631696382C
91310112087994932F 913101127033980359 91310115MA1K3BTP2B 9131012056010553X5 91320214745555318W
913205056082348768 913304007429141869 91340600MA2PBM9HXD 91340603MA2UJXXCXF 913505007821784439
91371082775260043P 914112810713741814 91420684MA4927PJ7B 91440300568520498A 9144030071526726XG
91442000696462712R 91620105L015101280 91620105MA73NBBLXE 92340602MA2PEL3T3X 92340621MA2UK3PJXE
""".split()


# --- independent builders -------------------------------------------------------------------


def gb11714_check(body: str) -> str:
    """GB 11714 check char written from the standard: A=10 ... Z=35 (base 36 digits)."""
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def make_uscc(authority: str, category: str, division: str, body: str) -> str:
    first17 = authority + category + division + body + gb11714_check(body)
    return first17 + stdnum_uscc.calc_check_digit(first17)


def make_rid(division: str, birth: str, seq: str) -> str:
    first17 = division + birth + seq
    return first17 + stdnum_ric.calc_check_digit(first17 + "0")


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def with_char(code: str, pos: int, char: str) -> str:
    return code[:pos] + char + code[pos + 1 :]


def fix_check(code: str) -> str:
    """Recompute pos 18 so that only the deliberately broken check fails."""
    return code[:17] + stdnum_uscc.calc_check_digit(code[:17])


VALID_USCC = make_uscc("9", "1", RUSHAN, "MA3C8PL2")  # a Rushan enterprise


# --- reference data -------------------------------------------------------------------------


def test_division_codes_include_current_and_historical():
    codes = division_codes()
    assert RUSHAN in codes  # 乳山市
    assert "110103" in codes  # 崇文区, merged into 东城区 in 2010: still valid in old codes
    assert "999999" not in codes
    assert len(codes) > 3000 and all(len(c) == 6 and c.isdigit() for c in codes)


# --- normalization --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("９１３７１０８３ＭＡ３Ｃ８ＰＬ２", "91371083MA3C8PL2"),  # full-width digits and letters
        ("91 3710 83-ma3c\u3000 8pl2", "91371083MA3C8PL2"),  # spaces, U+3000, hyphen, lowercase
        ("12345678－9", "123456789"),  # full-width hyphen of an organization code
        ("12345678–9", "123456789"),  # en dash
        ("\t\n 91371083\xa0MA3C \r", "91371083MA3C"),  # tabs, newlines, no-break space
        (" \u3000 - ", None),  # nothing left
        ("", None),
        (None, None),
    ],
)
def test_normalize_code(raw, expected):
    assert normalize_code(raw) == expected


# --- reason codes, one real-looking example each --------------------------------------------

USCC_CASES = [
    # (raw input, expected reasons, why)
    ("91110000600037341L", [], "stdnum's documented valid example (Beijing)"),
    (VALID_USCC, [], "built valid Rushan enterprise code"),
    (fullwidth("91110000600037341L"), [], "the same in full-width: folded by NFKC"),
    ("91110000600037341", ["uscc_length"], "last character lost"),
    ("91110000600O37341L", ["uscc_charset"], "letter O typed for zero"),
    ("911100006000373411", ["uscc_check_digit"], "pos 18 mistyped"),
    ("91110000600037341N", ["uscc_check_digit"], "stdnum's own checksum example"),
    (fix_check("94" + VALID_USCC[2:]), ["uscc_authority_category"], "工商 has no category 4"),
    (fix_check("B1" + VALID_USCC[2:]), ["uscc_authority_category"], "B is no authority"),
    (fix_check("91999999" + VALID_USCC[8:]), ["uscc_division"], "999999 is no division"),
    (fix_check(with_char(VALID_USCC, 16, "X")), ["uscc_org_check"], "pos 17 wrong, 18 fits"),
    (
        "Y2999999ABCDEFGH12",
        ["uscc_authority_category", "uscc_division", "uscc_org_check", "uscc_check_digit"],
        "every structural check fails: all reported, in order",
    ),
    ("000000000000000000", ["uscc_placeholder"], "all zeros passes both checksums"),
    ("00000000000000000X", ["uscc_placeholder"], "17 zeros and a filler"),
    ("111111111111111111", ["uscc_placeholder"], "17 identical characters"),
    ("0", ["uscc_placeholder"], "a single zero typed in the column"),
    ("913101127033980000", ["uscc_excel_damage"], "913101127033980359 read as a float"),
    ("371083200012345", ["wrong_kind_registration_number"], "old 15-digit 工商注册号"),
    ("60003734-1", ["wrong_kind_org_code"], "organization code in the USCC column"),
    ("360426199101010071", ["wrong_kind_resident_id"], "a resident ID in the USCC column"),
]


@pytest.mark.parametrize(("raw", "expected", "why"), USCC_CASES)
def test_uscc_reasons(raw, expected, why):
    result = validate(raw, kind="uscc")
    assert list(result.reasons) == expected, why
    assert result.valid == (not expected)
    assert uscc_reasons(normalize_code(raw)) == expected


ORG_CASES = [
    ("600037341", [], "pos 9-17 of stdnum's example"),
    ("60003734-1", [], "written with its customary hyphen"),
    ("60003734", ["org_length"], "check char missing"),
    ("60003734Y", ["org_charset"], "check char must be a digit or X"),
    ("6000373号1", ["org_charset"], "non-ASCII character inside"),
    ("600037342", ["org_check_digit"], "check char mistyped"),
]


@pytest.mark.parametrize(("raw", "expected", "why"), ORG_CASES)
def test_org_code_reasons(raw, expected, why):
    assert list(validate(raw, kind="org_code").reasons) == expected, why


RID_CASES = [
    ("360426199101010071", [], "stdnum's documented example"),
    (make_rid(RUSHAN, "19850317", "123"), [], "built Rushan resident"),
    (make_rid("110103", "19800101", "002"), [], "historical division (崇文区)"),
    ("36042619910101007", ["rid_length"], "one digit lost"),
    ("36042619910101007A", ["rid_charset"], "check char must be a digit or X"),
    (make_rid("999999", "19910101", "007"), ["rid_division"], "999999 is no division"),
    (make_rid("360426", "19910230", "007"), ["rid_birth_date"], "30 February"),
    (make_rid("360426", "18991231", "007"), ["rid_birth_date"], "before 1900"),
    (make_rid("360426", "20270101", "007"), ["rid_birth_date"], "after 2026"),
    ("360426199101010072", ["rid_check_digit"], "check digit mistyped"),
]


@pytest.mark.parametrize(("raw", "expected", "why"), RID_CASES)
def test_resident_id_reasons(raw, expected, why):
    assert list(validate(raw, kind="resident_id").reasons) == expected, why


def test_every_code_reason_has_a_real_looking_example():
    """Each reason code of transforms.reasons is the expected verdict of at least one case above."""
    cases = USCC_CASES + ORG_CASES + RID_CASES
    assert {reason for _, expected, _ in cases for reason in expected} == set(CODE_REASONS)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("91110000600037341L", "uscc"),
        ("91110000600037341N", "uscc"),  # 18 chars, not a resident ID: judged as USCC
        ("360426199101010071", "resident_id"),
        ("360426199101010072", "uscc"),  # bad ID check digit: no longer an ID
        ("60003734-1", "org_code"),
        ("371083200012345", "unknown"),
        ("abc", "unknown"),
        (None, "unknown"),
    ],
)
def test_guess_kind(raw, kind):
    assert guess_kind(normalize_code(raw)) == kind
    assert validate(raw).kind == kind


def test_validate_result():
    raw = fullwidth(" 91110000 600037341l ")
    result = validate(raw)
    assert result == CodeResult(
        input=raw,
        normalized="91110000600037341L",
        kind="uscc",
        valid=True,
        reasons=(),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.valid = False  # type: ignore[misc]
    assert validate("   ").reasons == ("empty",)
    assert validate("371083200012345").reasons == ("wrong_kind_registration_number",)
    with pytest.raises(ValueError):
        validate("x", kind="passport")


# --- against python-stdnum ------------------------------------------------------------------


@pytest.mark.parametrize("code", STDNUM_VALID_USCC)
def test_stdnum_valid_codes_accepted(code):
    assert stdnum_uscc.is_valid(code)
    assert uscc_reasons(code) == []


def test_every_single_substitution_is_rejected_by_a_checksum():
    for code in STDNUM_VALID_USCC:
        for pos, original in enumerate(code):
            for char in USCC_SET.replace(original, ""):
                mutated = with_char(code, pos, char)
                reasons = uscc_reasons(mutated)
                assert "uscc_check_digit" in reasons or reasons == ["uscc_excel_damage"], mutated
                assert not stdnum_uscc.is_valid(mutated)
            for char in "IOZSVa-#中":  # outside the code set
                assert uscc_reasons(with_char(code, pos, char)) == ["uscc_charset"]


@pytest.mark.parametrize(
    ("authority", "category"),
    [("A", "1"), ("A", "9"), ("N", "1"), ("N", "2"), ("N", "3"), ("N", "9"), ("Y", "1")],
)
def test_letter_first_codes_accepted_where_stdnum_rejects_them(authority, category):
    """Documented gap of stdnum.cn.uscc: it wants 8 leading digits."""
    code = make_uscc(authority, category, RUSHAN, "MA3C8PL2")
    assert uscc_reasons(code) == []
    assert not stdnum_uscc.is_valid(code)
    assert stdnum_uscc.is_valid(make_uscc("9", "1", RUSHAN, "MA3C8PL2"))  # same construction


def test_differences_with_stdnum_uscc_are_exactly_the_known_gaps():
    """stdnum accepts what we reject only for checks it lacks (pair, pos 17) or we add
    (division, placeholder, resident ID); we accept what it rejects only for letter-first."""
    rng = random.Random(32100)
    checks_stdnum_lacks = {"uscc_authority_category", "uscc_division", "uscc_org_check"}
    seen_stdnum_only = set()
    for code in _random_uscc_like(rng, 20_000):
        ours = uscc_reasons(code)
        theirs = stdnum_uscc.is_valid(code)
        if not ours and not theirs:
            assert code[0] in "ANY", code
        if theirs and ours:
            assert set(ours) <= checks_stdnum_lacks or ours in (
                ["uscc_placeholder"],
                ["wrong_kind_resident_id"],
            ), (code, ours)
            seen_stdnum_only.update(ours)
    assert checks_stdnum_lacks <= seen_stdnum_only  # the test did exercise each gap


def _random_uscc_like(rng: random.Random, n: int) -> list[str]:
    """18-char codes with valid pos 18, the other parts valid or not at random."""
    divisions = sorted(division_codes())
    codes = []
    for _ in range(n):
        authority = rng.choice("123456789ANY")
        category = rng.choice("1234569")
        division = rng.choice(divisions) if rng.random() < 0.7 else f"{rng.randrange(10**6):06d}"
        body = "".join(rng.choice(USCC_SET) for _ in range(8))
        org_check = gb11714_check(body) if rng.random() < 0.7 else rng.choice(USCC_SET)
        codes.append(fix_check(authority + category + division + body + org_check))
    return codes


def test_resident_ids_against_stdnum_ric():
    """Same verdict as stdnum.cn.ric except two documented differences: stdnum also wants the
    division to be in use in the birth year, and it has no 1900-2026 bound on birth dates."""
    rng = random.Random(11643)
    divisions = sorted(division_codes())
    both_valid = only_ours = only_theirs = 0
    for _ in range(5_000):
        birth = f"{rng.randrange(1880, 2040)}{rng.randrange(1, 13):02d}{rng.randrange(1, 32):02d}"
        code = make_rid(rng.choice(divisions), birth, f"{rng.randrange(1000):03d}")
        if rng.random() < 0.3:  # one random digit changed
            code = with_char(code, rng.randrange(18), rng.choice("0123456789X"))
        ours = resident_id_reasons(code)
        try:
            theirs = stdnum_ric.is_valid(code)
        except KeyError:  # stdnum bug on a province prefix without county: invalid
            theirs = False
        if not ours and theirs:
            both_valid += 1
        elif not ours:
            only_ours += 1
            with pytest.raises(ValidationError):  # county not in use in the birth year
                stdnum_ric.get_birth_place(code)
        elif theirs:
            only_theirs += 1
            assert ours == ["rid_birth_date"] and not 1900 <= int(code[6:10]) <= 2026, code
    assert both_valid > 1000 and only_ours > 0 and only_theirs > 0, (only_ours, only_theirs)


# --- SQL macros against the Python reference ------------------------------------------------


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = tmp_path_factory.mktemp("identifiers") / "warehouse.duckdb"
    connection = duckdb.connect(str(path))
    install_identifier_macros(connection)
    install_identifier_macros(connection)  # idempotent
    yield connection
    connection.close()


def test_install_fills_reference_tables(con):
    codes = {code for (code,) in con.execute("SELECT code FROM ref.divisions").fetchall()}
    assert codes == division_codes() and RUSHAN in codes
    pairs = set(con.execute("SELECT authority, category FROM ref.uscc_authorities").fetchall())
    assert ("9", "1") in pairs and ("Y", "1") in pairs and ("9", "4") not in pairs
    rows = con.execute(
        "SELECT uscc_reasons(NULL), org_code_reasons(NULL), resident_id_reasons(NULL),"
        " code_kind(NULL), normalize_code(NULL)"
    ).fetchall()
    assert rows == [(None, None, None, "unknown", None)]


# Characters where NFKC and the SQL fold agree (see normalize_code's docstring): ASCII,
# full-width ASCII, every whitespace, the hyphens, a few CJK characters.
WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]
FULLWIDTH = [chr(c) for c in range(0xFF01, 0xFF5F)]
ASCII = [chr(c) for c in range(0x21, 0x7F)]
WIDE_ALPHABET = ASCII + FULLWIDTH + WHITESPACE + ["\u2013", "\ufe63"] + list("无号乳山代码")


def test_whitespace_list_is_complete():
    assert WHITESPACE == [chr(c) for c in range(0x110000) if chr(c).isspace()]


def test_sql_normalize_agrees_on_every_character_of_the_domain(con):
    texts = [f"a{c}b" for c in WIDE_ALPHABET]
    got = con.execute("SELECT normalize_code(unnest($1::VARCHAR[]))", [texts]).fetchall()
    assert [n for (n,) in got] == [normalize_code(t) for t in texts]


def _decorate(rng: random.Random, code: str) -> str:
    """Full-width, lowercase, spaces and hyphens as seen in feeds."""
    out = []
    for ch in code:
        r = rng.random()
        if r < 0.2:
            ch = fullwidth(ch)
        elif r < 0.3:
            ch = ch.lower()
        out.append(ch)
        if rng.random() < 0.1:
            out.append(rng.choice(WHITESPACE + ["-", "－", "\u2013", "\ufe63"]))
    return "".join(out)


def damage_code(rng: random.Random, code: str) -> str:
    pos = rng.randrange(max(len(code), 1))
    match rng.randrange(6):
        case 0:
            return with_char(code, pos, rng.choice(USCC_SET + "IOZSV"))
        case 1:
            return code[:pos] + code[pos + 1 :]
        case 2:
            return code[:pos] + rng.choice(USCC_SET) + code[pos:]
        case 3:
            return code[:pos] + code[pos + 1 : pos + 2] + code[pos : pos + 1] + code[pos + 2 :]
        case 4:
            return code[: rng.randrange(len(code) + 1)]
        case _:
            return with_char(code, pos, rng.choice(WIDE_ALPHABET))


def _differential_inputs(n: int) -> list[str | None]:
    rng = random.Random(20220601)
    divisions = sorted(division_codes())
    pairs = "11 12 13 19 21 31 51 52 53 91 92 93 A1 N3 Y1".split()

    def valid_uscc() -> str:
        body = "".join(rng.choice(USCC_SET) for _ in range(8))
        return make_uscc(*rng.choice(pairs), rng.choice(divisions), body)

    def valid_digit_uscc() -> str:
        return make_uscc("9", "1", rng.choice(divisions), f"{rng.randrange(10**8):08d}")

    def valid_rid() -> str:
        birth = f"{rng.randrange(1900, 2027)}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        return make_rid(rng.choice(divisions), birth, f"{rng.randrange(1000):03d}")

    def valid_org() -> str:
        body = "".join(rng.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        return body + gb11714_check(body)

    def random_string(alphabet) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(21)))

    generators = [
        valid_uscc,
        valid_rid,
        valid_org,
        lambda: damage_code(rng, valid_uscc()),
        lambda: damage_code(rng, valid_uscc()),
        lambda: damage_code(rng, valid_digit_uscc()),
        lambda: damage_code(rng, valid_rid()),
        lambda: damage_code(rng, valid_org()),
        lambda: valid_digit_uscc()[:15] + "000",  # Excel damage (or, rarely, a valid code)
        lambda: rng.choice(USCC_SET) * 17 + rng.choice(USCC_SET),  # placeholders
        lambda: "0" * rng.randrange(1, 21),
        lambda: f"{rng.randrange(10**15):015d}",  # old registration numbers
        lambda: _decorate(rng, rng.choice([valid_uscc, valid_rid, valid_org])()),
        lambda: random_string(USCC_SET),
        lambda: random_string("0123456789X"),
        lambda: random_string(WIDE_ALPHABET),
    ]
    inputs: list[str | None] = [None, ""]
    while len(inputs) < n:
        inputs.append(rng.choice(generators)())
    return inputs


def test_sql_macros_agree_with_python(con):
    inputs = _differential_inputs(20_000)
    con.register("inputs", pa.table({"id": list(range(len(inputs))), "raw": inputs}))
    rows = con.execute(
        """
        SELECT raw, n, code_kind(n),
               uscc_reasons(n), org_code_reasons(n), resident_id_reasons(n),
               uscc_reasons(raw), org_code_reasons(raw), resident_id_reasons(raw)
        FROM (SELECT id, raw, normalize_code(raw) AS n FROM inputs)
        ORDER BY id
        """
    ).fetchall()
    con.unregister("inputs")

    def reference(raw):
        n = normalize_code(raw)

        def on(fn, x):
            return None if x is None else fn(x)

        return (
            raw, n, guess_kind(n),
            on(uscc_reasons, n), on(org_code_reasons, n), on(resident_id_reasons, n),
            on(uscc_reasons, raw), on(org_code_reasons, raw), on(resident_id_reasons, raw),
        )  # fmt: skip

    mismatches = [(row, ref) for row in rows if (ref := reference(row[0])) != tuple(row)]
    assert mismatches[:5] == []
    seen = {reason for row in rows for reasons in row[3:6] if reasons for reason in reasons}
    assert seen == USCC_REASONS | ORG_REASONS | RID_REASONS  # every reason code exercised
    assert {row[2] for row in rows} == {"uscc", "org_code", "resident_id", "unknown"}
