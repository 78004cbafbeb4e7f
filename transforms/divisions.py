"""Administrative division codes (GB/T 2260), current AND historical.

The codes come from the data file python-stdnum ships for Chinese resident IDs
(``stdnum/cn/loc.dat``), which lists every county-level code together with the
years it was in use. Codes that were retired (e.g. Beijing 崇文区 110103) are
kept on purpose: identifiers issued while they were valid keep them for life.

File layout (stdnum's "numdb" format), one entry per line::

    37 province="山东省"                 <- 2-digit province prefix, no indent
      1083 county="[1993-]乳山市"        <- indented 4-digit suffix -> 371083
"""

from __future__ import annotations

from functools import cache
from importlib import resources


def _read_loc_dat() -> str:
    return resources.files("stdnum.cn").joinpath("loc.dat").read_text(encoding="utf-8")


@cache
def division_codes() -> frozenset[str]:
    """All 6-digit division codes known to python-stdnum, historical ones included."""
    codes: set[str] = set()
    province = None
    for line in _read_loc_dat().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key = line.split()[0]
        if not line[0].isspace():
            province = key
        elif province is not None:
            codes.add(province + key)
    bad = sorted(c for c in codes if len(c) != 6 or not c.isdigit())
    if bad or not codes:
        raise ValueError(f"unexpected layout of stdnum/cn/loc.dat: {bad[:5]}")
    return frozenset(codes)


def is_division(code: str) -> bool:
    """True if ``code`` is a known (current or historical) 6-digit division code."""
    return code in division_codes()
