"""The scoring engine (warehouse/scoring.py) on hand-made facts, with every score worked out by hand.

The facts are inserted straight into ``mart.credit_records`` (the engine's input contract) of a real
DuckDB warehouse, and scored with two small test models written to a copy of the catalog
(``test_2026``, in force from 2026-01-01, and ``test_2025``, in force for 2025), so that the numbers
below do not move when the city's own models (catalogs/scoring/) are tuned. Each subject is designed
for a few rules; its score and grade are computed by hand in the comments.

Ages are full months from the decision date to the as-of day (2026-01-30 unless said otherwise):
date_diff in months, less one when the as-of day of the month is before the decision's.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from credit.scoring_job import score_days
from foundation.catalog import CatalogError, load_catalog
from foundation.scoring_model import load_scoring_models
from foundation.settings import PROJECT_ROOT, get_settings
from sample_city.entities import make_uscc
from warehouse.credit_records import FACT_COLUMNS
from warehouse.db import connect
from warehouse.scoring import run_scoring

pytestmark = pytest.mark.integration

AS_OF = date(2026, 1, 30)

# The model in force from 2026-01-01. Indicator order (the `ord` of the explanation lines):
# 1 years_established, 2 register_status, 3 penalties, 4 dishonesty_list, 5 enforcement, 6 inspection,
# 7 rewards, 8 arrears, 9 on_time, 10 repairs_completed.
MODEL_2026 = """\
# 测试模型（2026版）: small numbers, so that every score of tests/test_scoring.py is worked out by hand.
id: test_2026
name_zh: 测试评价模型（2026版）
effective_from: 2026-01-01
subject_kinds: [legal_entity]
base: 100
total: {min: 50, max: 115}
grades:
  - {grade: A, name_zh: 诚信, min_score: 110}
  - {grade: B, name_zh: 守信, min_score: 100}
  - {grade: C, name_zh: 基本守信, min_score: 80}
  - {grade: D, name_zh: 失信, min_score: 0}
grade_limits:
  - {datasets: [dishonesty_list], statuses: [published], grade: D, reason_zh: 列入严重失信主体名单}
dimensions:
  - id: basic
    name_zh: 基本信息
    indicators:
      - id: years_established
        name_zh: 成立年限
        datasets: [legal_entity]
        by: range
        measure: age_years
        ranges: [{from: 0, to: 3, points: 0}, {from: 3, to: 10, points: 2}, {from: 10, points: 4}]
      - id: register_status
        name_zh: 登记状态
        datasets: [legal_entity]
        by: category
        category_of: kind
        categories: {吊销: -30, 注销: -30}
  - id: dishonesty
    name_zh: 失信记录
    indicators:
      - id: penalties
        name_zh: 行政处罚
        datasets: [admin_penalty]
        statuses: [published, minor_not_published]
        by: category
        category_of: severity
        categories: {minor: -1, general: -4, serious: -10, serious_special: -20}
        decay: [{under_months: 12, factor: 1.0}, {under_months: 24, factor: 0.5}, {factor: 0.25}]
        cap: 25
      - id: dishonesty_list
        name_zh: 严重失信主体名单
        datasets: [dishonesty_list]
        statuses: [published]
        by: category
        category_of: severity
        categories: {serious: -30}
      - id: enforcement
        name_zh: 行政强制
        datasets: [admin_enforcement]
        statuses: [published]
        by: category
        category_of: polarity
        categories: {negative: -3}
        cap: 5
      - id: inspection
        name_zh: 监督检查
        datasets: [admin_inspection]
        statuses: [published]
        by: category
        category_of: kind
        categories: {不合格: -3, 责令整改: -2}
        window_months: 6
  - id: honours
    name_zh: 荣誉奖励
    indicators:
      - id: rewards
        name_zh: 行政奖励
        datasets: [admin_reward]
        statuses: [published]
        by: category
        category_of: kind
        categories: {授予荣誉称号: 5, 通报表扬: 2}
        cap: 8
  - id: payment
    name_zh: 缴费履约
    indicators:
      - id: arrears
        name_zh: 近12个月欠缴
        datasets: [tax_payment, social_insurance]
        fact_kind: arrears
        window_months: 12
        by: range
        measure: count
        ranges: [{from: 1, to: 3, points: -2}, {from: 3, points: -6}]
      - id: on_time
        name_zh: 连续按时纳税
        datasets: [tax_payment]
        fact_kind: on_time_streak
        window_months: 3
        by: range
        measure: max
        ranges: [{from: 12, to: 24, points: 2}, {from: 24, points: 4}]
  - id: commitments
    name_zh: 信用承诺履行
    indicators:
      - id: repairs_completed
        name_zh: 信用修复
        datasets: [credit_repair]
        by: category
        category_of: kind
        categories: {信用修复: 2}
        decay: [{under_months: 24, factor: 1.0}, {factor: 0}]
        cap: 4
"""

# The version before it (2025): other points, other decay, other grades, fewer indicators, no grade limit.
MODEL_2025 = """\
id: test_2025
name_zh: 测试评价模型（2025版）
effective_from: 2025-01-01
effective_to: 2025-12-31
base: 100
total: {min: 0, max: 120}
grades:
  - {grade: A, name_zh: 诚信, min_score: 105}
  - {grade: B, name_zh: 守信, min_score: 95}
  - {grade: C, name_zh: 基本守信, min_score: 80}
  - {grade: D, name_zh: 失信, min_score: 0}
dimensions:
  - id: basic
    name_zh: 基本信息
    indicators:
      - id: years_established
        name_zh: 成立年限
        datasets: [legal_entity]
        by: range
        measure: age_years
        ranges: [{from: 0, to: 3, points: 0}, {from: 3, to: 10, points: 2}, {from: 10, points: 4}]
  - id: dishonesty
    name_zh: 失信记录
    indicators:
      - id: penalties
        name_zh: 行政处罚
        datasets: [admin_penalty]
        statuses: [published, minor_not_published]
        by: category
        category_of: severity
        categories: {minor: -2, general: -5, serious: -15, serious_special: -20}
        decay: [{under_months: 12, factor: 1.0}, {factor: 0.5}]
        cap: 40
  - id: honours
    name_zh: 荣誉奖励
    indicators:
      - id: rewards
        name_zh: 行政奖励
        datasets: [admin_reward]
        statuses: [published]
        by: category
        category_of: kind
        categories: {授予荣誉称号: 5, 通报表扬: 2}
        cap: 8
"""

S1, S2, S3, S4, S5, S6, S7, UNREGISTERED = (make_uscc("91", "371083", f"MA{n:06d}") for n in range(101, 109))
PERSON = "P:" + hashlib.sha256(b"test-person").hexdigest()
UNIDENTIFIED = "N:" + hashlib.md5("某某商行".encode()).hexdigest()


def _version(decided: date) -> str:
    """The rule version of publication.yaml in force on the decision day (the governing default)."""
    return ("ndrc_order_36" if decided >= date(2026, 4, 1) else
            "ndrc_order_58" if decided >= date(2023, 5, 1) else "ndrc_2019_527")


def fact(catalog, subject: str, dataset_id: str, decided: str, *, kind: str | None = None, doc: str | None = None,
         fact_kind: str | None = None, severity: str | None = None, status: str | None = None,
         measure: float | None = None, as_of: date = AS_OF) -> dict:
    """One row of mart.credit_records as warehouse/credit_records.py would build it."""
    ds = catalog.datasets[dataset_id]
    credit = ds.credit
    day = date.fromisoformat(decided)
    if fact_kind is None:
        fact_kind = "register" if credit.fact == "register" else "record"
    polarity = {"arrears": "negative", "on_time_streak": "positive"}.get(
        fact_kind, credit.polarity_by_kind.get(kind or "", credit.polarity))
    if status is None:
        status = "published" if ds.publication is not None else "in_effect"
    key = doc or f"{dataset_id}/{fact_kind}/{decided}"  # register and payment facts have no document
    return {"as_of": as_of, "record_id": hashlib.md5(f"{subject}|{key}".encode()).hexdigest(),
            "subject_key": subject, "dataset_id": dataset_id, "fact_kind": fact_kind, "record_kind": kind,
            "polarity": polarity, "severity": severity, "rule_version": _version(day) if severity else None,
            "decided": day, "published_until": None, "status": status, "repair_kind": None, "repaired_on": None,
            "measure": measure, "document": doc, "department": "market_regulation", "batch_id": "test-batch",
            "source_row": 1}


def insert_facts(con: duckdb.DuckDBPyConnection, rows: list[dict]) -> None:
    cols = ", ".join(FACT_COLUMNS)
    con.executemany(f"INSERT INTO mart.credit_records ({cols}) VALUES ({', '.join('?' for _ in FACT_COLUMNS)})",
                    [[r[c] for c in FACT_COLUMNS] for r in rows])


def city_facts(catalog) -> list[dict]:
    f = lambda *a, **k: fact(catalog, *a, **k)  # noqa: E731
    pen, lst, enf = "admin_penalty", "dishonesty_list", "admin_enforcement"
    ins, rew = "admin_inspection", "admin_reward"
    return [
        # S1 — decay at exact boundaries and statuses. Founded 2020-06-01: 67 full months, 5 years -> [3, 10): +2.
        f(S1, "legal_entity", "2020-06-01", kind="存续"),  # 存续 has no points: no register_status line
        f(S1, pen, "2025-12-01", doc="罚S1-5", severity="minor", status="minor_not_published"),  # 1 month: -1 x 1
        f(S1, pen, "2025-01-31", doc="罚S1-1", severity="general"),  # 12 - 1 (30 < 31) = 11 months: -4 x 1.0 = -4
        f(S1, pen, "2025-01-30", doc="罚S1-2", severity="general"),  # 12 months exactly: -4 x 0.5 = -2
        f(S1, pen, "2024-01-31", doc="罚S1-4", severity="serious"),  # 24 - 1 = 23 months: -10 x 0.5 = -5
        f(S1, pen, "2024-01-30", doc="罚S1-3", severity="serious"),  # 24 months exactly: -10 x 0.25 = -2.5
        f(S1, pen, "2025-06-01", doc="罚S1-6", severity="general", status="repaired"),  # not counted: 0
        f(S1, pen, "2023-01-01", doc="罚S1-7", severity="serious", status="expired"),  # not counted: 0
        f(S1, pen, "2025-09-01", doc="罚S1-8", severity="general", status="objection"),  # not counted: 0
        # Three months in arrears in the 12-month window (two datasets of the same month count twice):
        # count 3 -> [3, ): -6.
        f(S1, "tax_payment", "2025-02-01", fact_kind="arrears", kind="2025-02"),  # 11 months
        f(S1, "social_insurance", "2025-02-01", fact_kind="arrears", kind="2025-02"),  # 11 months
        f(S1, "tax_payment", "2026-01-01", fact_kind="arrears", kind="2026-01"),  # 0 months
        # S1 = 100 + 2 - 1 - 4 - 2 - 5 - 2.5 - 6 = 81.5 -> C (80 <= 81.5 < 100).

        # S2 — a positive cap and the total's maximum. Founded 2016-01-30: 120 months = 10 years -> [10, ): +4.
        f(S2, "legal_entity", "2016-01-30", kind="存续"),
        f(S2, rew, "2025-05-01", doc="奖S2-1", kind="授予荣誉称号"),  # +5
        f(S2, rew, "2025-09-01", doc="奖S2-2", kind="授予荣誉称号"),  # +5: rewards 10 > cap 8: a cap line of -2
        f(S2, rew, "2025-02-01", doc="奖S2-3", kind="通报表扬", status="expired"),  # not counted: 0
        # Streak of 24 months, last month 2026-01 (0 months old, inside the 3-month window) -> [24, ): +4.
        f(S2, "tax_payment", "2026-01-01", fact_kind="on_time_streak", measure=24),
        # S2 = 100 + 4 + (5 + 5 - 2) + 4 = 116 > max 115: a total_bound line of -1 -> 115 -> A.

        # S3 — negative caps (both a category and a polarity indicator), the total's minimum, a grade limit that
        # changes nothing. Founded 2024-02-01: 23 months, 1 year -> [0, 3): 0 (a measure line of 0 points).
        f(S3, "legal_entity", "2024-02-01", kind="吊销"),  # register_status 吊销: -30
        f(S3, pen, "2025-10-01", doc="罚S3-1", severity="serious_special"),  # 3 months: -20
        f(S3, pen, "2025-11-15", doc="罚S3-2", severity="serious_special"),  # 2 months: -20; -40 < -25: cap +15
        f(S3, lst, "2025-08-01", doc="列S3-1", kind="严重违法失信名单", severity="serious"),  # -30
        f(S3, enf, "2025-07-01", doc="强S3-1", kind="查封场所、设施或者财物"),  # polarity negative: -3
        f(S3, enf, "2025-08-01", doc="强S3-2", kind="扣押财物"),  # -3; -6 < -5: cap +1
        # S3 = 100 + 0 - 30 - 40 + 15 - 30 - 6 + 1 = 10 < min 50: total_bound +40 -> 50 -> D by points,
        # and D by its listing too: the limit does not lower it (no grade_limit_zh).

        # S4 — listed: forced to D whatever its points. Founded 2016-01-31: 120 - 1 = 119 months, 9 years -> +2.
        f(S4, "legal_entity", "2016-01-31", kind="存续"),
        f(S4, lst, "2025-12-01", doc="列S4-1", kind="严重违法失信名单", severity="serious"),  # -30
        f(S4, rew, "2025-06-01", doc="奖S4-1", kind="授予荣誉称号"),  # +5
        f(S4, rew, "2025-07-01", doc="奖S4-2", kind="通报表扬"),  # +2
        f(S4, "tax_payment", "2026-01-01", fact_kind="on_time_streak", measure=30),  # +4
        # S4 = 100 + 2 - 30 + 7 + 4 = 83 -> C by points, D after the grade limit.

        # S5 — ranges and windows; a score exactly at B's min_score. Founded 2023-01-30: 36 months = 3 years
        # -> [3, 10): +2.
        f(S5, "legal_entity", "2023-01-30", kind="存续"),
        f(S5, "tax_payment", "2025-02-01", fact_kind="arrears", kind="2025-02"),  # 11 months: in the window
        f(S5, "social_insurance", "2025-03-01", fact_kind="arrears", kind="2025-03"),  # 10 months: in
        f(S5, "tax_payment", "2025-01-01", fact_kind="arrears", kind="2025-01"),  # 12 months: out of the window
        # arrears: count 2 -> [1, 3): -2 (with the 12-month-old month it would be 3 -> [3, ): -6).
        f(S5, "tax_payment", "2025-12-01", fact_kind="on_time_streak", measure=12),  # 1 month old; 12 -> [12, 24): +2
        f(S5, "social_insurance", "2026-01-01", fact_kind="on_time_streak", measure=30),  # not a dataset of on_time
        f(S5, ins, "2025-10-10", doc="查S5-1", kind="责令整改"),  # 3 months: in the 6-month window: -2
        f(S5, ins, "2025-07-30", doc="查S5-3", kind="不合格"),  # 6 months: out of the window: not counted, 0
        f(S5, ins, "2025-11-10", doc="查S5-2", kind="合格"),  # no category: no line
        f(S5, lst, "2025-04-01", doc="列S5-1", kind="严重违法失信名单", severity="serious", status="list_exited"),
        # (exited: a not_counted line, and no grade limit)
        # S5 = 100 + 2 - 2 + 2 - 2 = 100 -> B exactly at its min_score.

        # S6 — a score exactly at A's min_score; a decay step of factor 0. Founded 2016-01-30: 10 years -> +4.
        f(S6, "legal_entity", "2016-01-30", kind="存续"),
        f(S6, rew, "2025-07-01", doc="奖S6-1", kind="授予荣誉称号"),  # +5
        f(S6, rew, "2025-08-01", doc="奖S6-2", kind="通报表扬"),  # +2
        f(S6, pen, "2025-06-15", doc="罚S6-1", severity="minor", status="minor_not_published"),  # 7 months: -1
        f(S6, "credit_repair", "2023-12-01", doc="修S6-1", kind="信用修复"),  # 25 months: 2 x 0 = 0 (a fact line)
        f(S6, "credit_repair", "2025-09-01", doc="修S6-2", kind="异议成立"),  # no category: no line
        # S6 = 100 + 4 + 5 + 2 - 1 + 0 = 110 -> A exactly at its min_score.

        # S7 — just under B. Founded 2016-01-31: 9 years -> +2. A serious penalty 24 months old: -10 x 0.25.
        f(S7, "legal_entity", "2016-01-31", kind="存续"),
        f(S7, pen, "2024-01-30", doc="罚S7-1", severity="serious"),
        # S7 = 100 + 2 - 2.5 = 99.5 -> C.

        # Not scored: a natural person (even with a register fact), an unidentified subject, and a subject that is
        # not in the register (no register fact).
        f(PERSON, "legal_entity", "2015-01-01", kind="存续"),
        f(PERSON, pen, "2025-10-01", doc="罚P-1", severity="general"),
        f(UNIDENTIFIED, "legal_entity", "2015-01-01", kind="存续"),
        f(UNIDENTIFIED, pen, "2025-10-01", doc="罚N-1", severity="general"),
        f(UNREGISTERED, pen, "2025-10-01", doc="罚U-1", severity="general"),
    ]


EXPECTED_2026 = {  # subject: (score, grade, grade_by_points, grade_limit_zh)
    S1: (81.5, "C", "C", None),
    S2: (115.0, "A", "A", None),
    S3: (50.0, "D", "D", None),
    S4: (83.0, "D", "C", "列入严重失信主体名单"),
    S5: (100.0, "B", "B", None),
    S6: (110.0, "A", "A", None),
    S7: (99.5, "C", "C", None),
}

# The same facts under test_2025 (no register_status, dishonesty_list, enforcement, inspection, payment or
# repair indicators; penalties minor -2, general -5, serious -15, serious_special -20, x0.5 from 12 months,
# cap 40; grades A 105, B 95, C 80; no grade limit):
EXPECTED_2025 = {
    S1: (77.5, "D", "D", None),  # 100 + 2 - 2 - 5 - 5x0.5 - 15x0.5 - 15x0.5 = 77.5 < 80
    S2: (112.0, "A", "A", None),  # 100 + 4 + min(10, 8) = 112 <= 120
    S3: (60.0, "D", "D", None),  # 100 + 0 - 20 - 20 = 60 (-40 is not beyond the cap of 40: no cap line)
    S4: (109.0, "A", "A", None),  # 100 + 2 + 5 + 2 = 109 (no grade limit in this version)
    S5: (102.0, "B", "B", None),  # 100 + 2
    S6: (109.0, "A", "A", None),  # 100 + 4 + 5 + 2 - 2 = 109
    S7: (94.5, "C", "C", None),  # 100 + 2 - 15 x 0.5 = 94.5 < 95
}


def write_catalog(tmp_path: Path, models: dict[str, str]) -> Path:
    """A copy of catalogs/ whose scoring/ holds only ``models`` (file name -> YAML text)."""
    copy = tmp_path / "catalogs"
    if not copy.exists():
        shutil.copytree(PROJECT_ROOT / "catalogs", copy)
    for old in (copy / "scoring").glob("*.yaml"):
        old.unlink()
    for name, text in models.items():
        (copy / "scoring" / name).write_text(text, encoding="utf-8")
    return copy


@pytest.fixture
def models(tmp_path, catalog):
    folder = write_catalog(tmp_path, {"test_2026.yaml": MODEL_2026, "test_2025.yaml": MODEL_2025})
    return load_scoring_models(catalog, catalog_dir=folder)


@pytest.fixture
def con(settings, catalog):
    con = connect(settings, catalog)
    insert_facts(con, city_facts(catalog))
    yield con
    con.close()


def scores(con, run_id: str) -> dict[str, tuple]:
    return {s: (score, grade, gp, why) for s, score, grade, gp, why in con.execute(
        "SELECT subject_key, score, grade, grade_by_points, grade_limit_zh FROM mart.scores WHERE run_id = ?",
        [run_id]).fetchall()}


def lines(con, run_id: str, subject: str) -> list[tuple]:
    return con.execute("""
        SELECT line_kind, indicator_id, document, measure, points, factor, age_months, note_zh
        FROM mart.score_lines WHERE run_id = ? AND subject_key = ? ORDER BY line_no""", [run_id, subject]).fetchall()


def test_hand_computed_scores_grades_and_limits(con, catalog, models):
    run = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    assert (run.run_id, run.model_id, run.as_of) == ("20260130-test_2026-01", "test_2026", AS_OF)
    assert scores(con, run.run_id) == EXPECTED_2026
    # Not scored: the natural person, the unidentified subject, the subject not in the register.
    assert run.subjects == 7 and run.grades == {"A": 2, "B": 1, "C": 2, "D": 2}
    assert run.facts == len(city_facts(catalog))
    assert con.execute("SELECT model_id, as_of, subjects, facts FROM mart.score_runs").fetchall() == [
        ("test_2026", AS_OF, 7, len(city_facts(catalog)))]
    assert con.execute("SELECT count(*) FROM mart.score_lines WHERE subject_key IN (?, ?, ?)",
                       [PERSON, UNIDENTIFIED, UNREGISTERED]).fetchall() == [(0,)]
    # Each subject's lines add up to its score; line numbers run 1..n.
    sums = con.execute("""
        SELECT s.subject_key, s.score, round(sum(l.points), 2), count(*), min(l.line_no), max(l.line_no)
        FROM mart.scores s JOIN mart.score_lines l USING (run_id, subject_key)
        WHERE run_id = ? GROUP BY ALL""", [run.run_id]).fetchall()
    assert len(sums) == 7
    for subject, score, total, n, first, last in sums:
        assert (total, first, last) == (score, 1, n), subject


def test_explanation_of_decay_and_statuses(con, catalog, models):
    run = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    # (line_kind, indicator, document, measure, points, factor, age in months, note)
    assert lines(con, run.run_id, S1) == [
        ("base", None, None, None, 100.0, None, None, None),
        ("measure", "years_established", None, 5.0, 2.0, None, None, None),
        # fact lines, newest first; 2025-01-31 is 11 full months old on 2026-01-30, 2025-01-30 exactly 12.
        ("fact", "penalties", "罚S1-5", None, -1.0, 1.0, 1, None),
        ("fact", "penalties", "罚S1-1", None, -4.0, 1.0, 11, None),
        ("fact", "penalties", "罚S1-2", None, -2.0, 0.5, 12, None),
        ("fact", "penalties", "罚S1-4", None, -5.0, 0.5, 23, None),
        ("fact", "penalties", "罚S1-3", None, -2.5, 0.25, 24, None),
        ("not_counted", "penalties", "罚S1-8", None, 0.0, None, 4, "异议成立，不计入评价"),
        ("not_counted", "penalties", "罚S1-6", None, 0.0, None, 7, "已信用修复，不再计入评价"),
        ("not_counted", "penalties", "罚S1-7", None, 0.0, None, 36, "公示期已满，不再计入评价"),
        ("measure", "arrears", None, 3.0, -6.0, None, None, None),  # 3: from 3 <= 3
    ]


def test_explanation_of_caps_and_total_bounds(con, catalog, models):
    run = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    assert lines(con, run.run_id, S2) == [
        ("base", None, None, None, 100.0, None, None, None),
        ("measure", "years_established", None, 10.0, 4.0, None, None, None),
        ("fact", "rewards", "奖S2-2", None, 5.0, 1.0, 4, None),
        ("fact", "rewards", "奖S2-1", None, 5.0, 1.0, 8, None),
        ("not_counted", "rewards", "奖S2-3", None, 0.0, None, 11, "公示期已满，不再计入评价"),
        ("cap", "rewards", None, 10.0, -2.0, None, None, None),  # measure: the indicator's points before the cap
        ("measure", "on_time", None, 24.0, 4.0, None, None, None),
        ("total_bound", None, None, 116.0, -1.0, None, None, None),  # measure: the total before the bound
    ]
    assert lines(con, run.run_id, S3) == [
        ("base", None, None, None, 100.0, None, None, None),
        ("measure", "years_established", None, 1.0, 0.0, None, None, None),
        ("fact", "register_status", None, None, -30.0, 1.0, 23, None),
        ("fact", "penalties", "罚S3-2", None, -20.0, 1.0, 2, None),
        ("fact", "penalties", "罚S3-1", None, -20.0, 1.0, 3, None),
        ("cap", "penalties", None, -40.0, 15.0, None, None, None),
        ("fact", "dishonesty_list", "列S3-1", None, -30.0, 1.0, 5, None),
        ("fact", "enforcement", "强S3-2", None, -3.0, 1.0, 5, None),
        ("fact", "enforcement", "强S3-1", None, -3.0, 1.0, 6, None),
        ("cap", "enforcement", None, -6.0, 1.0, None, None, None),
        ("total_bound", None, None, 10.0, 40.0, None, None, None),
    ]
    categories = con.execute("SELECT indicator_id, category FROM mart.score_lines WHERE run_id = ? "
                             "AND subject_key = ? AND line_kind = 'fact' ORDER BY line_no", [run.run_id, S3]).fetchall()
    # by kind, by severity, by polarity
    assert categories == [("register_status", "吊销"), ("penalties", "serious_special"),
                          ("penalties", "serious_special"), ("dishonesty_list", "serious"),
                          ("enforcement", "negative"), ("enforcement", "negative")]


def test_explanation_of_ranges_windows_and_zero_factor(con, catalog, models):
    run = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    assert lines(con, run.run_id, S5) == [
        ("base", None, None, None, 100.0, None, None, None),
        ("measure", "years_established", None, 3.0, 2.0, None, None, None),  # 3 years: from 3 <= 3 < 10
        ("not_counted", "dishonesty_list", "列S5-1", None, 0.0, None, 9, "已移出名单，不再计入评价"),
        ("fact", "inspection", "查S5-1", None, -2.0, 1.0, 3, None),
        ("not_counted", "inspection", "查S5-3", None, 0.0, None, 6, "超出统计时段，不计入"),
        ("measure", "arrears", None, 2.0, -2.0, None, None, None),  # 2 months in the 12-month window
        ("measure", "on_time", None, 12.0, 2.0, None, None, None),  # 12: from 12 <= 12 < 24
    ]
    assert lines(con, run.run_id, S6) == [
        ("base", None, None, None, 100.0, None, None, None),
        ("measure", "years_established", None, 10.0, 4.0, None, None, None),
        ("fact", "penalties", "罚S6-1", None, -1.0, 1.0, 7, None),
        ("fact", "rewards", "奖S6-2", None, 2.0, 1.0, 5, None),
        ("fact", "rewards", "奖S6-1", None, 5.0, 1.0, 6, None),
        ("fact", "repairs_completed", "修S6-1", None, 0.0, 0.0, 25, None),  # older than 24 months: factor 0
    ]
    # Age in whole years at the boundary: founded 2016-01-31 is 9 years old on 2026-01-30 (S4, S7: +2),
    # founded 2016-01-30 exactly 10 (S2, S6: +4).
    years = dict(con.execute("SELECT subject_key, measure FROM mart.score_lines WHERE run_id = ? "
                             "AND indicator_id = 'years_established'", [run.run_id]).fetchall())
    assert years == {S1: 5.0, S2: 10.0, S3: 1.0, S4: 9.0, S5: 3.0, S6: 10.0, S7: 9.0}


def test_two_model_versions_coexist(con, catalog, models):
    assert sorted(models.models) == ["test_2025", "test_2026"]
    # in force by date; effective_to is inclusive
    assert models.in_force(date(2025, 12, 31)).id == "test_2025"
    assert models.in_force(date(2026, 1, 1)).id == "test_2026"
    with pytest.raises(CatalogError, match="no scoring model is in force on 2024-12-31"):
        models.in_force(date(2024, 12, 31))
    new = run_scoring(con, catalog, models, AS_OF, build_facts=False)  # the model in force on 2026-01-30
    old = run_scoring(con, catalog, models, AS_OF, model_id="test_2025", build_facts=False)
    assert (new.model_id, old.model_id) == ("test_2026", "test_2025")
    assert old.run_id == "20260130-test_2025-01"
    assert scores(con, new.run_id) == EXPECTED_2026
    assert scores(con, old.run_id) == EXPECTED_2025
    assert lines(con, old.run_id, S1) == [
        ("base", None, None, None, 100.0, None, None, None),
        ("measure", "years_established", None, 5.0, 2.0, None, None, None),
        ("fact", "penalties", "罚S1-5", None, -2.0, 1.0, 1, None),
        ("fact", "penalties", "罚S1-1", None, -5.0, 1.0, 11, None),
        ("fact", "penalties", "罚S1-2", None, -2.5, 0.5, 12, None),
        ("fact", "penalties", "罚S1-4", None, -7.5, 0.5, 23, None),
        ("fact", "penalties", "罚S1-3", None, -7.5, 0.5, 24, None),
        ("not_counted", "penalties", "罚S1-8", None, 0.0, None, 4, "异议成立，不计入评价"),
        ("not_counted", "penalties", "罚S1-6", None, 0.0, None, 7, "已信用修复，不再计入评价"),
        ("not_counted", "penalties", "罚S1-7", None, 0.0, None, 36, "公示期已满，不再计入评价"),
    ]
    with pytest.raises(CatalogError, match="unknown scoring model 'test_2027'"):
        run_scoring(con, catalog, models, AS_OF, model_id="test_2027", build_facts=False)
    assert con.execute("SELECT run_id, model_id FROM mart.score_runs ORDER BY run_id").fetchall() == [
        ("20260130-test_2025-01", "test_2025"), ("20260130-test_2026-01", "test_2026")]


def test_overlapping_versions_are_refused(tmp_path, catalog):
    overlapping = MODEL_2025.replace("effective_to: 2025-12-31", "effective_to: 2026-01-01")
    folder = write_catalog(tmp_path, {"test_2026.yaml": MODEL_2026, "test_2025.yaml": overlapping})
    with pytest.raises(CatalogError) as err:
        load_scoring_models(catalog, catalog_dir=folder)
    # test_2025 loads first (files in name order); test_2026 is the one refused, naming the other.
    assert str(folder / "scoring" / "test_2026.yaml") in str(err.value)
    assert "in force on the same days as 'test_2025'" in str(err.value)


def test_same_day_twice_gives_the_same_scores(con, catalog, models):
    first = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    second = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    assert (first.run_id, second.run_id) == ("20260130-test_2026-01", "20260130-test_2026-02")
    assert scores(con, first.run_id) == scores(con, second.run_id) == EXPECTED_2026
    every = "SELECT * EXCLUDE (run_id) FROM mart.score_lines WHERE run_id = ? ORDER BY subject_key, line_no"
    assert con.execute(every, [first.run_id]).fetchall() == con.execute(every, [second.run_id]).fetchall()
    assert (first.grades, first.subjects, first.facts) == (second.grades, second.subjects, second.facts)


def test_runs_are_exported_to_parquet(con, catalog, models, settings):
    run = run_scoring(con, catalog, models, AS_OF, build_facts=False, settings=settings)
    folder = settings.data_root / "mart" / "scores" / f"run_id={run.run_id}"
    assert run.folder == folder
    assert sorted(p.name for p in folder.iterdir()) == ["score_lines.parquet", "scores.parquet"]
    pq = duckdb.connect()
    exported = pq.execute("SELECT subject_key, score, grade, grade_by_points, grade_limit_zh, model_id, as_of "
                          "FROM read_parquet(?)", [str(folder / "scores.parquet")]).fetchall()
    assert {s: (score, g, gp, why) for s, score, g, gp, why, *_ in exported} == EXPECTED_2026
    assert {(m, d) for *_, m, d in exported} == {("test_2026", AS_OF)}
    (n_lines,) = con.execute("SELECT count(*) FROM mart.score_lines WHERE run_id = ?", [run.run_id]).fetchone()
    assert pq.execute("SELECT count(*), count(DISTINCT run_id) FROM read_parquet(?)",
                      [str(folder / "score_lines.parquet")]).fetchone() == (n_lines, 1)
    # Without settings nothing is exported.
    again = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    assert again.folder is None and not (folder.parent / f"run_id={again.run_id}").exists()


def test_a_count_of_no_facts_is_zero(tmp_path, settings, catalog):
    """`measure: count` over no fact in the window is 0, and a range from 0 holds for it
    (catalogs/scoring/*.yaml: "the measure over the facts aged under window_months (count of facts ...)
    picks the first range with from <= value < to")."""
    model = """\
id: test_count
name_zh: 计数测试
effective_from: 2026-01-01
base: 100
total: {min: 0, max: 120}
grades: [{grade: A, name_zh: 好, min_score: 0}]
dimensions:
  - id: payment
    name_zh: 缴费履约
    indicators:
      - id: no_arrears
        name_zh: 近12个月无欠缴
        datasets: [tax_payment]
        fact_kind: arrears
        window_months: 12
        by: range
        measure: count
        ranges: [{from: 0, to: 1, points: 3}, {from: 1, points: -2}]
"""
    models = load_scoring_models(catalog, catalog_dir=write_catalog(tmp_path, {"test_count.yaml": model}))
    con = connect(settings, catalog)
    insert_facts(con, [
        fact(catalog, S1, "legal_entity", "2020-06-01", kind="存续"),  # no arrears at all: count 0 -> +3
        fact(catalog, S2, "legal_entity", "2020-06-01", kind="存续"),
        fact(catalog, S2, "tax_payment", "2024-06-01", fact_kind="arrears", kind="2024-06"),  # 19 months: out -> 0
        fact(catalog, S3, "legal_entity", "2020-06-01", kind="存续"),
        fact(catalog, S3, "tax_payment", "2025-06-01", fact_kind="arrears", kind="2025-06"),  # 7 months: 1 -> -2
    ])
    run = run_scoring(con, catalog, models, AS_OF, build_facts=False)
    got = dict(con.execute("SELECT subject_key, score FROM mart.scores WHERE run_id = ?", [run.run_id]).fetchall())
    con.close()
    assert got == {S1: 103.0, S2: 103.0, S3: 98.0}


# --- Malformed model files: refused at load, naming the file and the indicator --------------------------------

def _indicator(model: dict, ind_id: str) -> dict:
    return next(i for d in model["dimensions"] for i in d["indicators"] if i["id"] == ind_id)


def _set(ind_id: str, **changes):
    def change(model: dict) -> None:
        _indicator(model, ind_id).update(changes)
    return change


def _drop_final_decay(model: dict) -> None:
    _indicator(model, "penalties")["decay"] = [{"under_months": 12, "factor": 1.0}, {"under_months": 24, "factor": 0.5}]


def _twice(model: dict) -> None:
    model["dimensions"][1]["indicators"].append(dict(_indicator(model, "penalties")))


MALFORMED = {
    # case: (change to test_2026, words the message must hold besides the file name)
    "unknown_dataset": (_set("penalties", datasets=["admin_penalty", "admin_penalties"]),
                        ["indicator 'penalties'", "dataset 'admin_penalties' is not in the catalog"]),
    "severity_not_a_class": (_set("penalties", categories={"general": -4, "grave": -50}),
                             ["indicator 'penalties'", "['grave'] are not severity classes"]),
    "polarity_unknown": (_set("enforcement", categories={"negativ": -3}),
                         ["indicator 'enforcement'", "['negativ'] are not polarities"]),
    "overlapping_ranges": (_set("years_established", ranges=[{"from": 0, "to": 5, "points": 0},
                                                             {"from": 3, "to": 10, "points": 2}]),
                           ["indicator 'years_established'", "ranges overlap or are not in order: 0.0..5.0 then 3.0"]),
    "open_range_not_last": (_set("arrears", ranges=[{"from": 1, "points": -2}, {"from": 3, "points": -6}]),
                            ["indicator 'arrears'", "ranges overlap or are not in order"]),
    "empty_range": (_set("on_time", ranges=[{"from": 12, "to": 12, "points": 2}]),
                    ["indicator 'on_time'", "range from 12.0 to 12.0 is empty"]),
    "decay_without_final_step": (_drop_final_decay, ["indicator 'penalties'", "the last decay step must have no"]),
    "decay_not_increasing": (_set("penalties", decay=[{"under_months": 24, "factor": 0.5},
                                                      {"under_months": 12, "factor": 1.0}, {"factor": 0.25}]),
                             ["indicator 'penalties'", "increasing 'under_months'"]),
    "decay_factor_above_one": (_set("repairs_completed", decay=[{"under_months": 24, "factor": 1.5}, {"factor": 0}]),
                               ["indicator 'repairs_completed'", "decay.0.factor"]),
    "range_with_categories": (_set("arrears", categories={"2025-01": -1}),
                              ["indicator 'arrears'", "a range indicator takes no 'categories' or 'decay'"]),
    "category_without_categories": (_set("inspection", categories={}),
                                    ["indicator 'inspection'", "needs 'category_of' and 'categories'"]),
    "unknown_key": (_set("rewards", caps=8), ["indicator 'rewards'", "caps", "Extra inputs are not permitted"]),
    "negative_cap": (_set("rewards", cap=-8), ["indicator 'rewards'", "cap"]),
    "indicator_twice": (_twice, ["indicator 'penalties' appears twice"]),
    "grade_limit_unknown_grade": (lambda m: m["grade_limits"][0].update(grade="E"),
                                  ["grade_limits: 'E' is not one of the grades"]),
    "grade_limit_unknown_dataset": (lambda m: m["grade_limits"][0].update(datasets=["blacklist"]),
                                    ["grade_limits: dataset 'blacklist' is not in the catalog"]),
    "last_grade_above_total_min": (lambda m: m["grades"][-1].update(min_score=60),
                                   ["the last grade's min_score must be at most total.min"]),
    "id_not_file_name": (lambda m: m.update(id="test_2027"),
                         ["id 'test_2027' must equal the file name 'test_2026'"]),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_model_is_refused_at_load(case, tmp_path, catalog):
    change, words = MALFORMED[case]
    model = yaml.safe_load(MODEL_2026)
    change(model)
    folder = write_catalog(tmp_path, {"test_2025.yaml": MODEL_2025,
                                      "test_2026.yaml": yaml.safe_dump(model, allow_unicode=True)})
    with pytest.raises(CatalogError) as err:
        load_scoring_models(catalog, catalog_dir=folder)
    message = str(err.value)
    assert str(folder / "scoring" / "test_2026.yaml") in message
    for w in words:
        assert w in message, message


def test_malformed_model_stops_the_job_before_anything_is_written(tmp_path, monkeypatch):
    folder = write_catalog(tmp_path, {"test_2025.yaml": MODEL_2025, "test_2026.yaml": MODEL_2026.replace(
        "categories: {minor: -1, general: -4, serious: -10, serious_special: -20}",
        "categories: {minor: -1, general: -4, serious: -10, very_serious: -20}")})
    monkeypatch.setenv("CREDIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CREDIT_CATALOG_DIR", str(folder))
    settings, catalog = get_settings(), load_catalog(folder)
    con = connect(settings, catalog)  # a warehouse that already exists
    con.close()
    with pytest.raises(CatalogError, match="indicator 'penalties': categories \\['very_serious'\\]"):
        score_days(settings, catalog, [AS_OF])
    con = connect(settings, catalog, read_only=True)
    counts = con.execute("SELECT (SELECT count(*) FROM mart.score_runs), (SELECT count(*) FROM mart.scores), "
                         "(SELECT count(*) FROM mart.score_lines), (SELECT count(*) FROM mart.credit_records), "
                         "(SELECT count(*) FROM mart.credit_warnings)").fetchone()
    con.close()
    assert counts == (0, 0, 0, 0, 0)
    assert not (settings.data_root / "mart").exists()
    # Fixed, the same job writes its run.
    write_catalog(tmp_path, {"test_2025.yaml": MODEL_2025, "test_2026.yaml": MODEL_2026})
    (outcome,) = score_days(settings, catalog, [AS_OF])
    assert outcome.run.run_id == "20260130-test_2026-01"
