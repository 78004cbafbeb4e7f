"""A corrected re-send of a period replaces the earlier file of that period (warehouse/load.py ``_supersede``).

The two-year city's housing fund sends 2025-05 twice: on time with defects, then ``..._更正`` a week
later. Loaded in order (no Airflow), the first batch is marked ``superseded_by`` the second and its
clean partition withdrawn; raw layer, quarantine and archive keep it; the month's rates count the
re-send alone, and as of a day before the re-send the first file still counts.
"""

from __future__ import annotations

from datetime import date

import pytest

from credit import pipeline
from credit.inbox import scan_inbox
from sample_city import generate_history
from warehouse.db import open_warehouse
from warehouse.scorecard import write_scorecard

pytestmark = pytest.mark.integration


def test_the_corrected_resend_replaces_the_period(settings, catalog):
    generate_history(settings.data_root, entities=1000, first="2025-05", last="2025-05")
    files = [f for f in scan_inbox(settings, catalog) if f.dataset_id == "housing_fund"]
    assert [f.relpath.endswith("_更正.jsonl") for f in files].count(True) == 1 and len(files) == 2
    files.sort(key=lambda f: (settings.inbox / f.relpath).stat().st_mtime)  # as they arrived
    with open_warehouse(settings, catalog) as con:
        pipeline.ingest_inbox_files(con, settings, catalog, ((f, None) for f in files))
        (first, first_rows, superseded_by), (second, second_rows, none) = con.execute(
            """SELECT batch_id, rows_loaded, superseded_by FROM audit.batches WHERE dataset_id = 'housing_fund'
               ORDER BY received_at""").fetchall()
        clean = dict(con.execute("SELECT batch_id, count(*) FROM clean.housing_fund GROUP BY 1").fetchall())
        raw = {b for (b,) in con.execute("SELECT DISTINCT batch_id FROM raw.housing_fund").fetchall()}
        received = con.execute("""SELECT (received_at AT TIME ZONE 'Asia/Shanghai')::DATE FROM audit.batches
                                  WHERE batch_id = ?""", [second]).fetchall()[0][0]
        write_scorecard(con, settings, catalog)
        month_now = con.execute("""SELECT numerator, denominator FROM mart.scorecard WHERE level = 'dataset_month'
                                   AND dataset_id = 'housing_fund' AND metric = 'compliance'""").fetchall()[0]
        write_scorecard(con, settings, catalog, as_of=received - (received - date(2025, 6, 1)) // 2)
        month_before = con.execute("""SELECT numerator, denominator FROM mart.scorecard
                                      WHERE level = 'dataset_month' AND dataset_id = 'housing_fund'
                                        AND metric = 'compliance'""").fetchall()[0]
    assert (superseded_by, none) == (second, None)
    assert clean == {second: second_rows}  # the first file's clean rows are withdrawn
    assert raw == {first, second}  # ... and kept in the raw layer
    assert month_now[0] == second_rows and month_before[0] == first_rows
    assert first_rows < second_rows  # the re-send fixed rows the first file had quarantined
