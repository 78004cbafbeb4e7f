"""The rows of one history file, dressed as its template, before the defects are planted.

In: a ``Delivery`` (series, period, kind), the register (its views and increments), the
payments, the planned submission day and the file's defect plan. Out: a ``Feed`` whose rows
are valid: the register's records of the month (plus spare entities for the quarantined
defects, as in the snapshot), payment records of the month (``history_payments``), or the
decisions of the period built by the template's builder and then re-dated and re-numbered:

* decision dates move into the period, to working days at most the catalog's deadline
  (7 working days) before the planned submission, keeping their order (decisions sharing a
  date keep sharing one; every other date of the record and ``2022年3月1日`` in its texts move
  with it); a share (``LATE_SHARE``) is decided a few working days before the period, late;
* decision numbers ``乳市监罚〔2022〕123号`` count on per department, dataset and year across
  the files (no number repeats between two files), licence numbers and ``2022年度`` follow.

The headers, encoding and line ends are the template's (``dress``), except
``ecology_environment``'s penalties in the catalog codes and UTF-8 from ``TEMPLATE_SWITCH``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import cast

from foundation.catalog import Dataset
from sample_city.defects import QUARANTINE_KINDS
from sample_city.entities import RUSHAN, City
from sample_city.feeds import (
    FeedSpec,
    _build_rows,
    _columns,
    build_register,
    dress,
)
from sample_city.history_calendar import workday_back, working_days_between
from sample_city.history_payments import Payments
from sample_city.history_plan import TEMPLATE_SWITCH, Delivery, odd_template, rows_per_file
from sample_city.history_register import Register
from sample_city.rows import Feed, Row
from sample_city.timeliness import _shift_row_dates, is_workday
from transforms.periods import Period, parse_label

Planner = Callable[[int, int], list[tuple]]
LATE_SHARE = 0.015  # decisions delivered late (decided before the period) in a regular file
_NUMBER = re.compile(r"〔2022〕(\d+)号")
PAYMENT_BUILDERS = ("tax", "si_hr", "si_tax", "housing_fund", "water_supply", "power_supply",
                    "gas_supply", "heat_supply")


def effective_spec(delivery: Delivery) -> FeedSpec:
    """The template a delivery is written with: the odd export, or the switched ecology template."""
    if delivery.kind == "odd":
        return odd_template()
    spec = delivery.series.spec
    department, dataset, since = TEMPLATE_SWITCH
    if (
        spec.builder == "penalty_old"
        and (delivery.series.department, delivery.series.dataset.id) == (department, dataset)
        and delivery.period.month >= parse_label(since).start
    ):
        return spec._replace(encoding="utf-8", builder="penalty")
    return spec


class RowMaker:
    """Builds the rows of each delivery; keeps the decision-number counters across files."""

    def __init__(self, register: Register, seed: int, entities: int) -> None:
        self.register, self.seed, self.entities = register, seed, entities
        self.payments = Payments(register, seed)
        self.numbers: dict[tuple[str, str, int], int] = {}

    def feed(
        self, delivery: Delivery, file_name: str, planner: Planner, planned: date, rng: random.Random
    ) -> tuple[Feed, list[tuple]]:
        """The delivery's feed (valid rows) and its defect plan, ``planner(rows, distinct codes)``."""
        series, period = delivery.series, delivery.period
        spec = effective_spec(delivery)
        n = rows_per_file(spec, series.cadence, self.entities)
        if spec.builder == "penalty_english":
            n = max(n, 12)
        plan: list[tuple] = []
        if spec.builder in ("register_market", "register_civil"):
            civil = spec.builder == "register_civil"
            entities = self.register.increment(period, civil)
            plan = planner(len(entities), len(entities))
            spares_needed = sum(count or 0 for kind, count, _ in plan if kind in QUARANTINE_KINDS)
            city = self.register.city
            spares = [city.spare_social_org() if civil else city.spare_company() for _ in range(spares_needed)]
            rows = build_register(entities, spares)  # quarantined defects land on the spares only
        elif spec.builder in PAYMENT_BUILDERS:
            rows = self.payments.rows(series, period, n)
        else:
            view = self.register.view(period)
            rows = _build_rows(cast(City, view), rng, spec.builder, series.department, series.dataset, n, [])
            self._redate(series.dataset, rows, period, planned, rng)
            self._renumber(series.department, series.dataset, rows, period)
        if not spec.builder.startswith("register"):
            plan = planner(len(rows), len({r.entity.uscc for r in rows if r.entity is not None}))
        return self.dressed(delivery, file_name, rows), plan

    def dressed(self, delivery: Delivery, file_name: str, rows: list[Row]) -> Feed:
        """A feed of these rows with the template's format, encoding and headers."""
        spec, series = effective_spec(delivery), delivery.series
        feed = Feed(series.department, file_name, series.dataset, spec.fmt, spec.encoding,
                    _columns(series.dataset), rows)
        dress(feed, spec.builder)
        return feed

    # decisions: dates into the period, numbers counting on
    def _redate(self, ds: Dataset, rows: list[Row], period: Period, planned: date, rng: random.Random) -> None:
        rule = ds.timeliness
        assert rule is not None, f"{ds.id}: decisions without a deadline"
        limit = rule.working_days
        days = [period.start + timedelta(days=i) for i in range((period.end - period.start).days + 1)]
        window = [d for d in days if is_workday(d) and working_days_between(d, planned) <= limit]
        window = window or [d for d in days if working_days_between(d, planned) <= limit]
        old_days = sorted({str(row.values[rule.date_field]) for row in rows})
        new_days = []
        for _ in old_days:
            if rng.random() < LATE_SHARE:
                late = workday_back(planned, rng.randint(limit + 1, limit + 4))
                new_days.append(min(late, workday_back(period.start - timedelta(days=1), rng.randint(0, 3))))
            else:
                new_days.append(rng.choice(window))
        new_days.sort()
        moved = dict(zip(old_days, new_days, strict=True))
        for row in rows:
            old = date.fromisoformat(str(row.values[rule.date_field]))
            new = moved[old.isoformat()]
            _shift_row_dates(ds, row, new - old)
            if "XK_XKBH" in row.values and row.values["XK_XKBH"]:
                row.values["XK_XKBH"] = (
                    str(row.values["XK_XKBH"])
                    .replace(f"{old:%Y%m%d}", f"{new:%Y%m%d}")
                    .replace(f"{RUSHAN}2022", f"{RUSHAN}{new.year}")
                    .replace("〔2022〕", f"〔{new.year}〕")
                )

    def _renumber(self, department: str, ds: Dataset, rows: list[Row], period: Period) -> None:
        year = period.month.year
        field = next(c for c in ds.key_fields if c.endswith("_WSH"))
        key = (department, ds.id, year)
        base = self.numbers.get(key, 0)
        numbers = sorted({int(m[1]) for row in rows if (m := _NUMBER.search(str(row.values[field])))})
        if not numbers:
            return
        low = numbers[0]
        for row in rows:
            text = str(row.values[field])
            row.values[field] = _NUMBER.sub(lambda m: f"〔{year}〕{base + int(m[1]) - low + 1}号", text)
            for code, value in row.values.items():
                if isinstance(value, str) and "2022年度" in value:
                    row.values[code] = value.replace("2022年度", f"{year - 1}年度")
        self.numbers[key] = base + numbers[-1] - low + 1
