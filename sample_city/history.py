"""Generate two years of the sample city: every delivery the catalog demands, period by period.

In: a data root, a seed, a number of entities and the first and last month (``generate_history``),
or the command line (``main``: ``python -m sample_city.history DATA_ROOT [--seed N]
[--entities N] [--first 2025-01] [--last 2026-11]``).
Out: ``<data_root>/inbox/<department>/<file>`` (one file per expected department x dataset x
period, mtime = submission time, Asia/Shanghai; and the list and repair feeds, sent a few times a
year), ``<data_root>/truth/`` (``files.csv``, ``defects.csv``, ``timeliness.csv``,
``deliveries.csv``, ``quality_design.csv``, ``register.csv``, ``payments.csv``,
``publication.csv``, ``repairs.csv``, ``scores.csv``, ``warnings.csv``) and a summary dict
(files, rows, batches per dataset, deliveries by status, defects by kind, publication, scores).

The plan (``history_plan``) gives the series and their deliveries; each file's rows come from
its snapshot template (``history_rows``, ``history_payments``) over the register as it stood
(``history_register``), its defects from the department's design (``history_quality``) through
the snapshot's ``Injector`` (one defect per defective row, every other row valid), its
submission time from ``history_calendar``: on time (after the period, by the deadline, in
office hours) except about half the departments' deliveries of the holiday periods, a few
working days late. Penalties get their designed classes (``history_severity``) before their
defects and, one file in five, attacker text in a valid row after them (``history_attacks``);
every published record goes to the ``history_publication`` ledger, which judges the repairs
(``history_repairs``) and the list's events (``history_lists``) and writes the publication truth;
every register and payment row to ``register.csv`` / ``payments.csv``. From those truth tables
``history_scoring`` computes the credit scores and the warning list as of the same day.
Same seed -> byte-identical files: dates are fixed, never today's, and every random choice comes
from ``random.Random(f"{seed}/history/...")``.
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from foundation.catalog import Catalog, get_catalog
from sample_city.defects import Injector
from sample_city.entities import City
from sample_city.feeds import parse_plan
from sample_city.history_attacks import plant
from sample_city.history_calendar import (
    add_workdays,
    deadline_of,
    is_holiday_period,
    late_submission,
    office_time,
    planned_submission,
    series_periods,
    workday_on_or_after,
)
from sample_city.history_lists import list_feeds
from sample_city.history_payments import payment_truth, supersede
from sample_city.history_plan import RESENT, Delivery, check_range, file_name, plan_deliveries, plan_series
from sample_city.history_publication import Ledger, publication_summary
from sample_city.history_quality import RESENT_FIRST_MULTIPLIER, design_rows, multiplier, scaled_plan
from sample_city.history_register import Register
from sample_city.history_repairs import EXPECTED, repair_feeds
from sample_city.history_rows import RowMaker, effective_spec
from sample_city.history_scoring import write_scoring_truth
from sample_city.history_severity import PenaltyDesigner
from sample_city.history_truth import delivery_row, period_columns, register_truth, write_history_truth
from sample_city.history_xlsx import write_xlsx
from sample_city.rows import Feed, Row
from sample_city.timeliness import timeliness_truth
from sample_city.truth import feed_truth
from sample_city.writers import WRITERS
from transforms.periods import Period, period_in_name

WRITE = {**WRITERS, "xlsx": write_xlsx}
RESENT_FIRST_DAY = 3  # housing_fund's first 2025-05 file: the 3rd working day after the month
ATTACK_EVERY = 5  # one penalty file in five carries an attack string in a valid row


def late_departments(deliveries: list[Delivery], seed: int) -> set[tuple[str, str]]:
    """(department, period) delivered late: about half the departments due in each holiday period."""
    due: dict[str, set[str]] = {}
    for d in deliveries:
        if d.kind != "missing" and is_holiday_period(d.period, d.series.working_days):
            due.setdefault(d.period.label, set()).add(d.series.department)
    late = set()
    for label, departments in sorted(due.items()):
        rng = random.Random(f"{seed}/history/holiday/{label}")
        late |= {(dept, label) for dept in rng.sample(sorted(departments), (len(departments) + 1) // 2)}
    return late


def _submission(d: Delivery, seed: int, late: set[tuple[str, str]]) -> tuple[datetime, datetime]:
    """(planned, actual) submission of a series' regular file of a period."""
    s, period = d.series, d.period
    rng = random.Random(f"{seed}/history/{s.department}/{s.dataset.id}/{period.label}/submission")
    planned = planned_submission(period, s.working_days, rng)
    if (s.department, s.dataset.id, period.label) == RESENT:
        planned = office_time(add_workdays(period.end, RESENT_FIRST_DAY), rng)
    if (s.department, period.label) in late:
        return planned, late_submission(period, s.working_days, rng)
    return planned, planned


def _write(feed: Feed, inbox: Path) -> None:
    target = inbox / feed.department / feed.file_name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(WRITE[feed.fmt](feed))
    assert feed.submitted_at is not None
    stamp = feed.submitted_at.timestamp()
    os.utime(target, (stamp, stamp))  # received = the file's mtime


class _Files:
    """Makes the feed of each delivery, in plan order (the corrected re-send follows its first file)."""

    def __init__(
        self, register: Register, deliveries: list[Delivery], seed: int, entities: int, designer: PenaltyDesigner
    ) -> None:
        self.seed, self.maker, self.designer = seed, RowMaker(register, seed, entities), designer
        self.penalty_files = 0
        self.late = late_departments(deliveries, seed)
        self.carries: dict[str, dict[str, float]] = {}  # per department: defect fractions carried on
        self.first_files: dict[tuple[str, str, str], tuple[list[Row], datetime]] = {}

    def feed(self, d: Delivery, name: str) -> Feed:
        s, period = d.series, d.period
        key = (s.department, s.dataset.id, period.label)
        rng = random.Random(f"{self.seed}/history/{s.department}/{s.dataset.id}/{period.label}/{d.kind}")
        if d.kind == "resent":  # the first file's records, corrected, a week after it
            rows, first_at = self.first_files[key]
            feed = self.maker.dressed(d, name, rows)
            feed.submitted_at = office_time(workday_on_or_after(first_at.date() + timedelta(days=7)), rng)
            return feed
        planned, actual = _submission(d, self.seed, self.late)
        if d.kind == "odd":  # rejected as a whole: every row unrecognized_header, no plan
            feed, _ = self.maker.feed(d, name, lambda rows, codes: [], planned.date(), rng)
            self.designer.design(feed, [], period)
            start = actual.replace(hour=8, minute=30)
            feed.submitted_at = start + (actual - start) / 2  # tried first, the same morning
            return feed
        planner = functools.partial(
            scaled_plan,
            parse_plan(effective_spec(d).plan),
            mult=RESENT_FIRST_MULTIPLIER if key == RESENT else multiplier(s.department, period),
            rng=rng,
            carry=self.carries.setdefault(s.department, {}),
        )
        feed, plan = self.maker.feed(d, name, planner, planned.date(), rng)
        feed.submitted_at = actual
        penalty = s.dataset.id == "admin_penalty"
        if penalty:
            self.designer.design(feed, plan, period)
        if key == RESENT:
            self.first_files[key] = ([Row(values=dict(r.values), entity=r.entity) for r in feed.rows], actual)
        Injector(feed, rng).apply(plan)
        if penalty and d.kind == "regular":
            if self.penalty_files % ATTACK_EVERY == 2:
                attack_rng = random.Random(f"{self.seed}/history/attack/{feed.path}")
                plant(feed, self.penalty_files // ATTACK_EVERY, "CF_SY", "BZ", attack_rng)
            self.penalty_files += 1
        return feed


def _publication_feeds(
    catalog: Catalog, register: Register, ledger: Ledger, seed: int, first: Period, last: Period, inbox: Path
) -> tuple[list[dict], list[dict]]:
    """Write the list and repair feeds (no delivery rule: sent when something changed), record them in
    the ledger; their ``files.csv`` rows (invalid repairs counted as quarantined) and ``timeliness.csv`` rows."""
    file_rows, timeliness_rows = [], []

    def written(feed: Feed, quarantined: int) -> None:
        period = period_in_name(feed.file_name)
        routed = [ds.id for ds in catalog.route(feed.department, feed.file_name)]
        if routed != [feed.dataset.id] or period is None:
            raise AssertionError(f"{feed.path} routes to {routed}, states {period}")
        file_row, defects = feed_truth(feed)
        assert not defects, feed.path
        file_row["rows_loaded"] -= quarantined
        file_row["rows_quarantined"] += quarantined
        file_rows.append(file_row | period_columns(period))
        timeliness_rows.append(timeliness_truth(feed) | period_columns(period))

    for feed in list_feeds(catalog, register, seed, first, last):
        _write(feed, inbox)
        ledger.add(feed)
        written(feed, 0)
    for feed, designs in repair_feeds(catalog, ledger, seed, last):
        _write(feed, inbox)
        reasons = [ledger.judge_repair(feed, n, design) for n, design in enumerate(designs, start=1)]
        if reasons != [EXPECTED[design] for design in designs]:
            raise AssertionError(f"{feed.path}: repairs designed {designs} are judged {reasons}")
        written(feed, sum(bool(r) for r in reasons))
    return file_rows, timeliness_rows


def generate_history(
    data_root: Path,
    seed: int = 371083,
    entities: int = 3000,
    first: str = "2025-01",
    last: str = "2026-11",
) -> dict:
    """Write the history's feeds and ground truth under ``data_root``; return a summary."""
    data_root = Path(data_root)
    first_p, last_p = check_range(first, last)
    catalog = get_catalog()
    register = Register(City(catalog, seed, entities), seed, series_periods(first_p, last_p, "monthly", first))
    series = plan_series(catalog, first_p, last_p)
    deliveries = plan_deliveries(series)
    designer = PenaltyDesigner(catalog.publication, seed)
    files = _Files(register, deliveries, seed, entities, designer)
    ledger = Ledger(catalog, designer.designs)
    file_rows, defect_rows, timeliness_rows, delivery_rows = [], [], [], []
    register_rows: list[dict] = []
    payment_rows: list[dict] = []
    kinds: Counter[str] = Counter()
    for d in deliveries:
        s, period = d.series, d.period
        due = deadline_of(period, s.working_days)
        if d.kind == "missing":
            delivery_rows.append(delivery_row(s.department, s.dataset.id, period, due, None, None, False))
            continue
        name = file_name(d)
        routed = [ds.id for ds in catalog.route(s.department, name)]
        if routed != [s.dataset.id] or period_in_name(name) != period:
            raise AssertionError(f"{s.department}/{name} routes to {routed}, states {period_in_name(name)}")
        feed = files.feed(d, name)
        _write(feed, data_root / "inbox")
        ledger.add(feed)
        file_row, feed_defects = feed_truth(feed)
        file_rows.append(file_row | period_columns(period))
        timeliness_rows.append(timeliness_truth(feed) | period_columns(period))
        defect_rows += feed_defects
        credit = s.dataset.credit
        if credit is not None and credit.fact == "register":
            register_rows += register_truth(feed)
        elif credit is not None and credit.fact == "payment":
            paid = payment_truth(feed, period, d.kind == "resent")
            if d.kind == "resent":
                supersede(payment_rows, paid)
            payment_rows += paid
        kinds.update(x["defect"] for x in feed_defects)
        delivery_rows.append(
            delivery_row(s.department, s.dataset.id, period, due, feed.path, feed.submitted_at, d.kind == "resent")
        )
    extra_files, extra_timeliness = _publication_feeds(
        catalog, register, ledger, seed, first_p, last_p, data_root / "inbox")
    file_rows += extra_files
    timeliness_rows += extra_timeliness
    designs = design_rows(sorted({s.department for s in series}), first_p, last_p)
    write_history_truth(data_root / "truth", file_rows, defect_rows, timeliness_rows, delivery_rows, designs,
                        register_rows, payment_rows)
    published = ledger.write(data_root / "truth")
    scores = write_scoring_truth(data_root / "truth", catalog)
    return {
        "first": first_p.label,
        "last": last_p.label,
        "files": len(file_rows),
        "rows": sum(r["rows_in"] for r in file_rows),
        "defects": len(defect_rows),
        "rows_quarantined": sum(r["rows_quarantined"] for r in file_rows),
        "entities": register.registered,
        "batches_per_dataset": dict(sorted(Counter(r["dataset_id"] for r in file_rows).items())),
        "deliveries": dict(sorted(Counter(r["status"] for r in delivery_rows).items())),
        "defects_by_kind": dict(sorted(kinds.items())),
        "publication": publication_summary(published, ledger.repair_rows),
        "scores": scores,
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write two years of the 乳山市 sample city (feeds + truth).")
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--seed", type=int, default=371083)
    parser.add_argument("--entities", type=int, default=3000)
    parser.add_argument("--first", default="2025-01", help="first month, YYYY-MM")
    parser.add_argument("--last", default="2026-11", help="last month, YYYY-MM")
    args = parser.parse_args(argv)
    summary = generate_history(args.data_root, args.seed, args.entities, args.first, args.last)
    print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
