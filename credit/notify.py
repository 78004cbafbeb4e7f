"""The departments' quality digests (数据质量通报): one e-mail per department per run, in Chinese.

In: the findings of one run of the monthly quality checks, as rows of ``audit.alerts``
(warehouse/schema.py: as_of, severity, check_name, department, dataset_id, period, month,
metric, value, previous, target, threshold, message_zh), and the catalog's departments with
their ``email``. :func:`build_digests` turns them into one :class:`Digest` per department that
has findings (a pure function); :func:`send_digests` sends each through Airflow's notifier
interface, the SMTP provider's ``SmtpNotifier``, over the Airflow connection ``smtp_default``.

The SMTP provider sends its body as ``text/html`` only; the digest's body is plain text, so it
goes out HTML-escaped inside one ``<pre>`` block (:meth:`Digest.html`), which every mail client
shows line for line as written.

A server that cannot be reached (or refuses a message) fails with :class:`NotifyError`, whose
message names the server, the connection and the digests sent and not sent.

Imported by DAG tasks: Airflow itself is imported only when sending.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from foundation.catalog import Catalog

log = logging.getLogger(__name__)

SEVERITIES = ("error", "warning")  # errors first in every digest
SEVERITY_NAMES = {"error": "错误", "warning": "警告"}
CHECK_ORDER = ("rate", "worsening", "delivery")
# The metrics' short Chinese names, as in the report (credit/report.py SHORT_NAMES; a test keeps them equal).
METRIC_NAMES = {"compliance": "合规率", "completeness": "完整率", "timeliness": "及时率", "code_error": "重错码率",
                "correction": "纠正率"}
METRIC_ORDER = tuple(METRIC_NAMES)
MAX_RATE_METRICS = {"code_error"}  # the rate must be at most the target; the others at least
SUBJECT_PREFIX = "【数据质量通报】"


class NotifyError(RuntimeError):
    """A digest could not be sent; the message names the SMTP server and what was and was not sent."""


@dataclass(frozen=True)
class Digest:
    """One department's e-mail: every finding of the run for that department."""

    department: str  # the department's code (departments.yaml)
    department_name: str
    to: str
    subject: str
    body: str  # plain text, Chinese
    errors: int
    warnings: int

    def html(self) -> str:
        """The body as the SMTP provider sends it (text/html): the plain text, escaped, in one <pre>."""
        return (
            '<html><head><meta charset="utf-8"></head><body>'
            '<pre style="font-family: monospace; white-space: pre-wrap">'
            f"{html.escape(self.body, quote=False)}</pre></body></html>"
        )


def period_label_for(month: date | datetime | str) -> str:
    """A month as the digests name it: ``2025-03`` / ``date(2025, 3, 1)`` -> ``2025年03月``."""
    if isinstance(month, str):
        year, mon = month[:7].split("-")
        return f"{int(year)}年{int(mon):02d}月"
    return f"{month.year}年{month.month:02d}月"


def _number(value: object) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]  # DuckDB gives floats or Decimals
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _rate(metric: str | None, value: object) -> str:
    number = _number(value)
    if number is None:
        return "—"
    return f"{number:.4%}" if metric == "code_error" else f"{number:.2%}"


def _days(value: object) -> str:
    number = _number(value)
    if number is None:
        return "—"
    return f"{number:g}"


def _finding_key(alert: Mapping[str, Any]) -> tuple:
    """What makes a finding the same finding: the check, department, dataset, period and metric."""
    return (alert["check_name"], alert["department"], alert["dataset_id"], str(alert["period"]), alert.get("metric"))


def _unique(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row per finding: a finding given twice (two as-of dates, a re-run) keeps its latest, an error
    before a warning."""
    kept: dict[tuple, Mapping[str, Any]] = {}
    for alert in alerts:
        key = _finding_key(alert)
        rank = (str(alert.get("as_of") or ""), alert["severity"] == "error")
        old = kept.get(key)
        if old is None or rank > (str(old.get("as_of") or ""), old["severity"] == "error"):
            kept[key] = alert
    return list(kept.values())


def _sort_key(alert: Mapping[str, Any]) -> tuple:
    check = alert["check_name"]
    metric = alert.get("metric")
    return (
        SEVERITIES.index(alert["severity"]),
        alert["dataset_id"],
        str(alert["period"]),
        CHECK_ORDER.index(check) if check in CHECK_ORDER else len(CHECK_ORDER),
        METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER),
        str(metric or ""),
    )


def finding_line(alert: Mapping[str, Any], catalog: Catalog) -> str:
    """One finding on one line: dataset, period, metric, value against target / threshold, the message."""
    dataset = catalog.datasets.get(alert["dataset_id"])
    dataset_name = dataset.name_zh if dataset else alert["dataset_id"]
    metric = alert.get("metric")
    check = alert["check_name"]
    period = str(alert["period"])
    message = str(alert.get("message_zh") or "").strip()
    if check == "delivery" or not metric:
        what = f"报送：逾期 {_days(alert.get('value'))} 天"
        if _number(alert.get("threshold")) is not None:
            what += f"（错误阈值：逾期超过 {_days(alert.get('threshold'))} 天）"
    else:
        name = METRIC_NAMES.get(metric, metric)
        bound = "≤" if metric in MAX_RATE_METRICS else "≥"
        parts = []
        if _number(alert.get("target")) is not None:
            parts.append(f"目标 {bound} {_rate(metric, alert.get('target'))}")
        value, previous, threshold = (_number(alert.get(k)) for k in ("value", "previous", "threshold"))
        if check == "worsening":  # the threshold is a change in rate points, not a rate
            if previous is not None:
                parts.append(f"上月 {_rate(metric, previous)}")
                if value is not None:
                    parts.append(f"变差 {abs(value - previous) * 100:.2f} 个百分点")
            if threshold is not None:
                parts.append(f"错误阈值：变差超过 {threshold * 100:.2f} 个百分点")
        elif threshold is not None:
            parts.append(f"错误阈值 {_rate(metric, threshold)}")
        what = f"{name} {_rate(metric, alert.get('value'))}"
        if parts:
            what += "（" + "，".join(parts) + "）"
    return f"【{dataset_name}】{period} {what}" + (f"：{message}" if message else "")


_NUMERALS = "一二三四五六七八九十"
_MONTH = re.compile(r"^\d{4}-\d{2}$")


def _body(department_name: str, period_label: str, findings: Sequence[Mapping[str, Any]], catalog: Catalog) -> str:
    counts = {s: sum(1 for a in findings if a["severity"] == s) for s in SEVERITIES}
    lines = [
        f"{department_name}：",
        "",
        f"{period_label}数据质量检查发现贵单位报送的数据存在以下问题，共 {len(findings)} 项"
        f"（错误 {counts['error']} 项，警告 {counts['warning']} 项）。请核查原因，"
        "在下次报送时改正，错误项请优先处理。",
    ]
    section = 0
    for severity in SEVERITIES:
        group = [a for a in findings if a["severity"] == severity]
        if not group:
            continue
        lines += ["", f"{_NUMERALS[section]}、{SEVERITY_NAMES[severity]}（{len(group)} 项）"]
        section += 1
        lines += [f"{i}. {finding_line(a, catalog)}" for i, a in enumerate(group, 1)]
    lines += ["", "本通报由公共信用信息数据平台自动生成。"]
    return "\n".join(lines) + "\n"


def build_digests(alerts: Iterable[Mapping[str, Any]], catalog: Catalog, period_label: str) -> list[Digest]:
    """One digest per department that has findings, sorted by department code.

    ``alerts`` are rows of ``audit.alerts`` (dicts with its columns; dates as dates or ISO strings);
    ``period_label`` names the run's month in the subject and the opening line (``2025年03月``; a
    month given as ``2025-03`` is shown so, :func:`period_label_for`). Each
    finding appears once (see :func:`_unique`); errors come before warnings. Raises ValueError for
    an unknown severity and for departments without an ``email`` in departments.yaml (all named),
    CatalogError for a department the catalog does not know.
    """
    if _MONTH.match(period_label):
        period_label = period_label_for(period_label)
    rows = list(alerts)
    bad = sorted({str(a.get("severity")) for a in rows if a.get("severity") not in SEVERITIES})
    if bad:
        raise ValueError(f"unknown alert severity {', '.join(bad)}: expected error or warning")
    by_department: dict[str, list[Mapping[str, Any]]] = {}
    for alert in _unique(rows):
        by_department.setdefault(alert["department"], []).append(alert)
    departments = {code: catalog.department(code) for code in sorted(by_department)}
    no_email = [code for code, dept in departments.items() if not dept.email]
    if no_email:
        raise ValueError(
            f"no email in departments.yaml for {', '.join(no_email)}: their quality digests cannot be sent"
        )
    digests = []
    for code, dept in departments.items():
        findings = sorted(by_department[code], key=_sort_key)
        errors = sum(1 for a in findings if a["severity"] == "error")
        warnings = len(findings) - errors
        assert dept.email is not None  # checked above
        digests.append(Digest(
            department=code,
            department_name=dept.name_zh,
            to=dept.email,
            subject=f"{SUBJECT_PREFIX}{dept.name_zh} {period_label}：{errors}项错误，{warnings}项警告",
            body=_body(dept.name_zh, period_label, findings, catalog),
            errors=errors,
            warnings=warnings,
        ))
    return digests


def _failure(exc: Exception, notifier: Any, digest: Digest, conn_id: str) -> str:
    """What went wrong, in one sentence naming the SMTP server (or the missing connection)."""
    conn = getattr(notifier.hook, "smtp_connection", None)
    if conn is None:
        return f"no Airflow connection '{conn_id}' for the SMTP server: {exc}"
    server = f"{conn.host or 'localhost'}:{conn.port or 25}"
    where = f"(Airflow connection '{conn_id}')"
    if isinstance(exc, ValueError):
        return f"no sender address for the SMTP server {server} {where}: {exc}"
    unreachable = (isinstance(exc, OSError) and not hasattr(exc, "smtp_code")) or "Unable to connect" in str(exc)
    if unreachable:
        return f"cannot reach the SMTP server {server} {where}: {exc}"
    return f"the SMTP server {server} {where} did not take the digest for {digest.department} <{digest.to}>: {exc}"


def send_digests(
    digests: Sequence[Digest],
    conn_id: str = "smtp_default",
    context: Mapping[str, Any] | None = None,
    *,
    from_email: str | None = None,
) -> int:
    """Send each digest through the SMTP provider's ``SmtpNotifier``; returns the number sent.

    The server, port, TLS and sender come from the Airflow connection ``conn_id`` (its extra
    ``from_email`` unless ``from_email`` is given). ``context`` is the task's Airflow context, if
    any. Subject and body are sent as given (not rendered as Jinja templates). Stops at the first
    failure with :class:`NotifyError` naming the server and the departments sent and not sent.
    """
    if not digests:
        return 0
    from airflow.providers.common.compat.sdk import AirflowException
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    sent: list[str] = []
    for digest in digests:
        notifier = SmtpNotifier(
            to=digest.to,
            from_email=from_email,
            subject=digest.subject,
            html_content=digest.html(),
            smtp_conn_id=conn_id,
        )
        try:
            notifier.notify(dict(context or {}))  # type: ignore[arg-type]  # a task's Context, or a plain dict
        except (OSError, AirflowException, ValueError) as exc:
            left = [d.department for d in digests[len(sent):]]
            progress = (f"{len(sent)} of {len(digests)} quality digests sent"
                        + (f" ({', '.join(sent)})" if sent else "") + f"; not sent: {', '.join(left)}")
            raise NotifyError(f"{_failure(exc, notifier, digest, conn_id)}. {progress}") from exc
        sent.append(digest.department)
        log.info("Quality digest sent to %s <%s>: %d errors, %d warnings",
                 digest.department, digest.to, digest.errors, digest.warnings)
    return len(sent)
