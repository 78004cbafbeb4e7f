"""The ground truth of the history: the snapshot's tables with periods, deliveries and designs.

In: per written file its ``files.csv`` / ``defects.csv`` / ``timeliness.csv`` rows (from
``truth.feed_truth`` and ``timeliness.timeliness_truth``) and its period; per delivery (a file,
or none) its series, period, deadline and arrival; the quality designs. Out, under
``<data_root>/truth/`` as UTF-8 CSV with ``\n`` line ends:

* ``files.csv`` and ``timeliness.csv``: the snapshot's columns plus ``period`` (``2025-03`` /
  ``2025-W07``) and ``month`` (``YYYY-MM``; a week counts in the month of its Thursday);
* ``defects.csv``: as the snapshot's;
* ``deliveries.csv``: one row per department x dataset x period the catalog expects (and one
  more per extra file of a period: the corrected re-send, ``resent=true``, and the unmapped
  export): cadence, month, deadline, file and submission time (empty when missing), status
  ``on_time`` | ``late`` (received on a day after the deadline) | ``missing``;
* ``quality_design.csv``: per department its design and the periods it covers;
* ``register.csv``: one row per register row written (``register_truth``), for the credit
  scores' register facts: file, 1-based row, arrival (``received``, ISO with offset), the
  subject (USCC and name), its 登记状态 (``status``) and 成立日期 (``founded``) as loaded, and
  ``expected_outcome`` (loaded | quarantine);
* ``payments.csv``: one row per payment row written (``history_payments.payment_truth``).
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sample_city.history_payments import PAYMENTS_COLUMNS
from sample_city.history_publication import loaded_value
from sample_city.rows import Feed
from sample_city.truth import DEFECTS_COLUMNS, FILES_COLUMNS, TIMELINESS_COLUMNS, _write_table
from transforms.periods import Period

PERIOD_COLUMNS = ["period", "month"]
DELIVERIES_COLUMNS = [
    "department",
    "dataset_id",
    "period",
    "cadence",
    "month",
    "deadline",
    "file",
    "submitted_at",
    "status",
    "resent",
]
DESIGN_COLUMNS = ["department", "design", "first_period", "last_period", "note"]
REGISTER_COLUMNS = ["file", "row", "received", "uscc", "subject_name", "status", "founded", "expected_outcome"]


def period_columns(period: Period) -> dict[str, str]:
    return {"period": period.label, "month": period.month.strftime("%Y-%m")}


def delivery_row(
    department: str,
    dataset_id: str,
    period: Period,
    due: date,
    path: str | None,
    submitted_at: datetime | None,
    resent: bool,
) -> dict:
    if submitted_at is None:
        status = "missing"
    else:
        status = "late" if submitted_at.date() > due else "on_time"
    return {
        "department": department,
        "dataset_id": dataset_id,
        **{"period": period.label, "cadence": period.cadence, "month": period.month.strftime("%Y-%m")},
        "deadline": due.isoformat(),
        "file": path or "",
        "submitted_at": submitted_at.isoformat() if submitted_at else "",
        "status": status,
        "resent": "true" if resent else "false",
    }


def register_truth(feed: Feed) -> list[dict]:
    """The ``register.csv`` rows of a register feed: status and founding date from the dataset's
    ``credit`` block (``kind_field`` / ``date_field``: DJZT / CLRQ), as the loader keeps them."""
    ds, credit = feed.dataset, feed.dataset.credit
    assert credit is not None and credit.fact == "register" and credit.kind_field and credit.date_field
    assert ds.subject.uscc_field is not None and feed.submitted_at is not None
    out = []
    for number, row in enumerate(feed.rows, start=1):
        quarantined = feed.rejected or (row.defect is not None and row.defect.outcome == "quarantine")
        out.append({
            "file": feed.path, "row": number, "received": feed.submitted_at.isoformat(),
            "uscc": str(loaded_value(row, ds.subject.uscc_field) or ""),
            "subject_name": str(loaded_value(row, ds.subject.name_field) or ""),
            "status": str(loaded_value(row, credit.kind_field) or ""),
            "founded": str(loaded_value(row, credit.date_field) or ""),
            "expected_outcome": "quarantine" if quarantined else "loaded",
        })
    return out


def write_history_truth(
    truth: Path,
    file_rows: list[dict],
    defect_rows: list[dict],
    timeliness_rows: list[dict],
    delivery_rows: list[dict],
    design_rows: list[dict],
    register_rows: list[dict],
    payment_rows: list[dict],
) -> None:
    truth.mkdir(parents=True, exist_ok=True)
    _write_table(truth / "files.csv", FILES_COLUMNS + PERIOD_COLUMNS, file_rows)
    _write_table(truth / "defects.csv", DEFECTS_COLUMNS, defect_rows)
    _write_table(truth / "timeliness.csv", TIMELINESS_COLUMNS + PERIOD_COLUMNS, timeliness_rows)
    _write_table(truth / "deliveries.csv", DELIVERIES_COLUMNS, delivery_rows)
    _write_table(truth / "quality_design.csv", DESIGN_COLUMNS, design_rows)
    _write_table(truth / "register.csv", REGISTER_COLUMNS, register_rows)
    _write_table(truth / "payments.csv", PAYMENTS_COLUMNS, payment_rows)
