"""The ground truth of the sample city: what the loader must make of each file and row.

In: the finished feeds (after defects and submission times) and their ``timeliness_truth``
rows. Out: ``truth/files.csv`` (per file: rows in / loaded / quarantined, status),
``truth/defects.csv`` (per injected defect: row, field, expected reason or value) and
``truth/timeliness.csv``, as UTF-8 CSV with ``\n`` line ends.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sample_city.rows import Feed

FILES_COLUMNS = [
    "file",
    "dataset_id",
    "department",
    "format",
    "encoding",
    "rows_in",
    "rows_loaded",
    "rows_quarantined",
    "status",
]
DEFECTS_COLUMNS = [
    "file",
    "dataset_id",
    "row",
    "field",
    "defect",
    "expected_reason",
    "expected_outcome",
    "expected_value",
]

TIMELINESS_COLUMNS = [
    "file",
    "dataset_id",
    "department",
    "submitted_at",
    "submitted_date",
    "date_field",
    "working_days",
    "records",
    "on_time",
    "late",
    "undated",
    "outside_calendar",
    "numerator",
    "denominator",
]


def _write_table(path: Path, columns: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def feed_truth(feed: Feed) -> tuple[dict, list[dict]]:
    """The ``files.csv`` row of a feed and its ``defects.csv`` rows (1-based data rows)."""
    defect_rows = []
    quarantined = 0
    for number, row in enumerate(feed.rows, start=1):
        if row.defect is None:
            continue
        d = row.defect
        quarantined += d.outcome == "quarantine"
        defect_rows.append(
            {
                "file": feed.path,
                "dataset_id": feed.dataset.id,
                "row": number,
                "field": d.field,
                "defect": d.defect,
                "expected_reason": d.reason,
                "expected_outcome": d.outcome,
                "expected_value": d.expected_value,
            }
        )
    file_row = {
        "file": feed.path,
        "dataset_id": feed.dataset.id,
        "department": feed.department,
        "format": feed.fmt,
        "encoding": feed.encoding,
        "rows_in": len(feed.rows),
        "rows_loaded": len(feed.rows) - quarantined,
        "rows_quarantined": quarantined,
        "status": "rejected" if feed.rejected else "loaded",
    }
    return file_row, defect_rows


def write_truth(
    truth: Path, file_rows: list[dict], defect_rows: list[dict], timeliness_rows: list[dict]
) -> None:
    """``files.csv``, ``defects.csv`` and ``timeliness.csv`` under ``truth``."""
    truth.mkdir(parents=True, exist_ok=True)
    _write_table(truth / "files.csv", FILES_COLUMNS, file_rows)
    _write_table(truth / "defects.csv", DEFECTS_COLUMNS, defect_rows)
    _write_table(truth / "timeliness.csv", TIMELINESS_COLUMNS, timeliness_rows)
