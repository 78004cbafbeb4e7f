"""The severity design of the history's penalties (行政处罚): each decision is made to be of a class.

In: a penalty feed of the history (rows of ``feeds_publicity.build_penalties``, re-dated and
re-numbered, before its defects are planted), its defect plan and a seeded generator; the rule
versions of ``catalogs/publication.yaml`` (for CF_GSJZQ only). Out: the rows rewritten in place
and, per department and decision number, the designed class (``PenaltyDesigner.designs``).

Each row draws a recipe from its department's mix (``MIX``) and is rewritten to fit it: penalty
kinds (CF_CFLB), content (CF_NR), fine (CF_NR_FK, 万元), basis (CF_YJ) and the 简易程序 mark
(in CF_NR, CF_SY or BZ). The class is the recipe's (``RECIPE_CLASS``), decided here and not read
back from the rules: a test can hold the catalog's severity rules against it. The recipes:
``minor_simple`` (适用简易程序), ``minor_warning`` (警告 / 通报批评 only), ``general`` (ordinary
fines, confiscation, 警告 with a fine), ``serious_fine`` (罚款 above 50万元), ``serious_kind``
(吊销 / 限制从业 / 责令停产停业 outside the special laws, or 限制从业 under one), ``serious_special``
(责令停产停业 / 吊销 / 责令关闭 under the food, drug, environment and safety laws) and
``unclassified`` (其他 only, no fine: no rule matches).

CF_GSJZQ (公示截止期, the last day shown) is mostly blank; some equal the rule's end under the
version in force on the decision date, a few end earlier, a few lie beyond the maximum or
before the minimum (a disagreement). ``OLD_RECORDS`` re-sends a few decisions of 2023-2024 in
2025 files (补报, late by the timeliness rule), so the truth reaches NDRC notice 527 and a
decision that may not be repaired early.
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import NamedTuple

from foundation.publication_rules import PublicationRules
from sample_city.entities import Entity, _add_years, _zh_date, fmt_amount
from sample_city.feeds_publicity import PENALTIES
from sample_city.history_publication import add_months
from sample_city.rows import Feed, Row
from transforms.periods import Period

SIMPLE = "适用简易程序"
RECIPE_CLASS = {
    "minor_simple": "minor",
    "minor_warning": "minor",
    "general": "general",
    "serious_fine": "serious",
    "serious_kind": "serious",
    "serious_special": "serious_special",
    "unclassified": "unclassified",
}
# department -> recipe weights (percent)
MIX: dict[str, dict[str, int]] = {
    "market_regulation": {"minor_simple": 10, "minor_warning": 10, "general": 55, "serious_fine": 4,
                          "serious_kind": 7, "serious_special": 10, "unclassified": 4},
    "ecology_environment": {"minor_warning": 5, "general": 55, "serious_fine": 15, "serious_kind": 7,
                            "serious_special": 15, "unclassified": 3},
    "urban_management": {"minor_simple": 25, "minor_warning": 10, "general": 55, "serious_kind": 5,
                         "unclassified": 5},
    "transport": {"minor_simple": 20, "minor_warning": 5, "general": 55, "serious_fine": 2, "serious_kind": 8,
                  "serious_special": 5, "unclassified": 5},
    "tax": {"minor_simple": 35, "minor_warning": 5, "general": 55, "unclassified": 5},
}


class Sanction(NamedTuple):
    kinds: tuple[str, ...]
    basis: str  # CF_YJ
    content: str  # CF_NR, {fine} = the fine in yuan
    licence: str = ""  # CF_NR_ZKDX


# serious: kinds of the serious rule, outside the special laws (or 限制从业, not a special kind)
SERIOUS_KIND: dict[str, list[Sanction]] = {
    "market_regulation": [
        Sanction(("罚款", "吊销许可证件"), "《中华人民共和国广告法》第五十五条第一款",
                 "罚款人民币{fine}元，吊销营业执照", "营业执照"),
        Sanction(("罚款", "限制从业"), "《中华人民共和国食品安全法》第一百三十五条第一款",
                 "罚款人民币{fine}元，法定代表人五年内不得从事食品生产经营管理工作"),
    ],
    "ecology_environment": [
        Sanction(("罚款", "责令停产停业"), "《中华人民共和国环境影响评价法》第三十一条第一款",
                 "责令停止建设，罚款人民币{fine}元"),
    ],
    "urban_management": [
        Sanction(("罚款", "吊销许可证件"), "《城市建筑垃圾管理规定》第二十三条",
                 "罚款人民币{fine}元，吊销城市建筑垃圾处置核准", "城市建筑垃圾处置核准"),
    ],
    "transport": [
        Sanction(("罚款", "吊销许可证件"), "《中华人民共和国道路运输条例》第六十六条",
                 "罚款人民币{fine}元，吊销道路运输经营许可证", "道路运输经营许可证"),
        Sanction(("限制从业",), "《道路运输从业人员管理规定》第四十七条",
                 "吊销从业资格证，三年内不得重新申请"),
    ],
}
# serious_special: stop business / revocation / closure under a food, drug, environment or safety law
SERIOUS_SPECIAL: dict[str, list[Sanction]] = {
    "market_regulation": [
        Sanction(("罚款", "没收违法所得", "吊销许可证件"), "《中华人民共和国食品安全法》第一百二十四条第一款",
                 "没收违法所得，罚款人民币{fine}元，吊销食品经营许可证", "食品经营许可证"),
        Sanction(("罚款", "责令停产停业"), "《中华人民共和国特种设备安全法》第八十四条第（一）项",
                 "责令停止使用有关特种设备，停产停业整顿，罚款人民币{fine}元"),
    ],
    "ecology_environment": [
        Sanction(("罚款", "责令停产停业"), "《中华人民共和国大气污染防治法》第九十九条第（二）项",
                 "责令停产整治，罚款人民币{fine}元"),
        Sanction(("责令关闭",), "《中华人民共和国水污染防治法》第八十四条第一款", "责令关闭"),
    ],
    "transport": [
        Sanction(("罚款", "责令停产停业"), "《中华人民共和国安全生产法》第一百零二条",
                 "责令停产停业整顿，罚款人民币{fine}元"),
    ],
}
UNCLASSIFIED = ("责令改正违法行为", "责令限期改正", "责令限期拆除")


class OldRecord(NamedTuple):
    """A decision of 2023-2024 re-sent (补报) in a 2025 file of the department."""

    department: str
    month: str  # the file's month (a week counts in the month of its Thursday)
    decided: date
    recipe: str


OLD_RECORDS = (
    OldRecord("market_regulation", "2025-03", date(2023, 2, 14), "serious_special"),  # 527, not repairable
    OldRecord("ecology_environment", "2025-03", date(2023, 3, 22), "serious_fine"),  # 527
    OldRecord("tax", "2025-02", date(2024, 6, 18), "general"),  # No. 58: 36 months
    OldRecord("transport", "2025-10", date(2024, 11, 6), "minor_simple"),  # No. 58: a minor record published
    OldRecord("urban_management", "2025-12", date(2023, 9, 12), "general"),  # No. 58
)
_CN_DAY = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日")


def _yuan(rng: random.Random, lo: float, hi: float) -> int:
    return max(100, round(rng.uniform(lo, hi) * 100) * 100)


def _wan(yuan: int) -> str:
    return fmt_amount(Decimal(yuan) / 10000)


class PenaltyDesigner:
    """Rewrites each penalty feed to its designed classes; remembers the class per decision number."""

    def __init__(self, rules: PublicationRules, seed: int) -> None:
        self.rules, self.seed = rules, seed
        self.designs: dict[tuple[str, str], str] = {}  # (department, CF_WSH) -> class
        self._old_done: set[OldRecord] = set()

    def design(self, feed: Feed, plan: list[tuple], period: Period) -> None:
        dept = feed.department
        rng = random.Random(f"{self.seed}/history/severity/{feed.path}")
        # the 简易程序 mark goes to BZ only where no formula defect may overwrite BZ
        bz_ok = not any(kind == "formula_text" for kind, _, _ in plan)
        recipes, weights = zip(*MIX[dept].items(), strict=True)
        month = period.month.strftime("%Y-%m")
        old = [o for o in OLD_RECORDS if (o.department, o.month) == (dept, month) and o not in self._old_done]
        for row in feed.rows:
            recipe = rng.choices(recipes, weights)[0]
            if old and isinstance(row.entity, Entity) and row.entity.founded < old[-1].decided:
                self._make_old(row, old.pop(), rng)
                continue
            self._apply(row, dept, recipe, rng, bz_ok)
            self.designs[(dept, str(row.values["CF_WSH"]))] = RECIPE_CLASS[recipe]

    def _make_old(self, row: Row, old: OldRecord, rng: random.Random) -> None:
        self._old_done.add(old)
        v = row.values
        prefix = PENALTIES[old.department][0]
        v["CF_WSH"] = f"{prefix}〔{old.decided.year}〕{200 + len(self._old_done)}号"
        v["CF_JDRQ"] = old.decided.isoformat()
        v["CF_YXQ"] = _add_years(old.decided, 1).isoformat()
        committed = old.decided - timedelta(days=rng.randint(20, 90))
        v["CF_SY"] = _CN_DAY.sub(_zh_date(committed), str(v["CF_SY"]), count=1)
        self._apply(row, old.department, old.recipe, rng, bz_ok=False)
        v["BZ"] = f"补报{old.decided.year}年度处罚信息"
        self.designs[(old.department, str(v["CF_WSH"]))] = RECIPE_CLASS[old.recipe]

    def _apply(self, row: Row, dept: str, recipe: str, rng: random.Random, bz_ok: bool) -> None:
        v = row.values
        sep = next((s for s in ("；", ";", "、") if s in str(v.get("CF_CFLB", ""))), "、")
        for code in ("CF_NR_FK", "CF_NR_WFFF", "CF_NR_ZKDX", "BZ"):
            v.pop(code, None)
        fine: int | None = None
        gains: int | None = None
        if recipe == "minor_simple":
            kinds: tuple[str, ...] = rng.choice((("罚款",), ("罚款",), ("警告",)))
            fine = rng.choice((50, 100, 200)) if "罚款" in kinds else None
            content = f"罚款人民币{fine}元" if fine else "警告"
            where = rng.choice(("CF_NR", "CF_SY", "BZ") if bz_ok else ("CF_NR", "CF_SY"))
            if where == "CF_NR":
                content = f"{SIMPLE}，当场作出{content}的行政处罚"
            elif where == "CF_SY":
                v["CF_SY"] = f"{v['CF_SY']}{SIMPLE}当场处罚。"
            else:
                v["BZ"] = SIMPLE
        elif recipe == "minor_warning":
            kinds = rng.choice((("警告",), ("通报批评",), ("警告", "通报批评")))
            content = "，".join(kinds)
        elif recipe == "general":
            kinds = ("没收违法所得", "罚款") if "没收违法所得" in str(v["CF_CFLB"]) else ("罚款",)
            roll = rng.random()
            if roll < 0.05:
                kinds = ("没收违法所得",)  # confiscation alone
            elif roll < 0.15:
                kinds = ("警告", *kinds)  # a warning with a fine is not minor
            lo, hi = self._range(dept, str(v["CF_WFXW"]))
            fine = _yuan(rng, lo, min(hi, 49.99)) if "罚款" in kinds else None
            gains = _yuan(rng, 0.01, 0.5) if "没收违法所得" in kinds else None
            parts = ["警告"] if "警告" in kinds else []
            parts += [f"没收违法所得人民币{gains}元"] if gains else []
            parts += [f"罚款人民币{fine}元"] if fine else []
            content = "，".join(parts)
        elif recipe == "serious_fine":
            kinds = ("罚款", "没收违法所得") if rng.random() < 0.3 else ("罚款",)
            fine = _yuan(rng, 50.5, 300)
            gains = _yuan(rng, 1, 20) if "没收违法所得" in kinds else None
            content = (f"没收违法所得人民币{gains}元，" if gains else "") + f"罚款人民币{fine}元"
        elif recipe in ("serious_kind", "serious_special"):
            table = SERIOUS_KIND if recipe == "serious_kind" else SERIOUS_SPECIAL
            sanction = rng.choice(table[dept])
            kinds = sanction.kinds
            fine = _yuan(rng, 1, 40) if "罚款" in kinds else None
            gains = _yuan(rng, 0.5, 5) if "没收违法所得" in kinds else None
            content = sanction.content.format(fine=fine)
            v["CF_YJ"] = sanction.basis
            if sanction.licence:
                v["CF_NR_ZKDX"] = sanction.licence
        else:  # unclassified: 其他 only, no fine
            kinds = ("其他",)
            content = rng.choice(UNCLASSIFIED)
        v["CF_CFLB"] = sep.join(kinds)
        v["CF_NR"] = content
        if fine:
            v["CF_NR_FK"] = _wan(fine)
        if gains:
            v["CF_NR_WFFF"] = _wan(gains)
        decided = date.fromisoformat(str(v["CF_JDRQ"]))
        end = self.gsjzq(decided, RECIPE_CLASS[recipe], rng)
        v["CF_GSJZQ"] = end.isoformat() if end else None

    @staticmethod
    def _range(dept: str, wfxw: str) -> tuple[float, float]:
        """The fine range (万元) of the row's template, or a small one for a warning template."""
        for template_wfxw, _, _, _, span in PENALTIES[dept][2]:
            if template_wfxw == wfxw and span[1] > 0:
                return span
        return (0.05, 2.0)

    def gsjzq(self, decided: date, cls: str, rng: random.Random) -> date | None:
        """公示截止期 designed against the version in force on the decision date: mostly blank; the
        rule's end; earlier (not before the minimum); beyond the maximum or before the minimum."""
        if cls == "unclassified":
            return None
        version = self.rules.version_on(decided)
        assert version is not None, decided
        terms = version.classes[cls]
        if not terms.publish:
            return None
        end = add_months(decided, terms.max_months)  # exclusive
        roll = rng.random()
        if roll < 0.70:
            return None
        if roll < 0.85:
            return end - timedelta(days=1)
        if roll < 0.93 and terms.max_months - 1 >= max(terms.min_months, 1):
            return add_months(decided, rng.randint(max(terms.min_months, 1), terms.max_months - 1))
        if roll < 0.97:
            return add_months(end, rng.randint(1, 12))
        if terms.min_months >= 2:
            return decided + timedelta(days=rng.randint(10, 45))  # before the minimum
        return end - timedelta(days=1)
