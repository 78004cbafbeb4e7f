"""How good each department's files are, month by month: the quality designs of the history.

In: a department, a period, the template's defect plan (``feeds.parse_plan`` of its ``FeedSpec``)
and the rows of the file. Out: the design of each department (``DESIGNS``: improving |
worsening | bad_month | steady | missing_months, with its periods), the defect multiplier of
a department in a period (``multiplier``), the file's defect plan (``scaled_plan``: the
template's kinds, drawn in proportion to its counts, as many as the rows and the multiplier
give) and the rows of ``truth/quality_design.csv`` (``design_rows``).

A steady file has about 1 defect per 100 rows (half repaired by the loader, half quarantined)
and 3 code defects (错码, the 重错码率 kinds) per 1000 distinct codes, never more than 1 per 100
codes and 4% quarantined rows: 合规率 about 99.5%, and 重错码率 above the 1/10000 target (a
warning) but not above 1% (an error); small steady files carry only repairable defects. The
multiplier scales the rates and lifts the caps: ``urban_management`` is
10x before its correction campaign (from 2025-07) and falls by 1.5x a month to steady (1x) from 2026-01;
``emergency`` worsens from 2026-05 (3x, then 2x more every month); ``human_resources`` has one 20x
month (2025-08). The designs do not overlap, so the months 2026-02 .. 2026-04 carry warnings only:
the monthly close of a month with errors fails, the others pass. The plan's ``*`` kinds (every row
that fits: the numeric Excel codes of ``urban_management``'s penalty workbook) stay ``*`` at 10x and
above, else scale too, and a steady file has none.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import NamedTuple

from sample_city.defects import CODE_KINDS, QUARANTINE_KINDS
from transforms.periods import Period, parse_label

CODE_RATE = 0.003  # code defects per distinct subject code of a steady file
QUARANTINE_RATE = 0.005  # other quarantined rows per row of a steady file
NORMALIZED_RATE = 0.005  # rows the loader repairs (full-width codes, 2025/3/1 dates ...) per row
STEADY_CODE_SHARE = 0.01  # steady: at most 1 bad code per 100 codes (below the 1% error line)
STEADY_QUARANTINE_SHARE = 0.04  # steady: at most 4% rows quarantined (合规率 not 5 points short)
MAX_SHARE = 0.4  # never more than 40% of a file's rows defective
STAR_SHARE = 0.1  # the `*` kinds at 1x: 1 row in 10 of the share a template puts there
RESENT_FIRST_MULTIPLIER = 15.0  # housing_fund's first 2025-05 file, before the corrected re-send


class Design(NamedTuple):
    design: str  # improving | worsening | bad_month | steady | missing_months
    first: str | None  # first period of the design (None: the whole history)
    last: str | None
    note: str


DESIGNS: dict[str, Design] = {
    "urban_management": Design(
        "improving", "2025-07", "2026-01",
        "correction campaign from 2025-07: 10x the steady defects before, 1.5x fewer every "
        "month from 2025-08, steady (1x) from 2026-01 on (the numeric Excel codes fixed then)",
    ),
    "emergency": Design(
        "worsening", "2026-05", None,
        "steady until 2026-04, then worse every month: 3x the steady defects in 2026-05, 2x more each month",
    ),
    "human_resources": Design("bad_month", "2025-08", "2025-08", "20x the steady defects in 2025-08"),
    "transport": Design(
        "missing_months", "2025-07", "2025-08",
        "no file in 2025-07 and 2025-08; in 2025-03 an unmapped English export (rejected) next "
        "to the regular file; steady otherwise",
    ),
    "housing_fund": Design(
        "steady", None, None,
        "2025-05 sent twice: the first file on time with 15x defects, the corrected re-send "
        "(gjj_jc_2025-05_更正.jsonl) a week later without defects",
    ),
    "ecology_environment": Design(
        "steady", None, None,
        "penalties in the pre-2019 template (old codes, GB18030) until 2025-12, catalog codes "
        "and UTF-8 from 2026-01",
    ),
}
STEADY = Design("steady", None, None, "")


def _months_between(a: Period, b: Period) -> int:
    return (b.month.year - a.month.year) * 12 + b.month.month - a.month.month


def multiplier(department: str, period: Period) -> float:
    """The department's defects in ``period`` relative to a steady file (a week: its month's)."""
    design = DESIGNS.get(department, STEADY)
    start = parse_label(design.first) if design.first else period
    if design.design == "improving":
        t = _months_between(start, period)
        return 10.0 if t < 0 else max(1.0, 10.0 - 1.5 * t)
    if design.design == "worsening":
        t = _months_between(start, period)
        return 1.0 if t < 0 else 1.0 + 2.0 * (t + 1)
    if design.design == "bad_month":
        return 20.0 if period.month == start.month else 1.0
    return 1.0


def _group(kind: str) -> str:
    if kind in CODE_KINDS:
        return "code"
    return "quarantine" if kind in QUARANTINE_KINDS or kind == "duplicate_row" else "normalized"


def scaled_plan(
    template: list[tuple[str, int | None, str | None]],
    rows: int,
    codes: int,
    mult: float,
    rng: random.Random,
    carry: dict[str, float],
) -> list[tuple[str, int | None, str | None]]:
    """The defect plan of one file of ``rows`` rows naming ``codes`` distinct subject codes.

    Each group (code, other quarantined, normalized defects) expects its rate x the multiplier;
    ``carry`` (one per department, updated) keeps the fractions from file to file, so that a
    department's defects follow its design month by month instead of by chance. A steady file (multiplier <= 1)
    stays within the warning band: at most 1 bad code per 100 codes and 4% rows quarantined.
    Kinds are drawn in proportion to the template's counts.
    """
    steady = mult <= 1
    caps = {
        "code": int(codes * STEADY_CODE_SHARE) if steady else rows,
        "quarantine": int(rows * STEADY_QUARANTINE_SHARE) if steady else rows,
        "normalized": rows,
    }
    expected = {"code": codes * CODE_RATE, "quarantine": rows * QUARANTINE_RATE, "normalized": rows * NORMALIZED_RATE}
    budget = int(rows * MAX_SHARE)
    picked: Counter[int] = Counter()
    for group in ("code", "quarantine", "normalized"):
        items = [i for i, (kind, count, _) in enumerate(template) if count is not None and _group(kind) == group]
        if not items:
            continue
        carry[group] = carry.get(group, 0.0) + expected[group] * mult
        whole = int(carry[group])
        carry[group] -= whole
        total = min(whole, caps[group], budget)
        if group != "normalized" and steady:
            caps["quarantine"] -= total  # code defects are quarantined too
        budget -= total
        picked.update(rng.choices(items, [template[i][1] or 0 for i in items], k=total))
    out: list[tuple[str, int | None, str | None]] = []
    for i, (kind, count, field) in enumerate(template):
        if count is None:  # '*': every row that fits; none in a steady file (the export was fixed)
            if steady:
                continue
            if mult >= 10:
                out.append((kind, None, field))
                continue
            carry["star"] = carry.get("star", 0.0) + rows * STAR_SHARE * mult / 10
            if n := int(carry["star"]):
                carry["star"] -= n
                out.append((kind, n, field))
        elif picked[i]:
            out.append((kind, picked[i], field))
    return out


def design_rows(departments: list[str], first: Period, last: Period) -> list[dict]:
    """``truth/quality_design.csv``: one row per department, its design clipped to the history."""
    out = []
    for department in sorted(departments):
        design = DESIGNS.get(department, STEADY)
        start = parse_label(design.first) if design.first else first
        end = parse_label(design.last) if design.last else last
        start, end = max(start, first), min(end, last)
        if start > end:  # the design's months lie outside the history
            design, start, end = STEADY, first, last
        out.append(
            {
                "department": department,
                "design": design.design,
                "first_period": start.label,
                "last_period": end.label,
                "note": design.note,
            }
        )
    return out
