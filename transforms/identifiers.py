"""Identifier engine: reference implementation in plain Python.

Checks the three identifiers that appear in credit feeds:

* Unified social credit code, USCC (统一社会信用代码), GB 32100-2015: 18 chars,
  pos 1 authority, pos 2 category, pos 3-8 division (GB/T 2260), pos 9-17 the
  GB 11714 organization code (pos 17 is its check char), pos 18 the check char
  of GB/T 17710 = ISO 7064 MOD 31-3.
* Organization code (组织机构代码), GB 11714: 8 body chars + 1 check char.
* Resident ID (公民身份号码), GB 11643: 6-digit division, 8-digit birth date,
  3-digit sequence, check char of ISO 7064 MOD 11-2.

`warehouse/identifier_sql.py` implements the same checks as DuckDB macros;
the two must give identical results (tests/test_identifiers.py checks it).
Each ``*_reasons`` function takes an already-normalized code (see
`normalize_code`) and returns a list of reason codes, empty when valid. The
reason strings are a contract used by other modules: do not rename them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import cache

from foundation.catalog import CatalogError, read_catalog_file
from transforms.divisions import division_codes

AUTHORITIES_FILE = "reference/uscc_authorities.yaml"  # in the catalog directory

# --- normalization --------------------------------------------------------------------------

# Removed by normalize_code: every character Python counts as whitespace
# (str.isspace, incl. U+3000 ideographic space and U+00A0 no-break space) and the
# hyphens - (U+002D), U+FE63 small hyphen-minus, － (U+FF0D), – (U+2013 en dash).
# The SQL twin (warehouse/identifier_sql.py) lists the same characters.
_SEPARATORS_RE = re.compile(r"[\s\-\ufe63\uff0d\u2013]+")


def normalize_code(raw: str | None) -> str | None:
    """Canonical form of a code as typed in a feed; None when nothing is left.

    NFKC folds full-width forms to ASCII (９１３７… -> 9137…), then whitespace and
    hyphens are removed and letters upper-cased.

    Known difference with the SQL macro of the same name, which folds only the
    full-width ASCII block U+FF01-U+FF5E: other NFKC compatibility mappings
    (circled digits ①, superscripts ², ligatures ﬁ, spacing accents ¨ that
    decompose to a space, composition of combining marks) and non-ASCII case
    mappings (ß -> SS) happen only here, so a code typed with such characters
    (not seen in feeds so far) can pass here and fail in SQL. The differential
    test keeps its random input to characters where both agree.
    """
    if raw is None:
        return None
    code = _SEPARATORS_RE.sub("", unicodedata.normalize("NFKC", raw)).upper()
    return code or None


# --- shared arithmetic ----------------------------------------------------------------------

DIGITS = "0123456789"
# GB 32100-2015 code set: digits and capitals without I O Z S V; value = index (0..30).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# GB 11714 values: 0-9 for digits, A=10 ... Z=35.
GB11714_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1, 3, 9, 27, 19, 26, 16, ...
GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
RID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7, 9, 10, 5, 8, 4, 2, 1, ...

RID_BIRTH_MIN = "19000101"
RID_BIRTH_MAX = "20261231"


def uscc_check_char(first17: str) -> str:
    """Pos 18 of a USCC: ISO 7064 MOD 31-3 (GB/T 17710) over pos 1-17."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def gb11714_check_char(body: str) -> str:
    """GB 11714 check char of an 8-char organization code body: 11 - (sum mod 11),
    10 -> X, 11 -> 0."""
    total = sum(GB11714_ALPHABET.index(c) * w for c, w in zip(body, GB11714_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def rid_check_char(first17: str) -> str:
    """GB 11643 check char: ISO 7064 MOD 11-2 over 17 digits, 10 -> X."""
    total = sum(int(c) * w for c, w in zip(first17, RID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


@cache
def uscc_authority_pairs() -> frozenset[tuple[str, str]]:
    """Allowed (pos 1, pos 2) pairs, read from the catalog's reference/uscc_authorities.yaml."""
    data = read_catalog_file(AUTHORITIES_FILE)
    if not isinstance(data, dict):
        raise CatalogError(f"{AUTHORITIES_FILE}: expected a mapping of authority to its categories")
    return frozenset(
        (str(authority), str(category))
        for authority, entry in data.items()
        for category in entry["categories"]
    )


def _is_real_birth_date(yyyymmdd: str) -> bool:
    if not RID_BIRTH_MIN <= yyyymmdd <= RID_BIRTH_MAX:
        return False
    try:
        date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        return False
    return True


def _all_in(code: str, charset: str) -> bool:
    return all(c in charset for c in code)


# --- organization code (GB 11714) -----------------------------------------------------------


def org_code_reasons(code: str) -> list[str]:
    """GB 11714 organization code: 8 body chars (digits, capitals) + check char (digit or X)."""
    if len(code) != 9:
        return ["org_length"]
    if not (_all_in(code[:8], GB11714_ALPHABET) and _all_in(code[8], DIGITS + "X")):
        return ["org_charset"]
    if code[8] != gb11714_check_char(code[:8]):
        return ["org_check_digit"]
    return []


# --- resident ID (GB 11643) -----------------------------------------------------------------


def resident_id_reasons(code: str) -> list[str]:
    """GB 11643 citizen ID number: division, birth date, sequence, MOD 11-2 check.

    The division only has to be known (current or historical). Unlike stdnum.cn.ric it is
    not required to have been in use in the birth year: the division is that of the place
    where the number was first issued, often years after birth.
    """
    if len(code) != 18:
        return ["rid_length"]
    if not (_all_in(code[:17], DIGITS) and _all_in(code[17], DIGITS + "X")):
        return ["rid_charset"]
    reasons = []
    if code[:6] not in division_codes():
        reasons.append("rid_division")
    if not _is_real_birth_date(code[6:14]):
        reasons.append("rid_birth_date")
    if code[17] != rid_check_char(code[:17]):
        reasons.append("rid_check_digit")
    return reasons


# --- unified social credit code (GB 32100-2015) ---------------------------------------------


def _is_placeholder(code: str) -> bool:
    """All zeros (any length), or 17 identical chars followed by anything (18 long)."""
    all_zeros = code != "" and set(code) == {"0"}
    return all_zeros or (len(code) == 18 and len(set(code[:17])) == 1)


def _uscc_overriding_reason(code: str) -> str | None:
    """A reason that explains every other failure, so it is reported alone."""
    if _is_placeholder(code):
        return "uscc_placeholder"
    if len(code) == 18 and not resident_id_reasons(code):
        return "wrong_kind_resident_id"
    if len(code) == 15 and _all_in(code, DIGITS):
        return "wrong_kind_registration_number"  # old 15-digit 工商注册号
    if len(code) == 9 and not org_code_reasons(code):
        return "wrong_kind_org_code"
    if (
        len(code) == 18
        and _all_in(code, DIGITS)
        and code.endswith("000")
        and code[17] != uscc_check_char(code[:17])
    ):
        return "uscc_excel_damage"  # read as a float by Excel: the tail became 000
    return None


def uscc_reasons(code: str) -> list[str]:
    """GB 32100-2015 checks. Order: overriding reason alone, else length (stop),
    charset (stop), authority_category, division, org_check, check_digit."""
    overriding = _uscc_overriding_reason(code)
    if overriding:
        return [overriding]
    if len(code) != 18:
        return ["uscc_length"]
    if not _all_in(code, USCC_ALPHABET):
        return ["uscc_charset"]
    reasons = []
    if (code[0], code[1]) not in uscc_authority_pairs():
        reasons.append("uscc_authority_category")
    if code[2:8] not in division_codes():
        reasons.append("uscc_division")
    if code[16] != gb11714_check_char(code[8:16]):
        reasons.append("uscc_org_check")
    if code[17] != uscc_check_char(code[:17]):
        reasons.append("uscc_check_digit")
    return reasons


# --- kind guessing and the one-call API -----------------------------------------------------

KINDS = ("uscc", "org_code", "resident_id")
_REASONS = {
    "uscc": uscc_reasons,
    "org_code": org_code_reasons,
    "resident_id": resident_id_reasons,
    "unknown": uscc_reasons,  # a code of no known shape is judged as a USCC
}


def guess_kind(code: str | None) -> str:
    """Kind of a normalized code: 'uscc', 'org_code', 'resident_id' or 'unknown'.

    18 chars: a valid resident ID is 'resident_id', anything else 'uscc';
    9 chars ('12345678-9' before normalization): 'org_code'; else 'unknown'.
    """
    if code is None:
        return "unknown"
    if len(code) == 18:
        return "uscc" if resident_id_reasons(code) else "resident_id"
    if len(code) == 9:
        return "org_code"
    return "unknown"


@dataclass(frozen=True)
class CodeResult:
    input: str | None
    normalized: str | None
    kind: str
    valid: bool
    reasons: tuple[str, ...]


def validate(raw: str | None, kind: str | None = None) -> CodeResult:
    """Normalize ``raw`` and check it as ``kind`` (guessed when None).

    An empty input gives the reason 'empty'. A guessed kind of 'unknown' is
    checked with the USCC rules (so a 15-digit number gets
    'wrong_kind_registration_number', a 12-char one 'uscc_length').
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, not {kind!r}")
    normalized = normalize_code(raw)
    if normalized is None:
        return CodeResult(raw, None, kind or "unknown", False, ("empty",))
    kind = kind or guess_kind(normalized)
    reasons = tuple(_REASONS[kind](normalized))
    return CodeResult(raw, normalized, kind, not reasons, reasons)
