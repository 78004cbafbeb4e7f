"""The ground truth of the credit scores (sample_city/history_scoring.py) on tiny hand-made facts.

The semantics the engine (warehouse/scoring.py) is checked against, with every score computed by hand:
full months of age, decay steps, caps, statuses, windows, ranges (count, max, age_years), the total's
bounds, grades and grade limits; the facts made of the truth tables (record statuses, the latest
register copy received by the day, arrears months and on-time streaks, loaded repairs); the warning
list. Then, once, a generated city writes a score for every registered subject.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from foundation.catalog import get_catalog
from foundation.scoring_model import IN_EFFECT, ScoringModel, load_scoring_models, load_warning_rules
from sample_city.history_scoring import (
    Fact,
    age_months,
    payment_facts,
    record_facts,
    register_facts,
    repair_facts,
    score_all,
    score_subject,
    warning_list,
)

D = date(2026, 11, 30)
U = "91371083MA00000001"  # the subject of the hand-made facts
MODEL = ScoringModel.model_validate({
    "id": "tiny", "name_zh": "测试模型", "effective_from": "2025-01-01", "base": 100,
    "total": {"min": 60, "max": 110},
    "grades": [{"grade": "A", "name_zh": "甲", "min_score": 105}, {"grade": "B", "name_zh": "乙", "min_score": 90},
               {"grade": "D", "name_zh": "丁", "min_score": 0}],
    "grade_limits": [{"datasets": ["dishonesty_list"], "statuses": ["published"], "grade": "B", "reason_zh": "名单"}],
    "dimensions": [{"id": "all", "name_zh": "全部", "indicators": [
        {"id": "years", "name_zh": "成立年限", "datasets": ["legal_entity"], "by": "range", "measure": "age_years",
         "ranges": [{"from": 0, "to": 3, "points": 0}, {"from": 3, "to": 10, "points": 2}, {"from": 10, "points": 4}]},
        {"id": "register_status", "name_zh": "登记状态", "datasets": ["legal_entity"], "by": "category",
         "category_of": "kind", "categories": {"注销": -30}},
        {"id": "penalties", "name_zh": "行政处罚", "datasets": ["admin_penalty"],
         "statuses": ["published", "minor_not_published"], "by": "category", "category_of": "severity",
         "categories": {"minor": -1, "general": -4, "serious": -12},
         "decay": [{"under_months": 12, "factor": 1.0}, {"under_months": 24, "factor": 0.5}, {"factor": 0.25}],
         "cap": 20},
        {"id": "rewards", "name_zh": "行政奖励", "datasets": ["admin_reward"], "statuses": ["published"],
         "by": "category", "category_of": "kind", "categories": {"授予荣誉称号": 5, "其他": 1}, "cap": 6},
        {"id": "inspection", "name_zh": "监督检查", "datasets": ["admin_inspection"], "statuses": ["published"],
         "by": "category", "category_of": "polarity", "categories": {"negative": -2}},
        {"id": "arrears", "name_zh": "欠缴", "datasets": ["tax_payment", "housing_fund"], "fact_kind": "arrears",
         "window_months": 12, "by": "range", "measure": "count",
         "ranges": [{"from": 1, "to": 3, "points": -2}, {"from": 3, "points": -5}]},
        {"id": "on_time", "name_zh": "按时缴纳", "datasets": ["tax_payment", "housing_fund"],
         "fact_kind": "on_time_streak", "window_months": 3, "by": "range", "measure": "max",
         "ranges": [{"from": 12, "to": 24, "points": 2}, {"from": 24, "points": 4}]},
    ]}],
})


def _register(founded: date, status: str = "存续", uscc: str = U) -> Fact:
    return Fact(uscc, "legal_entity", "register", IN_EFFECT, founded, kind=status)


def _penalty(severity: str, decided: date, status: str = "published", uscc: str = U, document: str = "") -> Fact:
    return Fact(uscc, "admin_penalty", "record", status, decided, severity=severity, kind="罚款",
                polarity="negative", document=document)


def _record(dataset_id: str, kind: str, decided: date, status: str = "published", polarity: str = "neutral") -> Fact:
    return Fact(U, dataset_id, "record", status, decided, kind=kind, polarity=polarity)


def _arrears(month: date, dataset_id: str = "tax_payment") -> Fact:
    return Fact(U, dataset_id, "arrears", IN_EFFECT, month)


def _streak(months: int, latest: date, dataset_id: str = "tax_payment") -> Fact:
    return Fact(U, dataset_id, "on_time_streak", IN_EFFECT, latest, measure=months)


def _score(facts: list[Fact]) -> tuple[float, str, dict[str, float]]:
    s = score_subject(MODEL, U, facts, get_catalog(), D)
    return s.score, s.grade, {k: v for k, v in s.points.items() if v}


# --- ages, decay, caps, statuses ---------------------------------------------------------------


@pytest.mark.unit
def test_age_is_in_full_months_a_month_counts_once_its_day_is_reached():
    assert age_months(date(2026, 11, 30), D) == 0
    assert age_months(date(2026, 10, 31), D) == 1  # a month from 10-31 ends on 11-30, as publication counts
    assert age_months(date(2026, 10, 31), date(2026, 11, 29)) == 0
    assert age_months(date(2024, 2, 29), date(2025, 2, 28)) == 12
    assert age_months(date(2024, 2, 29), date(2025, 2, 27)) == 11
    assert age_months(date(2026, 10, 30), D) == 1
    assert age_months(date(2025, 12, 1), D) == 11
    assert age_months(date(2025, 11, 30), D) == 12
    assert age_months(date(2016, 12, 1), D) == 119
    assert age_months(date(2016, 11, 30), D) == 120


@pytest.mark.unit
def test_penalties_decay_by_age_step_count_only_their_statuses_and_are_capped():
    register = _register(date(2020, 1, 1))  # 6 years: +2
    facts = [
        register,
        _penalty("general", date(2026, 6, 1)),  # 5 months: -4 x 1.0
        _penalty("general", date(2025, 12, 1)),  # 11 months: -4 x 1.0
        _penalty("serious", date(2025, 11, 30)),  # 12 months: -12 x 0.5 = -6
        _penalty("serious", date(2024, 12, 1)),  # 23 months: -12 x 0.5 = -6
        _penalty("general", date(2024, 11, 30)),  # 24 months: -4 x 0.25 = -1
        _penalty("minor", date(2026, 11, 2), "minor_not_published"),  # counted (its statuses): -1
        _penalty("serious", date(2026, 1, 5), "expired"),  # not in the statuses: nothing
        _penalty("serious", date(2026, 2, 5), "repaired"),  # nothing
        _penalty("unclassified", date(2026, 3, 5)),  # a class the indicator does not list: nothing
    ]
    assert _score(facts) == (82.0, "D", {"years": 2, "penalties": -20})  # -22, capped at -20
    assert _score(facts[:3]) == (94.0, "B", {"years": 2, "penalties": -8})


@pytest.mark.unit
def test_category_by_kind_and_by_polarity_and_a_cap_on_the_positive_side():
    facts = [
        _register(date(2010, 5, 5)),  # 16 years: +4
        _record("admin_reward", "授予荣誉称号", date(2026, 3, 1)),
        _record("admin_reward", "授予荣誉称号", date(2025, 3, 1)),  # 10 -> capped at +6
        _record("admin_reward", "发放奖金", date(2026, 3, 1)),  # not a category of the indicator
        _record("admin_reward", "其他", date(2026, 3, 1), status="expired"),  # not in its statuses
        _record("admin_inspection", "不合格", date(2026, 4, 1), polarity="negative"),  # -2
        _record("admin_inspection", "合格", date(2026, 4, 1), polarity="positive"),  # nothing
    ]
    assert _score(facts) == (108.0, "A", {"years": 4, "rewards": 6, "inspection": -2})


@pytest.mark.unit
def test_the_total_is_held_within_its_bounds():
    top = [_register(date(2000, 1, 1)), _record("admin_reward", "授予荣誉称号", date(2026, 3, 1)),
           _record("admin_reward", "授予荣誉称号", date(2026, 4, 1)), _streak(30, date(2026, 10, 1))]
    assert _score(top) == (110.0, "A", {"years": 4, "rewards": 6, "on_time": 4})  # 114 -> 110
    bottom = [_register(date(2024, 1, 1), "注销"), *(_penalty("serious", date(2026, 5, 1)) for _ in range(3)),
              *(_arrears(date(2026, m, 1)) for m in (1, 2, 3))]
    assert _score(bottom) == (60.0, "D", {"register_status": -30, "penalties": -20, "arrears": -5})  # 45 -> 60


# --- ranges, windows --------------------------------------------------------------------------


@pytest.mark.unit
def test_years_established_in_whole_years_of_the_founding_date():
    assert _score([_register(date(2016, 11, 30))])[2] == {"years": 4}  # 120 months: 10 years
    assert _score([_register(date(2016, 12, 1))])[2] == {"years": 2}  # 119 months: 9 years
    assert _score([_register(date(2023, 11, 30))])[2] == {"years": 2}  # 36 months: 3 years
    assert _score([_register(date(2023, 12, 1))])[2] == {}  # 2 years: 0 points


@pytest.mark.unit
def test_arrears_are_counted_in_their_window_across_datasets():
    register = _register(date(2020, 1, 1))
    one = [register, _arrears(date(2025, 12, 1)), _arrears(date(2025, 11, 1))]  # 11 months in, 12 months out
    assert _score(one) == (100.0, "B", {"years": 2, "arrears": -2})
    three = [register, _arrears(date(2026, 1, 1)), _arrears(date(2026, 2, 1)),
             _arrears(date(2026, 2, 1), "housing_fund")]
    assert _score(three)[2] == {"years": 2, "arrears": -5}
    assert _score([register])[2] == {"years": 2}  # no facts: 0


@pytest.mark.unit
def test_the_on_time_streak_takes_the_longest_of_recent_streaks():
    register = _register(date(2020, 1, 1))
    assert _score([register, _streak(13, date(2026, 10, 1)), _streak(5, date(2026, 11, 1), "housing_fund")])[2] \
        == {"years": 2, "on_time": 2}
    assert _score([register, _streak(24, date(2026, 9, 1))])[2] == {"years": 2, "on_time": 4}  # 2 months old
    assert _score([register, _streak(24, date(2026, 8, 1))])[2] == {"years": 2}  # 3 months old: out of the window
    assert _score([register, _streak(11, date(2026, 11, 1))])[2] == {"years": 2}  # no range holds: 0


# --- grades -----------------------------------------------------------------------------------


@pytest.mark.unit
def test_a_published_list_entry_limits_the_grade_but_an_exited_one_does_not():
    good = [_register(date(2000, 1, 1)), _record("admin_reward", "授予荣誉称号", date(2026, 3, 1)),
            _record("admin_reward", "授予荣誉称号", date(2026, 4, 1))]
    assert _score(good)[:2] == (110.0, "A")
    listed = _record("dishonesty_list", "严重违法失信名单", date(2026, 2, 1), polarity="negative")
    assert _score([*good, listed])[:2] == (110.0, "B")  # the tiny model's list indicator: none; the limit: B
    exited = _record("dishonesty_list", "严重违法失信名单", date(2025, 2, 1), "list_exited", "negative")
    assert _score([*good, exited])[:2] == (110.0, "A")
    low = [_register(date(2024, 1, 1), "注销")]
    assert _score([*low, listed])[:2] == (70.0, "D")  # a worse grade than the limit stays


@pytest.mark.unit
def test_the_city_2026_model_on_one_subject():
    model = load_scoring_models(get_catalog()).get("city_2026")
    facts = [
        _register(date(2012, 3, 1)),  # 14 years: +4
        _penalty("general", date(2026, 5, 10)),  # -4
        _penalty("serious", date(2025, 6, 10)),  # 17 months: -12 x 0.5 = -6
        _penalty("minor", date(2026, 9, 1), "minor_not_published"),  # 0
        _record("admin_enforcement", "扣押财物", date(2026, 1, 1), polarity="negative"),  # -2
        _record("admin_inspection", "责令整改", date(2026, 7, 1), polarity="negative"),  # -2
        _record("admin_reward", "通报表扬", date(2026, 2, 1), polarity="positive"),  # +2
        Fact(U, "credit_repair", "record", IN_EFFECT, date(2025, 2, 1), kind="信用修复"),  # 21 months: +2
        Fact(U, "credit_repair", "record", IN_EFFECT, date(2024, 11, 1), kind="信用修复"),  # 24 months: x 0
        Fact(U, "credit_repair", "record", IN_EFFECT, date(2026, 2, 1), kind="异议成立"),  # not a category
        _arrears(date(2026, 3, 1)),  # -2
        _streak(8, date(2026, 11, 1)),  # under 12: 0
    ]
    s = score_subject(model, U, facts, get_catalog(), D)
    assert (s.score, s.grade) == (92.0, "C")  # 100 + 4 - 10 - 2 - 2 + 2 + 2 - 2
    assert {k: v for k, v in s.points.items() if v} == {
        "years_established": 4, "penalties": -10, "enforcement": -2, "inspection": -2, "rewards": 2,
        "repairs_completed": 2, "arrears": -2}


# --- facts from the truth tables --------------------------------------------------------------


def _publication(dataset_id: str, reason: str, kind: str = "", uscc: str = U, severity: str = "") -> dict:
    return {"as_of": D.isoformat(), "dataset_id": dataset_id, "uscc": uscc, "reason_decision": reason,
            "reason_publication": "published", "decided": "2026-05-01", "severity": severity, "kind": kind,
            "document": f"文号{len(kind)}", "subject_name": "某公司"}


@pytest.mark.unit
def test_record_facts_carry_the_status_of_the_day_and_the_polarity_of_their_kind():
    rows = [
        _publication("admin_inspection", "published", "不合格"),
        _publication("admin_inspection", "expired", "合格"),
        _publication("admin_inspection", "published", "基本合格"),  # no polarity_by_kind: the dataset's
        _publication("admin_penalty", "minor_not_published", "警告", severity="minor"),
        _publication("admin_penalty", "not_yet", "罚款", severity="general"),  # not a fact yet
        _publication("admin_penalty", "quarantined", "罚款"),  # never a fact
        _publication("admin_penalty", "published", "罚款", uscc=""),  # a natural person: not a subject
    ]
    facts = record_facts(rows, get_catalog())
    assert [(f.dataset_id, f.status, f.kind, f.polarity) for f in facts] == [
        ("admin_inspection", "published", "不合格", "negative"),
        ("admin_inspection", "expired", "合格", "positive"),
        ("admin_inspection", "published", "基本合格", "neutral"),
        ("admin_penalty", "minor_not_published", "警告", "negative"),
    ]
    assert {(f.fact_kind, f.decided, f.uscc) for f in facts} == {("record", date(2026, 5, 1), U)}


@pytest.mark.unit
def test_repairs_are_facts_when_they_load_by_the_day():
    def row(outcome: str, day: str, kind: str = "信用修复", uscc: str = U) -> dict:
        return {"uscc": uscc, "date": day, "received": day, "expected_outcome": outcome,
                "expected_outcome_publication": "loaded", "credit_kind": kind, "document": "文号",
                "subject_name": "某公司"}

    rows = [row("loaded", "2026-03-02"), row("quarantine", "2026-03-02"), row("loaded", "2026-12-01"),
            row("loaded", "2026-04-02", "决定撤销"), row("loaded", "2026-04-02", uscc="")]
    facts = repair_facts(rows, get_catalog(), D)
    assert [(f.dataset_id, f.status, f.kind, f.decided, f.polarity) for f in facts] == [
        ("credit_repair", IN_EFFECT, "信用修复", date(2026, 3, 2), "positive"),
        ("credit_repair", IN_EFFECT, "决定撤销", date(2026, 4, 2), "positive"),
    ]


@pytest.mark.unit
def test_the_register_fact_is_the_latest_loaded_copy_received_by_the_day():
    def row(uscc: str, received: str, status: str, outcome: str = "loaded", file: str = "a.csv") -> dict:
        return {"file": file, "row": "1", "received": received, "uscc": uscc, "subject_name": f"{uscc}{status}",
                "status": status, "founded": "2019-04-05", "expected_outcome": outcome}

    rows = [
        row(U, "2025-02-14T16:01:00+08:00", "存续"),
        row(U, "2026-03-05T09:00:00+08:00", "注销", file="b.csv"),
        row(U, "2026-12-04T09:00:00+08:00", "吊销", file="c.csv"),  # after the day
        row("92371083MA00000002", "2025-02-14T16:01:00+08:00", "存续", "quarantine"),  # never registered
    ]
    facts = register_facts(rows, get_catalog(), D)
    assert [(f.uscc, f.dataset_id, f.fact_kind, f.kind, f.decided, f.subject_name) for f in facts] == [
        (U, "legal_entity", "register", "注销", date(2019, 4, 5), f"{U}注销")]
    assert [f.kind for f in register_facts(rows, get_catalog(), date(2025, 3, 1))] == ["存续"]


@pytest.mark.unit
def test_payment_facts_arrears_months_and_the_streak_since_the_last_one():
    def row(month: str, arrears: bool, dataset_id: str = "tax_payment", outcome: str = "loaded",
            superseded: bool = False, received: str = "2026-11-30T17:00:00+08:00") -> dict:
        return {"dataset_id": dataset_id, "uscc": U, "month": month, "arrears": "true" if arrears else "false",
                "expected_outcome": outcome, "superseded": "true" if superseded else "false", "received": received}

    rows = [
        row("2025-03", True), row("2025-12", True), row("2025-12", False),  # a month with one row in arrears
        *(row(f"2026-{m:02d}", False) for m in range(1, 12)),  # 11 months since
        row("2026-01", False),  # a second row of a month: one month
        row("2026-05", True, outcome="quarantine"),  # quarantined: no arrears
        row("2026-06", True, superseded=True),  # replaced by the re-send: no arrears
        row("2026-12", True),  # after the day's month
        row("2026-11", True, received="2026-12-01T09:00:00+08:00"),  # arrived after the day: no arrears yet
        *(row(f"2026-{m:02d}", False, "housing_fund") for m in (2, 4, 6)),  # never in arrears: 3 months
    ]
    facts = payment_facts(rows, D)
    assert [(f.dataset_id, f.fact_kind, f.decided, f.measure) for f in facts] == [
        ("housing_fund", "on_time_streak", date(2026, 6, 1), 3),
        ("tax_payment", "arrears", date(2025, 3, 1), None),
        ("tax_payment", "arrears", date(2025, 12, 1), None),
        ("tax_payment", "on_time_streak", date(2026, 11, 1), 11),
    ]
    assert {(f.uscc, f.status) for f in facts} == {(U, IN_EFFECT)}


@pytest.mark.unit
def test_only_registered_subjects_are_scored():
    other = "91371083MA00000003"
    facts = [_register(date(2020, 1, 1)), _penalty("general", date(2026, 5, 1), uscc=other)]
    assert [s.uscc for s in score_all(MODEL, facts, get_catalog(), D)] == [U]


@pytest.mark.unit
def test_the_warning_list_counts_published_penalties_and_list_entries_of_a_uscc():
    rules = load_warning_rules(get_catalog())
    assert (rules.threshold, rules.datasets, rules.statuses) == (2, ["admin_penalty", "dishonesty_list"], ["published"])
    a, b, c = "91371083MA0000000A", "91371083MA0000000B", "91371083MA0000000C"
    facts = [
        _penalty("general", date(2026, 5, 1), uscc=a, document="2号"),
        _penalty("minor", date(2026, 6, 1), uscc=a, document="1号"),
        _penalty("general", date(2026, 5, 1), uscc=b, document="3号"),
        _penalty("general", date(2025, 5, 1), "expired", uscc=b, document="4号"),  # not published: not counted
        Fact(c, "dishonesty_list", "record", "published", date(2026, 2, 1), document="名单1号"),
        _penalty("serious", date(2026, 7, 1), uscc=c, document="5号"),
        Fact(c, "admin_inspection", "record", "published", date(2026, 2, 1), document="检查"),  # another dataset
    ]
    listed = warning_list(rules, facts)
    assert {u: sorted(f.document for f in records) for u, records in listed.items()} == {
        a: ["1号", "2号"], c: ["5号", "名单1号"]}


# --- a generated city -------------------------------------------------------------------------


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.integration
def test_a_generated_city_scores_every_registered_subject(tmp_path):
    from sample_city import generate_history

    summary = generate_history(tmp_path, 371083, 300, first="2025-01", last="2025-04")
    truth = tmp_path / "truth"
    registered = {r["uscc"] for r in _rows(truth / "register.csv") if r["expected_outcome"] == "loaded"}
    scores = _rows(truth / "scores.csv")
    assert [r["uscc"] for r in scores] == sorted(registered) and len(registered) > 300
    grades = [g.grade for g in load_scoring_models(get_catalog()).get("city_2026").grades]
    assert {(r["as_of"], r["model_id"]) for r in scores} == {("2026-11-30", "city_2026")}
    assert all(r["grade"] in grades and 0 <= float(r["score"]) <= 120 and r["subject_name"] for r in scores)
    assert summary["scores"]["subjects"] == len(scores)
    assert sum(summary["scores"]["grades"].values()) == len(scores)
    published: dict[str, list[str]] = {}
    for r in _rows(truth / "publication.csv"):
        if r["dataset_id"] in ("admin_penalty", "dishonesty_list") and r["reason_decision"] == "published" \
                and r["uscc"]:
            published.setdefault(r["uscc"], []).append(r["document"])
    warnings = _rows(truth / "warnings.csv")
    assert summary["scores"]["warnings"] == len(warnings)
    assert {r["uscc"] for r in warnings} == {u for u, docs in published.items() if len(docs) >= 2}
    payments = _rows(truth / "payments.csv")
    assert payments and {r["month"][:4] for r in payments if r["expected_outcome"] == "loaded"} == {"2025"}
    assert {r["kind"] for r in _rows(truth / "publication.csv") if r["dataset_id"] == "admin_penalty"} - {""}
