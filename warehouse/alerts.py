"""Findings with a severity (告警): warnings that are recorded and errors that fail a run.

In: the thresholds in ``catalogs/alerts.yaml`` (dbt-style ``warn_if`` / ``error_if``), ``mart.scorecard``
computed as of the same date (its ``department_dataset_month`` rows), ``audit.deliveries`` for that
date (warehouse/deliveries.py) and the close being checked: the as-of day and the month reported.
Out: ``audit.alerts`` rows for the as-of day (replaced on every run, so a re-run adds nothing) and the
list of ``Alert`` objects; the monthly close fails on ``errors`` and sends ``warnings`` and errors to
the departments (credit/notify.py).

Checks, for the month reported (the month before the close: its deliveries are all due):

- ``rate``: a rate that misses its target is a warning; far from it (``error_if_below_target_by``,
  or for 重错码率 above ``error_if_code_error_above``) an error.
- ``worsening``: a rate that misses its target and is worse than the previous month's by more than
  ``error_if_worse_by`` is an error.
- ``delivery`` (periods up to the month reported): a file that arrived after its deadline in the month
  closed is a warning; a file missing
  past its deadline is an error in the close whose month holds the deadline, and a warning ("仍未报送")
  in every later close until it arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError

from foundation.catalog import Catalog, CatalogError, read_catalog_file

Metric = Literal["compliance", "completeness", "timeliness", "code_error", "correction"]
NAMES_ZH = {"compliance": "合规率", "completeness": "完整率", "timeliness": "及时率", "code_error": "重错码率",
            "correction": "纠正率"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RateRules(_Strict):
    metrics: list[Metric]
    warn_if: Literal["misses_target"] = "misses_target"
    error_if_below_target_by: dict[Metric, float]
    error_if_code_error_above: float


class WorseningRules(_Strict):
    error_if_worse_by: dict[Metric, float]


class DeliveryRules(_Strict):
    warn_if: Literal["late"] = "late"
    error_if_missing_days: int = 0


class AlertRules(_Strict):
    rates: RateRules
    worsening: WorseningRules
    deliveries: DeliveryRules


def load_alert_rules(catalog_dir: Path) -> AlertRules:
    """``catalogs/alerts.yaml``; a CatalogError naming the file and the setting when it is malformed."""
    raw = read_catalog_file("alerts.yaml", catalog_dir)
    try:
        return AlertRules.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CatalogError(f"{catalog_dir / 'alerts.yaml'}: {problems}") from None


@dataclass(frozen=True)
class Alert:
    as_of: date
    severity: Literal["warning", "error"]
    check_name: Literal["rate", "worsening", "delivery"]
    department: str
    dataset_id: str
    period: str
    month: date
    metric: str | None
    value: float | None
    previous: float | None
    target: float | None
    threshold: float | None
    message_zh: str

    def as_row(self) -> list:
        return [self.as_of, self.severity, self.check_name, self.department, self.dataset_id, self.period,
                self.month, self.metric, self.value, self.previous, self.target, self.threshold, self.message_zh]

    def as_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items()}

    def describe(self) -> str:
        return f"{self.department} / {self.dataset_id} / {self.period}: {self.message_zh}"


def _pct(metric: str, value: float) -> str:
    return f"{value * 10000:.2f}‱" if metric == "code_error" else f"{value:.2%}"


def _rate_alerts(con: duckdb.DuckDBPyConnection, rules: AlertRules, catalog: Catalog, as_of: date,
                 month: date) -> list[Alert]:
    previous_month = (month.replace(day=1) - timedelta(days=1)).replace(day=1)
    rows = con.execute(
        """SELECT cur.department, cur.dataset_id, cur.metric, cur.rate, cur.target, cur.direction, cur.meets_target,
                  prev.rate
           FROM mart.scorecard cur
           LEFT JOIN mart.scorecard prev ON prev.level = cur.level AND prev.department = cur.department
                AND prev.dataset_id = cur.dataset_id AND prev.metric = cur.metric AND prev.month = ?
           WHERE cur.level = 'department_dataset_month' AND cur.month = ? AND cur.rate IS NOT NULL
             AND list_contains(?, cur.metric)
           ORDER BY cur.department, cur.dataset_id, cur.metric""",
        [previous_month, month, list(rules.rates.metrics)],
    ).fetchall()
    label = f"{month:%Y-%m}"
    out = []
    for dept, dataset_id, metric, rate, target, direction, meets, prev in rows:
        if meets:
            continue
        name, ds_name = NAMES_ZH[metric], catalog.dataset(dataset_id).name_zh
        threshold: float | None
        if direction == "max":
            threshold = rules.rates.error_if_code_error_above
            error = rate > threshold
        else:
            gap = rules.rates.error_if_below_target_by.get(metric)
            threshold = None if gap is None else target - gap
            error = threshold is not None and rate < threshold
        text = f"{ds_name} {label} {name} {_pct(metric, rate)}，未达目标 {_pct(metric, target)}"
        if threshold is not None:
            text += f"（{'超过' if direction == 'max' else '低于'}错误阈值 {_pct(metric, threshold)}）" if error else ""
        out.append(Alert(as_of, "error" if error else "warning", "rate", dept, dataset_id, label, month, metric,
                         rate, prev, target, threshold, text))
        worse_by = rules.worsening.error_if_worse_by.get(metric)
        if prev is not None and worse_by is not None:
            drop = (rate - prev) if direction == "max" else (prev - rate)
            if drop > worse_by:
                out.append(Alert(as_of, "error", "worsening", dept, dataset_id, label, month, metric, rate, prev,
                                 target, worse_by,
                                 f"{ds_name} {label} {name} {_pct(metric, rate)}，比上月 {_pct(metric, prev)} "
                                 f"变差 {abs(rate - prev) * 100:.2f} 个百分点（错误阈值 {worse_by * 100:.2f}）"))
    return out


def _delivery_alerts(con: duckdb.DuckDBPyConnection, rules: AlertRules, catalog: Catalog, as_of: date,
                     since: date, month: date) -> list[Alert]:
    """Deliveries of the periods up to the month reported (a later period is the next close's)."""
    rows = con.execute(
        """SELECT department, dataset_id, period, month, deadline, status, days_overdue,
                  (first_received_at AT TIME ZONE 'Asia/Shanghai')::DATE
           FROM audit.deliveries WHERE as_of = ? AND status <> 'on_time' AND month <= ?
           ORDER BY department, dataset_id, period""",
        [as_of, month],
    ).fetchall()
    out = []
    for dept, dataset_id, period, month, due, status, overdue, received in rows:
        ds_name = catalog.dataset(dataset_id).name_zh
        if status == "missing" and overdue > rules.deliveries.error_if_missing_days:
            first_close = due >= since  # the deadline fell in the month closed: an error once, then a warning
            out.append(Alert(as_of, "error" if first_close else "warning", "delivery", dept, dataset_id, period,
                             month, None, overdue, None, None, rules.deliveries.error_if_missing_days,
                             f"{ds_name} {period} {'未报送' if first_close else '仍未报送'}：截止 {due:%Y-%m-%d}，"
                             f"已逾期 {overdue} 天"))
        elif status == "late" and received >= since:
            out.append(Alert(as_of, "warning", "delivery", dept, dataset_id, period, month, None, overdue, None,
                             None, None,
                             f"{ds_name} {period} 逾期报送：截止 {due:%Y-%m-%d}，{received:%Y-%m-%d} 收到，"
                             f"晚 {overdue} 天"))
    return out


def write_alerts(con: duckdb.DuckDBPyConnection, catalog: Catalog, catalog_dir: Path, as_of: date, month: date,
                 since: date) -> list[Alert]:
    """Evaluate every check for the close of ``as_of`` (rates of ``month``; late files received from
    ``since``); replace ``audit.alerts`` for ``as_of``. Needs mart.scorecard and audit.deliveries as of then."""
    rules = load_alert_rules(catalog_dir)
    alerts = (_rate_alerts(con, rules, catalog, as_of, month)
              + _delivery_alerts(con, rules, catalog, as_of, since, month))
    alerts.sort(key=lambda a: (a.department, a.severity != "error", a.dataset_id, a.check_name, a.period,
                               a.metric or ""))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM audit.alerts WHERE as_of = ?", [as_of])
        if alerts:
            con.executemany(f"INSERT INTO audit.alerts VALUES ({', '.join('?' * 13)})", [a.as_row() for a in alerts])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return alerts


def error_message(alerts: list[Alert]) -> str:
    """What the failed task says: every error, one line each, naming department, dataset and period."""
    errors = [a for a in alerts if a.severity == "error"]
    return f"{len(errors)} error(s) in the close:\n" + "\n".join(a.describe() for a in errors)


__all__ = ["Alert", "AlertRules", "CatalogError", "error_message", "load_alert_rules", "write_alerts"]
