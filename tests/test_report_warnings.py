"""The quality report's section 信用预警与修复指导 (credit/report.py, the template), on hand-made facts.

A warehouse made by ``ensure_schema`` (with the cumulative rows of test_report_trends' synthetic
scorecard, its deliveries and alerts, so the whole page renders; no monthly rows: no charts to draw)
gets hand-written facts in ``mart.credit_records`` for four days and the real
warning lists of ``warehouse.credit_warnings.build_warnings`` for each of them:

- 甲 (``A``): three published penalties: one from 2023 under NDRC 527 as serious_special (not
  repairable early), a general one of 2025-01-10 (repairable from 2025-04-10) and a serious_special
  one of 2026-03-01 under Order 58 (12 months: from 2027-03-01); a credit repair on 2025-12-01;
- 乙 (``B``, a name with ``<`` and ``>``): a general penalty and a listing on the dishonesty list;
- 丙 (``C``): one published penalty and one repaired: never on the list; a credit repair on 2026-02-15;
- 丁 (``G``): two penalties of April 2026: only on the list of 2026-04-30, after the report's day;
- a natural person with two penalties: never listed (catalogs/credit_warnings.yaml: legal entities).

The report of 2026-03-31 lists 甲 (3 records) then 乙 (2); per year, 2 subjects guided in 2025 and
in 2026 against the target of 100, one repair completed each year (2025: after guidance).
"""

from __future__ import annotations

import re
from datetime import date
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_trends import build_warehouse as trends_warehouse
from test_report_trends import scorecard_rows

from credit.report import collect, render
from foundation.scoring_model import load_warning_rules
from foundation.settings import PROJECT_ROOT, Settings
from warehouse.credit_warnings import build_warnings

pytestmark = pytest.mark.integration

A, B, C, G = "91371083MA3C0001XA", "91371083MA3C0002XB", "91371083MA3C0003XC", "91371083MA3C0004XD"
PERSON = "P:" + "0" * 64
NAMES = {A: "乳山市甲贸易有限公司", B: "乳山市<乙>餐饮店", C: "乳山市丙建材经营部", G: "乳山市丁副食店"}
DAYS = [date(2025, 6, 30), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30)]
REPORT_DAY = date(2026, 3, 31)

# record id, subject, dataset, document, decided, severity, rule version, published until, status
RECORDS = [
    ("a1", A, "admin_penalty", "乳市监罚〔2025〕1号", date(2025, 1, 10), "general", "ndrc_order_58",
     date(2028, 1, 9), "published"),
    ("a2", A, "admin_penalty", "乳市监罚〔2026〕9号", date(2026, 3, 1), "serious_special", "ndrc_order_58",
     date(2029, 2, 28), "published"),
    ("a3", A, "admin_penalty", "威环乳罚字〔2023〕5号", date(2023, 4, 20), "serious_special", "ndrc_2019_527",
     date(2026, 4, 19), "published"),
    ("b1", B, "admin_penalty", "乳交罚〔2025〕3号", date(2025, 3, 1), "general", "ndrc_order_58",
     date(2028, 2, 29), "published"),
    ("b2", B, "dishonesty_list", "乳人社失信〔2025〕2号", date(2025, 5, 20), "serious", "ndrc_order_58",
     date(2028, 5, 19), "published"),
    ("c1", C, "admin_penalty", "乳市监罚〔2025〕7号", date(2025, 2, 1), "general", "ndrc_order_58",
     date(2028, 1, 31), "published"),
    ("c2", C, "admin_penalty", "乳市监罚〔2025〕8号", date(2025, 2, 2), "general", "ndrc_order_58",
     date(2028, 2, 1), "repaired"),
    ("g1", G, "admin_penalty", "乳市监罚〔2026〕41号", date(2026, 4, 2), "general", "ndrc_order_36",
     date(2027, 4, 1), "published"),
    ("g2", G, "admin_penalty", "乳市监罚〔2026〕42号", date(2026, 4, 3), "general", "ndrc_order_36",
     date(2027, 4, 2), "published"),
    ("p1", PERSON, "admin_penalty", "乳市监罚〔2025〕11号", date(2025, 1, 5), "general", "ndrc_order_58",
     date(2028, 1, 4), "published"),
    ("p2", PERSON, "admin_penalty", "乳市监罚〔2025〕12号", date(2025, 1, 6), "general", "ndrc_order_58",
     date(2028, 1, 5), "published"),
]
REPAIRS = [("ra", A, date(2025, 12, 1)), ("rc", C, date(2026, 2, 15))]  # credit_repair, 信用修复


def _facts(day: date) -> list[list]:
    rows = []
    for rid, key, ds, doc, decided, sev, version, until, status in RECORDS:
        if decided <= day:
            rows.append([day, rid, key, ds, "record", "罚款", "negative", sev, version, decided, until, status, None,
                         None, None, doc, "market_regulation", "batch-1", 1])
    for rid, key, decided in REPAIRS:
        if decided <= day:
            rows.append([day, rid, key, "credit_repair", "record", "信用修复", "positive", None, None, decided, None,
                         "in_effect", None, None, None, f"修复-{rid}", "development_reform", "batch-2", 1])
    return rows


def build_warehouse(path: Path, catalog, settings: Settings):
    return trends_warehouse(path, catalog, settings, rows=[r for r in scorecard_rows() if not r[0].endswith("_month")])


def _subjects(con) -> None:
    con.executemany("INSERT INTO clean.subjects VALUES (?, 'legal_entity', ?, ?, true, 'batch-0', 'batch-0')",
                    [[key, key, name] for key, name in NAMES.items()])
    con.execute("INSERT INTO clean.subjects VALUES (?, 'natural_person', NULL, '张三丰', false, 'batch-1', 'batch-1')",
                [PERSON])


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Settings:
    return Settings(tmp_path_factory.mktemp("warnings") / "data", PROJECT_ROOT / "catalogs", "1GB", 1)


@pytest.fixture(scope="module")
def warehouse(env, catalog):
    con = build_warehouse(env.data_root.parent / "warehouse.duckdb", catalog, env)
    _subjects(con)
    rules = load_warning_rules(catalog, env.catalog_dir)
    for day in DAYS:
        con.executemany("INSERT INTO mart.credit_records VALUES (" + ", ".join("?" * 19) + ")", _facts(day))
        build_warnings(con, catalog, rules, day)
    yield con
    con.close()


def _page(con, env, catalog, day: date) -> tuple:
    data = collect(con, env, catalog, day)
    return data, render(data, catalog, env.data_root / "reports")


class Rows(HTMLParser):
    """Each ``<tr>`` of the table with the given id: its attributes and its cells (attributes, text)."""

    def __init__(self, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id, self.depth, self.rows = table_id, 0, []
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == self.table_id:
            self.depth = 1
        elif self.depth and tag == "table":
            self.depth += 1
        elif self.depth and tag == "tr" and any(k.startswith("data-") for k in attrs):  # not the header row
            self.rows.append({"attrs": attrs, "cells": []})
        elif self.depth and tag == "td" and self.rows:
            self._cell = {"attrs": attrs, "text": ""}
            self.rows[-1]["cells"].append(self._cell)

    def handle_endtag(self, tag):
        if self.depth and tag == "table":
            self.depth -= 1
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def rows(html: str, table_id: str) -> list[dict]:
    parser = Rows(table_id)
    parser.feed(html)
    return parser.rows


def section(html: str) -> str:
    return html[html.index('<h2 id="credit-warnings">'):html.index('<h2 id="trends">')]


# --- the list of the report's day ------------------------------------------------------------------------


def test_the_lists_built_from_the_facts(warehouse):
    """The fixture's lists (warehouse.credit_warnings): what the page below is checked against."""
    got = warehouse.execute("SELECT as_of, subject_key, count(*) FROM mart.credit_warnings GROUP BY ALL "
                            "ORDER BY ALL").fetchall()
    assert got == [(DAYS[0], A, 2), (DAYS[0], B, 2), (DAYS[1], A, 2), (DAYS[1], B, 2), (DAYS[2], A, 3),
                   (DAYS[2], B, 2), (DAYS[3], A, 3), (DAYS[3], B, 2), (DAYS[3], G, 2)]


def test_the_warning_list_of_the_report_day_subject_by_subject(warehouse, env, catalog):
    data, html = _page(warehouse, env, catalog, REPORT_DAY)
    cw = data.warnings
    assert cw.list_as_of == REPORT_DAY and cw.threshold == 2 and cw.annual_target == 100 and cw.persons == 0
    assert [(s.subject_key, s.uscc, s.name, [r.record_id for r in s.records]) for s in cw.subjects] == [
        (A, A, NAMES[A], ["a3", "a1", "a2"]), (B, B, NAMES[B], ["b1", "b2"])]
    table = rows(html, "warning-list")
    assert 'id="warning-list-more"' not in html  # 2 subjects: all shown
    got = [(r["attrs"]["data-subject"], r["attrs"]["data-record"], r["attrs"]["data-dataset"],
            [unescape(c["text"]).strip() for c in r["cells"]]) for r in table]
    assert got == [
        (A, "a3", "admin_penalty", ["1. 乳山市甲贸易有限公司" + A, "3", "行政处罚", "威环乳罚字〔2023〕5号",
                                    "2023-04-20",
                                    "严重（食品药品、生态环境、安全生产领域责令停产停业或吊销许可证件）", "2026-04-19",
                                    "不可提前修复按现行规则不可提前修复，公示期满后自动停止公示"]),
        (A, "a1", "admin_penalty", ["行政处罚", "乳市监罚〔2025〕1号", "2025-01-10", "一般", "2028-01-09",
                                    "可申请修复自 2025-04-10 起"]),
        (A, "a2", "admin_penalty", ["行政处罚", "乳市监罚〔2026〕9号", "2026-03-01",
                                    "严重（食品药品、生态环境、安全生产领域责令停产停业或吊销许可证件）", "2029-02-28",
                                    "2027-03-01 起可申请修复最短公示期未满"]),
        (B, "b1", "admin_penalty", ["2. 乳山市<乙>餐饮店" + B, "2", "行政处罚", "乳交罚〔2025〕3号", "2025-03-01",
                                    "一般",
                                    "2028-02-29", "可申请修复自 2025-06-01 起"]),
        (B, "b2", "dishonesty_list", ["严重失信主体名单", "乳人社失信〔2025〕2号", "2025-05-20", "严重", "2028-05-19",
                                      "可申请修复自 2025-08-20 起"]),
    ]
    repair = {r["attrs"]["data-record"]: (r["cells"][-1]["attrs"]["data-repairable"],
                                          r["cells"][-1]["attrs"].get("data-repairable-from")) for r in table}
    assert repair == {"a3": ("false", None), "a1": ("true", "2025-04-10"), "a2": ("true", "2027-03-01"),
                      "b1": ("true", "2025-06-01"), "b2": ("true", "2025-08-20")}
    assert [r["cells"][0]["attrs"].get("rowspan") for r in table if len(r["cells"]) == 8] == ["3", "2"]
    part = section(html)
    assert ("预警名单日期 2026-03-31。存在 2 条及以上未修复失信信息（公示中的行政处罚、严重失信主体名单）的企业等主体"
            "列入预警") in part and "采用此前最近一次" not in part
    assert "预警主体 <b>2</b> 家，失信信息 5 条。按失信信息条数从多到少" in part
    # subjects with one unrepaired record, after the report's day or natural persons: not on the page
    for absent in (C, NAMES[C], G, NAMES[G], PERSON, "张三丰", "自然人"):
        assert absent not in html, absent


def test_names_are_escaped(warehouse, env, catalog):
    _, html = _page(warehouse, env, catalog, REPORT_DAY)
    assert "乳山市&lt;乙&gt;餐饮店" in html and "<乙>" not in html


def test_the_repair_steps_of_the_datasets_on_the_list(warehouse, env, catalog):
    _, html = _page(warehouse, env, catalog, REPORT_DAY)
    rules = load_warning_rules(catalog, env.catalog_dir)
    steps = {r["attrs"]["data-dataset"]: r["cells"][1]["text"] for r in rows(html, "repair-steps")}
    assert list(steps) == ["admin_penalty", "dishonesty_list"]
    for ds, text in steps.items():
        assert unescape(text) == "".join(rules.steps[ds]) and rules.steps[ds]
    part = section(html)
    assert part.count("<li>签署并公开《信用修复承诺书》</li>") == 1  # once per dataset, not once per record


def test_subjects_guided_per_year_against_the_target(warehouse, env, catalog):
    data, html = _page(warehouse, env, catalog, REPORT_DAY)
    assert [(g.year, g.subjects_guided, g.repairs_completed, g.repairs_by_guided, g.target)
            for g in data.warnings.guidance] == [(2025, 2, 1, 1, 100), (2026, 2, 1, 0, 100)]
    table = rows(html, "repair-guidance")
    got = [({k: v for k, v in r["attrs"].items() if k.startswith("data-")},
            [unescape(c["text"]).strip() for c in r["cells"]], r["cells"][3]["attrs"]["class"]) for r in table]
    assert got == [
        ({"data-year": "2025", "data-guided": "2", "data-target": "100", "data-repairs": "1",
          "data-repairs-guided": "1"}, ["2025", "2", "100", "2.00%差 98 家", "1", "1"], "rate bad"),
        ({"data-year": "2026", "data-guided": "2", "data-target": "100", "data-repairs": "1",
          "data-repairs-guided": "0"}, ["2026截至 2026-03-31", "2", "100", "2.00%差 98 家", "1", "0"], "rate bad"),
    ]
    highlight = re.search(r"<li>信用预警：.*?</li>", html, re.S).group()
    assert unescape(re.sub(r"<[^>]+>", "", highlight)) == (
        "信用预警：2 家主体（截至 2026-03-31）；2026 年已预警指导 2 家，年度目标 100 家，完成信用修复 1 家次")


# --- other days ----------------------------------------------------------------------------------------------


def test_a_day_without_a_list_takes_the_latest_before_it(warehouse, env, catalog):
    data, html = _page(warehouse, env, catalog, date(2026, 3, 15))
    assert data.warnings.list_as_of == date(2026, 2, 28)
    assert [(r["attrs"]["data-subject"], r["attrs"]["data-record"]) for r in rows(html, "warning-list")] == [
        (A, "a3"), (A, "a1"), (B, "b1"), (B, "b2")]
    assert "预警名单日期 2026-02-28（报告日期当天无预警名单，采用此前最近一次）" in html
    # 2026 so far: the list of 2026-02-28; repairs as of the facts of that day
    assert [(g.year, g.subjects_guided, g.repairs_completed) for g in data.warnings.guidance] == [
        (2025, 2, 1), (2026, 2, 1)]


def test_before_any_list_the_section_says_so(warehouse, env, catalog):
    data, html = _page(warehouse, env, catalog, date(2025, 3, 31))
    assert data.warnings.list_as_of is None and data.warnings.subjects == [] and data.warnings.guidance == []
    part = section(html)
    assert 'id="no-warnings"' in part and "截至 2025-03-31 尚未生成信用预警名单" in part
    assert 'id="no-guidance"' in part
    assert "<table" not in part and "<li>信用预警" not in html


def test_a_score_run_with_an_empty_list(env, catalog, tmp_path):
    """A scoring job's day with no subject on the list: the list is empty, not missing (nor an older one)."""
    con = build_warehouse(tmp_path / "w.duckdb", catalog, env)
    _subjects(con)
    rules = load_warning_rules(catalog, env.catalog_dir)
    con.executemany("INSERT INTO mart.credit_records VALUES (" + ", ".join("?" * 19) + ")", _facts(DAYS[0]))
    build_warnings(con, catalog, rules, DAYS[0])
    con.execute("INSERT INTO mart.score_runs VALUES ('20260310-city_2025-01', 'city_2025', DATE '2026-03-10', "
                "now(), now(), 4, 0, 'test')")
    data, html = _page(con, env, catalog, REPORT_DAY)
    con.close()
    assert data.warnings.list_as_of == date(2026, 3, 10) and data.warnings.subjects == []
    part = section(html)
    assert 'id="no-warned-subjects"' in part and "（公示中的行政处罚、严重失信主体名单）" in part
    assert "预警名单为空：2026-03-10 没有主体存在 2 条及以上未修复的失信信息" in part
    assert 'id="warning-list"' not in part and "按失信信息条数" not in part and 'id="repair-steps"' not in part
    assert [(g.year, g.subjects_guided) for g in data.warnings.guidance] == [(2025, 2)]


def test_natural_persons_are_counted_never_named(env, catalog, tmp_path):
    """Should the rules ever list natural persons, the report counts them and shows neither key nor name."""
    con = build_warehouse(tmp_path / "w.duckdb", catalog, env)
    _subjects(con)
    row = ("INSERT INTO mart.credit_warnings VALUES (DATE '2026-03-31', ?, 2, ?, 'admin_penalty', ?, "
           "DATE '2025-01-05', 'general', 'ndrc_order_58', DATE '2028-01-04', true, DATE '2025-04-05', [])")
    for key, rid in ((PERSON, "p1"), (PERSON, "p2"), (A, "a1"), (A, "a3")):
        con.execute(row, [key, rid, f"doc-{rid}"])
    data, html = _page(con, env, catalog, REPORT_DAY)
    con.close()
    assert data.warnings.persons == 1 and [s.subject_key for s in data.warnings.subjects] == [A]
    assert "另有自然人 1 名，依规不在本报告中列出" in html
    assert PERSON not in html and "张三丰" not in html and "doc-p1" not in html


def test_a_broken_rules_file_leaves_the_rest_of_the_report(warehouse, catalog, tmp_path):
    import shutil

    broken = tmp_path / "catalogs"
    shutil.copytree(PROJECT_ROOT / "catalogs", broken)
    (broken / "credit_warnings.yaml").write_text("threshold: two\n", encoding="utf-8")
    settings = Settings(tmp_path / "data", broken, "1GB", 1)
    data = collect(warehouse, settings, catalog, REPORT_DAY)
    html = render(data, catalog, settings.data_root / "reports")
    assert data.warnings.rules_error and 'id="warnings-rules-error"' in html
    assert 'id="warning-list"' not in html and 'id="city-summary"' in html


def test_the_section_stays_offline(warehouse, env, catalog):
    _, html = _page(warehouse, env, catalog, REPORT_DAY)
    part = section(html)
    assert "http://" not in part and "https://" not in part and "<script" not in part and "<img" not in part
    assert "src=" not in part and "href=" not in part
