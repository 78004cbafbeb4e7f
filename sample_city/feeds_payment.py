"""Rows of the payment feeds: tax, social insurance, housing fund and utilities.

In: the ``City``, a seeded generator, a row count (and for social insurance the months and the
entities paying). Out: ``Row`` lists sorted by period, with amounts in 万元 (tax, social
insurance), JSON numbers (housing fund) or yuan (utilities, ``UTILITIES``).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sample_city.entities import City, Entity, _month_end, fmt_amount
from sample_city.rows import Row


def _months(rng: random.Random, first: int, last: int, min_len: int, max_len: int) -> list[int]:
    length = rng.randint(min_len, min(max_len, last - first + 1))
    start = rng.randint(first, last - length + 1)
    return list(range(start, start + length))


def _scale(entity: Entity) -> float:
    """Rough size of an entity for payment amounts."""
    if entity.kind == "个体工商户":
        return 0.05
    return float(Decimal(entity.capital or "50")) ** 0.5 / 10


def build_tax(city: City, rng: random.Random, n: int) -> list[Row]:
    pool = [e for e in city.firms if e.kind != "农民专业合作社"] + [
        e for e in city.firms if e.kind == "农民专业合作社"
    ][:5]
    rng.shuffle(pool)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        if entity.kind == "个体工商户":
            kinds = [("增值税", 3), ("个人所得税", 3)]
        else:
            kinds = [
                ("增值税", 1),
                ("城市维护建设税", 1),
                ("企业所得税", 3),
                ("印花税", 3),
                ("个人所得税", 1),
            ]
            kinds += [("房产税", 6), ("城镇土地使用税", 6)] if rng.random() < 0.3 else []
        months = _months(rng, 1, 12, 3, 12)
        scale = _scale(entity)
        for kind, period in kinds:
            for month in months:
                if (month - 1) % period:
                    continue
                start = date(2022, month, 1)
                end = _month_end(2022, month + period - 1 if month + period - 1 <= 12 else 12)
                due = Decimal(str(round(rng.uniform(0.01, 3) * scale * period, 4))).quantize(
                    Decimal("0.0001")
                )
                due = max(due, Decimal("0.0001"))
                roll = rng.random()
                if roll < 0.92:
                    paid, status = due, "正常"
                elif roll < 0.98:
                    paid, status = (
                        (due * Decimal(rng.choice(("0", "0.5")))).quantize(Decimal("0.0001")),
                        "欠缴",
                    )
                else:
                    paid, status = Decimal(0), "非正常户"
                values: dict[str, object] = {
                    "NSRSBH": entity.uscc,
                    "NSRMC": entity.name,
                    "SZ": kind,
                    "SSQQ": start.isoformat(),
                    "SSQZ": end.isoformat(),
                    "YNSE": fmt_amount(due),
                    "SJSE": fmt_amount(paid),
                    "QSE": fmt_amount(due - paid),
                    "JKRQ": (end + timedelta(days=rng.randint(1, 15))).isoformat()
                    if paid > 0
                    else None,
                    "NSZT": status,
                }
                rows.append(Row(values=values, entity=entity))
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["SSQQ"], r.values["NSRSBH"], r.values["SZ"]))
    return rows


SI_RATES = {
    "养老保险": "0.24",
    "医疗保险": "0.085",
    "失业保险": "0.01",
    "工伤保险": "0.006",
    "生育保险": "0.01",
}


def build_social_insurance(
    city: City, rng: random.Random, n: int, months: tuple[int, int], pool: list[Entity]
) -> list[Row]:
    pool = list(pool)
    rng.shuffle(pool)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        people = (
            rng.randint(1, 6)
            if entity.kind == "个体工商户"
            else rng.randint(3, 20) * max(1, round(_scale(entity) * 3))
        )
        wage = Decimal(rng.choice(("0.36", "0.42", "0.48", "0.55", "0.65")))  # 缴费基数（万元/人）
        for month in _months(rng, months[0], months[1], 2, 6):
            for kind, rate in SI_RATES.items():
                due = (people * wage * Decimal(rate)).quantize(Decimal("0.0001"))
                late = rng.random() < 0.04
                paid = (due * Decimal("0.5")).quantize(Decimal("0.0001")) if late else due
                rows.append(
                    Row(
                        values={
                            "TYSHXYDM": entity.uscc,
                            "DWMC": entity.name,
                            "XZ": kind,
                            "JFYF": f"2022-{month:02d}",
                            "CBRS": str(people),
                            "YJJE": fmt_amount(due),
                            "SJJE": fmt_amount(paid),
                            "QJJE": fmt_amount(due - paid),
                            "JFZT": "欠缴" if late else "正常",
                        },
                        entity=entity,
                    )
                )
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["JFYF"], r.values["TYSHXYDM"], r.values["XZ"]))
    return rows


def build_housing_fund(city: City, rng: random.Random, n: int) -> list[Row]:
    pool = city.companies + city.orgs
    pool = list(pool)
    rng.shuffle(pool)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        people = rng.randint(2, 40)
        per_head = Decimal(rng.choice(("0.05", "0.06", "0.08", "0.1", "0.12")))
        sealed_from = 13 if rng.random() < 0.95 else rng.randint(4, 12)
        for month in _months(rng, 1, 12, 4, 12):
            sealed = month >= sealed_from
            due = Decimal(0) if sealed else people * per_head
            late = not sealed and rng.random() < 0.03
            paid = Decimal(0) if late else due
            rows.append(
                Row(
                    values={
                        "TYSHXYDM": entity.uscc,
                        "DWMC": entity.name,
                        "JCYF": f"2022-{month:02d}",
                        "JCRS": 0 if sealed else people,  # numbers in JSON
                        "YJCE": float(due),
                        "SJCE": float(paid),
                        "QJE": float(due - paid),
                        "JCZT": "封存" if sealed else ("欠缴" if late else "正常缴存"),
                    },
                    entity=entity,
                )
            )
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["JCYF"], r.values["TYSHXYDM"]))
    return rows


UTILITIES = {
    # department: (能源类型, user-number style, billing months, bill range in yuan, mid-size firm)
    "water_supply": ("水", "RS{:08d}", list(range(1, 13)), (80, 6000)),
    "power_supply": ("电", "3710830{:06d}", list(range(1, 13)), (300, 90000)),
    "gas_supply": ("气", "RQ{:07d}", list(range(1, 13)), (150, 30000)),
    "heat_supply": ("暖", "RL{:06d}", [1, 2, 3, 11, 12], (2000, 80000)),
}


def build_utility(city: City, rng: random.Random, dept: str, n: int) -> list[Row]:
    kind, number_style, months, (lo, hi) = UTILITIES[dept]
    pool = list(city.firms + city.orgs)
    rng.shuffle(pool)
    serial = rng.randint(1000, 9000)
    rows: list[Row] = []
    for entity in pool:
        if len(rows) >= n:
            break
        serial += rng.randint(1, 40)
        user = number_style.format(serial)
        size = min(1.0, _scale(entity))
        span = [m for m in months if m >= rng.choice(months[: max(1, len(months) - 2)])]
        owed_months = 0
        for month in span:
            bill = Decimal(str(round(rng.uniform(lo, hi) * max(size, 0.02), 2))).quantize(
                Decimal("0.01")
            )
            bill = max(bill, Decimal("12.5"))
            unpaid = rng.random() < 0.03
            owed_months = owed_months + 1 if unpaid else 0
            paid = Decimal(0) if unpaid else bill
            rows.append(
                Row(
                    values={
                        "TYSHXYDM": entity.uscc,
                        "YHMC": entity.name,
                        "YHBH": user,
                        "NYLX": kind,
                        "ZDYF": f"2022-{month:02d}",
                        "YJFY": fmt_amount(bill),
                        "SJFY": fmt_amount(paid),
                        "QFJE": fmt_amount(bill - paid),
                        "QFYS": str(owed_months),
                        "JFZT": "欠费" if unpaid else "正常",
                    },
                    entity=entity,
                )
            )
    rows = rows[:n]
    rows.sort(key=lambda r: (r.values["ZDYF"], r.values["YHBH"]))
    return rows
