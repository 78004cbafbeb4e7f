"""Credit warnings (warehouse/credit_warnings.py) on hand-made facts, with the lists worked out by hand.

The facts are inserted straight into ``mart.credit_records`` of a real DuckDB warehouse for two as-of
days in different years; the rules are the city's own (catalogs/credit_warnings.yaml: 2 or more
published negative records of admin_penalty or dishonesty_list, legal entities only) and the repair
periods are those of catalogs/publication.yaml, restated in ``test_premises`` so that a change to
either file shows up there first.
"""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb
import pytest

from foundation.scoring_model import load_warning_rules
from sample_city.entities import make_uscc
from warehouse.credit_records import FACT_COLUMNS
from warehouse.credit_warnings import YearGuidance, build_warnings, guidance_by_year
from warehouse.db import connect

pytestmark = pytest.mark.integration

DAY1 = date(2025, 3, 31)
DAY2 = date(2026, 6, 30)
W1, W2, W3, W5 = (make_uscc("91", "371083", f"MA{n:06d}") for n in (201, 202, 203, 205))
PERSON = "P:" + hashlib.sha256(b"test-person").hexdigest()
UNIDENTIFIED = "N:" + hashlib.md5("某某商行".encode()).hexdigest()

PEN, LST, ENF, REP = "admin_penalty", "dishonesty_list", "admin_enforcement", "credit_repair"
POLARITY = {PEN: "negative", LST: "negative", ENF: "negative", REP: "positive"}
PENALTY_STEPS = ["全面履行行政处罚决定（缴清罚款、没收违法所得等）", "签署并公开《信用修复承诺书》",
                 "最短公示期满后，通过“信用中国”网站或向决定机关提出信用修复申请"]
LIST_STEPS = ["纠正失信行为、履行相关义务", "签署并公开《信用修复承诺书》，参加信用修复培训",
              "向认定单位提出移出严重失信主体名单申请"]


def row(as_of: date, subject: str, dataset_id: str, doc: str, decided: str, *, severity: str | None = None,
        version: str | None = None, status: str = "published", kind: str | None = None) -> dict:
    return {"as_of": as_of, "record_id": hashlib.md5(f"{dataset_id}|{doc}|{subject}".encode()).hexdigest(),
            "subject_key": subject, "dataset_id": dataset_id, "fact_kind": "record", "record_kind": kind,
            "polarity": POLARITY[dataset_id], "severity": severity, "rule_version": version,
            "decided": date.fromisoformat(decided), "published_until": None, "status": status,
            "repair_kind": None, "repaired_on": None, "measure": None, "document": doc,
            "department": "market_regulation", "batch_id": "test-batch", "source_row": 1}


FACTS = [
    # --- 2025-03-31 -------------------------------------------------------------------------------------
    # W5: three published penalties -> on the list.
    #   serious_special under ndrc_2019_527 (decided 2022-06-15, shown until 2025-06-14): not repairable early.
    row(DAY1, W5, PEN, "罚W5-1", "2022-06-15", severity="serious_special", version="ndrc_2019_527"),
    #   serious under ndrc_2019_527: min 6 months -> repairable from 2023-10-20.
    row(DAY1, W5, PEN, "罚W5-2", "2023-04-20", severity="serious", version="ndrc_2019_527"),
    #   general under ndrc_order_58: min 3 months -> repairable from 2025-03-31.
    row(DAY1, W5, PEN, "罚W5-3", "2024-12-31", severity="general", version="ndrc_order_58"),
    # W3: one list entry -> not on the list yet.
    row(DAY1, W3, LST, "列W3-1", "2025-03-01", severity="serious", version="ndrc_order_58", kind="严重违法失信名单"),

    # --- 2026-06-30 -------------------------------------------------------------------------------------
    # W1: exactly two (the threshold) -> on the list.
    #   general under ndrc_order_58: 2025-11-30 + 3 months = 2026-02-28 (no 30 February: the month's end).
    row(DAY2, W1, PEN, "罚W1-1", "2025-11-30", severity="general", version="ndrc_order_58"),
    #   serious under ndrc_order_36: min 12 months -> 2027-04-15.
    row(DAY2, W1, PEN, "罚W1-2", "2026-04-15", severity="serious", version="ndrc_order_36"),
    # W2: one published penalty; the rest do not count -> not on the list.
    row(DAY2, W2, PEN, "罚W2-1", "2025-09-10", severity="general", version="ndrc_order_58"),
    row(DAY2, W2, PEN, "罚W2-2", "2025-05-20", severity="general", version="ndrc_order_58", status="repaired"),
    row(DAY2, W2, PEN, "罚W2-3", "2023-06-01", severity="general", version="ndrc_order_58", status="expired"),
    row(DAY2, W2, LST, "列W2-1", "2025-06-01", severity="serious", version="ndrc_order_58", status="list_exited",
        kind="严重违法失信名单"),
    row(DAY2, W2, ENF, "强W2-1", "2026-01-10", kind="扣押财物"),  # negative and published, not a warning dataset
    row(DAY2, W2, REP, "罚W2-2", "2026-02-01", status="in_effect", kind="信用修复"),  # a repair in 2026, not guided
    # W3: a penalty and the list entry -> on the list.
    #   general under ndrc_order_36: 2026-05-31 + 3 months = 2026-08-31.
    row(DAY2, W3, PEN, "罚W3-1", "2026-05-31", severity="general", version="ndrc_order_36"),
    #   the list entry under ndrc_order_58 (serious: min 3 months) -> 2025-06-01.
    row(DAY2, W3, LST, "列W3-1", "2025-03-01", severity="serious", version="ndrc_order_58", kind="严重违法失信名单"),
    row(DAY2, W3, REP, "罚W3-0", "2026-03-01", status="in_effect", kind="异议成立"),  # an objection, not a repair
    # W5: 罚W5-1 expired 2025-06-15, 罚W5-2 repaired on 2025-05-10 (after its warning of 2025-03-31) -> one left.
    row(DAY2, W5, PEN, "罚W5-1", "2022-06-15", severity="serious_special", version="ndrc_2019_527", status="expired"),
    row(DAY2, W5, PEN, "罚W5-2", "2023-04-20", severity="serious", version="ndrc_2019_527", status="repaired"),
    row(DAY2, W5, PEN, "罚W5-3", "2024-12-31", severity="general", version="ndrc_order_58"),
    row(DAY2, W5, REP, "罚W5-2", "2025-05-10", status="in_effect", kind="信用修复"),  # a repair in 2025, guided
    # A natural person and an unidentified subject with two published penalties each: never listed.
    row(DAY2, PERSON, PEN, "罚P-1", "2026-01-05", severity="general", version="ndrc_order_58"),
    row(DAY2, PERSON, PEN, "罚P-2", "2026-02-05", severity="general", version="ndrc_order_58"),
    row(DAY2, UNIDENTIFIED, PEN, "罚N-1", "2026-01-05", severity="general", version="ndrc_order_58"),
    row(DAY2, UNIDENTIFIED, PEN, "罚N-2", "2026-02-05", severity="general", version="ndrc_order_58"),
]

# subject, records, document, dataset, severity, rule version, repairable, repairable from, steps
EXPECTED_DAY1 = [
    (W5, 3, "罚W5-1", PEN, "serious_special", "ndrc_2019_527", False, None, PENALTY_STEPS),
    (W5, 3, "罚W5-2", PEN, "serious", "ndrc_2019_527", True, date(2023, 10, 20), PENALTY_STEPS),
    (W5, 3, "罚W5-3", PEN, "general", "ndrc_order_58", True, date(2025, 3, 31), PENALTY_STEPS),
]
EXPECTED_DAY2 = [
    (W1, 2, "罚W1-1", PEN, "general", "ndrc_order_58", True, date(2026, 2, 28), PENALTY_STEPS),
    (W1, 2, "罚W1-2", PEN, "serious", "ndrc_order_36", True, date(2027, 4, 15), PENALTY_STEPS),
    (W3, 2, "列W3-1", LST, "serious", "ndrc_order_58", True, date(2025, 6, 1), LIST_STEPS),
    (W3, 2, "罚W3-1", PEN, "general", "ndrc_order_36", True, date(2026, 8, 31), PENALTY_STEPS),
]


@pytest.fixture
def rules(catalog):
    return load_warning_rules(catalog)


@pytest.fixture
def con(settings, catalog):
    con = connect(settings, catalog)
    con.executemany(f"INSERT INTO mart.credit_records ({', '.join(FACT_COLUMNS)}) "
                    f"VALUES ({', '.join('?' for _ in FACT_COLUMNS)})", [[r[c] for c in FACT_COLUMNS] for r in FACTS])
    yield con
    con.close()


def listed(con, day: date) -> list[tuple]:
    return con.execute("""
        SELECT subject_key, records, document, dataset_id, severity, rule_version, repairable, repairable_from,
            steps_zh
        FROM mart.credit_warnings WHERE as_of = ? ORDER BY subject_key, decided, record_id""", [day]).fetchall()


def test_premises(rules, catalog):
    """The numbers the expectations below were computed from (catalogs/credit_warnings.yaml, publication.yaml)."""
    assert (rules.threshold, rules.datasets, rules.statuses, rules.subject_kinds, rules.annual_target) == (
        2, [PEN, LST], ["published"], ["legal_entity"], 100)
    assert rules.steps == {PEN: PENALTY_STEPS, LST: LIST_STEPS}
    terms = {(v.id, cls): (t.min_months, t.repairable) for v in catalog.publication.versions
             for cls, t in v.classes.items()}
    assert terms[("ndrc_2019_527", "serious_special")] == (36, False)
    assert terms[("ndrc_2019_527", "serious")] == (6, True)
    assert terms[("ndrc_order_58", "general")] == (3, True)
    assert terms[("ndrc_order_58", "serious")] == (3, True)
    assert terms[("ndrc_order_36", "general")] == (3, True)
    assert terms[("ndrc_order_36", "serious")] == (12, True)


def test_warning_lists_of_two_days(con, catalog, rules):
    assert build_warnings(con, catalog, rules, DAY1) == 1
    assert build_warnings(con, catalog, rules, DAY2) == 2
    assert listed(con, DAY1) == EXPECTED_DAY1
    assert listed(con, DAY2) == EXPECTED_DAY2
    # Natural persons and unidentified subjects are never listed, whatever their records.
    assert con.execute("SELECT count(*) FROM mart.credit_warnings WHERE subject_key[:2] IN ('P:', 'N:')"
                       ).fetchone() == (0,)
    # A day's list is rebuilt, not added to.
    assert build_warnings(con, catalog, rules, DAY2) == 2
    assert listed(con, DAY2) == EXPECTED_DAY2
    assert listed(con, DAY1) == EXPECTED_DAY1


def test_guidance_by_year(con, catalog, rules):
    build_warnings(con, catalog, rules, DAY1)
    build_warnings(con, catalog, rules, DAY2)
    # 2025: W5 guided (listed 2025-03-31); one repair (W5, 2025-05-10), by a subject warned before it.
    # 2026: W1 and W3 guided; one repair (W2, 2026-02-01; W3's objection is no repair), W2 was never warned.
    assert guidance_by_year(con, rules, DAY2) == [YearGuidance(2025, 1, 1, 1, 100), YearGuidance(2026, 2, 1, 0, 100)]
    # As of 2025-12-31 the latest facts are those of 2025-03-31 (no repair yet), the 2026 list is not known.
    assert guidance_by_year(con, rules, date(2025, 12, 31)) == [YearGuidance(2025, 1, 0, 0, 100)]


def test_warnings_are_exported_to_parquet(con, catalog, rules, settings):
    build_warnings(con, catalog, rules, DAY2, settings)
    path = settings.data_root / "mart" / "credit_warnings" / "as_of=2026-06-30" / "credit_warnings.parquet"
    exported = duckdb.connect().execute("SELECT subject_key, document, repairable_from FROM read_parquet(?) "
                                        "ORDER BY subject_key, decided", [str(path)]).fetchall()
    assert exported == [(s, doc, since) for s, _, doc, _, _, _, _, since, _ in EXPECTED_DAY2]
