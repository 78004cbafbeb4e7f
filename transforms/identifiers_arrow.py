"""Identifier engine, vectorized: the checks of transforms/identifiers.py over Arrow arrays.

In: a pyarrow string array (or chunked array) of codes. Out, row for row, exactly what the
pure-Python reference returns (tests/test_identifiers_arrow.py compares them):

    normalize_codes(raw)        -> string array        (identifiers.normalize_code)
    code_kinds(codes)           -> string array        (identifiers.guess_kind)
    uscc_reasons(codes)         -> list<string> array  (identifiers.uscc_reasons; NULL on NULL)
    org_code_reasons(codes)     -> list<string> array
    resident_id_reasons(codes)  -> list<string> array
    validate_codes(raw, kind)   -> record batch input, normalized, kind, valid, reasons
                                   (identifiers.validate, '--kind' forcing included)

How. Most rows of a USCC column are 18 characters of the code set, hence already normalized.
Such an 18-byte row is read as 9 little-endian uint16 byte pairs; for each pair position a
65,536-entry table gives a uint64 packing that pair's share of every check (the GB/T 17710,
GB 11714 and GB 11643 weighted sums pre-reduced mod 31 / 11, counts of characters outside
each code set, the division digits as a number, ...). Nine lookups and eight additions give
a row's word; two small tables turn its low bits into the reasons of the check characters,
pair and division, and a 10^6 boolean table answers whether the division exists. Codes of
17 digits and a digit or X are then read again for a resident ID's division and birth date.
9-character codes get tables of their own. Every other row (lower case, spaces, full-width,
wrong length, ...) is normalized first: ASCII separators are dropped byte by byte, then
``pc.ascii_upper``; rows with non-ASCII text are decoded to code points, where full-width
ASCII is folded (NFKC maps U+FF01-U+FF5E to ASCII) and separators dropped, provided every
character is one whose NFKC form and case mapping need no Unicode database (ASCII,
full-width ASCII, CJK ideographs, whitespace, hyphens); the others (circled digits, accents
and the like, never seen in feeds so far) get the reference function's own answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.arrow_buffers import string_buffers, strings, to_arrow
from transforms.divisions import division_codes
from transforms.identifiers import (
    GB11714_ALPHABET,
    GB11714_WEIGHTS,
    KINDS,
    RID_BIRTH_MAX,
    RID_BIRTH_MIN,
    RID_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    normalize_code,
    uscc_authority_pairs,
)

# Every reason a row can get, in one order: a row's reasons are listed in this order, which is
# the reference's (the overriding USCC reasons, length and charset always come alone).
REASONS = (
    "empty",
    "uscc_placeholder",
    "wrong_kind_resident_id",
    "wrong_kind_registration_number",
    "wrong_kind_org_code",
    "uscc_excel_damage",
    "uscc_length",
    "uscc_charset",
    "uscc_authority_category",
    "uscc_division",
    "uscc_org_check",
    "uscc_check_digit",
    "org_length",
    "org_charset",
    "org_check_digit",
    "rid_length",
    "rid_charset",
    "rid_division",
    "rid_birth_date",
    "rid_check_digit",
)
_BIT = {reason: np.uint32(1 << i) for i, reason in enumerate(REASONS)}
KIND_NAMES = ("uscc", "org_code", "resident_id", "unknown")
_USCC, _ORG, _RID, _UNKNOWN = range(4)

# --- normalization --------------------------------------------------------------------------


@cache
def _code_point_tables() -> tuple[np.ndarray, np.ndarray]:
    """(separator, foldable) masks over the code points of the BMP.

    Separators are what normalize_code removes: the characters of str.isspace (= Python's
    regex \\s) and the hyphens - U+FE63 U+FF0D U+2013. Foldable characters are those whose NFKC
    form and upper case are known without a Unicode database, the same in every version, and
    which never compose with a neighbour: ASCII (unchanged), full-width ASCII U+FF01-U+FF5E
    (minus 0xFEE0), CJK unified ideographs U+4E00-U+9FFF (unchanged) and the separators."""
    separator = np.zeros(0x10000, bool)  # (no whitespace lies beyond the BMP)
    separator[[c for c in range(0x10000) if chr(c).isspace()]] = True
    separator[[ord(c) for c in "-\ufe63\uff0d\u2013"]] = True
    ascii_separators = np.arange(0x80, dtype=np.uint8)[_is_ascii_separator(np.arange(0x80, dtype=np.uint8))]
    assert (np.flatnonzero(separator[:0x80]) == ascii_separators).all(), "str.isspace changed"
    foldable = separator.copy()
    foldable[:0x80] = foldable[0xFF01:0xFF5F] = foldable[0x4E00:0xA000] = True
    return separator, foldable


def normalize_codes(raw: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """normalize_code for every value: NFKC, no whitespace or hyphens, upper case, '' -> null."""
    arr = _as_string_array(raw)
    offsets, data = string_buffers(arr)
    # Bytes that may change: controls and space, '-', and everything above 'Z' (lower case,
    # non-ASCII). Rows holding none are already normalized.
    dirty = _rows_with(offsets, _byte_positions(data, _maybe_changed))
    if dirty.size:
        arr = _replace_rows(arr, dirty, _normalize_dirty(arr.take(to_arrow(dirty))))
    return _empty_to_null(arr)


def _empty_to_null(arr: pa.StringArray) -> pa.StringArray:
    offsets, data = string_buffers(arr)
    empty = np.diff(offsets) == 0
    if not empty.any():
        return arr
    return _string_array(offsets, data, ~empty & ~_np_bool(arr.is_null()))


def _maybe_changed(chunk: np.ndarray) -> np.ndarray:
    shifted = chunk - np.uint8(0x21)  # wraps: bytes below '!' become >= 0xE0
    return (shifted > 0x5A - 0x21) | (chunk == 0x2D)


def _normalize_dirty(values: pa.StringArray) -> pa.StringArray:
    """normalize_code of each value, but '' where it gives None."""
    _code_point_tables()  # (checks _is_ascii_separator)
    # ASCII: NFKC changes nothing. An ASCII byte in UTF-8 is always a character of its own,
    # so the separators can be dropped byte by byte in every row.
    offsets, data = string_buffers(values)
    keep = ~_is_ascii_separator(data)
    kept = np.zeros(len(data) + 1, np.int32)
    np.cumsum(keep, out=kept[1:])
    present = ~_np_bool(values.is_null()) if values.null_count else np.ones(len(values), bool)
    out = pc.ascii_upper(_string_array(kept[offsets], data[keep], present))
    wide = np.flatnonzero(~_np_bool(pc.string_is_ascii(values)))
    if wide.size:
        out = _replace_rows(out, wide, _normalize_wide(values.take(to_arrow(wide))))
    return out


def _is_ascii_separator(data: np.ndarray) -> np.ndarray:
    """The separator bytes: \\t \\n \\v \\f \\r, 0x1C-0x1F, space and '-' (_code_point_tables checks
    that these are its ASCII separators). Compares, not a lookup table: no index array."""
    return ((data - np.uint8(0x09)) <= 4) | ((data - np.uint8(0x1C)) <= 4) | (data == 0x2D)


def _normalize_wide(values: pa.StringArray) -> pa.StringArray:
    """_normalize_dirty of rows with non-ASCII text, code point by code point: fold full-width
    ASCII, drop separators, upper-case ASCII. A row with a character outside the foldable ones
    (see _code_point_tables) gets the reference function's answer instead."""
    separator, foldable = _code_point_tables()
    offsets, data = string_buffers(values)
    starts = np.zeros(len(data) + 1, np.int32)  # code points before each byte
    np.cumsum((data & 0xC0) != 0x80, out=starts[1:])  # UTF-8: count the non-continuation bytes
    chars = starts[offsets]
    points = np.frombuffer(data.tobytes().decode("utf-8").encode("utf-32-le"), "<u4")
    unfoldable = np.zeros(len(points) + 1, np.int32)
    np.cumsum(~np.take(foldable, np.minimum(points, 0xFFFF)) | (points > 0xFFFF), out=unfoldable[1:])
    points = np.where((points - 0xFF01) <= 0xFF5E - 0xFF01, points - 0xFEE0, points)  # wraps below
    points = np.where((points - ord("a")) <= 25, points - 32, points)
    keep = ~np.take(separator, np.minimum(points, 0xFFFF)) | (points > 0xFFFF)
    kept = np.zeros(len(points) + 1, np.int32)
    np.cumsum(keep, out=kept[1:])
    points = points[keep]
    utf8_bytes = np.zeros(len(points) + 1, np.int32)
    np.cumsum(1 + (points >= 0x80) + (points >= 0x800) + (points >= 0x10000), out=utf8_bytes[1:])
    encoded = np.frombuffer(points.astype("<u4").tobytes().decode("utf-32-le").encode("utf-8"), np.uint8)
    present = ~_np_bool(values.is_null()) if values.null_count else np.ones(len(values), bool)
    out = _string_array(utf8_bytes[kept[chars]], encoded, present)
    rows = np.flatnonzero(unfoldable[chars[1:]] > unfoldable[chars[:-1]])
    if rows.size:  # circled digits, accents, ligatures...: Python's NFKC and case mapping
        exact = [normalize_code(v) or "" for v in values.take(to_arrow(rows)).to_pylist()]
        out = _replace_rows(out, rows, strings(exact))
    return out


# --- lookup tables --------------------------------------------------------------------------


def _char_values(alphabet: str) -> np.ndarray:
    """Byte -> index in ``alphabet`` (its value), -1 for bytes outside it."""
    values = np.full(256, -1, np.int64)
    values[np.frombuffer(alphabet.encode("ascii"), np.uint8)] = np.arange(len(alphabet))
    return values


_USCC_VALUE = _char_values(USCC_ALPHABET)
_GB_VALUE = _char_values(GB11714_ALPHABET)  # GB 11714: 0-9, A=10 ... Z=35
_DIGIT = _char_values("0123456789")
_DIGIT_OR_X = _char_values("0123456789X")  # check chars of GB 11714 and GB 11643: X = 10
_BYTE = np.arange(256)


@dataclass(frozen=True)
class _Layout:
    """Bit fields of a packed uint64 word and the per-byte-pair tables that fill them.

    ``word(matrix)`` sums, over the byte pairs of each row, the table entry of that pair:
    each field then holds the sum of its per-character contributions (a mod field is reduced
    per pair, so sum % mod is the row's weighted sum mod ``mod``)."""

    fields: dict[str, tuple[int, int]]  # name -> (shift, width)
    tables: tuple[np.ndarray, ...]

    def word(self, matrix: np.ndarray) -> np.ndarray:
        pairs = matrix.view("<u2")
        word = self.tables[0][pairs[:, 0]]
        for k in range(1, len(self.tables)):
            word += self.tables[k][pairs[:, k]]
        return word

    def get(self, word: np.ndarray, name: str) -> np.ndarray:
        shift, width = self.fields[name]
        return (word >> np.uint64(shift)) & np.uint64((1 << width) - 1)

    def mask(self, *names: str) -> np.uint64:
        """The bits of the named fields: ``word & mask == 0`` when they all hold 0."""
        bits = 0
        for name in names:
            shift, width = self.fields[name]
            bits |= ((1 << width) - 1) << shift
        return np.uint64(bits)


def _layout(width: int, fields: dict[str, tuple[int, int | None]], char_part, pair_part=None) -> _Layout:
    """Build the tables of a ``width``-char layout. ``fields``: name -> (bits, modulus or None);
    ``char_part(pos)`` -> {field: contribution of each of the 256 bytes at ``pos``};
    ``pair_part(k, lo, hi)`` -> {field: contribution of each byte pair at pair position k}."""
    lo, hi = np.arange(65536) & 0xFF, np.arange(65536) >> 8
    shifts, shift = {}, 0
    for name, (bits, _) in fields.items():
        shifts[name] = (shift, bits)
        shift += bits
    assert shift <= 64, fields
    tables, maxima = [], dict.fromkeys(fields, 0)
    for k in range(width // 2):
        parts = {name: np.zeros(65536, np.int64) for name in fields}
        for pos, byte in ((2 * k, lo), (2 * k + 1, hi)):
            for name, per_byte in char_part(pos).items():
                parts[name] += per_byte[byte]
        for name, value in (pair_part(k, lo, hi) if pair_part else {}).items():
            parts[name] += value
        table = np.zeros(65536, np.uint64)
        for name, (_, mod) in fields.items():
            value = parts[name] % mod if mod else parts[name]
            maxima[name] += int(value.max())
            table += value.astype(np.uint64) << np.uint64(shifts[name][0])
        tables.append(table)
    overflow = {name: m for name, m in maxima.items() if m >= 1 << fields[name][0]}
    assert not overflow, overflow
    return _Layout(shifts, tuple(tables))


def _uscc_chars(pos: int) -> dict[str, np.ndarray]:
    """Share of the char at ``pos`` (0-based) of an 18-char code in each field of _USCC_FIELDS."""
    digit = np.maximum(_DIGIT, 0)
    part = {
        "uscc_bad": _USCC_VALUE < 0,
        # GB/T 17710 MOD 31-3: sum(value * weight) + value(check char) = 0 mod 31.
        "uscc_sum": np.maximum(_USCC_VALUE, 0) * (USCC_WEIGHTS[pos] if pos < 17 else 1),
        # GB 11643 code set: 17 digits and a digit or X.
        "rid_bad": (_DIGIT if pos < 17 else _DIGIT_OR_X) < 0,
        # GB 11643 MOD 11-2: sum(digit * weight) + value(check char, X = 10) = 1 mod 11.
        "rid_sum": digit * RID_WEIGHTS[pos] if pos < 17 else np.maximum(_DIGIT_OR_X, 0),
    }
    if 8 <= pos < 16:  # GB 11714 over pos 9-16: sum(value * weight) + value(pos 17) = 0 mod 11
        part["org_sum"] = np.maximum(_GB_VALUE, 0) * GB11714_WEIGHTS[pos - 8]
    if pos == 16:
        part["org_sum"] = np.maximum(_DIGIT_OR_X, 0)
        part["org_bad"] = _DIGIT_OR_X < 0
    if 2 <= pos < 8:  # the division, pos 3-8, as a number
        part["division"] = digit * 10 ** (7 - pos)
    if pos >= 15:
        part["tail_zeros"] = _BYTE == ord("0")
    return part


def _uscc_pairs(k: int, lo: np.ndarray, hi: np.ndarray) -> dict[str, np.ndarray]:
    part = {"equal_pairs": lo == hi} if k < 8 else {}  # placeholder pre-filter: pos 1-16
    if k in (1, 2, 3):  # one bit per pair of pos 3-8: a non-digit in the division
        part["division_bad"] = ((_DIGIT[lo] < 0) | (_DIGIT[hi] < 0)) << (k - 1)
    if k == 0:
        allowed = np.zeros((256, 256), bool)
        for authority, category in uscc_authority_pairs():
            allowed[ord(authority), ord(category)] = True
        part["pair_bad"] = ~allowed[lo, hi]
    return part


def _rid_chars(pos: int) -> dict[str, np.ndarray]:
    digit = np.maximum(_DIGIT, 0)
    if pos < 6:
        return {"rid_division": digit * 10 ** (5 - pos)}
    return {"birth": digit * 10 ** (13 - pos)}


def _org_chars(pos: int) -> dict[str, np.ndarray]:
    if pos < 8:
        return {"org_sum": np.maximum(_GB_VALUE, 0) * GB11714_WEIGHTS[pos], "org_bad": _GB_VALUE < 0}
    if pos == 8:
        return {"org_sum": np.maximum(_DIGIT_OR_X, 0), "org_bad": _DIGIT_OR_X < 0}
    return {}  # padding to an even width


@dataclass(frozen=True)
class _Tables:
    uscc: _Layout  # 18-char codes as USCC and as resident ID
    rid: _Layout  # pos 1-14 of resident ID candidates: division and birth date as numbers
    org: _Layout  # 9-char codes, padded to 10
    low_checks: np.ndarray  # uscc word & 0xFFFF -> reason bits of the two check characters
    high_checks: np.ndarray  # (uscc word >> 16) & 0xF -> reason bits of pair and division
    divisions: np.ndarray  # bool[10**6]
    birth_dates: np.ndarray  # bool over yyyymmdd - RID_BIRTH_MIN


# Field order matters: the low 20 bits are read through low_checks / high_checks.
_USCC_FIELDS = {
    "uscc_sum": (9, 31), "org_sum": (6, 11), "org_bad": (1, None), "pair_bad": (1, None),
    "division_bad": (3, None), "uscc_bad": (5, None), "rid_bad": (5, None), "rid_sum": (7, 11),
    "division": (20, None), "tail_zeros": (2, None), "equal_pairs": (4, None),
}  # fmt: skip


@cache
def _tables() -> _Tables:
    uscc = _layout(18, _USCC_FIELDS, _uscc_chars, _uscc_pairs)
    assert uscc.fields["org_bad"] == (15, 1) and uscc.fields["division_bad"] == (17, 3), uscc.fields
    rid = _layout(14, {"rid_division": (20, None), "birth": (27, None)}, _rid_chars)
    org = _layout(10, {"org_sum": (6, 11), "org_bad": (4, None)}, _org_chars)
    low = np.arange(1 << 16)
    low_checks = np.where((low & 0x1FF) % 31 == 0, 0, _b("uscc_check_digit")) | np.where(
        ((low >> 9) & 0x3F) % 11 + (low >> 15) == 0, 0, _b("uscc_org_check")
    )
    high = np.arange(16)
    high_checks = np.where(high & 1, _b("uscc_authority_category"), 0) | np.where(high & 0xE, _b("uscc_division"), 0)
    divisions = np.zeros(10**6, bool)
    divisions[np.array(sorted(division_codes()), dtype=np.int64)] = True
    days = np.arange(np.datetime64(_iso(RID_BIRTH_MIN)), np.datetime64(_iso(RID_BIRTH_MAX)) + 1)
    year = days.astype("datetime64[Y]").astype(np.int64) + 1970
    month = days.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (days - days.astype("datetime64[M]")).astype(np.int64) + 1
    birth_dates = np.zeros(int(RID_BIRTH_MAX) - int(RID_BIRTH_MIN) + 1, bool)
    birth_dates[year * 10000 + month * 100 + day - int(RID_BIRTH_MIN)] = True
    return _Tables(uscc, rid, org, low_checks.astype(np.uint32), high_checks.astype(np.uint32), divisions, birth_dates)


def _iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"


# --- verdicts -------------------------------------------------------------------------------

_CHUNK = 1 << 16  # rows per pass over a matrix: its temporaries stay in the CPU cache


def _b(reason: str) -> np.uint32:
    return _BIT[reason]


def _unless(ok: np.ndarray, reason: str) -> np.ndarray:
    return np.where(ok, np.uint32(0), _b(reason))


@dataclass
class _Verdicts:
    """Per row: the reason bits under each kind's rules, and the guessed kind."""

    present: np.ndarray  # not null
    uscc: np.ndarray  # uint32 reason bits
    org: np.ndarray
    rid: np.ndarray  # (complete only if judged with rid_reasons, see _judge)
    kind: np.ndarray  # int8 index into KIND_NAMES

    @classmethod
    def of_lengths(cls, present: np.ndarray) -> _Verdicts:
        """Rows of no known length: only the length reasons, kind unknown."""
        n = len(present)
        uscc, org, rid = (np.full(n, _b(r)) for r in ("uscc_length", "org_length", "rid_length"))
        return cls(present, uscc, org, rid, np.full(n, _UNKNOWN, np.int8))

    def assign(self, rows: np.ndarray, other: _Verdicts) -> None:
        for name in ("uscc", "org", "rid", "kind"):
            getattr(self, name)[rows] = getattr(other, name)


def _judge(codes: pa.StringArray, rid_reasons: bool = False) -> _Verdicts:
    """Verdicts on ``codes`` as they are (identifiers.validate normalizes first). The resident ID
    reason bits are complete with ``rid_reasons``; without, only whether they are 0 (a valid
    resident ID) is right, which is all the USCC rules and the kind need."""
    clean, verdicts = _judge_clean(codes, rid_reasons)
    rest = np.flatnonzero(verdicts.present & ~clean)
    if rest.size:
        verdicts.assign(rest, _judge_rest(codes.take(to_arrow(rest))))
    return verdicts


def _judge_clean(codes: pa.StringArray, rid_reasons: bool) -> tuple[np.ndarray, _Verdicts]:
    """(mask of the rows that are 18 characters of the USCC code set, verdicts). Nearly every
    row of a USCC column is such a row, already normalized; only their verdicts are final."""
    n = len(codes)
    present = np.ones(n, bool) if codes.null_count == 0 else ~_np_bool(codes.is_null())
    verdicts = _Verdicts.of_lengths(present)
    clean = np.zeros(n, bool)
    offsets, _ = string_buffers(codes)
    rows = np.flatnonzero(present & (np.diff(offsets) == 18))
    if rows.size == n:
        clean, verdicts.uscc, verdicts.rid, verdicts.kind = _judge_18(_matrix(codes, rows, 18), rid_reasons)
    elif rows.size:
        clean[rows], verdicts.uscc[rows], verdicts.rid[rows], verdicts.kind[rows] = _judge_18(
            _matrix(codes, rows, 18), rid_reasons
        )
    return clean, verdicts


def _judge_18(matrix: np.ndarray, rid_reasons: bool) -> tuple[np.ndarray, ...]:
    """(clean, USCC reason bits, resident ID reason bits, kind) of each row of an 18-byte matrix;
    the reasons and kind are right where ``clean``: all 18 characters in the USCC code set."""
    m = len(matrix)
    out: tuple[np.ndarray, ...] = (np.empty(m, bool), np.empty(m, np.uint32), np.empty(m, np.uint32),
                                   np.empty(m, np.int8))
    for start in range(0, m, _CHUNK):
        for column, part in zip(out, _judge_18_chunk(matrix[start : start + _CHUNK], rid_reasons), strict=True):
            column[start : start + _CHUNK] = part
    return out


def _judge_18_chunk(matrix: np.ndarray, rid_reasons: bool) -> tuple[np.ndarray, ...]:
    t = _tables()
    layout = t.uscc
    word = layout.word(matrix)
    clean = (word & layout.mask("uscc_bad")) == 0
    # GB 32100-2015 structural checks, all reported: pos 1-2 pair, division, pos 17, pos 18.
    uscc = (
        t.low_checks[word & np.uint64(0xFFFF)]
        | t.high_checks[(word >> np.uint64(16)) & np.uint64(0xF)]
        | _unless(t.divisions[layout.get(word, "division")], "uscc_division")
    )
    rid = np.full(len(matrix), _b("rid_charset"))
    kind = np.full(len(matrix), _USCC, np.int8)
    # GB 11643 code set (17 digits, a digit or X): a resident ID, or a USCC with Excel damage.
    ids = np.flatnonzero((word & layout.mask("uscc_bad", "rid_bad")) == 0)
    if ids.size:
        check = layout.get(word[ids], "rid_sum") % np.uint64(11) == 1
        rid_ids = _unless(check, "rid_check_digit")
        # Division and birth date: of every candidate if its reasons are wanted, else only
        # where the check char fits (the others are no resident IDs whatever their date).
        full = slice(None) if rid_reasons else np.flatnonzero(check)
        id_word = t.rid.word(np.ascontiguousarray(matrix[ids[full], :14]))
        birth = t.rid.get(id_word, "birth").astype(np.int64) - int(RID_BIRTH_MIN)
        in_range = (birth >= 0) & (birth < t.birth_dates.size)
        rid_ids[full] |= _unless(t.divisions[t.rid.get(id_word, "rid_division")], "rid_division") | _unless(
            in_range & t.birth_dates[np.where(in_range, birth, 0)], "rid_birth_date"
        )
        rid[ids] = rid_ids
        excel = (layout.get(word[ids], "tail_zeros") == 3) & ((uscc[ids] & _b("uscc_check_digit")) != 0)
        uscc[ids] = np.select([rid_ids == 0, excel], [_b("wrong_kind_resident_id"), _b("uscc_excel_damage")], uscc[ids])
        kind[ids] = np.where(rid_ids == 0, _RID, _USCC)
    # Placeholders: pos 1-17 all equal (pos 1-16 pairwise equal first, a cheap filter).
    maybe = np.flatnonzero(clean & (layout.get(word, "equal_pairs") == 8))
    if maybe.size:
        uscc[maybe[(matrix[maybe, :17] == matrix[maybe, :1]).all(axis=1)]] = _b("uscc_placeholder")
    return clean, uscc, rid, kind


def _judge_rest(codes: pa.StringArray) -> _Verdicts:
    """Verdicts of rows that are not 18 characters of the USCC code set."""
    present = ~_np_bool(codes.is_null())
    length = _np_int32(pc.utf8_length(codes))
    verdicts = _Verdicts.of_lengths(present)
    # 18 characters, one at least outside the code set: a placeholder or a code set failure.
    rows = np.flatnonzero(present & (length == 18))
    if rows.size:
        values = codes.take(to_arrow(rows))
        first = pc.utf8_slice_codeunits(values, 0, 1)
        sixteen = to_arrow(np.array([16]))[0]  # an Arrow scalar (a Python int would import pandas)
        same = _np_bool(pc.equal(pc.utf8_slice_codeunits(values, 1, 17), pc.binary_repeat(first, sixteen)))
        verdicts.uscc[rows] = np.where(same, _b("uscc_placeholder"), _b("uscc_charset"))
        verdicts.rid[rows] = _b("rid_charset")
        verdicts.kind[rows] = _USCC
    # 9 characters: an organization code (GB 11714), perhaps in a USCC column.
    rows = np.flatnonzero(present & (length == 9))
    if rows.size:
        verdicts.kind[rows] = _ORG
        verdicts.org[rows] = _b("org_charset")
        rows = rows[_np_bool(pc.string_is_ascii(codes.take(to_arrow(rows))))]
        if rows.size:
            matrix = np.zeros((rows.size, 10), np.uint8)  # even width: 5 byte pairs
            matrix[:, :9] = _matrix(codes, rows, 9)
            verdicts.org[rows] = org = _judge_9(matrix)
            verdicts.uscc[rows] = np.where(org == 0, _b("wrong_kind_org_code"), _b("uscc_length"))
    # Any other length: an old registration number, or a placeholder of zeros.
    rows = np.flatnonzero(present & (length != 18))
    if rows.size:
        values = codes.take(to_arrow(rows))
        registration = (length[rows] == 15) & _np_bool(pc.ascii_is_decimal(values))
        verdicts.uscc[rows[registration]] = _b("wrong_kind_registration_number")
        offsets, data = string_buffers(values)
        zeros = np.zeros(len(data) + 1, np.int32)
        np.cumsum(data == ord("0"), out=zeros[1:])
        length_bytes = np.diff(offsets)
        all_zeros = (zeros[offsets[1:]] - zeros[offsets[:-1]] == length_bytes) & (length_bytes > 0)
        verdicts.uscc[rows[all_zeros]] = _b("uscc_placeholder")
    return verdicts


def _judge_9(matrix: np.ndarray) -> np.ndarray:
    """Organization code reason bits of each row of a 9-column ASCII matrix (padded to 10)."""
    t = _tables()
    word = t.org.word(matrix)
    return np.select(
        [t.org.get(word, "org_bad") != 0, t.org.get(word, "org_sum") % np.uint64(11) != 0],
        [_b("org_charset"), _b("org_check_digit")],
        np.uint32(0),
    )


# --- results ----------------------------------------------------------------------------------


def _reason_lists(bits: np.ndarray, null: np.ndarray | None = None) -> pa.ListArray:
    """uint32 reason bits -> list<string> in REASONS order; rows where ``null`` is set are null."""
    failing = np.flatnonzero(bits)
    failing_bits = bits[failing]
    counts = np.bitwise_count(failing_bits).astype(np.int32)
    offsets = np.zeros(len(bits) + 1, np.int32)
    offsets[failing + 1] = counts
    np.cumsum(offsets, out=offsets)
    which = np.empty(offsets[-1], np.int8)  # reason numbers, row by row
    one = counts == 1  # the usual case: the reason number is the bit's position
    which[offsets[failing[one]]] = np.log2(failing_bits[one]).astype(np.int8)
    several = np.flatnonzero(~one)
    if several.size:
        flags = (failing_bits[several, None] >> np.arange(len(REASONS), dtype=np.uint32)) & np.uint32(1)
        _, reason = np.nonzero(flags)  # in row order, each row's reasons in REASONS order
        n_reasons = counts[several]
        first = np.cumsum(n_reasons) - n_reasons
        rank = np.arange(len(reason)) - np.repeat(first, n_reasons)
        which[np.repeat(offsets[failing[several]], n_reasons) + rank] = reason
    values = pa.DictionaryArray.from_arrays(to_arrow(which), _names(REASONS)).dictionary_decode()
    mask = to_arrow(null) if null is not None and null.any() else None
    return pa.ListArray.from_arrays(to_arrow(offsets), values, mask=mask)


@cache
def _names(names: tuple[str, ...]) -> pa.StringArray:
    return strings(list(names))


def _kind_names(kind: np.ndarray) -> pa.StringArray:
    if len(kind) and (kind == kind[0]).all():  # one kind: its name repeated
        return pa.repeat(_names(KIND_NAMES)[int(kind[0])], len(kind))
    return pa.DictionaryArray.from_arrays(to_arrow(kind.astype(np.int8)), _names(KIND_NAMES)).dictionary_decode()


def uscc_reasons(codes: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    """identifiers.uscc_reasons of each code (expected normalized); null for null."""
    v = _judge(_as_string_array(codes))
    return _reason_lists(v.uscc, ~v.present)


def org_code_reasons(codes: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    v = _judge(_as_string_array(codes))
    return _reason_lists(v.org, ~v.present)


def resident_id_reasons(codes: pa.Array | pa.ChunkedArray) -> pa.ListArray:
    v = _judge(_as_string_array(codes), rid_reasons=True)
    return _reason_lists(v.rid, ~v.present)


def code_kinds(codes: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """identifiers.guess_kind of each code (expected normalized); 'unknown' for null."""
    return _kind_names(_judge(_as_string_array(codes)).kind)


RESULT_SCHEMA = pa.schema(
    [("input", pa.string()), ("normalized", pa.string()), ("kind", pa.string()),
     ("valid", pa.bool_()), ("reasons", pa.list_(pa.string()))]
)  # fmt: skip


def validate_codes(
    raw: pa.Array | pa.ChunkedArray, kind: str | pa.Array | pa.ChunkedArray | None = None
) -> pa.RecordBatch:
    """identifiers.validate of each raw code, as columns input, normalized, kind, valid, reasons.

    ``kind``: None to guess it, one of KINDS to force it, or a string array of them (null:
    guess) giving each row its own."""
    raw, normalized, kinds, bits = code_verdicts(raw, kind)
    columns = [raw, normalized, _kind_names(kinds), to_arrow(bits == 0), _reason_lists(bits)]
    return pa.RecordBatch.from_arrays(columns, schema=RESULT_SCHEMA)


def code_verdicts(
    raw: pa.Array | pa.ChunkedArray, kind: str | pa.Array | pa.ChunkedArray | None = None
) -> tuple[pa.StringArray, pa.StringArray, np.ndarray, np.ndarray]:
    """validate_codes before its kind and reason columns are built: (raw as one string array,
    normalized, per row the kind as an int8 index into KIND_NAMES and the reasons as uint32 bits,
    bit i for REASONS[i], 0 when valid; the bits are exactly ``empty`` where normalized is null)."""
    raw = _as_string_array(raw)
    forced = None  # per row: index into KIND_NAMES, -1 to guess
    if isinstance(kind, str):
        forced = np.full(len(raw), _kind_number(kind), np.int8)
    elif kind is not None:
        kinds = _as_string_array(kind)
        distinct = kinds.unique()
        numbers = np.array([-1 if k is None else _kind_number(k) for k in distinct.to_pylist()], np.int8)
        forced = numbers[_np_int32(pc.index_in(kinds, distinct))]
    rid_reasons = forced is not None and bool((forced == _RID).any())
    clean, v = _judge_clean(raw, rid_reasons)  # clean rows are normalized already
    normalized = raw
    rest = np.flatnonzero(~clean)
    if rest.size:
        normalized_rest = _empty_to_null(_normalize_dirty(raw.take(to_arrow(rest))))  # most of them change
        normalized = _replace_rows(raw, rest, normalized_rest)
        v.present[rest] = ~_np_bool(normalized_rest.is_null())
        v.assign(rest, _judge(normalized_rest, rid_reasons))
    kinds = v.kind if forced is None else np.where(forced >= 0, forced, v.kind).astype(np.int8)
    if len(kinds) and (kinds == kinds[0]).all():
        bits = {_ORG: v.org, _RID: v.rid}.get(int(kinds[0]), v.uscc).copy()  # unknown: as a USCC
    else:
        bits = np.select([kinds == _ORG, kinds == _RID], [v.org, v.rid], v.uscc)
    bits[~v.present] = _b("empty")
    return raw, normalized, kinds, bits


def _kind_number(kind: str) -> int:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, not {kind!r}")
    return KIND_NAMES.index(kind)


# --- Arrow plumbing (see transforms/arrow_buffers.py) ---------------------------------------------


def _bits(buffer: pa.Buffer, offset: int, length: int) -> np.ndarray:
    """``length`` bits of an Arrow bitmap from bit ``offset``, as numpy booleans."""
    if length == 0:
        return np.zeros(0, bool)
    return np.unpackbits(np.frombuffer(buffer, np.uint8), count=offset + length, bitorder="little")[offset:].view(bool)


def _np_int32(values: pa.Int32Array) -> np.ndarray:
    """An int32 Arrow array as numpy, nulls as 0."""
    if len(values) == 0:
        return np.zeros(0, np.int32)
    out = np.frombuffer(values.buffers()[1], np.int32)[values.offset : values.offset + len(values)]
    return np.where(_bits(values.buffers()[0], values.offset, len(values)), out, 0) if values.null_count else out


def _as_string_array(values: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if values.type != pa.string():
        values = values.cast(pa.string())
    return values


def _byte_positions(data: np.ndarray, test) -> np.ndarray:
    """Positions of the bytes where ``test(chunk)`` is set, the data taken 1 MiB at a time."""
    step = 1 << 20
    found = [np.flatnonzero(test(data[i : i + step])) + i for i in range(0, len(data), step)]
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def _rows_with(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Indices of the rows holding a byte at one of ``positions`` (ascending)."""
    if not positions.size:
        return positions
    # Runs of consecutive positions may span rows: mark every row from a run's first byte to
    # its last (an empty row inside a run is marked too, which is harmless to the callers).
    breaks = np.flatnonzero(positions[1:] != positions[:-1] + 1)
    first = np.searchsorted(offsets, positions[np.r_[0, breaks + 1]], side="right") - 1
    last = np.searchsorted(offsets, positions[np.r_[breaks, len(positions) - 1]], side="right") - 1
    n = len(offsets) - 1
    covered = np.cumsum(np.bincount(first, minlength=n + 1) - np.bincount(last + 1, minlength=n + 1))
    return np.flatnonzero(covered[:n])


def _matrix(codes: pa.StringArray, rows: np.ndarray, width: int) -> np.ndarray:
    """uint8 matrix of the given rows, all ``width`` bytes long (zero-copy when they are all rows)."""
    subset = codes if rows.size == len(codes) else codes.take(to_arrow(rows))
    _, data = string_buffers(subset)
    return data.reshape(rows.size, width)


def _replace_rows(values: pa.StringArray, rows: np.ndarray, replacements: pa.StringArray) -> pa.StringArray:
    """``values`` with ``values[rows[i]]`` replaced by ``replacements[i]``."""
    order = np.arange(len(values))
    order[rows] = len(values) + np.arange(len(rows))
    return pa.concat_arrays([values, replacements]).take(to_arrow(order))


def _string_array(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> pa.StringArray:
    """A string array from numpy offsets (starting at 0), data bytes and validity."""
    validity = to_arrow(valid).buffers()[1] if not valid.all() else None
    return pa.StringArray.from_buffers(
        len(valid), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(data)), validity
    )


def _np_bool(values: pa.BooleanArray | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    validity, data = values.buffers()
    out = _bits(data, values.offset, len(values))
    if values.null_count:
        out &= _bits(validity, values.offset, len(values))
    return out
