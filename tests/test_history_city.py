"""Two years of the sample city (sample_city.history): the catalog's delivery grid and a true truth.

A 300-entity city over the whole history (2025-01..2026-11) carries most checks; a four-month
one (2025-01..2025-04) the determinism checks; one slow test the default 3000-entity city.
The files are re-read with the reference reader of tests/test_demo_city.py (written from the
loader's contract); periods, deadlines and timeliness verdicts are recounted with
``transforms.periods`` and ``transforms.working_days``, not with the generator's helpers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import openpyxl
import pytest
import python_calamine
from test_demo_city import _mapping, audit, read_feed  # the reference reader of the snapshot's tests

from foundation.catalog import get_catalog
from sample_city import generate_history
from sample_city.feeds import PENALTY_OLD_HEADERS
from sample_city.rows import Feed, Row
from transforms.periods import deadline, is_resend, next_period, parse_label, period_in_name, period_of_day
from transforms.read_excel import cell_text
from transforms.working_days import Verdict, timeliness, working_days_between

pytestmark = pytest.mark.integration

SMALL = 300
SEED = 371083
FIRST, LAST = date(2025, 1, 1), date(2026, 11, 1)
HOLIDAY_MONTHS = {"2025-01", "2025-09", "2026-01", "2026-09"}
PAYMENT_MONTH = {"social_insurance": "JFYF", "housing_fund": "JCYF", "utility_payment": "ZDYF"}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("history")
    return root, generate_history(root, SEED, SMALL)


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("short")
    generate_history(root, SEED, SMALL, first="2025-01", last="2025-04")
    return root


@pytest.fixture(scope="module")
def feeds(history) -> dict[str, tuple[list[str], list]]:
    """Every file of the long history, read once: path -> (headers, records)."""
    root, _ = history
    return {f["file"]: read_feed(root / "inbox" / f["file"]) for f in _truth(root, "files.csv")}


def _truth(root: Path, name: str) -> list[dict]:
    with (root / "truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _hashes(root: Path) -> dict[str, tuple[str, int]]:
    """Content and, for the inbox, the mtime of every file (the truth's mtimes are wall-clock)."""
    return {
        p.relative_to(root).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns if "inbox" in p.parts else 0,
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _expected_grid() -> dict[tuple[str, str, str], tuple[str, int]]:
    """(department, dataset, period) -> (cadence, deadline working days), from the catalog alone."""
    grid = {}
    for ds in get_catalog().datasets.values():
        if ds.delivery is None:
            continue
        since = parse_label(ds.delivery.since).month
        for department in ds.expected_departments():
            rule = ds.delivery.rule_for(department)
            start = max(FIRST, since)
            period = period_of_day(start, rule.cadence)
            while period.month <= LAST:
                if period.month >= start:
                    grid[(department, ds.id, period.label)] = (rule.cadence, rule.deadline_working_days)
                period = next_period(period)
    return grid


def _holiday_period(label: str, working_days: int) -> bool:
    """Monthly: January and September; a week: the Spring Festival or National Day falls after
    its end, by its deadline."""
    period = parse_label(label)
    if period.cadence == "monthly":
        return label in HOLIDAY_MONTHS
    day, due = period.end, deadline(period, working_days)
    while day < due:
        day += timedelta(days=1)
        if chinese_calendar.get_holiday_detail(day)[1] in ("Spring Festival", "National Day"):
            return True
    return False


def _defect_rows(root: Path) -> dict[tuple[str, int], dict]:
    return {(d["file"], int(d["row"])): d for d in _truth(root, "defects.csv")}


def _rate(files: list[dict], defects: list[dict], department: str, months: list[str]) -> float:
    """Defects per row of a department's files of these months (the rejected export left out)."""
    chosen = {
        f["file"]
        for f in files
        if f["department"] == department and f["month"] in months and f["status"] == "loaded"
    }
    rows = sum(int(f["rows_in"]) for f in files if f["file"] in chosen)
    return sum(d["file"] in chosen for d in defects) / rows


def _months(first: str, last: str) -> list[str]:
    out, period = [], parse_label(first)
    while period.label <= last:
        out.append(period.label)
        period = next_period(period)
    return out


# --- determinism -----------------------------------------------------------------------------


@pytest.mark.slow  # generates the short history twice more
def test_same_seed_gives_identical_files_and_mtimes_another_seed_differs(tmp_path, short):
    again, other = tmp_path / "again", tmp_path / "other"
    generate_history(again, SEED, SMALL, first="2025-01", last="2025-04")
    generate_history(other, 7, SMALL, first="2025-01", last="2025-04")
    assert _hashes(again) == _hashes(short)  # XLSX included: no timestamps inside
    mine, theirs = _hashes(short), _hashes(other)
    changed = {k for k, v in theirs.items() if mine.get(k, ("", 0))[0] != v[0]}
    assert len(changed) > len(mine) * 3 // 4


@pytest.mark.slow  # a subprocess
def test_the_command_line_in_another_process_writes_the_same_bytes(tmp_path, short):
    """Another PYTHONHASHSEED, through ``python -m sample_city.history``: no set-order leaks."""
    root = tmp_path / "cli"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-m", "sample_city.history", str(root), "--entities", str(SMALL), "--last", "2025-04"],
        check=True, env=env, cwd=Path(__file__).parents[1], capture_output=True, text=True,
    )
    assert _hashes(root) == _hashes(short)
    summary = json.loads(done.stdout)
    assert (summary["first"], summary["last"]) == ("2025-01", "2025-04")
    assert summary["files"] == len(_truth(short, "files.csv"))


def test_the_summary_adds_up_to_the_truth(history):
    root, summary = history
    files, defects, deliveries = (_truth(root, n) for n in ("files.csv", "defects.csv", "deliveries.csv"))
    assert summary["files"] == len(files)
    assert summary["rows"] == sum(int(f["rows_in"]) for f in files)
    assert summary["rows_quarantined"] == sum(int(f["rows_quarantined"]) for f in files)
    assert summary["defects"] == len(defects)
    assert summary["defects_by_kind"] == dict(Counter(d["defect"] for d in defects))
    assert summary["batches_per_dataset"] == dict(Counter(f["dataset_id"] for f in files))
    assert summary["deliveries"] == dict(Counter(d["status"] for d in deliveries))
    assert summary["entities"] > SMALL  # the register grows month by month


# --- layout, routing, periods ----------------------------------------------------------------


def test_inbox_holds_the_delivered_files_with_their_submission_times_as_mtime(history):
    root, _ = history
    files = _truth(root, "files.csv")
    in_inbox = {p.relative_to(root / "inbox").as_posix() for p in (root / "inbox").rglob("*") if p.is_file()}
    assert in_inbox == {f["file"] for f in files}
    assert sorted(p.name for p in (root / "truth").iterdir()) == [
        "defects.csv", "deliveries.csv", "files.csv", "payments.csv", "publication.csv", "quality_design.csv",
        "register.csv", "repairs.csv", "scores.csv", "timeliness.csv", "warnings.csv",
    ]
    delivered = {d["file"]: d["submitted_at"] for d in _truth(root, "deliveries.csv") if d["file"]}
    submitted = {t["file"]: t["submitted_at"] for t in _truth(root, "timeliness.csv")}
    # the list and repair feeds have no delivery rule: sent when something changed, not in deliveries.csv
    irregular = {f["file"] for f in files if get_catalog().dataset(f["dataset_id"]).delivery is None}
    assert irregular and delivered == {k: v for k, v in submitted.items() if k not in irregular}
    assert set(delivered) | irregular == in_inbox
    for name, at in submitted.items():
        stamp = datetime.fromisoformat(at)
        assert stamp.utcoffset() == timedelta(hours=8), name  # Asia/Shanghai
        assert (root / "inbox" / name).stat().st_mtime == stamp.timestamp(), name


def test_every_file_routes_to_its_dataset_and_its_name_states_its_period(history):
    root, _ = history
    catalog = get_catalog()
    resent = {d["file"] for d in _truth(root, "deliveries.csv") if d["resent"] == "true"}
    for f in _truth(root, "files.csv"):
        department, name = f["file"].split("/")
        assert department == f["department"]
        assert [d.id for d in catalog.route(department, name)] == [f["dataset_id"]], name
        stated = period_in_name(name)
        assert stated is not None and stated.label == f["period"], name
        assert stated.month.strftime("%Y-%m") == f["month"], name  # a week: its Thursday's month
        assert is_resend(name) == (f["file"] in resent), name
    names = " ".join(f["file"] for f in _truth(root, "files.csv"))
    for style in ("_2025-03.", "_2025年03月.", "_202503.", "_2025.03.", "_2025_3.", "_2025年3月.",
                  "_2025-W07.", "_2025第07周."):
        assert style in names, style  # the ways the offices write a period


def test_deliveries_cover_exactly_the_catalog_grid(history):
    root, _ = history
    grid = _expected_grid()
    rows = _truth(root, "deliveries.csv")
    keys = Counter((r["department"], r["dataset_id"], r["period"]) for r in rows)
    assert set(keys) == set(grid)
    assert {k: n for k, n in keys.items() if n != 1} == {
        ("housing_fund", "housing_fund", "2025-05"): 2,  # the corrected re-send
        ("transport", "admin_penalty", "2025-03"): 2,  # the unmapped export, next to the regular file
    }
    assert [(r["department"], r["period"]) for r in rows if r["resent"] == "true"] == [("housing_fund", "2025-05")]
    missing = sorted((r["department"], r["dataset_id"], r["period"]) for r in rows if r["status"] == "missing")
    assert missing == [("transport", "admin_penalty", "2025-07"), ("transport", "admin_penalty", "2025-08")]
    for r in rows:
        cadence, working_days = grid[(r["department"], r["dataset_id"], r["period"])]
        period = parse_label(r["period"])
        assert (r["cadence"], r["month"]) == (cadence, period.month.strftime("%Y-%m"))
        assert r["deadline"] == deadline(period, working_days).isoformat()
        if r["status"] == "missing":
            assert r["file"] == r["submitted_at"] == ""
            continue
        at = datetime.fromisoformat(r["submitted_at"])
        assert r["status"] == ("late" if at.date() > date.fromisoformat(r["deadline"]) else "on_time")
        assert at.date() > period.end and chinese_calendar.is_workday(at.date())  # after the period, working day
        assert (8, 30) <= (at.hour, at.minute) < (17, 30)  # office hours
        if r["status"] == "late":
            assert _holiday_period(r["period"], working_days) and r["resent"] == "false", r
    for label in sorted(HOLIDAY_MONTHS):  # about half the departments due are late
        due = {r["department"] for r in rows if r["period"] == label and r["status"] != "missing"}
        late = {r["department"] for r in rows if r["period"] == label and r["status"] == "late"}
        assert 0.35 <= len(late) / len(due) <= 0.65, (label, late)
    weeks_late = {r["period"] for r in rows if r["status"] == "late" and "W" in r["period"]}
    holiday_weeks = {k[2] for k, (cadence, days) in grid.items() if cadence == "weekly" and _holiday_period(k[2], days)}
    assert weeks_late == holiday_weeks == {"2025-W04", "2025-W05", "2025-W39", "2025-W40", "2026-W07", "2026-W08",
                                           "2026-W40"}


def test_admin_adjudication_starts_in_2026_03_and_every_other_series_in_2025_01(history):
    root, _ = history
    first: dict[tuple[str, str], str] = {}
    for f in _truth(root, "files.csv"):
        key = (f["department"], f["dataset_id"])
        first[key] = min(first.get(key, f["month"]), f["month"])
    adjudication = {k: v for k, v in first.items() if k[1] == "admin_adjudication"}
    assert adjudication == {("human_resources", "admin_adjudication"): "2026-03",
                            ("market_regulation", "admin_adjudication"): "2026-03"}
    irregular = ("admin_adjudication", "credit_repair", "dishonesty_list")  # no delivery rule: sent when needed
    assert {v for k, v in first.items() if k[1] not in irregular} == {"2025-01"}


# --- special events ------------------------------------------------------------------------


def test_ecology_penalties_switch_from_the_old_template_in_gb18030_to_catalog_codes_in_utf8(history):
    root, _ = history
    catalog_codes = [c for c in get_catalog().dataset("admin_penalty").field_codes if c != "CF_AJMC"]
    files = [f for f in _truth(root, "files.csv")
             if (f["department"], f["dataset_id"]) == ("ecology_environment", "admin_penalty")]
    assert len(files) == 23
    for f in files:
        data = (root / "inbox" / f["file"]).read_bytes()
        if f["period"] < "2026-01":
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
            header = data.decode("gb18030").split("\r\n")[0].split(",")
            assert (f["encoding"], header) == ("gb18030", list(PENALTY_OLD_HEADERS.values())), f["file"]
        else:
            header = data.decode("utf-8").split("\n")[0].split(",")
            assert (f["encoding"], header) == ("utf-8", catalog_codes), f["file"]
            assert b"\r\n" not in data


def test_housing_fund_resends_2025_05_corrected_a_week_later(history):
    root, _ = history
    files = {f["file"]: f for f in _truth(root, "files.csv") if f["dataset_id"] == "housing_fund"}
    may = [d for d in _truth(root, "deliveries.csv") if d["dataset_id"] == "housing_fund" and d["period"] == "2025-05"]
    first, resent = sorted(may, key=lambda d: d["resent"])
    assert (first["file"], resent["file"]) == (
        "housing_fund/gjj_jc_2025-05.jsonl",
        "housing_fund/gjj_jc_2025-05_更正.jsonl",
    )
    assert first["status"] == "on_time" and resent["resent"] == "true"
    gap = datetime.fromisoformat(resent["submitted_at"]).date() - datetime.fromisoformat(first["submitted_at"]).date()
    assert timedelta(days=7) <= gap < timedelta(days=10)  # a week later, on a working day
    defects = Counter(d["file"] for d in _truth(root, "defects.csv"))
    duplicates = sum(d["file"] == first["file"] and d["defect"] == "duplicate_row" for d in _truth(root, "defects.csv"))
    assert defects[first["file"]] >= 3 and defects[resent["file"]] == 0
    assert int(files[resent["file"]]["rows_in"]) == int(files[first["file"]]["rows_in"]) - duplicates


def test_transport_sends_one_unmapped_export_and_nothing_in_july_and_august_2025(history):
    root, _ = history
    transport = [f for f in _truth(root, "files.csv") if f["department"] == "transport"]
    rejected = [f for f in _truth(root, "files.csv") if f["status"] == "rejected"]
    assert [(f["department"], f["period"]) for f in rejected] == [("transport", "2025-03")]
    assert "export" in rejected[0]["file"] and rejected[0]["rows_loaded"] == "0"
    kinds = {d["defect"] for d in _truth(root, "defects.csv") if d["file"] == rejected[0]["file"]}
    assert kinds == {"unrecognized_header"}
    assert sorted(f["period"] for f in transport if f["period"] == "2025-03") == ["2025-03", "2025-03"]
    assert not [f for f in transport if f["period"] in ("2025-07", "2025-08")]


# --- rows: register, periods, timeliness --------------------------------------------------


def test_the_contract_finds_exactly_the_recorded_defects(history):
    root, _ = history
    assert audit(root) == []


def test_feeds_name_only_entities_registered_by_their_period(history, feeds):
    root, _ = history
    catalog = get_catalog()
    files = _truth(root, "files.csv")
    defects = _defect_rows(root)
    registered: dict[str, set[str]] = defaultdict(set)  # month -> codes first registered then
    sizes: dict[str, int] = Counter()
    for f in files:
        if f["dataset_id"] != "legal_entity":
            continue
        headers, records = feeds[f["file"]]
        column = _mapping(catalog.dataset("legal_entity"), headers)
        code_at = next(i for i, c in column.items() if c == "TYSHXYDM")
        sizes[f["period"]] += int(f["rows_in"])
        for number, record in enumerate(records, start=1):
            defect = defects.get((f["file"], number))
            if defect is None:
                registered[f["period"]].add(record.cells[code_at])
            elif defect["expected_outcome"] == "normalized":  # registered all the same
                code = defect["expected_value"] if defect["field"] == "TYSHXYDM" else record.cells[code_at]
                registered[f["period"]].add(code)
    assert sizes["2025-01"] >= SMALL and max(v for k, v in sizes.items() if k != "2025-01") < sizes["2025-01"] / 10
    checked = 0
    for f in files:
        ds = catalog.dataset(f["dataset_id"])
        if ds.category == "register" or f["status"] == "rejected":
            continue
        start = max(parse_label(f["period"]).start, FIRST)  # a first week may start in December
        known = set().union(*(codes for month, codes in registered.items() if parse_label(month).start <= start))
        headers, records = feeds[f["file"]]
        column = {c: i for i, c in _mapping(ds, headers).items()}
        for number, record in enumerate(records, start=1):
            code = record.cells[column[ds.subject.uscc_field]] if not record.error else None
            if code and (f["file"], number) not in defects:
                assert code in known, (f["file"], number, code)
                checked += 1
    assert checked > 2000


def _decision_date(record, at: int, defect: dict | None, field: str) -> date | None:
    if defect and defect["field"] == field:
        if defect["defect"] == "date_alt_format":
            return date.fromisoformat(defect["expected_value"])
        if defect["defect"] in ("invalid_date", "required_missing"):
            return None
    return date.fromisoformat(record.cells[at])


def test_decisions_lie_in_their_period_and_the_timeliness_truth_recounts(history, feeds):
    """Decision dates inside the file's period (late ones before it, beyond the 7 working days);
    the verdicts of transforms.working_days give timeliness.csv's counts; payment months are the
    file's month."""
    root, _ = history
    catalog = get_catalog()
    defects = _defect_rows(root)
    verdicts = {t["file"]: t for t in _truth(root, "timeliness.csv")}
    dated = 0
    for f in _truth(root, "files.csv"):
        ds = catalog.dataset(f["dataset_id"])
        if f["status"] == "rejected":
            continue
        period = parse_label(f["period"])
        headers, records = feeds[f["file"]]
        column = {c: i for i, c in _mapping(ds, headers).items()}
        if ds.id in PAYMENT_MONTH:
            months = {r.cells[column[PAYMENT_MONTH[ds.id]]] for r in records if not r.error}
            assert months == {f["period"]}, f["file"]
            continue
        if ds.id == "tax_payment":
            ends = {r.cells[column["SSQZ"]][:7] for n, r in enumerate(records, 1) if (f["file"], n) not in defects}
            assert ends == {f["period"]}, f["file"]
        if ds.timeliness is None:
            continue
        submitted = datetime.fromisoformat(verdicts[f["file"]]["submitted_at"]).date()
        counts: Counter[str] = Counter()
        for number, record in enumerate(records, start=1):
            if record.error:
                continue  # ragged or undecodable: never read into the raw layer
            decided = _decision_date(record, column[ds.timeliness.date_field], defects.get((f["file"], number)),
                                     ds.timeliness.date_field)
            verdict = timeliness(decided, submitted, ds.timeliness.working_days)
            counts[verdict.value] += 1
            if decided is None or ds.category == "payment" or (f["file"], number) in defects:
                continue
            dated += 1
            inside = period.start <= decided <= period.end
            late_before = decided < period.start and working_days_between(decided, submitted) > 7
            assert inside or late_before, (f["file"], number, decided)
        row = verdicts[f["file"]]
        assert [int(row[k]) for k in ("on_time", "late", "undated")] == [
            counts[Verdict.ON_TIME.value], counts[Verdict.LATE.value], counts[Verdict.UNDATED.value]
        ], f["file"]
    assert dated > 1000


def test_records_are_mostly_on_time_except_after_the_holiday_late_deliveries(history):
    root, _ = history
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in _truth(root, "timeliness.csv"):
        if t["denominator"]:
            by_month[t["month"]][0] += int(t["numerator"])
            by_month[t["month"]][1] += int(t["denominator"])
    rates = {m: a / b for m, (a, b) in by_month.items()}
    good = {m: r for m, r in rates.items() if m not in HOLIDAY_MONTHS}
    assert min(good.values()) >= 0.97, good
    assert max(rates[m] for m in HOLIDAY_MONTHS) < min(good.values()) - 0.02, rates


# --- quality designs -----------------------------------------------------------------------


def test_the_quality_designs_hold_in_the_truth(history):
    root, _ = history
    files, defects = _truth(root, "files.csv"), _truth(root, "defects.csv")
    designs = {d["department"]: d for d in _truth(root, "quality_design.csv")}
    assert {k: (d["design"], d["first_period"], d["last_period"]) for k, d in designs.items()
            if d["design"] != "steady"} == {
        "urban_management": ("improving", "2025-07", "2026-01"),
        "emergency": ("worsening", "2026-05", "2026-11"),
        "human_resources": ("bad_month", "2025-08", "2025-08"),
        "transport": ("missing_months", "2025-07", "2025-08"),
    }
    assert set(designs) == {f["department"] for f in files}
    # urban_management: high before the campaign, falling to the steady level
    before = _rate(files, defects, "urban_management", _months("2025-04", "2025-06"))
    campaign = _rate(files, defects, "urban_management", _months("2025-07", "2025-09"))
    end = _rate(files, defects, "urban_management", _months("2026-09", "2026-11"))
    assert before >= 0.1 and campaign > 3 * end and end <= 0.02, (before, campaign, end)
    # emergency: clean until 2026-04, then worse
    quiet = _rate(files, defects, "emergency", _months("2025-01", "2026-04"))
    start = _rate(files, defects, "emergency", _months("2026-05", "2026-07"))
    late = _rate(files, defects, "emergency", _months("2026-09", "2026-11"))
    assert quiet <= 0.02 and late > start + 0.05 and start > quiet, (quiet, start, late)
    # human_resources: one bad month
    bad = _rate(files, defects, "human_resources", ["2025-08"])
    others = [_rate(files, defects, "human_resources", [m]) for m in _months("2025-01", "2026-11") if m != "2025-08"]
    assert bad >= 0.1 and bad > 2 * max(others), (bad, max(others))


def test_steady_files_stay_within_the_warning_band(history, feeds):
    """Where a department's design is steady, a file quarantines at most 4% of its rows and has at
    most 1 bad code per 100 distinct subject codes (重错码率 a warning, never an error)."""
    root, _ = history
    catalog = get_catalog()
    designs = {d["department"]: d for d in _truth(root, "quality_design.csv")}
    code_defects = Counter(
        d["file"] for d in _truth(root, "defects.csv")
        if d["defect"] in ("uscc_check_digit", "uscc_excel_damage", "wrong_kind_registration_number",
                           "wrong_kind_org_code", "uscc_placeholder")
    )
    checked = 0
    for f in _truth(root, "files.csv"):
        design = designs[f["department"]]
        if f["status"] == "rejected" or f["file"] == "housing_fund/gjj_jc_2025-05.jsonl":
            continue  # the unmapped export; the first, faulty 2025-05 file before its re-send
        inside = design["first_period"] <= f["month"] <= design["last_period"]
        steady = (
            design["design"] in ("steady", "missing_months")
            or (design["design"] == "improving" and f["month"] >= design["last_period"])
            or (design["design"] != "improving" and not inside)
        )
        if not steady or catalog.dataset(f["dataset_id"]).delivery is None:
            continue  # a repair file quarantines its invalid repairs (truth/repairs.csv), not designed defects
        assert int(f["rows_quarantined"]) <= 0.04 * int(f["rows_in"]), f
        ds = catalog.dataset(f["dataset_id"])
        headers, records = feeds[f["file"]]
        column = {c: i for i, c in _mapping(ds, headers).items()}
        codes = {r.cells[column[ds.subject.uscc_field]] for r in records if not r.error} - {"", None}
        assert code_defects[f["file"]] <= len(codes) / 100, f["file"]
        checked += 1
    assert checked > 600


# --- the workbooks ---------------------------------------------------------------------------


def test_history_workbooks_read_like_openpyxl_ones():
    """The history's direct XLSX writer and the snapshot's openpyxl one give the same cells."""
    from sample_city.history_xlsx import write_xlsx as direct
    from sample_city.writers import write_xlsx as via_openpyxl

    ds = get_catalog().dataset("admin_penalty")
    columns = ["CF_XDR_MC", "CF_XDR_SHXYM", "CF_NR_FK", "BZ"]
    rows = [
        Row({"CF_XDR_MC": "乳山市<&>商行", "CF_XDR_SHXYM": 9.137108312345679e17, "CF_NR_FK": "0.5", "BZ": None},
            numeric={"CF_XDR_SHXYM"}),
        Row({"CF_XDR_MC": "  两端有空格 ", "CF_XDR_SHXYM": "９１３７１０８３", "CF_NR_FK": "", "BZ": "  "}),
    ]
    feed = Feed("urban_management", "x.xlsx", ds, "xlsx", "", columns, rows, headers={"BZ": "备注"})
    read = []
    for data in (direct(feed), via_openpyxl(feed)):
        book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        cells = [[cell_text(v) for v in row] for row in book.get_sheet_by_index(0).to_python()]
        sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
        read.append((book.sheet_names, cells, [list(r) for r in sheet.iter_rows(values_only=True)]))
    assert read[0] == read[1]
    assert read[0][1][1][1] == "913710831234568000"  # the Excel damage survives
    assert re.fullmatch(r"\s*两端有空格\s*", read[0][1][2][0])


# --- the default size ------------------------------------------------------------------------


@pytest.mark.slow  # the default city: 3000 entities, 2025-01..2026-11 (about 12 s)
def test_the_default_history_has_the_catalogs_size_and_clear_trends(tmp_path):
    summary = generate_history(tmp_path, SEED)
    grid = _expected_grid()
    irregular = sum(summary["batches_per_dataset"][d] for d in ("credit_repair", "dishonesty_list"))
    assert summary["files"] == len(grid) - 2 + 1 + 1 + irregular  # two months missing; a re-send, the odd export
    assert 40_000 <= summary["rows"] <= 70_000
    assert summary["batches_per_dataset"]["admin_license"] == 23 * 2 + 100  # approval sends weekly
    files, defects = _truth(tmp_path, "files.csv"), _truth(tmp_path, "defects.csv")
    quarters = [("2025-04", "2025-06"), ("2025-07", "2025-09"), ("2025-10", "2025-12"), ("2026-01", "2026-03")]
    urban = [_rate(files, defects, "urban_management", _months(a, b)) for a, b in quarters]
    assert urban == sorted(urban, reverse=True) and urban[0] > 0.1 > urban[-1], urban
    quarters = [("2026-02", "2026-04"), ("2026-05", "2026-07"), ("2026-08", "2026-10")]
    emergency = [_rate(files, defects, "emergency", _months(a, b)) for a, b in quarters]
    assert emergency == sorted(emergency) and emergency[-1] > 0.1 > emergency[0], emergency
