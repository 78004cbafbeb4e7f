"""The credit check (credit check, 信用核查) on a tiny hand-made city with hand-computed answers.

The feeds below go through the real loader into a real DuckDB warehouse; the credit-records mart, a score
run (catalogs/scoring/city_2026.yaml, in force from 2026-04-01) and the warning list are built as of
2026-07-31; the check runs on 2026-08-01. Every expected value is worked out by hand in the comments.

Subjects:
- ORG_A 乳山市甲建材有限公司, founded 2010-01-01 (16 full years on 2026-07-31: +4). Penalties: P1 general
  (罚款 1.5万, 2026-05-10, NDRC Order 36: 12 months, published to 2027-05-09: -4), P2 minor (简易程序,
  2026-05-06: not published under Order 36; counted with 0), P3 serious (吊销许可证件, 2026-06-01, Order 36:
  36 months, published to 2029-05-31: -12), P4 general (2025-03-10, Order 58) repaired on 2025-07-01
  (not counted); the repair itself (credit_repair, +2). Tax: 2026-03 and 2026-04 in arrears (2 months in
  12: -2), 2026-05 and 2026-06 paid (a streak of 2 months: 0). Score 100 + 4 - 12 - 4 + 0 - 2 + 0 + 2 = 88: C.
  On the warning list (P1, P3: two published negative records). Measure for market_regulation:
  serious_penalty_review (P3 is serious).
- ORG_B 乳山市乙商贸有限公司, founded 2020-06-01 (6 years: +2), on the serious-dishonesty list since
  2026-03-01 (-30): 72, D. Measures: procurement_ban, subsidy_restrict, honours_restrict (the list) and,
  authorized only, grade_d_supervision.
- ORG_C 乳山市丙科技有限公司, founded 2000-01-01 (26 years: +4), 授予荣誉称号 on 2026-06-15 (+5): 109, A.
  Measures for approval: grade_a_fast_track (authorized only) and reward_honoured.
- PERSON_1 and PERSON_2, both named 张某某, one general penalty each: a name check is ambiguous.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb
import pytest

from credit import pipeline
from credit.check_page import render, write_check_page
from credit.credit_check import check, parse_query
from foundation.scoring_model import load_scoring_models, load_warning_rules
from sample_city.entities import agency_uscc, make_uscc
from tests.conftest import write_csv_feed
from tests.restricted_scan import resident_ids_in
from transforms.identifiers import rid_check_char
from warehouse.credit_warnings import build_warnings
from warehouse.db import id_salt, open_warehouse
from warehouse.scoring import latest_run, run_scoring

pytestmark = pytest.mark.integration

CITY = ZoneInfo("Asia/Shanghai")
AS_OF = date(2026, 7, 31)
CHECK_DAY = date(2026, 8, 1)
AGENCY = agency_uscc("market_regulation")
TAX = agency_uscc("tax")
ORG_A, ORG_B, ORG_C = (make_uscc("91", "371083", f"MA{n:06d}") for n in (101, 102, 103))
NAME_A, NAME_B, NAME_C = "乳山市甲建材有限公司", "乳山市乙商贸有限公司", "乳山市丙科技有限公司"
_ID1, _ID2 = "37108319850312123", "37108319900704456"
PERSON_1, PERSON_2 = _ID1 + rid_check_char(_ID1), _ID2 + rid_check_char(_ID2)
PERSON_NAME = "张某某"

REGISTER_HEADER = ["TYSHXYDM", "JGMC", "ZTLX", "FDDBR", "CLRQ", "ZCZB", "DJJG", "DJZT", "ZS"]
REGISTER = [
    [ORG_A, NAME_A, "企业", "李甲", "2010-01-01", "500", "乳山市市场监督管理局", "存续", "乳山市城区胜利街1号"],
    [ORG_B, NAME_B, "企业", "王乙", "2020-06-01", "100", "乳山市市场监督管理局", "存续", "乳山市夏村镇2号"],
    [ORG_C, NAME_C, "企业", "赵丙", "2000-01-01", "2000", "乳山市市场监督管理局", "存续", "乳山市海阳所镇3号"],
]
PENALTY_HEADER = ["CF_XDR_MC", "CF_XDR_LB", "CF_XDR_SHXYM", "CF_XDR_ZJHM", "CF_WSH", "CF_WFXW", "CF_SY", "CF_YJ",
                  "CF_CFLB", "CF_NR", "CF_NR_FK", "CF_JDRQ", "CF_YXQ", "CF_CFJG", "CF_CFJGDM", "CF_SJLY",
                  "CF_SJLYDM"]
# doc, subject, kinds, fine (万元), law, content, decided
PENALTIES = [
    ("罚2026-01", ORG_A, "罚款", "1.5", "《广告法》", "罚款15000元", "2026-05-10"),  # P1 general
    ("罚2026-02", ORG_A, "罚款", "0.02", "《食品安全法》", "适用简易程序，罚款200元", "2026-05-06"),  # P2 minor
    ("罚2026-03", ORG_A, "吊销许可证件", "", "《道路运输条例》", "吊销道路运输经营许可证", "2026-06-01"),  # P3 serious
    ("罚2025-04", ORG_A, "罚款", "1", "《广告法》", "罚款10000元", "2025-03-10"),  # P4 general, repaired
    ("罚2026-11", PERSON_1, "罚款", "0.1", "《治安管理处罚法》", f"罚款1000元（当事人{PERSON_1}）", "2026-06-20"),
    ("罚2026-12", PERSON_2, "罚款", "0.1", "《治安管理处罚法》", "罚款1000元", "2026-06-21"),
]
LIST_HEADER = ["SX_XDR_MC", "SX_XDR_LB", "SX_XDR_SHXYM", "SX_MDLB", "SX_SJLX", "SX_RDWH", "SX_SY", "SX_RQ", "SX_YXQZ",
               "SX_RDJG", "SX_RDJGDM", "SX_SJLY", "SX_SJLYDM"]
REPAIR_HEADER = ["XF_XDR_MC", "XF_XDR_LB", "XF_XDR_SHXYM", "XF_XXLB", "XF_YWSH", "XF_LB", "XF_JDRQ", "XF_JG", "XF_JGDM"]
REWARD_HEADER = ["JL_XDR_MC", "JL_XDR_LB", "JL_XDR_SHXYM", "JL_WSH", "JL_LB", "JL_NR", "JL_JDRQ", "JL_JG", "JL_JGDM",
                 "JL_SJLY", "JL_SJLYDM"]
TAX_HEADER = ["NSRSBH", "NSRMC", "SZ", "SSQQ", "SSQZ", "YNSE", "SJSE", "QSE", "NSZT"]
TAX_MONTHS = [("2026-03-01", "2026-03-31", "欠缴"), ("2026-04-01", "2026-04-30", "欠缴"),
              ("2026-05-01", "2026-05-31", "正常"), ("2026-06-01", "2026-06-30", "正常")]


def _penalty_row(doc, who, kinds, fine, law, content, decided) -> list[str]:
    person = not who.startswith("91")
    return [PERSON_NAME if person else NAME_A, "自然人" if person else "法人及非法人组织", "" if person else who,
            who if person else "", doc, "违法行为", f"经查，当事人违法。{content}", law, kinds, content, fine, decided,
            "2030-12-31", "乳山市市场监督管理局", AGENCY, "乳山市市场监督管理局", AGENCY]


def _received(day: int) -> datetime:
    return datetime(2026, 7, day, 9, tzinfo=CITY)


def _load_city(settings, catalog) -> None:
    feeds = settings.data_root / "feeds"
    files = [
        (write_csv_feed(feeds / "register.csv", REGISTER_HEADER, REGISTER, _received(1)), "legal_entity",
         "market_regulation"),
        (write_csv_feed(feeds / "penalty.csv", PENALTY_HEADER, [_penalty_row(*p) for p in PENALTIES], _received(2)),
         "admin_penalty", "market_regulation"),
        (write_csv_feed(feeds / "dishonest.csv", LIST_HEADER,
                [[NAME_B, "法人及非法人组织", ORG_B, "严重违法失信名单", "列入", "列2026-01", "提供虚假材料",
                  "2026-03-01", "", "乳山市市场监督管理局", AGENCY, "乳山市市场监督管理局", AGENCY]], _received(2)),
         "dishonesty_list", "market_regulation"),
        (write_csv_feed(feeds / "reward.csv", REWARD_HEADER,
                [[NAME_C, "法人及非法人组织", ORG_C, "奖2026-01", "授予荣誉称号", "授予“守合同重信用”企业称号",
                  "2026-06-15", "乳山市市场监督管理局", AGENCY, "乳山市市场监督管理局", AGENCY]], _received(2)),
         "admin_reward", "market_regulation"),
        (write_csv_feed(feeds / "tax.csv", TAX_HEADER,
                [[ORG_A, NAME_A, "增值税", start, end, "1", *(("0", "1") if state == "欠缴" else ("1", "0")), state]
                 for start, end, state in TAX_MONTHS], _received(10)), "tax_payment", "tax"),
        (write_csv_feed(feeds / "repair.csv", REPAIR_HEADER,
                [[NAME_A, "法人及非法人组织", ORG_A, "行政处罚", "罚2025-04", "信用修复", "2025-07-01",
                  "乳山市市场监督管理局", AGENCY]], _received(3)), "credit_repair", "market_regulation"),
    ]
    for path, dataset_id, department in files:
        result = pipeline.ingest_file(settings, catalog, path, dataset_id, department)
        assert result.rows_quarantined == 0, (dataset_id, result.message)


@pytest.fixture(scope="module")
def city(tmp_path_factory, catalog):
    """The tiny city, loaded and scored once for the module; tests open it read-only."""
    root = tmp_path_factory.mktemp("credit-check") / "data"
    old = os.environ.get("CREDIT_DATA_DIR")
    os.environ["CREDIT_DATA_DIR"] = str(root)
    try:
        from foundation.settings import get_settings

        settings = get_settings()
        _load_city(settings, catalog)
        with open_warehouse(settings, catalog) as con:
            run_scoring(con, catalog, load_scoring_models(catalog), AS_OF)
            build_warnings(con, catalog, load_warning_rules(catalog), AS_OF)
    finally:
        if old is None:
            os.environ.pop("CREDIT_DATA_DIR", None)
        else:
            os.environ["CREDIT_DATA_DIR"] = old
    return settings


@pytest.fixture
def con(city):
    connection = duckdb.connect(str(city.warehouse_path), read_only=True)
    yield connection
    connection.close()


def _masked(rid: str) -> str:
    return rid[:6] + "*" * 8 + rid[-4:]


def _person_key(rid: str) -> str:
    return "P:" + hashlib.sha256((id_salt() + rid).encode()).hexdigest()


def _check(con, catalog, query, variant="authorized", office="market_regulation", as_of=CHECK_DAY):
    return check(con, catalog, query, variant=variant, office=office, as_of=as_of)


def _records(result) -> dict[str, list[tuple]]:
    return {g.dataset_id: [(r.fact_kind, r.document or r.record_kind, r.status) for r in g.records]
            for g in result.records}


NETWORK = re.compile(r"https?:|src\s*=|href\s*=|<script|@import|url\(|<link|<iframe|<img", re.IGNORECASE)


def _assert_offline(html: str) -> None:
    assert not NETWORK.findall(html), NETWORK.findall(html)


# --- the query --------------------------------------------------------------------------------------


def test_an_invalid_code_gets_the_engines_reason_in_english_and_chinese(con, catalog):
    wrong = ORG_A[:-1] + ("0" if ORG_A[-1] != "0" else "1")
    r = _check(con, catalog, wrong)
    assert (r.outcome, r.reasons, r.query_kind) == ("invalid", ("uscc_check_digit",), "uscc")
    assert r.message_en == (f"'{wrong}' is not a valid unified social credit code: the check character (character 18) "
                            "is wrong: a character was probably mistyped")
    assert r.message_zh == f"“{wrong}”不是有效的统一社会信用代码：统一社会信用代码校验位错误"
    old = _check(con, catalog, "371083000012345")  # a 15-digit 工商注册号
    assert (old.outcome, old.reasons) == ("invalid", ("wrong_kind_registration_number",))
    assert old.message_zh == "“371083000012345”不是有效的统一社会信用代码：填入的是15位工商注册号，不是统一社会信用代码"
    empty = _check(con, catalog, "  ")
    assert (empty.outcome, empty.reasons, empty.message_zh) == ("invalid", ("empty",), "未输入查询内容")
    # 18 digits that are neither a valid USCC nor a valid resident ID: both engines' reasons.
    bad_id = PERSON_1[:-1] + ("0" if PERSON_1[-1] != "0" else "1")
    r = _check(con, catalog, bad_id)
    assert r.outcome == "invalid" and r.query_kind == "uscc_or_resident_id"
    assert "rid_check_digit" in r.reasons and "公民身份号码校验位错误" in r.message_zh
    assert r.query == _masked(bad_id) and bad_id not in r.message_en + r.message_zh  # a mistyped ID is still masked
    assert _check(con, catalog, ORG_A).query == ORG_A  # a USCC is shown as it is


def test_codes_are_normalized_and_names_matched_in_their_usual_forms(con, catalog):
    wide = ORG_A.lower().translate(str.maketrans("0123456789abcdefghijklmnopqrstuvwxyz",
                                                 "０１２３４５６７８９ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ"))
    for query in (ORG_A, ORG_A.lower(), f" {ORG_A[:9]} {ORG_A[9:]} ", wide, ORG_A[8:16] + "-" + ORG_A[16],
                  NAME_A, f"  {NAME_A} ", "乳山市 甲建材有限公司"):
        r = _check(con, catalog, query)
        assert (r.outcome, r.subject.key if r.subject else None) == ("found", ORG_A), query
    assert parse_query(ORG_A[8:17]).kind == "org_code"
    spaced = f"{PERSON_1[:6]} {PERSON_1[6:14]} {PERSON_1[14:]}"
    for query in (PERSON_1, spaced, PERSON_1.translate(str.maketrans("0123456789", "０１２３４５６７８９"))):
        r = _check(con, catalog, query)
        assert (r.outcome, r.query_kind, r.subject.key) == ("found", "resident_id", _person_key(PERSON_1))
        assert r.query == _masked(PERSON_1)


def test_unknown_subjects_are_not_found_not_errors(con, catalog):
    unknown = make_uscc("91", "371083", "MA000999")
    for query, kind in ((unknown, "uscc"), ("乳山市不存在有限公司", "name"), (unknown[8:17], "org_code")):
        r = _check(con, catalog, query)
        assert (r.outcome, r.query_kind, r.subject, r.candidates) == ("not_found", kind, None, ())
    r = _check(con, catalog, "乳山市不存在有限公司")
    assert r.message_zh == "未查询到与“乳山市不存在有限公司”匹配的主体"
    assert r.message_en == "no subject in the warehouse matches '乳山市不存在有限公司'"


def test_a_name_held_by_two_subjects_lists_both(con, catalog, tmp_path):
    for variant in ("public", "authorized"):
        r = _check(con, catalog, PERSON_NAME, variant=variant)
        assert r.outcome == "ambiguous"
        assert [(c.key, c.kind, c.name) for c in r.candidates] == sorted(
            [(_person_key(PERSON_1), "natural_person", PERSON_NAME), (_person_key(PERSON_2), "natural_person",
                                                                      PERSON_NAME)])
        assert r.message_zh == "“张某某”对应 2 个主体，请以统一社会信用代码（自然人：身份证件号码）重新核查"
        html = render(r, catalog)
        assert html.count("<td>张某某</td>") == 2
        if variant == "public":  # no pseudonymous key of a person in public
            assert "主体标识" not in html and "P:" not in html


# --- the content, by variant ---------------------------------------------------------------------------


def test_authorized_shows_score_explanation_payments_and_every_record_with_its_status(con, catalog):
    r = _check(con, catalog, ORG_A)
    assert (r.outcome, r.facts_as_of, r.warnings_as_of) == ("found", AS_OF, AS_OF)
    assert [(f.label, f.value) for f in r.register] == [
        ("主体类型", "企业"), ("法定代表人", "李甲"), ("成立日期", "2010-01-01"), ("注册资本（万元）", "500 万元"),
        ("登记机关", "乳山市市场监督管理局"), ("登记状态", "存续"), ("住所", "乳山市城区胜利街1号")]
    assert _records(r) == {
        "admin_penalty": [("record", "罚2026-03", "published"), ("record", "罚2026-01", "published"),
                          ("record", "罚2026-02", "minor_not_published"), ("record", "罚2025-04", "repaired")],
        "credit_repair": [("record", "罚2025-04", "in_effect")],
        "tax_payment": [("arrears", "2026-04", "in_effect"), ("arrears", "2026-03", "in_effect"),
                        ("on_time_streak", "2026-06", "in_effect")],
    }
    repaired = r.records[0].records[3]
    assert (repaired.repair_kind, repaired.repaired_on) == ("repair", date(2025, 7, 1))
    s = r.score
    assert (s.score, s.grade, s.grade_name, s.run_id, s.run_as_of) == (88.0, "C", "基本守信", "20260731-city_2026-01",
                                                                       AS_OF)
    assert [(line.line_kind, line.text, line.points) for line in s.lines] == [
        ("base", "基础分", 100.0),
        ("measure", "成立年限：16 年", 4.0),
        ("fact", "行政处罚：罚2026-03 严重（2026-06-01）", -12.0),
        ("fact", "行政处罚：罚2026-01 一般（2026-05-10）", -4.0),
        ("fact", "行政处罚：罚2026-02 轻微（2026-05-06）", 0.0),
        ("not_counted", "行政处罚：罚2025-04 一般（已信用修复，不再计入评价）", 0.0),
        ("measure", "近12个月欠缴（税费、社保、公积金、水电气暖）：2 条", -2.0),
        ("measure", "连续按时缴纳：2", 0.0),
        ("fact", "信用修复（履行信用承诺）：罚2025-04 信用修复（2025-07-01）", 2.0),
    ]
    assert sum(line.points for line in s.lines) == s.score
    assert s.run_id == latest_run(con, CHECK_DAY)
    assert [(w.document, w.severity, w.repairable_from) for w in r.warnings] == [
        ("罚2026-01", "general", date(2026, 8, 10)), ("罚2026-03", "serious", date(2027, 6, 1))]
    assert r.on_warning_list and not r.list_member
    assert [(m.id, m.because) for m in r.measures] == [
        ("serious_penalty_review", ("行政处罚：罚2026-03（2026-06-01，严重）",))]
    html = render(r, catalog)
    for shown in ("88", "基本守信", "纳税信息", "欠缴", "罚2026-02", "轻微不公示", "罚2025-04",
                  "已信用修复（信用修复 2025-07-01）", "授权版（仅限本部门使用）", "二、信用评价",
                  "作为重点监管对象，提高抽查比例和频次"):
        assert shown in html, shown
    _assert_offline(html)


def test_public_hides_score_payments_unpublished_records_and_ids(con, catalog):
    r = _check(con, catalog, ORG_A, variant="public")
    assert r.score is None
    assert _records(r) == {"admin_penalty": [("record", "罚2026-03", "published"),
                                             ("record", "罚2026-01", "published")]}
    assert [w.document for w in r.warnings] == ["罚2026-01", "罚2026-03"]
    assert r.measure_ids == ["serious_penalty_review"]
    html = render(r, catalog)
    for hidden in ('id="evaluation"', 'id="score"', 'id="grade"', "等级 C", "基本守信", "纳税信息", "欠缴",
                   "连续按时缴纳", "信用修复（", "罚2026-02", "罚2025-04", ">88<", "授权版", "<th>状态</th>"):
        assert hidden not in html, hidden
    assert "公开版" in html and "罚2026-03" in html and "一、基本信息" in html and "二、信用记录" in html
    _assert_offline(html)
    # A natural person checked by ID number: found, the ID masked, no valid ID anywhere on either page.
    for variant in ("public", "authorized"):
        person = _check(con, catalog, PERSON_1, variant=variant)
        assert _records(person) == {"admin_penalty": [("record", "罚2026-11", "published")]}
        page = render(person, catalog)
        assert resident_ids_in(page) == [] and PERSON_1 not in page and _masked(PERSON_1) in page
        _assert_offline(page)
        assert person.score is None and person.register == ()
    assert "主体标识" not in render(_check(con, catalog, PERSON_1, variant="public"), catalog)


def test_lists_and_measures_for_the_office(con, catalog):
    b = _check(con, catalog, NAME_B, office="approval")
    assert [(entry.list_name, entry.list_kind, entry.document, entry.decided, entry.published_until)
            for entry in b.lists] == [("严重失信主体名单", "严重违法失信名单", "列2026-01", date(2026, 3, 1),
                                       date(2029, 2, 28))]
    assert (b.score.score, b.score.grade) == (72.0, "D")
    assert b.measure_ids == ["procurement_ban", "subsidy_restrict", "honours_restrict", "grade_d_supervision"]
    assert b.measures[-1].because == ("信用等级 D（失信）",)
    assert not b.on_warning_list  # one published negative record: the threshold is two
    public_b = _check(con, catalog, NAME_B, variant="public", office="approval")
    assert public_b.list_member and public_b.measure_ids == ["procurement_ban", "subsidy_restrict", "honours_restrict"]
    c = _check(con, catalog, ORG_C, office="approval")
    assert (c.score.score, c.score.grade) == (109.0, "A")
    assert c.measure_ids == ["grade_a_fast_track", "reward_honoured"]
    assert _check(con, catalog, ORG_C, office="market_regulation").measure_ids == [
        "grade_a_fast_track", "grade_a_fewer_checks", "reward_honoured"]
    assert _check(con, catalog, ORG_C, office="civil_affairs").measure_ids == ["reward_honoured"]
    assert _check(con, catalog, ORG_C, office=None).measure_ids == [
        "grade_a_fast_track", "grade_a_fewer_checks", "reward_honoured"]
    assert _check(con, catalog, ORG_C, variant="public", office="approval").measure_ids == ["reward_honoured"]
    assert _check(con, catalog, ORG_A, office="approval").measure_ids == []  # serious penalties: other offices
    with pytest.raises(ValueError, match="unknown office 'nope'"):
        _check(con, catalog, ORG_A, office="nope")


def test_a_day_before_the_mart_reads_the_register_itself(con, catalog):
    r = _check(con, catalog, ORG_A, as_of=date(2026, 7, 15))
    assert (r.outcome, r.facts_as_of, r.warnings_as_of, r.score, r.records) == ("found", None, None, None, ())
    assert dict((f.label, f.value) for f in r.register)["法定代表人"] == "李甲"
    assert any("mart.credit_records" in n for n in r.notes)
    before = _check(con, catalog, ORG_A, as_of=date(2026, 6, 30))  # the register arrived on 2026-07-01
    assert before.register == ()


def test_page_file_names_never_come_from_the_query(con, catalog, tmp_path):
    page = write_check_page(_check(con, catalog, NAME_A), catalog, tmp_path)
    assert page.name == f"{ORG_A}-authorized-20260801.html"
    person = write_check_page(_check(con, catalog, PERSON_1, variant="public"), catalog, tmp_path)
    assert re.fullmatch(r"s-[0-9a-f]{16}-public-20260801\.html", person.name)
    missing = write_check_page(_check(con, catalog, "../../etc/passwd公司"), catalog, tmp_path)
    assert re.fullmatch(r"q-[0-9a-f]{16}-authorized-20260801\.html", missing.name) and missing.parent == tmp_path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([page.name, person.name, missing.name])


# --- the command line ------------------------------------------------------------------------------------


def _cli(city, args: list[str]):
    from typer.testing import CliRunner

    from credit.cli import app

    return CliRunner().invoke(app, ["check", *args], env={"CREDIT_DATA_DIR": str(city.data_root), "COLUMNS": "200"})


def test_cli_one_applicant(city, tmp_path):
    done = _cli(city, [ORG_B, "--variant", "authorized", "--office", "approval", "--as-of", "2026-08-01",
                       "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert "乳山市乙商贸有限公司" in done.output and "grade_d_supervision" in done.output and "72" in done.output
    assert (tmp_path / f"{ORG_B}-authorized-20260801.html").exists()
    bad = _cli(city, [ORG_B, "--office", "nope", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "Unknown office 'nope'" in bad.output and "market_regulation" in bad.output
    wrong = ORG_A[:-1] + ("0" if ORG_A[-1] != "0" else "1")
    invalid = _cli(city, [wrong, "--out", str(tmp_path)])
    assert invalid.exit_code == 2 and "check character (character 18) is wrong" in invalid.output
    assert "统一社会信用代码校验位错误" in invalid.output
    assert _cli(city, ["--as-of", "2026-13-01", ORG_A]).exit_code == 2
    assert _cli(city, []).exit_code == 2


def test_cli_pdf_says_plainly_when_none_is_written(city, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    done = _cli(city, [ORG_A, "--as-of", "2026-08-01", "--out", str(tmp_path), "--pdf"])
    assert done.exit_code == 0, done.output
    assert "No PDF written" in done.output and not list(tmp_path.glob("*.pdf"))


@pytest.mark.slow
def test_pdf_with_headless_chromium(con, catalog, tmp_path):
    from credit.check_page import find_chromium, write_pdf

    if find_chromium() is None:
        pytest.skip("Chromium is not installed (make test installs it)")
    pdf = write_pdf(write_check_page(_check(con, catalog, ORG_A, variant="public"), catalog, tmp_path))
    assert pdf is not None and pdf.read_bytes()[:5] == b"%PDF-"


def test_cli_batch_writes_one_row_per_applicant_and_a_report_per_subject_found(city, tmp_path):
    wrong = ORG_A[:-1] + ("0" if ORG_A[-1] != "0" else "1")
    applicants = tmp_path / "applicants.csv"
    applicants.write_text(
        "名称,统一社会信用代码\n"
        f",{ORG_A}\n"
        f"{NAME_B},\n"
        f",{ORG_C.lower()}\n"
        f",{wrong}\n"
        "张某某,\n"
        "\n"
        "=HYPERLINK(\"x\"),\n"
        f"{PERSON_NAME},{PERSON_1}\n", encoding="utf-8")
    out = tmp_path / "out"
    done = _cli(city, ["--batch", str(applicants), "--variant", "authorized", "--office", "market_regulation",
                       "--as-of", "2026-08-01", "--out", str(out)])
    assert done.exit_code == 0, done.output
    with (out / "check_results.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    person_ref = f"自然人（主体标识 {_person_key(PERSON_1)[2:14]}…）"
    person_file = "s-" + hashlib.sha256(_person_key(PERSON_1).encode()).hexdigest()[:16] + "-authorized-20260801.html"
    candidates = "；".join(f"张某某（自然人（主体标识 {k[2:14]}…））"
                          for k in sorted([_person_key(PERSON_1), _person_key(PERSON_2)]))
    assert rows == [
        ["row", "input", "outcome", "reason", "message", "subject", "name", "grade", "warning", "list_member",
         "measures", "report"],
        ["2", ORG_A, "found", "", "", ORG_A, NAME_A, "C", "yes", "no", "serious_penalty_review",
         f"{ORG_A}-authorized-20260801.html"],
        ["3", NAME_B, "found", "", "", ORG_B, NAME_B, "D", "no", "yes",
         "procurement_ban;subsidy_restrict;honours_restrict;grade_d_supervision", f"{ORG_B}-authorized-20260801.html"],
        ["4", ORG_C.lower(), "found", "", "", ORG_C, NAME_C, "A", "no", "no",
         "grade_a_fast_track;grade_a_fewer_checks;reward_honoured", f"{ORG_C}-authorized-20260801.html"],
        ["5", wrong, "invalid", "uscc_check_digit",
         f"“{wrong}”不是有效的统一社会信用代码：统一社会信用代码校验位错误 / '{wrong}' is not a valid unified social "
         "credit code: the check character (character 18) is wrong: a character was probably mistyped",
         "", "", "", "", "", "", ""],
        ["6", "张某某", "ambiguous", "",
         "“张某某”对应 2 个主体，请以统一社会信用代码（自然人：身份证件号码）重新核查 / "
         "2 subjects share the name '张某某': check again with the unified social credit code "
         "(a person: the ID number)",
         "", candidates, "", "", "", "", ""],
        ["8", "'=HYPERLINK(\"x\")", "not_found", "",
         "未查询到与“=HYPERLINK(\"x\")”匹配的主体 / no subject in the warehouse matches '=HYPERLINK(\"x\")'",
         "", "", "", "", "", "", ""],
        ["9", _masked(PERSON_1), "found", "", "", person_ref, PERSON_NAME, "", "no", "no", "", person_file],
    ]
    assert sorted(p.name for p in out.glob("*.html")) == sorted(
        [f"{ORG_A}-authorized-20260801.html", f"{ORG_B}-authorized-20260801.html", f"{ORG_C}-authorized-20260801.html",
         person_file])
    for page in out.glob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert resident_ids_in(html) == []
        _assert_offline(html)
    assert PERSON_1 not in (out / "check_results.csv").read_text(encoding="utf-8-sig")
    assert "7 applicants: 4 found, 1 ambiguous, 1 not found, 1 invalid" in done.output
    public = _cli(city, ["--batch", str(applicants), "--as-of", "2026-08-01", "--out", str(tmp_path / "pub")])
    assert public.exit_code == 0, public.output
    with (tmp_path / "pub" / "check_results.csv").open(encoding="utf-8-sig", newline="") as fh:
        public_rows = list(csv.reader(fh))
    assert [row[7] for row in public_rows[1:]] == [""] * 7  # no grade in public
    assert public_rows[2][10] == "procurement_ban;subsidy_restrict;honours_restrict"


def test_cli_batch_needs_an_applicant_column(city, tmp_path):
    applicants = tmp_path / "applicants.csv"
    applicants.write_text("foo,bar\n1,2\n", encoding="utf-8")
    done = _cli(city, ["--batch", str(applicants), "--out", str(tmp_path / "out")])
    assert done.exit_code == 2 and "no applicant column" in done.output
