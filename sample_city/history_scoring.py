"""The credit scores and the warning list of the history, as the generator designed them.

In: the truth tables written before it (``publication.csv``: each record's status as of
``PUBLICATION_AS_OF`` under the catalog's governing, its class and its kind; ``repairs.csv``:
each repair row and whether it loads; ``register.csv``; ``payments.csv``), the catalog's
``credit`` blocks, the scoring model in force on the day (``catalogs/scoring/``) and the warning
rules (``catalogs/credit_warnings.yaml``). Never the warehouse, never ``warehouse/scoring.py``:
this is the ground truth the engine is checked against. Out, under ``<data_root>/truth/``:

* ``scores.csv``: one row per subject registered by the day, by USCC: ``as_of``, ``model_id``,
  ``uscc``, ``subject_name`` (the register's latest copy), ``score`` (2 decimals), ``grade``
  and ``points``: the indicators that moved the score, ``id=points`` joined by ``;`` in model order;
* ``warnings.csv``: one row per subject (a USCC: natural persons are not listed), registered or
  not, with at least ``threshold`` records of the rules' datasets in the rules' statuses:
  ``as_of``, ``uscc``, ``subject_name`` (the register's, else its latest record's), ``records``
  and ``documents`` (their 文号, sorted, joined by ``;``).

The facts of a subject (a USCC) as of day D (``Fact``):

* ``record``: each record of ``publication.csv`` with its status that day (published, expired,
  repaired, minor_not_published, ...; a quarantined record or one not yet decided or arrived is
  no fact), class, decision date and kind (the raw ``credit.kind_field``); polarity =
  ``credit.polarity_by_kind.get(kind, credit.polarity)``. A repair row that loads, dated and
  arrived by D, is a ``record`` of credit_repair: ``in_effect``, its kind its XF_LB;
* ``register``: the latest loaded register row received by D: kind 登记状态, decided 成立日期;
* ``arrears``: per subject, payment dataset and month up to D's month whose loaded rows received by D (a
  superseded file's replaced by its re-send) include one in arrears, decided the month's first day;
  ``on_time_streak``: per subject and payment dataset, ``measure`` = the months with rows after its
  last month in arrears (all of them when never in arrears), decided the first day of its latest month.

Scoring (``score_subject``): only facts of an indicator's datasets and fact kind (default: the
dataset's own, record or register), in its ``statuses`` and, with ``window_months``, aged (full
months, ``age_months``) under it. ``by: category``: each fact scores ``round(categories[category]
* decay_factor(age), 2)`` (a category not listed: nothing), the sum held within ``cap``; ``by:
range``: ``count`` facts, ``max`` measure or ``age_years`` of the newest, the first range that
holds (none, or no facts: 0). Score = base + the contributions held within ``total``, rounded to 2
decimals; the grade the first whose ``min_score`` it reaches, lowered by each ``grade_limit`` the
subject has a fact for.
"""

from __future__ import annotations

import calendar
import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from foundation.catalog import Catalog, get_catalog
from foundation.scoring_model import (
    IN_EFFECT,
    GradeLimit,
    Indicator,
    ScoringModel,
    WarningRules,
    load_scoring_models,
    load_warning_rules,
)
from sample_city.history_publication import PUBLICATION_AS_OF
from sample_city.truth import _write_table

SCORES_COLUMNS = ["as_of", "model_id", "uscc", "subject_name", "score", "grade", "points"]
WARNINGS_COLUMNS = ["as_of", "uscc", "subject_name", "records", "documents"]
NOT_FACTS = ("quarantined", "not_yet")  # publication.csv reasons of rows that are no fact that day


@dataclass(frozen=True)
class Fact:
    uscc: str
    dataset_id: str
    fact_kind: str  # record | register | arrears | on_time_streak
    status: str  # a publication status (published, expired, repaired, ...) or in_effect
    decided: date | None
    severity: str = ""
    kind: str = ""  # the raw value of the dataset's credit.kind_field
    polarity: str = "neutral"
    measure: float | None = None  # on_time_streak: the months
    document: str = ""
    subject_name: str = ""


@dataclass(frozen=True)
class Score:
    uscc: str
    score: float
    grade: str
    points: dict[str, float]  # indicator id -> its contribution (every indicator)


def age_months(decided: date, day: date) -> int:
    """Full months from ``decided`` to ``day``: the most months that, added to ``decided`` (a day missing
    from the month taking its last day, as publication periods count), do not pass ``day``
    (2026-01-31 -> 2026-02-27: 0; -> 2026-02-28: 1; 2024-02-29 -> 2025-02-28: 12)."""
    months = (day.year - decided.year) * 12 + (day.month - decided.month)
    return months - 1 if _plus_months(decided, months) > day else months


def _plus_months(start: date, months: int) -> date:
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _day(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


def _received(value: str) -> date:
    """The local (Asia/Shanghai) day of an ISO arrival, or of a plain ISO date."""
    return datetime.fromisoformat(value).date() if "T" in value else date.fromisoformat(value)


def _governing(catalog: Catalog) -> str:
    """``decision`` or ``publication``: the suffix of the truth's columns under the catalog's governing."""
    return "decision" if catalog.publication.governing == "decision_date" else "publication"


def _polarity(catalog: Catalog, dataset_id: str, kind: str) -> str:
    credit = catalog.dataset(dataset_id).credit
    return credit.polarity_by_kind.get(kind, credit.polarity) if credit else "neutral"


# the facts
def record_facts(rows: Iterable[dict], catalog: Catalog) -> list[Fact]:
    """The ``record`` facts of ``publication.csv`` rows (their status as of the file's ``as_of``)."""
    governing = _governing(catalog)
    out = []
    for r in rows:
        status = r[f"reason_{governing}"]
        if status in NOT_FACTS or not r["uscc"]:
            continue
        out.append(Fact(
            uscc=r["uscc"], dataset_id=r["dataset_id"], fact_kind="record", status=status,
            decided=_day(r["decided"]), severity=r["severity"], kind=r["kind"],
            polarity=_polarity(catalog, r["dataset_id"], r["kind"]), document=r["document"],
            subject_name=r["subject_name"],
        ))
    return out


def repair_facts(rows: Iterable[dict], catalog: Catalog, day: date) -> list[Fact]:
    """The ``record`` facts of the ``repairs.csv`` rows that load, dated and arrived by ``day``."""
    outcome = "expected_outcome" if _governing(catalog) == "decision" else "expected_outcome_publication"
    dataset_id = next(d.id for d in catalog.datasets.values() if d.repairs is not None)
    out = []
    for r in rows:
        decided = _day(r["date"])
        if r[outcome] != "loaded" or not r["uscc"] or decided is None or decided > day:
            continue
        if _received(r["received"]) > day:
            continue
        out.append(Fact(
            uscc=r["uscc"], dataset_id=dataset_id, fact_kind="record", status=IN_EFFECT, decided=decided,
            kind=r["credit_kind"], polarity=_polarity(catalog, dataset_id, r["credit_kind"]),
            document=r["document"], subject_name=r["subject_name"],
        ))
    return out


def register_facts(rows: Iterable[dict], catalog: Catalog, day: date) -> list[Fact]:
    """One ``register`` fact per subject: its latest loaded register row that arrived by ``day``."""
    dataset_id = next(d.id for d in catalog.datasets.values() if d.credit and d.credit.fact == "register")
    latest: dict[str, tuple[tuple[datetime, str, int], dict]] = {}
    for r in rows:
        if r["expected_outcome"] != "loaded" or not r["uscc"] or _received(r["received"]) > day:
            continue
        order = (datetime.fromisoformat(r["received"]), r["file"], int(r["row"]))
        if r["uscc"] not in latest or order > latest[r["uscc"]][0]:
            latest[r["uscc"]] = (order, r)
    out = []
    for uscc in sorted(latest):
        r = latest[uscc][1]
        out.append(Fact(uscc=uscc, dataset_id=dataset_id, fact_kind="register", status=IN_EFFECT,
                        decided=_day(r["founded"]), kind=r["status"], subject_name=r["subject_name"]))
    return out


def payment_facts(rows: Iterable[dict], day: date) -> list[Fact]:
    """The ``arrears`` and ``on_time_streak`` facts of ``payments.csv``'s loaded, not superseded rows
    received by ``day``, of months up to ``day``'s month (as every fact: only what arrived by then)."""
    last_month = day.replace(day=1)
    months: dict[tuple[str, str], set[date]] = {}
    arrears: dict[tuple[str, str], set[date]] = {}
    for r in rows:
        if (r["expected_outcome"] != "loaded" or r["superseded"] == "true" or not r["uscc"] or not r["month"]
                or _received(r["received"]) > day):
            continue
        month = date(int(r["month"][:4]), int(r["month"][5:7]), 1)
        if month > last_month:
            continue
        key = (r["uscc"], r["dataset_id"])
        months.setdefault(key, set()).add(month)
        if r["arrears"] == "true":
            arrears.setdefault(key, set()).add(month)
    out = []
    for (uscc, dataset_id), seen in sorted(months.items()):
        owed = arrears.get((uscc, dataset_id), set())
        out += [Fact(uscc, dataset_id, "arrears", IN_EFFECT, month) for month in sorted(owed)]
        since = [m for m in seen if not owed or m > max(owed)]
        out.append(Fact(uscc, dataset_id, "on_time_streak", IN_EFFECT, max(seen), measure=len(since)))
    return out


# the scores
def _own_kind(catalog: Catalog, dataset_id: str) -> str:
    credit = catalog.dataset(dataset_id).credit
    return credit.fact if credit else "record"


def indicator_facts(ind: Indicator, facts: Iterable[Fact], catalog: Catalog, day: date) -> list[Fact]:
    """The facts an indicator counts: its datasets and fact kind, its statuses, aged under its window."""
    out = []
    for f in facts:
        if f.dataset_id not in ind.datasets or f.status not in ind.statuses:
            continue
        if f.fact_kind != (ind.fact_kind or _own_kind(catalog, f.dataset_id)):
            continue
        if ind.window_months is not None and (f.decided is None or age_months(f.decided, day) >= ind.window_months):
            continue
        out.append(f)
    return out


def category_of(ind: Indicator, fact: Fact) -> str:
    return {"severity": fact.severity, "kind": fact.kind, "polarity": fact.polarity}[ind.category_of or "kind"]


def indicator_points(ind: Indicator, facts: Iterable[Fact], catalog: Catalog, day: date) -> float:
    """What one indicator adds to the score (before the total's bounds)."""
    counted = indicator_facts(ind, facts, catalog, day)
    if ind.by == "category":
        total = 0.0
        for f in counted:
            category = category_of(ind, f)
            if category in ind.categories:
                factor = ind.decay_factor(age_months(f.decided, day)) if f.decided else 1.0
                total += round(ind.categories[category] * factor, 2)
        return max(-ind.cap, min(ind.cap, total)) if ind.cap is not None else total
    if not counted and ind.measure != "count":  # a count of nothing is 0, and may fall in a range
        return 0.0
    value: float | None
    if ind.measure == "count":
        value = len(counted)
    elif ind.measure == "max":
        value = max((f.measure for f in counted if f.measure is not None), default=None)
    else:  # age_years of the newest fact
        newest = max((f.decided for f in counted if f.decided is not None), default=None)
        value = age_months(newest, day) // 12 if newest is not None else None
    if value is None:
        return 0.0
    return next((r.points for r in ind.ranges if r.holds(value)), 0.0)


def _limited(limit: GradeLimit, facts: Iterable[Fact]) -> bool:
    return any(f.dataset_id in limit.datasets and f.status in limit.statuses for f in facts)


def score_subject(model: ScoringModel, uscc: str, facts: list[Fact], catalog: Catalog, day: date) -> Score:
    """The score and grade of one subject from its facts (every fact given is the subject's)."""
    points = {ind.id: round(indicator_points(ind, facts, catalog, day), 2) for ind in model.indicators()}
    score = round(max(model.total.min, min(model.total.max, model.base + sum(points.values()))), 2)
    grade = model.grade_of(score).grade
    for limit in model.grade_limits:
        if _limited(limit, facts) and model.grade_rank(limit.grade) > model.grade_rank(grade):
            grade = limit.grade
    return Score(uscc, score, grade, points)


def score_all(model: ScoringModel, facts: list[Fact], catalog: Catalog, day: date) -> list[Score]:
    """The scores of every subject with a register fact, by USCC."""
    by_subject: dict[str, list[Fact]] = {}
    for f in facts:
        by_subject.setdefault(f.uscc, []).append(f)
    registered = sorted({f.uscc for f in facts if f.fact_kind == "register"})
    return [score_subject(model, uscc, by_subject[uscc], catalog, day) for uscc in registered]


def warning_list(rules: WarningRules, facts: Iterable[Fact]) -> dict[str, list[Fact]]:
    """USCC -> its counted records, for the subjects with at least ``threshold`` of them."""
    counted: dict[str, list[Fact]] = {}
    for f in facts:
        if f.fact_kind == "record" and f.uscc and f.dataset_id in rules.datasets and f.status in rules.statuses:
            counted.setdefault(f.uscc, []).append(f)
    return {uscc: records for uscc, records in sorted(counted.items()) if len(records) >= rules.threshold}


# the truth
def _read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def designed_facts(truth: Path, catalog: Catalog, day: date) -> list[Fact]:
    """Every fact as of ``day`` from the truth tables under ``truth`` (publication.csv must be stated for ``day``)."""
    publication = _read(truth / "publication.csv")
    stated = {r["as_of"] for r in publication}
    if stated - {day.isoformat()}:
        raise ValueError(f"{truth / 'publication.csv'} states the publication as of {sorted(stated)}, not {day}")
    return (record_facts(publication, catalog) + repair_facts(_read(truth / "repairs.csv"), catalog, day)
            + register_facts(_read(truth / "register.csv"), catalog, day)
            + payment_facts(_read(truth / "payments.csv"), day))


def write_scoring_truth(truth: Path, catalog: Catalog | None = None, day: date = PUBLICATION_AS_OF) -> dict:
    """Write ``scores.csv`` (the model in force on ``day``) and ``warnings.csv``; return a summary
    (day, model, subjects scored, grades, subjects on the warning list)."""
    catalog = catalog or get_catalog()
    model = load_scoring_models(catalog).in_force(day)
    rules = load_warning_rules(catalog)
    facts = designed_facts(truth, catalog, day)
    names = {f.uscc: f.subject_name for f in facts if f.fact_kind == "register"}
    scores = score_all(model, facts, catalog, day)
    score_rows = [{
        "as_of": day.isoformat(), "model_id": model.id, "uscc": s.uscc, "subject_name": names[s.uscc],
        "score": f"{s.score:.2f}", "grade": s.grade,
        "points": ";".join(f"{k}={v:g}" for k, v in s.points.items() if v),
    } for s in scores]
    listed = warning_list(rules, facts)
    warning_rows = [{
        "as_of": day.isoformat(), "uscc": uscc,
        "subject_name": names.get(uscc) or max(records, key=lambda f: (f.decided or date.min, f.document)).subject_name,
        "records": len(records), "documents": ";".join(sorted(f.document for f in records)),
    } for uscc, records in listed.items()]
    _write_table(truth / "scores.csv", SCORES_COLUMNS, score_rows)
    _write_table(truth / "warnings.csv", WARNINGS_COLUMNS, warning_rows)
    grades = Counter(s.grade for s in scores)
    return {
        "as_of": day.isoformat(), "model_id": model.id, "subjects": len(scores),
        "grades": {g.grade: grades[g.grade] for g in model.grades}, "warnings": len(warning_rows),
    }
