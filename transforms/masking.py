"""Masking personal ID numbers (公民身份号码, GB 11643) wherever they leave the restricted layers.

One rule for the whole platform: keep the first 6 characters (the division) and the last 4,
star the rest (``110105********002X``); a value of 10 characters or fewer is starred whole.
``mask_id`` applies it in Python, ``mask_id_sql`` writes the same rule as a DuckDB expression
(the clean layer), and ``mask_ids_in_text`` finds ID numbers typed inside other text (keys, free
text, codes in the wrong column) and masks them with the same rule. ``scrub_texts`` prepares the
free-text fields of the clean export: ID numbers typed any way (spaces, hyphens, full-width
digits) masked, control characters removed; the raw layer keeps the text as received.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from transforms.identifiers import rid_check_char

KEEP_HEAD, KEEP_TAIL = 6, 4
# GB 11643 (17 digits + check) and the old 15-digit number; also inside a longer run of digits,
# so that a digit typed next to an ID number does not let it through.
ID_RUN = re.compile(r"\d{17}[\dXx]|\d{15}")


def mask_id(text: str) -> str:
    """``110105********002X``: the first 6 and last 4 characters; 10 or fewer are starred whole."""
    if len(text) <= KEEP_HEAD + KEEP_TAIL:
        return "*" * len(text)
    return text[:KEEP_HEAD] + "*" * (len(text) - KEEP_HEAD - KEEP_TAIL) + text[-KEEP_TAIL:]


def mask_id_sql(expr: str) -> str:
    """``mask_id`` as a DuckDB expression over ``expr`` (a column or expression, never input text)."""
    keep = KEEP_HEAD + KEEP_TAIL
    return (f"CASE WHEN length({expr}) <= {keep} THEN repeat('*', length({expr})) "
            f"ELSE left({expr}, {KEEP_HEAD}) || repeat('*', length({expr}) - {keep}) || right({expr}, {KEEP_TAIL}) END")


def has_birth_date(run: str) -> bool:
    """Whether a digit run carries a real birth date where a resident ID has it (GB 11643 §5)."""
    digits = run[6:14] if len(run) == 18 else "19" + run[6:12]
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100


def mask_ids_in_text(text: str) -> str:
    """Every run shaped like a resident ID (18 or 15 digits with a birth date in place) masked."""
    return ID_RUN.sub(lambda m: mask_id(m.group()) if has_birth_date(m.group()) else m.group(), text)


# Control characters (NUL included) other than tab, line feed and carriage return.
CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_CONTROL_RE = re.compile(f"[{CONTROL}]")
# An ID number as people type it into text: half- or full-width digits, the last may be X, with up to
# three separators between them (spaces of every width, tabs, line breaks, zero-width characters,
# hyphens and dashes). Python's re and Arrow's RE2 read this class alike.
_DIGIT = "0-9\uff10-\uff19"
_SEP = "\\s\u00a0\u2000-\u200d\u2060\u202f\u205f\u3000\ufeff\\-\uff0d\u2010-\u2015\u2212"
_TYPED_RUN = re.compile(f"[{_DIGIT}](?:[{_SEP}]{{0,3}}[{_DIGIT}])*(?:[{_SEP}]{{0,3}}[Xx\uff38\uff58])?")
# RE2 (Arrow) prefilter: the texts that may hold either; the rest pass untouched.
_SUSPECT = f"[{CONTROL}]|[{_DIGIT}](?:[{_SEP}]{{0,3}}[{_DIGIT}]){{13}}"
_SEP_RE = re.compile(f"[{_SEP}]")


def _is_checked_id(window: str) -> bool:
    """18 characters that are a resident ID by its check character (GB 11643) and birth date."""
    return (window[:17].isdigit() and (window[17].isdigit() or window[17] == "X")
            and rid_check_char(window[:17]) == window[17] and has_birth_date(window))


def _mask_typed(match: re.Match[str]) -> str:
    """A run of digits: masked whole when it is, or holds, a resident ID number."""
    compact = _SEP_RE.sub("", unicodedata.normalize("NFKC", match.group())).upper()
    if len(compact) < 15:
        return match.group()
    if len(compact) in (15, 18) and ID_RUN.fullmatch(compact) and has_birth_date(compact):
        return mask_id(compact)
    # Longer, or digits glued to an ID: any 18-character window with a right check character.
    if any(_is_checked_id(compact[i:i + 18]) for i in range(len(compact) - 17)):
        return mask_id(compact)
    return match.group()


def scrub_text(text: str) -> str:
    """Free text fit for export: ID numbers however typed masked, control characters removed."""
    return _TYPED_RUN.sub(_mask_typed, _CONTROL_RE.sub("", text))


def scrub_texts(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``scrub_text`` over an Arrow string array; only the texts the prefilter suspects reach Python."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    suspect = pc.fill_null(pc.match_substring_regex(values, _SUSPECT), False)
    if not pc.any(suspect).as_py():
        return values
    positions = pc.indices_nonzero(suspect)
    fixed = pa.array([scrub_text(v) for v in pc.take(values, positions).to_pylist()], values.type)
    return pc.replace_with_mask(values, suspect, fixed)


# Phone numbers in public text: mainland mobile numbers (11 digits from 13-19) and landlines with
# an area code, typed with spaces, hyphens or full-width digits. The middle digits are starred.
_D = f"[{_DIGIT}]"
_S = f"[{_SEP}]{{0,2}}"
_PHONE = re.compile(
    f"(?<![{_DIGIT}])(?:[1１]{_S}[3-9３-９](?:{_S}{_D}){{9}}|[0０]{_D}{{2,3}}{_S}{_D}(?:{_S}{_D}){{6,7}})(?![{_DIGIT}])"
)
_PHONE_SUSPECT = f"[1１0０](?:[{_SEP}]{{0,2}}[{_DIGIT}]){{9}}"


def _mask_phone(match: re.Match[str]) -> str:
    digits = _SEP_RE.sub("", unicodedata.normalize("NFKC", match.group()))
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def scrub_public_text(text: str) -> str:
    """Free text fit for the credit website: ``scrub_text`` and phone numbers masked (139****5678)."""
    return _PHONE.sub(_mask_phone, scrub_text(text))


def scrub_public_texts(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``scrub_public_text`` over an Arrow string array; only suspect texts reach Python."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    suspect = pc.fill_null(pc.match_substring_regex(values, f"{_SUSPECT}|{_PHONE_SUSPECT}"), False)
    if not pc.any(suspect).as_py():
        return values
    positions = pc.indices_nonzero(suspect)
    fixed = pa.array([scrub_public_text(v) for v in pc.take(values, positions).to_pylist()], values.type)
    return pc.replace_with_mask(values, suspect, fixed)
