"""The history's register: the city's legal entities month by month, and what a feed may name.

In: the ``City`` (its registers are the full register of the first month), the months of the
history and a seed. Out: ``Register`` with, per month after the first, the new registrations
and the changes (moved address, deregistered) of the market and the civil-affairs register
(``increment``), and per period a ``CityView``: the city as a feed of that period sees it,
only entities registered in a month that ended before the period began and still active then.
The views duck-type ``City`` for the feed builders (``feeds._build_rows`` and the payment
builders), so no feed names an entity before the register carries it.

New entities and changed records come from the ``City``'s own generators (unique names,
codes and ID numbers); the choices of the history from ``random.Random(f"{seed}/history/register")``.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

from sample_city.entities import OTHER_WEIHAI, RUSHAN, City, Entity, Person
from transforms.periods import Period

NEW_SHARE = 0.008  # new market registrations a month, share of the city's entities (at least 4)
CHANGE_SHARE = 0.003  # changed market records a month (at least 2)
FIRM_KINDS = ("企业", "个体工商户", "农民专业合作社")


class CityView:
    """The city as a feed of one period sees it: registered by then and active."""

    def __init__(self, city: City, entities: list[Entity]) -> None:
        self._city = city
        self.catalog, self.agencies, self.by_code = city.catalog, city.agencies, city.by_code
        self.active = [e for e in entities if e.active]
        self.firms = [e for e in self.active if e.kind in FIRM_KINDS]
        self.companies = [e for e in self.firms if e.kind == "企业"]
        self.orgs = [e for e in self.active if e.kind in ("事业单位", "社会组织")]
        self.codes = frozenset(e.uscc for e in self.active)

    def person(self, rng: random.Random, born: tuple[int, int] = (1955, 2002)) -> Person:
        return self._city.person(rng, born)


class Register:
    """New registrations and changes month by month; ``view(period)`` for the other feeds."""

    def __init__(self, city: City, seed: int, months: list[Period]) -> None:
        self.city, self.months = city, months
        self.rng = random.Random(f"{seed}/history/register")
        self.market_codes = {e.uscc for e in city.market_register}
        state = {e.uscc: e for e in city.market_register + city.civil_register}
        self.new: dict[str, list[Entity]] = {}
        self.changed: dict[str, list[Entity]] = {}
        self._states: dict[str, list[Entity]] = {}
        self._views: dict[str, CityView] = {}
        for index, month in enumerate(months):
            if index:
                self._grow(month, state)
            self._states[month.label] = list(state.values())

    # the monthly increments
    def _grow(self, month: Period, state: dict[str, Entity]) -> None:
        city, rng = self.city, self.rng
        size = len(city.market_register) + len(city.civil_register)
        new: list[Entity] = []
        for _ in range(max(4, round(size * NEW_SHARE * rng.uniform(0.6, 1.4)))):
            roll = rng.random()
            entity = city.company() if roll < 0.55 else city.individual() if roll < 0.95 else city.cooperative()
            new.append(entity)
        if rng.random() < 0.5:
            new.append(city.social_org(rng.choice("112")))
        new = [replace(e, founded=self._day_in(month), status="存续") for e in new]
        candidates = [e for e in state.values() if e.active]
        market = [e for e in candidates if e.uscc in self.market_codes]
        civil = [e for e in candidates if e.uscc not in self.market_codes]
        changed = [self._change(e) for e in rng.sample(market, min(len(market), max(2, round(size * CHANGE_SHARE))))]
        changed += [self._change(e) for e in rng.sample(civil, min(len(civil), 1 if rng.random() < 0.7 else 0))]
        if civil and not any(e.kind == "社会组织" for e in new + changed):
            changed.append(self._change(rng.choice(civil)))  # every civil increment carries a record
        for entity in new:
            self.city.by_code[entity.uscc] = entity
            if entity.kind != "社会组织":
                self.market_codes.add(entity.uscc)
        for entity in new + changed:
            state[entity.uscc] = entity
        for entity in changed:
            self.city.by_code[entity.uscc] = entity
        self.new[month.label], self.changed[month.label] = new, changed

    def _day_in(self, month: Period) -> date:
        return month.start + timedelta(days=self.rng.randrange((month.end - month.start).days + 1))

    def _change(self, entity: Entity) -> Entity:
        if entity.kind in ("企业", "个体工商户") and self.rng.random() < 0.25:
            return replace(entity, status=self.rng.choice(("注销", "注销", "吊销")))
        division = entity.uscc[2:8] if entity.uscc[2:8] in (RUSHAN, *OTHER_WEIHAI) else RUSHAN
        return replace(entity, address=self.city._address(division))

    # what the feeds see
    def increment(self, month: Period, civil: bool) -> list[Entity]:
        """The register records of ``month``: the full register in the first month, then the new
        registrations and the changed records (of the market or the civil-affairs register)."""
        if month.label == self.months[0].label:
            return list(self.city.civil_register if civil else self.city.market_register)
        records = self.new[month.label] + self.changed[month.label]
        return [e for e in records if (e.kind == "社会组织") == civil]

    def month_of(self, period: Period) -> Period:
        """The last month of the history that ended before the period began (the first month before it).

        Its register records are delivered early in the period, before the period's own files: a feed
        that named an entity of the period's own month could arrive before the register carries it
        (a weekly file does), and the loader would rightly say ``not_in_register``."""
        eligible = [m for m in self.months if m.end < period.start]
        return eligible[-1] if eligible else self.months[0]

    def view(self, period: Period) -> CityView:
        month = self.month_of(period)
        if month.label not in self._views:
            self._views[month.label] = CityView(self.city, self._states[month.label])
        return self._views[month.label]

    def year_view(self, year: int) -> CityView:
        """Every entity active in some month of ``year`` (as first seen that year): the pool of a
        year of payment records, cut into months with ``view(month).codes``."""
        seen: dict[str, Entity] = {}
        for month in self.months:
            if month.start.year == year:
                for entity in self._states[month.label]:
                    if entity.active:
                        seen.setdefault(entity.uscc, entity)
        return CityView(self.city, list(seen.values()))

    @property
    def registered(self) -> int:
        return len(self._states[self.months[-1].label])
