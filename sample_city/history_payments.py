"""Payment records of one month: a year of a payer's records built once, cut into its months.

In: a payment ``Series`` (tax, social insurance, housing fund, utilities), a period (month),
the register's views and the rows a file carries. Out: the ``Row`` list of the month's file:
the template's builder runs once per series and year over everyone active that year (a
``CityView`` standing in for the ``City``) (so a
payer's months follow one another, as in the snapshot), the rows of the calendar month (tax:
the periods ending in it) of entities registered and active in that month are taken, payer by
payer in a seeded order, until the file has its rows; their months are relabelled to the
file's month (``2022-05`` -> ``2025-05``; tax dates move by whole years).

Heating bills exist in the heating months only (1-3, 11, 12): the other months reuse one of
them, relabelled. Social insurance uses the whole year for both departments.

The truth of the payments (``payment_truth``, ``supersede``; ``truth/payments.csv``, for the
credit scores' arrears and on-time facts): per row written, its subject, month and whether it is
in arrears as the loader keeps them (the dataset's ``credit`` block: ``month_field``,
``arrears_field`` in ``arrears_values``), the file's arrival, whether the row is quarantined
(``expected_outcome``), whether its file is a corrected re-send (``resent``) and whether a
re-send of its department, dataset and period replaces it (``superseded``).
"""

from __future__ import annotations

import math
import random
from datetime import date
from typing import cast

from sample_city.entities import City
from sample_city.feeds import _build_rows
from sample_city.feeds_payment import UTILITIES, build_social_insurance
from sample_city.history_plan import Series
from sample_city.history_publication import loaded_value
from sample_city.history_register import Register
from sample_city.rows import Feed, Row
from transforms.periods import Period

TEMPLATE_YEAR = 2022
# rows built a year per row needed a month, x 12: the first months are thin in the builders
OVERSAMPLE = {"tax": 2.5, "si_hr": 3.5, "si_tax": 3.5, "housing_fund": 2.2, "heat_supply": 3.0}
UTILITY_OVERSAMPLE = 6.5
MONTH_FIELD = {
    "tax_payment": "SSQZ",
    "social_insurance": "JFYF",
    "housing_fund": "JCYF",
    "utility_payment": "ZDYF",
}
SUBJECT_FIELD = {"tax_payment": "NSRSBH"}  # else TYSHXYDM
PAYMENTS_COLUMNS = [
    "dataset_id", "department", "file", "row", "period", "received", "uscc", "month", "arrears",
    "expected_outcome", "resent", "superseded",
]


def _shift_years(iso: str, years: int) -> str:
    day = date.fromisoformat(iso)
    try:
        return day.replace(year=day.year + years).isoformat()
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28).isoformat()


class Payments:
    """Builds each payment series' year once and serves its months."""

    def __init__(self, register: Register, seed: int) -> None:
        self.register, self.seed = register, seed
        self._years: dict[tuple[str, str, int], dict[int, list[Row]]] = {}

    def _year(self, series: Series, year: int, n_month: int) -> dict[int, list[Row]]:
        key = (series.department, series.dataset.id, year)
        if key not in self._years:
            spec, ds = series.spec, series.dataset
            rng = random.Random(f"{self.seed}/history/{series.department}/{ds.id}/{year}/payments")
            view = self.register.year_view(year)
            factor = OVERSAMPLE.get(spec.builder, UTILITY_OVERSAMPLE if spec.builder in UTILITIES else 2.5)
            n = math.ceil(n_month * 12 * factor)
            if spec.builder in ("si_hr", "si_tax"):
                parity = 0 if spec.builder == "si_hr" else 1
                pool = [e for i, e in enumerate(view.active) if i % 2 == parity and e.kind != "社会组织"]
                rows = build_social_insurance(cast(City, view), rng, n, (1, 12), pool)
            else:
                rows = _build_rows(cast(City, view), rng, spec.builder, series.department, ds, n, [])
            by_month: dict[int, list[Row]] = {}
            field = MONTH_FIELD[ds.id]
            for row in rows:
                by_month.setdefault(int(str(row.values[field])[5:7]), []).append(row)
            self._years[key] = by_month
        return self._years[key]

    def rows(self, series: Series, period: Period, n: int) -> list[Row]:
        year, month = period.start.year, period.start.month
        by_month = self._year(series, year, n)
        if month not in by_month:  # heating bills outside the heating months
            months = sorted(by_month)
            source = months[month % len(months)]
        else:
            source = month
        usable = self.register.view(period).codes
        subject = SUBJECT_FIELD.get(series.dataset.id, "TYSHXYDM")
        payers: dict[str, list[int]] = {}
        candidates = by_month[source]
        for i, row in enumerate(candidates):
            code = str(row.values[subject])
            if code in usable:
                payers.setdefault(code, []).append(i)
        order = list(payers)
        random.Random(f"{self.seed}/history/{series.department}/{series.dataset.id}/{period.label}/payers").shuffle(order)
        chosen: list[int] = []
        for code in order:
            if len(chosen) >= n:
                break
            chosen += payers[code]
        return [self._relabel(series, candidates[i], year, month) for i in sorted(chosen)]

    def _relabel(self, series: Series, row: Row, year: int, month: int) -> Row:
        values = dict(row.values)
        if series.dataset.id == "tax_payment":
            for code in ("SSQQ", "SSQZ", "JKRQ"):
                if values.get(code):
                    values[code] = _shift_years(str(values[code]), year - TEMPLATE_YEAR)
        else:
            values[MONTH_FIELD[series.dataset.id]] = f"{year}-{month:02d}"
        return Row(values=values, entity=row.entity)


def payment_truth(feed: Feed, period: Period, resent: bool) -> list[dict]:
    """The ``payments.csv`` rows of a payment feed (1-based rows, as ``defects.csv``): each row's
    subject, month (``YYYY-MM`` of the month field; '' when unreadable, on quarantined rows only)
    and ``arrears`` (true / false) as loaded."""
    ds = feed.dataset
    credit = ds.credit
    assert credit is not None and credit.fact == "payment" and credit.month_field and credit.arrears_field
    assert ds.subject.uscc_field is not None and feed.submitted_at is not None
    out = []
    for number, row in enumerate(feed.rows, start=1):
        quarantined = feed.rejected or (row.defect is not None and row.defect.outcome == "quarantine")
        month = str(loaded_value(row, credit.month_field) or "")[:7]
        valid_month = len(month) == 7 and month[4] == "-" and month[:4].isdigit() and month[5:].isdigit()
        out.append({
            "dataset_id": ds.id, "department": feed.department, "file": feed.path, "row": number,
            "period": period.label, "received": feed.submitted_at.isoformat(),
            "uscc": str(loaded_value(row, ds.subject.uscc_field) or ""),
            "month": month if valid_month else "",
            "arrears": _flag(str(loaded_value(row, credit.arrears_field) or "") in credit.arrears_values),
            "expected_outcome": "quarantine" if quarantined else "loaded",
            "resent": _flag(resent), "superseded": "false",
        })
    return out


def supersede(rows: list[dict], resend: list[dict]) -> None:
    """Mark the rows of ``rows`` that the re-sent file's rows ``resend`` replace: the other files of
    its department, dataset and period."""
    if not resend:
        return
    first = resend[0]
    for r in rows:
        if ((r["dataset_id"], r["department"], r["period"]) == (first["dataset_id"], first["department"],
                                                              first["period"]) and r["file"] != first["file"]):
            r["superseded"] = "true"


def _flag(value: bool) -> str:
    return "true" if value else "false"
