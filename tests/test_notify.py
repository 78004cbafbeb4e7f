"""The departments' quality digests (credit/notify.py): one Chinese e-mail per department per run,
built from audit.alerts rows and sent through Airflow's SmtpNotifier to a local SMTP sink."""

from __future__ import annotations

import email
import email.policy
import html
import json
import re
import socket
from datetime import date

import pytest

from credit.notify import Digest, NotifyError, build_digests, period_label_for, send_digests

pytestmark = pytest.mark.integration

PERIOD = "2025年03月"
MONTH = date(2025, 3, 1)
AS_OF = date(2025, 4, 10)


def alert(severity, check_name, department, dataset_id, metric=None, value=None, previous=None, target=None,
          threshold=None, message_zh="", period="2025-03", as_of=AS_OF) -> dict:
    """One audit.alerts row, exactly its columns."""
    return {
        "as_of": as_of, "severity": severity, "check_name": check_name, "department": department,
        "dataset_id": dataset_id, "period": period, "month": MONTH, "metric": metric, "value": value,
        "previous": previous, "target": target, "threshold": threshold, "message_zh": message_zh,
    }


def synthetic_alerts() -> list[dict]:
    """Three departments, mixed severities, warnings deliberately listed before errors."""
    return [
        # 乳山市市场监督管理局: 2 errors, 3 warnings
        alert("warning", "rate", "market_regulation", "admin_license", "completeness", 0.985, target=0.99,
              threshold=0.94, message_zh="完整率低于目标：必填项“许可内容”缺失较多"),
        alert("error", "rate", "market_regulation", "admin_penalty", "compliance", 0.9312, target=0.99,
              threshold=0.94, message_zh="合规率低于错误阈值：处罚决定日期格式不符"),
        alert("warning", "delivery", "market_regulation", "admin_inspection", None, 2, threshold=0,
              period="2025-03", message_zh="3月行政监督检查数据逾期2天报送"),
        alert("error", "worsening", "market_regulation", "admin_penalty", "completeness", 0.95, previous=0.99,
              target=0.99, threshold=0.03, message_zh="完整率比上月明显变差"),
        alert("warning", "rate", "market_regulation", "legal_entity", "code_error", 0.0005, target=0.0001,
              threshold=0.01, message_zh="重错码率高于万分之一"),
        # 国家税务总局乳山市税务局: 1 error, 2 warnings
        alert("warning", "rate", "tax", "tax_payment", "timeliness", 0.90, target=0.95, threshold=0.45,
              message_zh="及时率未达标"),
        alert("error", "delivery", "tax", "social_insurance", None, 12, threshold=0,
              message_zh="3月社会保险费缴纳信息逾期未报送"),
        alert("warning", "rate", "tax", "admin_penalty", "correction", 0.80, target=0.95, threshold=None,
              message_zh="纠正率未达标"),
        # 乳山市行政审批服务局: warnings only
        alert("warning", "rate", "approval", "admin_license", "compliance", 0.985, target=0.99, threshold=0.94,
              message_zh="合规率略低于目标"),
        alert("warning", "rate", "approval", "admin_confirmation", "completeness", 0.98, target=0.99,
              threshold=0.94, message_zh="完整率略低于目标"),
    ]


EXPECTED = {  # department: (email, errors, warnings)
    "approval": ("approval@credit.rushan.example", 0, 2),
    "market_regulation": ("market-regulation@credit.rushan.example", 2, 3),
    "tax": ("tax@credit.rushan.example", 1, 2),
}


# -- building the digests (pure) ---------------------------------------------------------------

def test_one_digest_per_department_sorted_with_counts(catalog):
    digests = build_digests(synthetic_alerts(), catalog, PERIOD)
    assert [d.department for d in digests] == sorted(EXPECTED)
    for d in digests:
        to, errors, warnings = EXPECTED[d.department]
        assert (d.to, d.errors, d.warnings) == (to, errors, warnings)
        name = catalog.department(d.department).name_zh
        assert d.subject == f"【数据质量通报】{name} {PERIOD}：{errors}项错误，{warnings}项警告"
    market = digests[1]
    assert market.subject == "【数据质量通报】乳山市市场监督管理局 2025年03月：2项错误，3项警告"


def test_body_lists_errors_before_warnings_one_line_per_finding(catalog):
    market = next(d for d in build_digests(synthetic_alerts(), catalog, PERIOD) if d.department == "market_regulation")
    lines = market.body.splitlines()
    assert lines[0] == "乳山市市场监督管理局："
    errors_at, warnings_at = lines.index("一、错误（2 项）"), lines.index("二、警告（3 项）")
    assert errors_at < warnings_at
    error_lines = [ln for ln in lines[errors_at + 1:warnings_at] if ln]
    warning_lines = [ln for ln in lines[warnings_at + 1:] if re.match(r"\d+\. ", ln)]
    assert len(error_lines) == 2 and len(warning_lines) == 3
    # dataset name, period, metric, value vs target / threshold, message — on one line
    assert error_lines[0] == ("1. 【行政处罚】2025-03 合规率 93.12%（目标 ≥ 99.00%，错误阈值 94.00%）："
                              "合规率低于错误阈值：处罚决定日期格式不符")
    # worsening: the threshold is a change in rate points, not a rate
    assert error_lines[1] == ("2. 【行政处罚】2025-03 完整率 95.00%（目标 ≥ 99.00%，上月 99.00%，变差 4.00 个百分点，"
                              "错误阈值：变差超过 3.00 个百分点）：完整率比上月明显变差")
    assert any("【行政监督检查】2025-03 报送：逾期 2 天" in ln for ln in warning_lines)
    assert any("【法人基础信息】2025-03 重错码率 0.0500%（目标 ≤ 0.0100%" in ln for ln in warning_lines)
    for message in ("完整率低于目标", "合规率低于错误阈值", "逾期2天报送", "比上月明显变差", "重错码率高于万分之一"):
        assert market.body.count(message) == 1, message


def test_warnings_only_digest_has_no_error_section(catalog):
    approval = build_digests(synthetic_alerts(), catalog, PERIOD)[0]
    assert approval.department == "approval"
    assert "错误（" not in approval.body and "一、警告（2 项）" in approval.body
    assert approval.subject.endswith("0项错误，2项警告")


def test_a_finding_given_twice_is_listed_once(catalog):
    rows = synthetic_alerts()
    again = dict(rows[1])  # the same finding from a re-run
    older = dict(rows[5], as_of=date(2025, 4, 1), message_zh="旧的结果")
    digests = build_digests([*rows, again, older], catalog, PERIOD)
    market = next(d for d in digests if d.department == "market_regulation")
    assert (market.errors, market.warnings) == (2, 3)
    assert market.body.count("处罚决定日期格式不符") == 1
    tax = next(d for d in digests if d.department == "tax")
    assert tax.warnings == 2 and "旧的结果" not in tax.body


def test_no_findings_no_digest_and_bad_input_is_named(catalog):
    assert build_digests([], catalog, PERIOD) == []
    with pytest.raises(ValueError, match="unknown alert severity critical"):
        build_digests([alert("critical", "rate", "tax", "tax_payment", "compliance", 0.5)], catalog, PERIOD)


def test_rows_as_the_close_dag_passes_them(catalog):
    """dags/credit_period_close.py passes Alert.as_dict() rows (dates as ISO strings) and the period as 2025-03."""
    rows = [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in a.items()} for a in synthetic_alerts()]
    digests = build_digests(rows, catalog, "2025-03")
    assert digests == build_digests(synthetic_alerts(), catalog, PERIOD)
    assert digests[1].subject == "【数据质量通报】乳山市市场监督管理局 2025年03月：2项错误，3项警告"


def test_metric_names_match_the_report():
    from credit.notify import METRIC_NAMES
    from credit.report import SHORT_NAMES

    assert METRIC_NAMES == SHORT_NAMES


def test_period_label():
    assert period_label_for("2025-03") == period_label_for(date(2025, 3, 1)) == "2025年03月"
    assert period_label_for("2025-11-01") == "2025年11月"


# -- sending through Airflow's SmtpNotifier to a local sink -------------------------------------

@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    """Airflow's configuration for a throw-away data root, before airflow is imported here."""
    from credit.airflow_env import airflow_environ
    from foundation.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CREDIT_DATA_DIR", str(tmp_path_factory.mktemp("notify") / "data"))
        settings = get_settings()
        settings.airflow_home.mkdir(parents=True)
        for key, value in airflow_environ(settings).items():
            mp.setenv(key, value)
        yield


def smtp_connection(port: int) -> str:
    """The connection as AIRFLOW_CONN_SMTP_DEFAULT: a local relay, no TLS, no login."""
    return json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"from_email": "credit-center@credit.rushan.example", "disable_ssl": True, "disable_tls": True,
                  "timeout": 10, "retry_limit": 0},
    })


class Collector:
    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink(airflow_env, monkeypatch):
    """An aiosmtpd server on 127.0.0.1 at a free port, and smtp_default pointing at it."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(port))
    try:
        yield collector
    finally:
        controller.stop()


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def plain_text(message: email.message.EmailMessage) -> str:
    """The digest's plain text back from the provider's text/html part (one escaped <pre>)."""
    part = message.get_body(("html",))
    assert part is not None and part.get_content_charset() == "utf-8"
    content = part.get_content()
    match = re.search(r"<pre[^>]*>(.*)</pre>", content, re.S)
    assert match, content
    return html.unescape(match.group(1))


def test_three_departments_three_messages(smtp_sink, catalog):
    digests = build_digests(synthetic_alerts(), catalog, PERIOD)
    assert send_digests(digests) == 3
    assert len(smtp_sink.envelopes) == 3  # one per department, never one per finding
    by_rcpt = {}
    for envelope in smtp_sink.envelopes:
        assert len(envelope.rcpt_tos) == 1
        by_rcpt[envelope.rcpt_tos[0]] = envelope
    assert sorted(by_rcpt) == sorted(to for to, _, _ in EXPECTED.values())
    assert "human-resources@credit.rushan.example" not in by_rcpt  # no findings, no mail

    for digest in digests:
        envelope = by_rcpt[digest.to]
        assert envelope.mail_from == "credit-center@credit.rushan.example"
        message = parsed(envelope)
        assert message["To"] == digest.to
        # The subject went out RFC 2047-encoded and decodes to the Chinese text, counts included.
        assert b"=?utf-8?" in envelope.content.split(b"\r\n\r\n", 1)[0]
        _, errors, warnings = EXPECTED[digest.department]
        assert message["Subject"] == digest.subject
        assert f"{errors}项错误，{warnings}项警告" in str(message["Subject"])
        body = plain_text(message)
        assert body.strip() == digest.body.strip()
        numbered = [ln for ln in body.splitlines() if re.match(r"\d+\. 【", ln)]
        assert len(numbered) == errors + warnings == len(set(numbered))  # each finding once
        if errors and warnings:
            assert body.index("、错误（") < body.index("、警告（")

    market = plain_text(parsed(by_rcpt["market-regulation@credit.rushan.example"]))
    assert "【行政处罚】2025-03 合规率 93.12%（目标 ≥ 99.00%，错误阈值 94.00%）" in market
    assert market.index("处罚决定日期格式不符") < market.index("完整率低于目标")  # an error before a warning


def test_html_special_characters_survive(smtp_sink, catalog):
    rows = [alert("warning", "rate", "tax", "tax_payment", "timeliness", 0.9, target=0.95,
                  message_zh="字段<纳税人名称>含 & 符号 {{ ti }}")]
    assert send_digests(build_digests(rows, catalog, PERIOD)) == 1
    body = plain_text(parsed(smtp_sink.envelopes[0]))
    assert "字段<纳税人名称>含 & 符号 {{ ti }}" in body  # escaped for HTML, not rendered as a template


def test_nothing_to_send_sends_nothing(smtp_sink, catalog):
    assert send_digests(build_digests([], catalog, PERIOD)) == 0
    assert smtp_sink.envelopes == []


def test_unreachable_server_fails_with_a_plain_message(airflow_env, monkeypatch, catalog):
    # A port bound but not listening: connections to it are refused, and no one else can take it.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_connection(port))
        digests = build_digests(synthetic_alerts(), catalog, PERIOD)
        with pytest.raises(NotifyError) as failed:
            send_digests(digests)
    message = str(failed.value)
    assert f"cannot reach the SMTP server 127.0.0.1:{port}" in message
    assert "'smtp_default'" in message
    assert "0 of 3 quality digests sent; not sent: approval, market_regulation, tax" in message
    assert isinstance(failed.value.__cause__, ConnectionRefusedError)


def test_unknown_connection_is_named(airflow_env, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    digest = Digest("tax", "国家税务总局乳山市税务局", "tax@credit.rushan.example", "s", "b", 0, 1)
    with pytest.raises(NotifyError, match="no Airflow connection 'credit_no_such_smtp'"):
        send_digests([digest], conn_id="credit_no_such_smtp")
