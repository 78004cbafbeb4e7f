"""The review page of a candidate release (credit/review_page.py) on a synthetic candidate folder.

``write_candidate`` writes the layout credit/publication.py prepares (manifest.json, changes.parquet,
samples.parquet, findings.parquet) with pyarrow; the page is rendered and read back with an HTML parser:
every count cell against the numbers written, the Chinese labels, attacker text shown escaped, masked
values highlighted, nothing loaded from outside the page, and the findings listed errors first.
"""

from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import markupsafe
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from credit.report import RestrictedDataError
from credit.review_page import ReviewPageError, write_review_page
from transforms.identifiers import rid_check_char

pytestmark = pytest.mark.integration

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example/x","点我")'
MASKED_ID = "371083********1234"
MASKED_PHONE = "139****5678"
RESIDENT_ID = "37108319900307123" + rid_check_char("37108319900307123")  # valid (GB 11643), never to be shown
PHONE = "13912345678"
HASH = hashlib.sha256(b"candidate").hexdigest()

# Published records: dataset -> department -> severity ("-": a dataset without classes) -> count.
COUNTS = {
    "admin_penalty": {"market_regulation": {"general": 5, "serious": 2},
                      "ecology_environment": {"serious": 1, "serious_special": 1}},
    "admin_license": {"approval": {"-": 7}, "market_regulation": {"-": 3}},
}
STATUS_COUNTS = {
    "admin_penalty": {"published": 9, "minor_not_published": 4, "expired": 2, "repaired": 1, "objection": 1,
                      "revoked": 1, "unclassified": 2, "no_rule_version": 1},
    "admin_license": {"published": 10, "expired": 3, "not_yet": 1},
}
# changes.parquet: (dataset, department, severity, change, reason, how many)
CHANGES = [
    ("admin_penalty", "market_regulation", "general", "added", None, 2),
    ("admin_penalty", "ecology_environment", "serious", "added", None, 1),
    ("admin_penalty", "market_regulation", "serious", "changed", None, 1),
    ("admin_penalty", "market_regulation", "general", "expired", "expired", 2),
    ("admin_penalty", "market_regulation", "general", "withdrawn", "repaired", 1),
    ("admin_penalty", "market_regulation", "serious", "withdrawn", "revoked", 1),
    ("admin_penalty", "ecology_environment", "general", "withdrawn", "objection", 1),
    ("admin_license", "approval", None, "added", None, 7),
    ("admin_license", "market_regulation", None, "added", None, 3),
    ("admin_license", "approval", None, "expired", "expired", 3),
]
PENALTY = {
    "CF_XDR_MC": IMG, "CF_XDR_LB": "法人及非法人组织", "CF_XDR_SHXYM": "91371083MA3C5XQ21K",
    "CF_XDR_ZJHM": MASKED_ID, "CF_WSH": "乳市监罚〔2026〕12号", "CF_SY": f"经查 {SCRIPT}，联系电话 {MASKED_PHONE}",
    "CF_CFLB": "罚款", "CF_NR_FK": 1.5, "CF_JDRQ": "2026-04-10", "CF_AJMC": FORMULA, "BZ": None,
}
LICENSE = {"XK_XDR_MC": "乳山市某某餐饮店", "XK_XKBH": "JY23710830012345", "XK_JDRQ": "2026-05-02"}
# findings.parquet: (dataset, record key, department, document, kind, message)
FINDINGS = [
    ("admin_penalty", "k-end-1", "market_regulation", "乳市监罚〔2025〕88号", "end_disagrees",
     "报送的公示截止期 2029-01-01 晚于规则最长期限 2028-03-01"),
    ("admin_penalty", "k-unc-2", "ecology_environment", FORMULA, "unclassified", f"无法判定严重程度：{SCRIPT}"),
    ("admin_penalty", "k-unc-1", "market_regulation", "乳市监罚〔2026〕3号", "unclassified", "处罚类别为空"),
    ("admin_penalty", "k-norule", "market_regulation", "乳市监罚〔2018〕1号", "no_rule_version",
     "决定日期 2018-06-01 无有效规则版本"),
]


def manifest(**changes) -> dict:
    by_dataset: dict = {}
    totals = dict.fromkeys(("added", "changed", "expired", "withdrawn"), 0)
    for ds, dept, _, change, _, n in CHANGES:
        by_dataset.setdefault(ds, {}).setdefault(dept, {}).setdefault(change, 0)
        by_dataset[ds][dept][change] += n
        totals[change] += n
    base = {
        "release_id": "R2026-06-30-01", "as_of": "2026-06-30", "governing": "decision_date",
        "prepared_at": "2026-07-01T09:15:00+08:00", "prepared_by": "credit_publication",
        "previous_release": "R2026-05-31-01", "status": "prepared", "content_hash": HASH, "records": 19,
        "counts": COUNTS, "status_counts": STATUS_COUNTS,
        "changes": totals, "changes_by_dataset": by_dataset, "findings": len(FINDINGS),
        "dataset_names": {"admin_penalty": "行政处罚", "admin_license": "行政许可"},
        "department_names": {"market_regulation": "市场监督管理局", "ecology_environment": "生态环境分局",
                             "approval": "行政审批服务局"},
        "severity_names": {"minor": "轻微", "general": "一般", "serious": "严重",
                           "serious_special": "严重（特定领域）"},
    }
    return {**base, **changes}


def write_candidate(folder: Path, extra_samples: list[dict] | None = None, **manifest_changes) -> Path:
    """The candidate layout of credit/publication.py, with the numbers above."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest(**manifest_changes), ensure_ascii=False), "utf-8")
    rows = [{"dataset_id": ds, "record_key": f"{ds}-{change}-{dept}-{i}", "department": dept, "severity": sev,
             "change": change, "reason": reason}
            for ds, dept, sev, change, reason, n in CHANGES for i in range(n)]
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([
        ("dataset_id", pa.string()), ("record_key", pa.string()), ("department", pa.string()),
        ("severity", pa.string()), ("change", pa.string()), ("reason", pa.string())])), folder / "changes.parquet")
    samples = [
        {"dataset_id": "admin_penalty", "change": "added", "record_key": "admin_penalty-added-market_regulation-0",
         "department": "market_regulation", "severity": "general",
         "record_json": json.dumps(PENALTY, ensure_ascii=False), "reason": None},
        {"dataset_id": "admin_penalty", "change": "withdrawn", "record_key": "admin_penalty-withdrawn-r-0",
         "department": "market_regulation", "severity": "general",
         "record_json": json.dumps({**PENALTY, "CF_WSH": "乳市监罚〔2025〕7号"}, ensure_ascii=False),
         "reason": "repaired"},
        {"dataset_id": "admin_license", "change": "added", "record_key": "admin_license-added-approval-0",
         "department": "approval", "severity": None, "record_json": json.dumps(LICENSE, ensure_ascii=False),
         "reason": None},
        *(extra_samples or []),
    ]
    pq.write_table(pa.Table.from_pylist(samples, schema=pa.schema([
        ("dataset_id", pa.string()), ("change", pa.string()), ("record_key", pa.string()), ("department", pa.string()),
        ("severity", pa.string()), ("record_json", pa.string()), ("reason", pa.string())])), folder / "samples.parquet")
    findings = [dict(zip(("dataset_id", "record_key", "department", "document", "kind", "message_zh"), f, strict=True))
                for f in FINDINGS]
    pq.write_table(pa.Table.from_pylist(findings), folder / "findings.parquet")
    return folder


class Page(HTMLParser):
    """Tags, attributes, count cells by (table id, dataset, department, column), and the style text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.cells: dict[tuple, str] = {}
        self.style = ""
        self._cell: tuple | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes += [(tag, k, v or "") for k, v in attrs.items()]
        if tag not in ("br", "meta"):
            self.stack.append((tag, attrs))
        if tag in ("td", "th") and "data-column" in attrs and not any(t == "thead" for t, _ in self.stack):
            self._cell = (self._nearest("id", "table"), self._nearest("data-dataset", "tr"),
                          self._nearest("data-department", "tr"), attrs["data-column"])
            self._text = []

    def _nearest(self, name: str, tag: str) -> str | None:
        return next((a.get(name) for t, a in reversed(self.stack) if t == tag), None)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells[self._cell] = "".join(self._text).strip()
            self._cell = None
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._cell is not None:
            self._text.append(data)
        if self.stack and self.stack[-1][0] == "style":
            self.style += data


@pytest.fixture
def page(tmp_path, catalog) -> tuple[str, Page]:
    path = write_review_page(write_candidate(tmp_path / "R2026-06-30-01"), catalog)
    assert path == tmp_path / "R2026-06-30-01" / "review.html"
    html = path.read_text("utf-8")
    return html, Page(html)


def test_header_names_the_release(page):
    html, _ = page
    assert "<title>信用网站公示发布审核 R2026-06-30-01</title>" in html
    assert "数据截至 2026-06-30" in html
    assert '<td data-governing="decision_date"><b>按决定日期适用规则</b>' in html
    assert "<code>R2026-05-31-01</code>（变化相对此版本计算）" in html
    assert f'<span class="hash" id="content-hash">{HASH}</span>' in html
    assert '<b id="status" data-status="prepared">待审核</b>' in html
    assert 'id="decided"' not in html
    assert "2026-07-01T09:15:00+08:00 · credit_publication" in html


@pytest.mark.parametrize(("governing", "label"), [
    ("decision_date", "按决定日期适用规则"),  # the default: a record keeps the terms it was published under
    ("publication_date", "按公示日期适用规则"),  # every record still published takes the rule of the as-of date
])
def test_governing_rule_in_words(tmp_path, catalog, governing, label):
    html = write_review_page(write_candidate(tmp_path / "c", governing=governing), catalog).read_text("utf-8")
    assert f'<td data-governing="{governing}"><b>{label}</b>' in html


def test_first_release_and_decided_candidate(tmp_path, catalog):
    html = write_review_page(write_candidate(tmp_path / "c", previous_release=None, status="published"),
                             catalog).read_text("utf-8")
    assert "无（首次发布，全部记录为新增）" in html
    assert '<b id="status" data-status="published">已批准发布</b>' in html
    assert '<p class="decided" id="decided">此候选版本已批准发布，无需再审核；本页仅供查阅。</p>' in html


def test_summary_counts(page):
    html, _ = page
    assert '<b id="records">19</b>' in html
    for change, n in {"added": 13, "changed": 1, "expired": 5, "withdrawn": 3}.items():
        assert f'<b data-change="{change}">{n}</b>' in html
    assert '错误 <b id="errors">3</b> 条' in html and '警告 <b id="warnings">1</b> 条' in html
    assert '<span class="ok" id="checks-passed">全部通过</span>' in html
    assert html.count('data-ok="false"') == 0 and html.count('data-ok="true"') == 8


SEVERITIES = ("minor", "general", "serious", "serious_special", "-")
STATUSES = ("published", "minor_not_published", "expired", "repaired", "objection", "revoked", "unclassified",
            "no_rule_version", "list_exited", "not_yet")


def lines(rows: dict[tuple, tuple[int, ...]], columns=("added", "changed", "expired", "withdrawn")) -> dict:
    """{(dataset, department): counts} as the page's cells: {(dataset, department, column): text}."""
    return {(*key, column): str(n) for key, counts in rows.items() for column, n in zip(columns, counts, strict=True)}


def test_change_table_per_dataset_and_department(page):
    html, dom = page
    cells = {k[1:]: v for k, v in dom.cells.items() if k[0] == "changes-table"}
    assert cells == lines({  # added, changed, expired, withdrawn
        ("admin_penalty", None): (3, 1, 2, 3),
        ("admin_penalty", "market_regulation"): (2, 1, 2, 2),
        ("admin_penalty", "ecology_environment"): (1, 0, 0, 1),
        ("admin_license", None): (10, 0, 3, 0),
        ("admin_license", "market_regulation"): (3, 0, 0, 0),
        ("admin_license", "approval"): (7, 0, 3, 0),
        (None, None): (13, 1, 5, 3),  # the sum line
    })
    header = html[html.index('id="changes-table"'):html.index("</thead>", html.index('id="changes-table"'))]
    assert [label for label in ("新增", "变更", "到期撤下", "修复或撤销撤下") if f">{label}</th>" in header] \
        == ["新增", "变更", "到期撤下", "修复或撤销撤下"]
    assert '<td class="note">信用修复 1，异议成立 1，决定撤销 1</td>' in html  # the withdrawn count's reasons
    by_department = {k[1:]: v for k, v in dom.cells.items() if k[0] == "changes-by-department"}
    assert by_department == lines({
        (None, "market_regulation"): (5, 1, 2, 2),
        (None, "ecology_environment"): (1, 0, 0, 1),
        (None, "approval"): (7, 0, 3, 0),
    })
    assert "<th>市场监督管理局</th>" in html and "<th>行政审批服务局</th>" in html


def test_published_counts_by_severity(page):
    html, dom = page
    cells = {k[1:]: v for k, v in dom.cells.items() if k[0] == "published-table"}
    assert cells == lines({  # minor, general, serious, serious_special, no class
        ("admin_penalty", None): (0, 5, 3, 1, 0),
        ("admin_penalty", "market_regulation"): (0, 5, 2, 0, 0),
        ("admin_penalty", "ecology_environment"): (0, 0, 1, 1, 0),
        ("admin_license", None): (0, 0, 0, 0, 10),
        ("admin_license", "market_regulation"): (0, 0, 0, 0, 3),
        ("admin_license", "approval"): (0, 0, 0, 0, 7),
        (None, None): (0, 5, 3, 1, 10),
    }, SEVERITIES)
    header = html[html.index('id="published-table"'):html.index("</thead>", html.index('id="published-table"'))]
    assert [label for label in ("轻微", "一般", "严重", "严重（特定领域）", "不分级")
            if f">{label}</th>" in header] == ["轻微", "一般", "严重", "严重（特定领域）", "不分级"]


def test_status_counts_say_why_not_published(page):
    html, dom = page
    cells = {k[1:]: v for k, v in dom.cells.items() if k[0] == "status-table"}
    assert cells == lines({
        ("admin_penalty", None): (9, 4, 2, 1, 1, 1, 2, 1, 0, 0),
        ("admin_license", None): (10, 0, 3, 0, 0, 0, 0, 0, 0, 1),
        (None, None): (19, 4, 5, 1, 1, 1, 2, 1, 0, 1),
    }, STATUSES)
    assert '<td class="num total">21</td>' in html and '<td class="num total">35</td>' in html
    for label in ("公示中", "轻微不公示", "公示期满", "已信用修复", "异议成立", "决定已撤销", "无法分级", "无适用规则",
                  "已移出名单", "未到公示日"):
        assert f">{label}</th>" in html and f"<dt>{label}</dt>" in html


def test_samples_show_chinese_field_names_and_visible_masking(page):
    html, _ = page
    assert "行政处罚</summary>" in html and "行政许可</summary>" in html
    assert '<h4 data-change="added">新增：样例 1 条（共 3 条）</h4>' in html
    assert '<h4 data-change="withdrawn">修复或撤销撤下：样例 1 条（共 3 条）</h4>' in html
    assert '<h4 data-change="expired">到期撤下：样例 0 条（共 2 条）</h4>' in html
    # The masked ID with its stars highlighted, in a field marked as masked, under its catalog name.
    mark = '<mark class="mask" title="已脱敏">'
    assert (f'<span class="f masked" data-field="CF_XDR_ZJHM"><span class="k">证件号码</span>'
            f'371083{mark}********</mark>1234</span>') in html
    assert f"139{mark}****</mark>5678" in html
    assert html.count(f"371083{mark}********</mark>1234") == 2  # the added and the withdrawn sample
    assert '<span class="k">行政相对人名称</span>' in html and '<span class="k">违法事实</span>' in html
    assert '<span class="k">罚款金额（万元）</span>1.5</span>' in html
    assert '<span class="k">许可编号</span>JY23710830012345</span>' in html
    assert 'data-field="BZ"' not in html  # empty fields are left out
    assert "身份证号、手机号已脱敏" in html
    assert "<td>行政审批服务局</td><td>不分级</td>" in html
    assert "<td>市场监督管理局</td><td>一般</td><td>信用修复</td>" in html
    assert "候选版本中未脱敏（本页已遮盖）</span>" not in html


def test_attacker_text_is_shown_escaped(page):
    html, dom = page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower() and "script" not in dom.tags
    assert str(markupsafe.escape(IMG)) in html and "<img" not in html.lower() and "img" not in dom.tags
    assert html.count(str(markupsafe.escape(FORMULA))) == 3  # two samples and one finding
    assert not [a for a in dom.attributes if a[1].lower().startswith("on")]  # no event handler attribute


def test_nothing_is_loaded_from_outside(page):
    html, dom = page
    assert set(dom.tags) & {"script", "link", "img", "iframe", "object", "embed", "image", "svg", "base"} == set()
    assert [v for t, k, v in dom.attributes if k == "href" and not v.startswith("#")] == []
    assert [v for _, k, v in dom.attributes if "http" in v.lower() or "//" in v] == []
    assert "url(" not in dom.style and "@import" not in dom.style
    assert "http" not in html.replace(str(markupsafe.escape(FORMULA)), "")  # only inside the escaped feed text


def test_findings_are_listed_errors_first(page):
    html, _ = page
    assert html.index('<h3 class="sev-error" data-kind="unclassified">错误：无法判定严重程度（2 条）</h3>') \
        < html.index('<h3 class="sev-error" data-kind="no_rule_version">错误：无适用规则版本（1 条）</h3>') \
        < html.index('<h3 class="sev-warning" data-kind="end_disagrees">警告：公示截止期与规则不一致（1 条）</h3>')
    summary = html[html.index('id="findings-summary"'):html.index("</table>", html.index('id="findings-summary"'))]
    assert [k for k in ("unclassified", "no_rule_version", "end_disagrees") if f'data-kind="{k}"' in summary] \
        == ["unclassified", "no_rule_version", "end_disagrees"]
    assert '<td class="num">2</td>\n    <td>行政处罚 2</td>' in summary
    unclassified = html[html.index('<table class="findings" data-kind="unclassified">'):]
    unclassified = unclassified[:unclassified.index("</table>")]
    assert unclassified.count("<tr class=\"error\"") == 2
    assert unclassified.index("k-unc-2") < unclassified.index("k-unc-1")  # by dataset, then department code
    assert "<td>处罚类别为空</td>" in unclassified
    assert "<td>无法判定严重程度：&lt;script&gt;alert(1)&lt;/script&gt;</td>" in unclassified
    assert "<td>报送的公示截止期 2029-01-01 晚于规则最长期限 2028-03-01</td>" in html
    assert "<td>乳市监罚〔2018〕1号</td>" in html


def test_approval_instructions(page):
    html, _ = page
    assert "DAG <code>credit_publication</code>" in html and "任务 <code>review</code>" in html
    assert "<pre>credit publish approve R2026-06-30-01 --by 审核人姓名</pre>" in html
    assert '<pre>credit publish reject R2026-06-30-01 --by 审核人姓名 --reason "驳回理由"</pre>' in html


def test_unmasked_values_are_masked_and_flagged(tmp_path, catalog):
    """A candidate whose masking failed: the page does not leak the ID or phone, and says to reject."""
    leaky = {"dataset_id": "admin_penalty", "change": "changed", "record_key": "admin_penalty-changed-mr-0",
             "department": "market_regulation", "severity": "serious",
             "record_json": json.dumps({"CF_XDR_MC": "某公司", "CF_XDR_ZJHM": RESIDENT_ID,
                                        "CF_SY": f"当事人身份证 {RESIDENT_ID[:6]} {RESIDENT_ID[6:]}",
                                        "CF_NR": f"电话 {PHONE}"}, ensure_ascii=False),
             "reason": None}
    html = write_review_page(write_candidate(tmp_path / "c", extra_samples=[leaky]), catalog).read_text("utf-8")
    mark = '<mark class="mask" title="已脱敏">'
    assert RESIDENT_ID not in html and RESIDENT_ID[6:] not in html and PHONE not in html
    assert f"当事人身份证 371083{mark}********</mark>{RESIDENT_ID[-4:]}<span class=\"leak-flag\">" in html
    assert f'data-field="CF_XDR_ZJHM"><span class="k">证件号码</span>371083{mark}********</mark>{RESIDENT_ID[-4:]}' \
           '<span class="leak-flag">⚠ 候选版本中未脱敏（本页已遮盖）</span>' in html
    assert f"电话 139{mark}****</mark>5678<span class=\"leak-flag\">" in html
    assert html.count('<span class="leak-flag">') == 3
    assert "候选版本有 3 个值含未脱敏的身份证号或手机号" in html
    assert '<span class="fail" id="checks-failed">1 项未通过，不宜批准</span>' in html


def test_manifest_disagreeing_with_files_is_shown(tmp_path, catalog):
    folder = write_candidate(tmp_path / "c", records=20, findings=5,
                             changes={"added": 13, "changed": 1, "expired": 5, "withdrawn": 4})
    html = write_review_page(folder, catalog).read_text("utf-8")
    assert '<span class="fail" id="checks-failed">3 项未通过，不宜批准</span>' in html
    assert "✗ 公示记录数：清单总数 20，各数据集合计 19" in html
    assert "✗ 修复或撤销撤下：清单 4，按数据集部门合计 3，changes.parquet 3" in html
    assert "✗ 问题记录：清单 5，findings.parquet 4" in html
    assert "✗ “公示中”状态数与公示记录数不一致" not in html
    assert "✓ 新增：清单 13，按数据集部门合计 13，changes.parquet 13" in html


def test_missing_file_is_an_error(tmp_path, catalog):
    folder = write_candidate(tmp_path / "c")
    (folder / "findings.parquet").unlink()
    with pytest.raises(ReviewPageError, match="findings.parquet: missing"):
        write_review_page(folder, catalog)
    assert not (folder / "review.html").exists()


def test_page_showing_an_unmasked_id_is_refused(tmp_path, catalog):
    """The last guard: an ID the page does not mask itself (here in the manifest) stops the page being written."""
    folder = write_candidate(tmp_path / "c", prepared_by=f"张三 {RESIDENT_ID}")
    with pytest.raises(RestrictedDataError):
        write_review_page(folder, catalog)
    assert not (folder / "review.html").exists()
