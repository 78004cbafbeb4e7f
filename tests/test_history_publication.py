"""The two-year city's publication data (sample_city.history_*): severity mix, lists, repairs, attack text, truth.

A 300-entity city over the whole history (2025-01..2026-11), generation only (no warehouse). The files
are re-read with the reference reader of tests/test_demo_city.py; the designed classes of
truth/publication.csv are held against a plain reading of catalogs/publication.yaml's severity rules
written here, so a design that misses the spec fails here, before the warehouse's engine is run.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from test_demo_city import _mapping, check_row, read_feed  # the reference reader of the snapshot's tests

from foundation.catalog import get_catalog
from sample_city import generate_history
from sample_city.history_attacks import CMD, HYPERLINK, IMG, PHONES, SCRIPT, SUM
from sample_city.history_publication import PUBLICATION_AS_OF

pytestmark = pytest.mark.integration

SMALL = 300
SEED = 371083
REASONS = {"published", "minor_not_published", "expired", "repaired", "objection", "revoked", "unclassified",
           "list_exited", "quarantined", "not_yet"}
CLASSES = {"minor", "general", "serious", "serious_special", "unclassified"}
IRREGULAR = ("credit_repair", "dishonesty_list")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("publication")
    return root, generate_history(root, SEED, SMALL)


@pytest.fixture(scope="module")
def publication(history) -> list[dict]:
    return _truth(history[0], "publication.csv")


@pytest.fixture(scope="module")
def repairs(history) -> list[dict]:
    return _truth(history[0], "repairs.csv")


def _truth(root: Path, name: str) -> list[dict]:
    with (root / "truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _day(text: str) -> date:
    return date.fromisoformat(text)


# --- files and routing --------------------------------------------------------------------------


def test_list_and_repair_files_route_to_exactly_their_dataset_and_state_a_month(history):
    root, summary = history
    catalog = get_catalog()
    files = [f for f in _truth(root, "files.csv") if f["dataset_id"] in IRREGULAR]
    assert {f["dataset_id"] for f in files} == set(IRREGULAR)
    assert {f["format"] for f in files} >= {"csv", "xlsx", "jsonl"}
    assert {f["encoding"] for f in files if f["format"] == "csv"} >= {"gb18030", "utf-8"}
    received = {t["file"]: t["submitted_date"] for t in _truth(root, "timeliness.csv")}
    for f in files:
        # no period owed: the warehouse counts such a file in the month it arrives, the month it names
        assert received[f["file"]][:7] == f["month"] == f["period"], f
        department, name = f["file"].split("/")
        assert [d.id for d in catalog.route(department, name)] == [f["dataset_id"]], name
        assert department in catalog.dataset(f["dataset_id"]).departments, f["file"]
        assert (root / "inbox" / f["file"]).is_file()
    per_department = Counter((f["department"], f["dataset_id"]) for f in files)
    assert all(2 <= n <= 12 for n in per_department.values()), per_department  # a few files a year
    assert summary["publication"]["as_of"] == PUBLICATION_AS_OF.isoformat() == "2026-11-30"


def test_repair_files_count_their_invalid_repairs_as_quarantined(history, repairs):
    root, _ = history
    files = {f["file"]: f for f in _truth(root, "files.csv") if f["dataset_id"] == "credit_repair"}
    sent = Counter(r["file"] for r in repairs)
    quarantined = Counter(r["file"] for r in repairs if r["expected_outcome"] == "quarantine")
    assert set(sent) == set(files)
    for name, f in files.items():
        assert int(f["rows_in"]) == sent[name], name
        assert int(f["rows_quarantined"]) == quarantined[name], name
        assert int(f["rows_loaded"]) == sent[name] - quarantined[name], name
    assert not [d for d in _truth(root, "defects.csv") if d["dataset_id"] in IRREGULAR]  # no contract defects


# --- the severity design --------------------------------------------------------------------------


def _classify(values: dict) -> str:
    """catalogs/publication.yaml's penalty rules, read plainly: the first rule whose conditions all hold."""
    rules = get_catalog().publication.severity_rules["penalty"]
    kinds = {k.strip() for k in re.split(r"[;；、,]", str(values.get(rules.kinds_field) or "")) if k.strip()}
    amount = values.get(rules.amount_field) if rules.amount_field else None
    for rule in rules.rules:
        if rule.kinds_any and not kinds & set(rule.kinds_any):
            continue
        if rule.kinds_only and not kinds <= set(rule.kinds_only):
            continue
        over = rule.amount_over
        if over is not None and not (isinstance(amount, Decimal) and amount > Decimal(str(over))):
            continue
        if rule.contains and not any(t in str(values.get(f) or "") for f, ts in rule.contains.items() for t in ts):
            continue
        return rule.severity
    return "unclassified"


def test_the_designed_classes_are_what_the_catalogs_severity_rules_say(history, publication):
    root, _ = history
    ds = get_catalog().dataset("admin_penalty")
    designed = {(r["file"], int(r["row"])): r["severity"] for r in publication if r["dataset_id"] == "admin_penalty"}
    checked: Counter[str] = Counter()
    for name in sorted({f for f, _ in designed}):
        headers, records = read_feed(root / "inbox" / name)
        mapping = _mapping(ds, headers)
        if not mapping:
            continue  # the unmapped export
        for number, record in enumerate(records, start=1):
            if record.error:
                continue
            reasons, clean = check_row(ds, {code: record.cells[i] for i, code in mapping.items()})
            if reasons:
                continue  # quarantined: never classified
            assert _classify(clean) == designed[(name, number)], (name, number, clean)
            checked[designed[(name, number)]] += 1
    assert set(checked) == CLASSES and min(checked.values()) >= 20, checked


def test_the_mix_reaches_every_rule(history, publication):
    """Each rule of the penalty set gives some loaded record its class (not only the first that could)."""
    root, _ = history
    penalties = [r for r in publication if r["dataset_id"] == "admin_penalty" and r["expected_quarantined"] == "false"]
    by_file: dict[str, set[int]] = defaultdict(set)
    for r in penalties:
        by_file[r["file"]].add(int(r["row"]))
    ds = get_catalog().dataset("admin_penalty")
    seen: Counter[str] = Counter()
    for name, rows in by_file.items():
        headers, records = read_feed(root / "inbox" / name)
        mapping = _mapping(ds, headers)
        for number in rows:
            raw = {code: records[number - 1].cells[i] for i, code in mapping.items()}
            _, v = check_row(ds, raw)
            kinds = set(re.split(r"[;；、]", v["CF_CFLB"]))
            if "简易程序" in "".join(str(v.get(f) or "") for f in ("CF_NR", "CF_SY", "BZ")):
                seen["simple_" + next(f for f in ("CF_NR", "CF_SY", "BZ") if "简易程序" in str(v.get(f) or ""))] += 1
            if kinds <= {"警告", "通报批评"}:
                seen["warning_only"] += 1
            if isinstance(v.get("CF_NR_FK"), Decimal) and v["CF_NR_FK"] > 50:
                seen["fine_over_50"] += 1
            if kinds & {"吊销许可证件", "限制从业", "责令停产停业", "责令关闭"}:
                seen["serious_kind"] += 1
            if kinds == {"其他"}:
                seen["other_only"] += 1
            if "警告" in kinds and "罚款" in kinds:
                seen["warning_with_fine"] += 1
    for key in ("simple_CF_NR", "simple_CF_SY", "simple_BZ", "warning_only", "fine_over_50", "serious_kind",
                "other_only", "warning_with_fine"):
        assert seen[key] >= 2, (key, seen)


def test_classes_versions_and_dates_cover_both_sides_of_order_36(publication):
    penalties = [r for r in publication if r["dataset_id"] == "admin_penalty"]
    assert {r["severity"] for r in penalties} == CLASSES
    assert {r["version_decision"] for r in penalties} == {"ndrc_2019_527", "ndrc_order_58", "ndrc_order_36"}
    assert {r["version_publication"] for r in penalties} == {"ndrc_order_36"}  # in force on the as-of day
    decided = [_day(r["decided"]) for r in penalties if r["decided"]]
    assert min(decided) < date(2023, 5, 1) and any(date(2023, 5, 1) <= d < date(2025, 1, 1) for d in decided)
    for cls in CLASSES - {"unclassified"}:
        days = [_day(r["decided"]) for r in penalties if r["severity"] == cls]
        assert min(days) < date(2026, 4, 1) <= max(days), cls
    assert {r["severity"] for r in publication if r["dataset_id"] == "dishonesty_list"} == {"serious"}
    others = [r for r in publication if r["dataset_id"] not in ("admin_penalty", "dishonesty_list")]
    assert {r["severity"] for r in others} == {""} and {r["version_decision"] for r in others} == {""}
    assert {r["dataset_id"] for r in publication} == {d.id for d in get_catalog().published()}


def test_gsjzq_is_mostly_blank_some_the_rules_end_some_earlier_some_disagreeing(publication):
    versions = {v.id: v for v in get_catalog().publication.versions}
    penalties = [r for r in publication if r["dataset_id"] == "admin_penalty" and r["decided"]]
    shapes: Counter[str] = Counter()
    for r in penalties:
        if not r["gsjzq"]:
            shapes["blank"] += 1
            continue
        gsjzq, decided, end = _day(r["gsjzq"]), _day(r["decided"]), _day(r["end_decision"])
        terms = versions[r["version_decision"]].classes[r["severity"]]
        rule_end = decided + relativedelta(months=terms.max_months)  # exclusive: the last day shown is the day before
        if gsjzq == rule_end - timedelta(days=1):
            shapes["rule_end"] += 1
        elif gsjzq > rule_end - timedelta(days=1):
            shapes["beyond"] += 1
            assert r["gsjzq_disagreement"] == "true" and end == rule_end, r  # the earlier end wins
        else:
            shapes["earlier"] += 1
            assert end == gsjzq + timedelta(days=1), r
    assert shapes["blank"] > len(penalties) / 2, shapes
    assert min(shapes["rule_end"], shapes["earlier"], shapes["beyond"]) >= 3, shapes
    below = [r for r in penalties if r["gsjzq"] and _day(r["gsjzq"]) < _day(r["decided"]) + relativedelta(months=3)
             and r["severity"] != "minor"]
    assert below and all(r["gsjzq_disagreement"] == "true" for r in below)


# --- publication as of the day -----------------------------------------------------------------------


def test_every_reason_occurs_and_the_flags_follow_the_reasons(publication):
    for g in ("decision", "publication"):
        assert {r[f"reason_{g}"] for r in publication} <= REASONS
        assert all((r[f"published_{g}"] == "true") == (r[f"reason_{g}"] == "published") for r in publication)
    assert {r["reason_decision"] for r in publication} == REASONS
    assert all(r["as_of"] == "2026-11-30" for r in publication)
    for r in publication:
        reason = r["reason_decision"]
        if reason == "quarantined":
            assert r["expected_quarantined"] == "true"
        elif reason == "not_yet":
            assert _day(r["received"]) > PUBLICATION_AS_OF, r
        elif reason == "published":
            end = _day(r["end_decision"]) if r["end_decision"] else date.max
            assert _day(r["decided"]) <= PUBLICATION_AS_OF < end and _day(r["received"]) <= PUBLICATION_AS_OF, r
        elif reason == "expired":
            assert PUBLICATION_AS_OF >= _day(r["end_decision"]), r
        elif reason in ("repaired", "objection", "revoked", "list_exited"):
            assert _day(r["repair_date"]) <= PUBLICATION_AS_OF and _day(r["repair_date"]) < _day(r["end_decision"])


def test_the_two_governing_choices_differ_where_order_36_shortens_or_hides(publication):
    differ = Counter((r["severity"], r["reason_decision"], r["reason_publication"]) for r in publication
                     if r["published_decision"] != r["published_publication"])
    assert differ[("general", "published", "expired")] >= 10, differ  # No. 58: 36 months; No. 36: 12
    assert differ[("minor", "published", "minor_not_published")] >= 10, differ  # No. 36: minor not published
    for r in publication:
        if r["version_decision"] == "ndrc_order_36" or r["dataset_id"] not in ("admin_penalty", "dishonesty_list"):
            assert r["reason_decision"] == r["reason_publication"], r  # the same terms either way


def test_old_records_are_resent_in_2025_files_and_reach_notice_527(publication):
    # (decisions of late December 2024 are the regular late share of the first files)
    old = [r for r in publication if r["dataset_id"] == "admin_penalty" and r["decided"] < "2024-12-01"]
    assert len(old) == 5 and all("2025" in Path(r["file"]).name for r in old)  # re-sent in files of 2025
    assert {r["version_decision"] for r in old} == {"ndrc_2019_527", "ndrc_order_58"}
    lists = [r for r in publication if r["dataset_id"] == "dishonesty_list" and r["decided"] < "2025-01-01"]
    assert {r["version_decision"] for r in lists} == {"ndrc_2019_527", "ndrc_order_58"}


# --- repairs and the list ------------------------------------------------------------------------------


def test_every_repair_kind_and_every_invalid_reason_on_penalties_and_the_list(repairs, publication):
    assert {(r["target_dataset"], r["kind"]) for r in repairs} == {
        (d, k) for d in ("admin_penalty", "dishonesty_list") for k in ("repair", "objection", "revoked")}
    reasons = Counter(r["expected_reason"] for r in repairs)
    assert set(reasons) == {"", "repair_unknown_record", "repair_before_minimum", "repair_not_repairable"}
    assert reasons[""] > len(repairs) / 2
    assert {r["expected_outcome"] for r in repairs} == {"loaded", "quarantine"}
    assert all((r["expected_outcome"] == "quarantine") == bool(r["expected_reason"]) for r in repairs)
    # not repairable under notice 527 (decision date); under Order No. 36 (publication date) it could be
    assert [(r["expected_reason"], r["expected_reason_publication"]) for r in repairs
            if r["design"] == "not_repairable"] == [("repair_not_repairable", "")]
    assert {r["design"] for r in repairs if r["expected_reason"] == "repair_unknown_record"} == {
        "unknown_document", "wrong_subject"}
    valid = {(r["target_file"], r["target_row"]) for r in repairs if r["expected_outcome"] == "loaded"}
    shown = {(r["file"], r["row"]) for r in publication if r["repair_source"] == "credit_repair"}
    assert valid == shown
    kinds = Counter(r["repair_kind"] for r in publication if r["repair_kind"])
    assert set(kinds) == {"repair", "objection", "revoked", "exit", "list_repair"}


def test_repairs_arrive_a_day_after_the_record_they_name(history, repairs):
    root, _ = history
    received = {t["file"]: datetime.fromisoformat(t["submitted_at"]) for t in _truth(root, "timeliness.csv")}
    for r in repairs:
        if not r["target_file"]:
            continue
        assert received[r["file"]].date() >= received[r["target_file"]].date() + timedelta(days=1), r
        assert _day(r["date"]) > received[r["target_file"]].date(), r
        assert _day(r["date"]) <= PUBLICATION_AS_OF and received[r["file"]].date() <= PUBLICATION_AS_OF, r


def test_list_events_name_an_entry_sent_before_them(history):
    root, _ = history
    ds = get_catalog().dataset("dishonesty_list")
    received = {t["file"]: datetime.fromisoformat(t["submitted_at"]) for t in _truth(root, "timeliness.csv")}
    entries: dict[tuple[str, str], datetime] = {}
    events = []
    for f in sorted((f for f in _truth(root, "files.csv") if f["dataset_id"] == "dishonesty_list"),
                    key=lambda f: received[f["file"]]):
        headers, records = read_feed(root / "inbox" / f["file"])
        mapping = _mapping(ds, headers)
        for record in records:
            _, v = check_row(ds, {code: record.cells[i] for i, code in mapping.items()})
            key = (v["SX_RDWH"], v["SX_XDR_SHXYM"])
            if v["SX_SJLX"] == "列入":
                assert key not in entries
                entries[key] = received[f["file"]]
            else:
                events.append(v["SX_SJLX"])
                assert entries[key] < received[f["file"]], key
    assert set(events) == {"移出", "信用修复"}


# --- attacker text ------------------------------------------------------------------------------------


def _texts(root: Path, dataset_ids: tuple[str, ...]) -> list[tuple[str, int, str, dict]]:
    """(file, row, dataset, clean values) of every loaded row of these datasets."""
    catalog = get_catalog()
    out = []
    for f in _truth(root, "files.csv"):
        if f["dataset_id"] not in dataset_ids or f["status"] == "rejected":
            continue
        ds = catalog.dataset(f["dataset_id"])
        headers, records = read_feed(root / "inbox" / f["file"])
        mapping = _mapping(ds, headers)
        for number, record in enumerate(records, start=1):
            if not record.error:
                raw = {code: record.cells[i] for i, code in mapping.items()}
                reasons, _ = check_row(ds, raw)
                if not reasons:
                    out.append((f["file"], number, f["dataset_id"], raw))
    return out


def test_attack_strings_sit_in_valid_rows_of_penalties_and_the_list(history):
    root, _ = history
    defects = {(d["file"], int(d["row"])) for d in _truth(root, "defects.csv")}
    rows = _texts(root, ("admin_penalty", "dishonesty_list"))
    wide = re.compile(r"[０-９]{17}[０-９Ｘ]")
    spaced = re.compile(r"\d{6} \d{8} \d{3}[\dX]")
    plain = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")
    found: dict[str, set[str]] = defaultdict(set)
    probes = {"script": SCRIPT, "img": IMG, "hyperlink": HYPERLINK, "cmd": CMD, "sum": SUM,
              "phone": PHONES[0], "phone_spaced": PHONES[1], "phone_hyphen": PHONES[2]}
    for name, number, dataset_id, raw in rows:
        fact = raw.get("CF_SY") or raw.get("SX_SY") or ""
        text = fact + (raw.get("BZ") or "")
        hits = {k for k, probe in probes.items() if probe in text}
        hits |= {"rid_wide"} if wide.search(fact) else set()
        hits |= {"rid_spaced"} if spaced.search(fact) else set()
        hits |= {"rid_plain"} if plain.search(fact) else set()
        for hit in hits:
            found[hit].add(dataset_id)
        if hits:
            assert (name, number) not in defects, (name, number)  # a valid record: it loads
    assert set(found) == set(probes) | {"rid_wide", "rid_spaced", "rid_plain"}, found
    assert any("dishonesty_list" in where for where in found.values())
    formulas = [raw.get("BZ") for *_, raw in rows if (raw.get("BZ") or "")[:1] in ("=", "+", "@")]
    assert {HYPERLINK, CMD, SUM} <= set(formulas)  # a formula leads its cell
