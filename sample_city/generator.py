"""Generate the sample city: build every feed, write it with its submission time, write the truth.

In: a data root, a seed and a number of entities (``generate``), or the command line
(``main``: ``python -m sample_city.generator DATA_ROOT [--seed N] [--entities N]``).
Out: ``<data_root>/inbox/<department>/<file>`` (mtime = submission time),
``<data_root>/truth/*.csv`` and a summary dict (files, rows, defects by kind, ...).
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

from foundation.catalog import get_catalog
from sample_city.defects import Injector
from sample_city.entities import City
from sample_city.feeds import FILES, _build_rows, _columns, dress, parse_plan
from sample_city.rows import Feed
from sample_city.timeliness import set_submission, timeliness_truth
from sample_city.truth import feed_truth, write_truth
from sample_city.writers import WRITERS


def _make_feeds(city: City, seed: int, entities: int) -> list[Feed]:
    catalog = city.catalog
    feeds = []
    factor = entities / 3000
    for dept, file_name, dataset_id, fmt, encoding, builder, base, plan_text in FILES:
        ds = catalog.dataset(dataset_id)
        rng = random.Random(f"{seed}/{dept}/{file_name}")
        plan = parse_plan(plan_text)
        planned = sum(count or 0 for _, count, _ in plan)
        n = max(round((base or 0) * factor), 4 * planned + 30) if base else 0
        if builder == "penalty_english":
            assert base is not None, "the penalty_english feed has a row count"
            n = max(round(base * factor), 12)
        rows = _build_rows(city, rng, builder, dept, ds, n, plan)
        feed = Feed(dept, file_name, ds, fmt, encoding, _columns(ds), rows)
        dress(feed, builder)
        set_submission(feed, seed)
        Injector(feed, rng).apply(plan)
        feeds.append(feed)
    return feeds


def generate(data_root: Path, seed: int = 371083, entities: int = 3000) -> dict:
    """Write the sample city's feeds and ground truth under ``data_root``; return a summary."""
    data_root = Path(data_root)
    catalog = get_catalog()
    city = City(catalog, seed, entities)
    feeds = _make_feeds(city, seed, entities)

    inbox, truth = data_root / "inbox", data_root / "truth"
    file_rows, defect_rows, timeliness_rows = [], [], []
    kinds: Counter[str] = Counter()
    for feed in feeds:
        routed = catalog.route(feed.department, feed.file_name)
        if [d.id for d in routed] != [feed.dataset.id]:
            raise AssertionError(f"{feed.path} routes to {[d.id for d in routed]}")
        target = inbox / feed.department / feed.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(WRITERS[feed.fmt](feed))
        assert feed.submitted_at is not None  # set_submission() in _make_feeds
        stamp = feed.submitted_at.timestamp()
        os.utime(target, (stamp, stamp))  # received = the file's mtime
        timeliness_rows.append(timeliness_truth(feed))
        file_row, feed_defects = feed_truth(feed)
        kinds.update(d["defect"] for d in feed_defects)
        defect_rows += feed_defects
        file_rows.append(file_row)
    write_truth(truth, file_rows, defect_rows, timeliness_rows)
    return {
        "files": len(file_rows),
        "rows": sum(r["rows_in"] for r in file_rows),
        "defects": len(defect_rows),
        "rows_quarantined": sum(r["rows_quarantined"] for r in file_rows),
        "entities": len(city.market_register) + len(city.civil_register),
        "defects_by_kind": dict(sorted(kinds.items())),
    }


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write the 乳山市 sample city (feeds + truth).")
    parser.add_argument("data_root", type=Path)
    parser.add_argument("--seed", type=int, default=371083)
    parser.add_argument("--entities", type=int, default=3000)
    args = parser.parse_args(argv)
    print(
        json.dumps(generate(args.data_root, args.seed, args.entities), ensure_ascii=False, indent=2)
    )


if __name__ == "__main__":
    main()
