"""Masking personal ID numbers (公民身份号码, GB 11643) wherever they leave the restricted layers.

One rule for the whole platform: keep the first 6 characters (the division) and the last 4,
star the rest (``110105********002X``); a value of 10 characters or fewer is starred whole.
``mask_id`` applies it in Python, ``mask_id_sql`` writes the same rule as a DuckDB expression
(the clean layer), and ``mask_ids_in_text`` finds ID numbers typed inside other text (keys, free
text, codes in the wrong column) and masks them with the same rule.
"""

from __future__ import annotations

import re
from datetime import date

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
