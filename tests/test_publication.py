"""Publication to the credit website, rule by rule, on hand-made feeds with hand-computed answers.

Each record below is designed for one rule of catalogs/publication.yaml (severity rules, rule versions,
the governing choice, the feed's own 公示截止期, repairs and their checks, the serious-dishonesty
list); the expected status on each day is worked out by hand in the comments. The feeds go through
the real loader into a real DuckDB warehouse; releases are prepared, approved and rejected by
credit/publication.py; the published files are scanned as an attacker would read them.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb
import pytest

from credit import pipeline
from credit.publication import (
    ReleaseError,
    approve_release,
    current_release,
    prepare_release,
    reject_release,
    release_status,
)
from foundation.catalog import Disclosure, load_catalog
from foundation.settings import get_settings
from sample_city.entities import agency_uscc, make_uscc
from tests.conftest import catalog_governed_by, write_csv_feed
from tests.restricted_scan import resident_ids_in
from transforms.identifiers import rid_check_char

pytestmark = pytest.mark.integration

CITY = ZoneInfo("Asia/Shanghai")
AGENCY = agency_uscc("market_regulation")
ORGS = [make_uscc("91", "371083", f"MA{n:06d}") for n in range(1, 30)]
_ID17 = "37108319850312123"
RESIDENT_ID = _ID17 + rid_check_char(_ID17)
SPACED_ID = f"{RESIDENT_ID[:6]} {RESIDENT_ID[6:14]} {RESIDENT_ID[14:]}"
WIDE_ID = RESIDENT_ID.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example","点击")'

PENALTY_HEADER = ["CF_XDR_MC", "CF_XDR_LB", "CF_XDR_SHXYM", "CF_XDR_ZJHM", "CF_WSH", "CF_WFXW", "CF_SY", "CF_YJ",
                  "CF_CFLB", "CF_NR", "CF_NR_FK", "CF_JDRQ", "CF_YXQ", "CF_GSJZQ", "CF_CFJG", "CF_CFJGDM", "CF_SJLY",
                  "CF_SJLYDM", "BZ"]

# doc, subject index, kinds, fine (万元), basis law, content, decided, own end (CF_GSJZQ), note
PENALTIES = [
    # minor (警告 only). No. 58 on its decision day: 3..36 months -> shown until 2028-06-09.
    ("罚2025-01", 1, "警告", "", "《产品质量法》", "警告", "2025-06-10", "", ""),
    # minor (简易程序). No. 36 on its decision day: minor is not published.
    ("罚2026-02", 2, "罚款", "0.02", "《食品安全法》", "适用简易程序，罚款200元", "2026-05-06", "", ""),
    # general (罚款). No. 58: 36 months -> shown until 2028-03-09.
    ("罚2025-03", 3, "罚款", "1.5", "《广告法》", "罚款15000元", "2025-03-10", "", ""),
    # general. No. 36: 12 months -> shown until 2027-05-09.
    ("罚2026-04", 4, "罚款;没收违法所得", "2", "《价格法》", "罚款20000元", "2026-05-10", "", ""),
    # general. No. 58: 36 months, but the feed ends it on 2026-09-30 (earlier wins; within the rules).
    ("罚2025-05", 5, "罚款", "1", "《广告法》", "罚款10000元", "2025-09-01", "2026-09-30", ""),
    # serious (吊销许可证件, not a special field). No. 36: 12..36 months.
    ("罚2026-06", 6, "吊销许可证件", "", "《道路运输条例》", "吊销道路运输经营许可证", "2026-04-15", "", ""),
    # serious_special (吊销 + 食品安全法). No. 58: 12..36 months.
    ("罚2025-07", 7, "罚款、吊销许可证件", "5", "《中华人民共和国食品安全法》第一百二十二条", "吊销食品经营许可证",
     "2025-08-01", "", ""),
    # unclassified (其他 only): a finding, never published.
    ("罚2026-08", 8, "其他", "", "《某条例》", "责令改正", "2026-07-01", "", ""),
    # serious by amount (罚款 over 50万元). No. 36: 12..36 months. Its own end is beyond 36 months: a finding.
    ("罚2026-09", 9, "罚款", "80", "《反不正当竞争法》", "罚款80万元", "2026-06-01", "2030-01-01", ""),
    # general; the attacker's text: an ID spaced and full-width, a phone number, script and a formula.
    ("罚2026-10", 10, "罚款", "0.5", "《消费者权益保护法》",
     f"罚款5000元 {FORMULA}", "2026-06-15", "", f"联系人身份证{SPACED_ID}，电话139 1234 5678 {SCRIPT}"),
    # general, a natural person: the 证件号码 column is authorized and must not be published.
    ("罚2026-11", None, "罚款", "0.1", "《治安管理处罚法》", f"罚款1000元（当事人{WIDE_ID}）", "2026-06-20", "", ""),
    # general, decided 2025-10-01 under No. 58 (36 months); with the publication-date choice No. 36 (12 months)
    # governs on 2026-11-30 and it expired on 2026-10-01.
    ("罚2025-12", 12, "罚款", "0.3", "《广告法》", "罚款3000元", "2025-10-01", "", ""),
]

REPAIR_HEADER = ["XF_XDR_MC", "XF_XDR_LB", "XF_XDR_SHXYM", "XF_XXLB", "XF_YWSH", "XF_LB", "XF_JDRQ", "XF_JG", "XF_JGDM"]
REPAIRS = [
    # valid: general 罚2025-03 decided 2025-03-10, minimum 3 months -> from 2025-06-10.
    (3, "行政处罚", "罚2025-03", "信用修复", "2025-07-01"),
    # too early: serious 罚2026-06 decided 2026-04-15, minimum 12 months under No. 36.
    (6, "行政处罚", "罚2026-06", "信用修复", "2026-06-01"),
    # unknown record.
    (4, "行政处罚", "罚2099-99", "信用修复", "2026-07-01"),
    # objection upheld: any time.
    (7, "行政处罚", "罚2025-07", "异议成立", "2025-09-01"),
    # decision revoked, dated after the first release's day: still shown on 2026-06-30, withdrawn later.
    (9, "行政处罚", "罚2026-09", "决定撤销", "2026-08-01"),
    # a repair of a list entry, after the list's minimum (serious: 3 months under No. 58, in force 2025-03-01).
    (20, "严重失信主体名单", "列2025-03", "信用修复", "2026-05-01"),
]

LIST_HEADER = ["SX_XDR_MC", "SX_XDR_LB", "SX_XDR_SHXYM", "SX_MDLB", "SX_SJLX", "SX_RDWH", "SX_SY", "SX_RQ", "SX_YXQZ",
               "SX_RDJG", "SX_RDJGDM", "SX_SJLY", "SX_SJLYDM", "BZ"]
LIST_EVENTS = [
    (21, "列入", "列2025-01", "2025-05-01", ""),  # on the list
    (22, "列入", "列2025-02", "2025-06-01", ""),  # exited 2026-01-01
    (22, "移出", "列2025-02", "2026-01-01", ""),
    (20, "列入", "列2025-03", "2025-03-01", ""),  # repaired 2026-05-01 (credit_repair)
    (23, "列入", "列2025-04", "2025-04-01", "2026-06-30"),  # its own end: off from 2026-07-01
]


def _name(i: int | None) -> str:
    return "张某某" if i is None else f"乳山市测试{i}号有限公司"


def _penalty_rows() -> list[list[str]]:
    rows = []
    for doc, i, kinds, fine, law, content, decided, own_end, note in PENALTIES:
        person = i is None
        rows.append([_name(i), "自然人" if person else "法人及非法人组织", "" if person else ORGS[i],
                     RESIDENT_ID if person else "", doc, "违法行为", f"经查，当事人违法。{content}", law, kinds,
                     content, fine, decided, "2030-12-31", own_end, "乳山市市场监督管理局", AGENCY,
                     "乳山市市场监督管理局", AGENCY, note])
    return rows


def _load_city(settings, catalog) -> None:
    """Penalties and list entries received 2026-07-02, repairs 2026-08-03 (after the records they name)."""
    inbox = settings.data_root / "feeds"
    files = [
        (write_csv_feed(inbox / "penalty.csv", PENALTY_HEADER, _penalty_rows(), datetime(2026, 7, 2, 9, tzinfo=CITY)),
         "admin_penalty"),
        (write_csv_feed(inbox / "dishonest.csv", LIST_HEADER,
                [[_name(i), "法人及非法人组织", ORGS[i], "严重违法失信名单", event, doc, "提供虚假材料", day, until,
                  "乳山市市场监督管理局", AGENCY, "乳山市市场监督管理局", AGENCY, ""]
                 for i, event, doc, day, until in LIST_EVENTS], datetime(2026, 7, 2, 10, tzinfo=CITY)),
         "dishonesty_list"),
        (write_csv_feed(inbox / "repair.csv", REPAIR_HEADER,
                [[_name(i), "法人及非法人组织", ORGS[i], what, doc, kind, day, "乳山市市场监督管理局", AGENCY]
                 for i, what, doc, kind, day in REPAIRS], datetime(2026, 8, 3, 9, tzinfo=CITY)),
         "credit_repair"),
    ]
    for path, dataset_id in files:
        pipeline.ingest_file(settings, catalog, path, dataset_id, "market_regulation")


@pytest.fixture
def city(settings, catalog):
    _load_city(settings, catalog)
    return settings


def _statuses(release) -> dict[str, str]:
    """document -> status, from the candidate's files (published records and the change list)."""
    con = duckdb.connect()
    out = {}
    for path in (release.candidate / "records").glob("*.parquet"):
        doc = {"admin_penalty": "CF_WSH", "dishonesty_list": "SX_RDWH"}.get(path.stem)
        if doc:
            for (value,) in con.execute(f'SELECT "{doc}" FROM read_parquet(?)', [str(path)]).fetchall():
                out[value] = "published"
    return out


def test_quarantines_repairs_too_early_or_naming_no_record(city):
    con = duckdb.connect(str(city.warehouse_path), read_only=True)
    rows = con.execute("SELECT reasons FROM quarantine.rows q JOIN audit.batches b USING (batch_id) "
                       "WHERE b.dataset_id = 'credit_repair' ORDER BY q.source_row").fetchall()
    assert [r[0] for r in rows] == [["repair_before_minimum:XF_JDRQ"], ["repair_unknown_record:XF_YWSH"]]
    assert con.execute("SELECT rows_loaded, rows_quarantined FROM audit.batches "
                       "WHERE dataset_id = 'credit_repair'").fetchall() == [(4, 2)]


def test_release_holds_exactly_the_hand_computed_records(city, catalog):
    first = prepare_release(city, catalog, date(2026, 6, 30), prepared_by="test")
    # Files received 2026-07-02: nothing is known on 2026-06-30.
    assert first.records == 0
    release = prepare_release(city, catalog, date(2026, 7, 31), prepared_by="test")
    published = _statuses(release)
    assert sorted(published) == ["列2025-01", "列2025-03", "罚2025-01", "罚2025-03", "罚2025-05", "罚2025-07",
                                 "罚2025-12", "罚2026-04", "罚2026-06", "罚2026-09", "罚2026-10", "罚2026-11"]
    status = json.loads((release.candidate / "manifest.json").read_text(encoding="utf-8"))["status_counts"]
    assert status["admin_penalty"] == {"published": 10, "minor_not_published": 1, "unclassified": 1}
    assert status["dishonesty_list"] == {"published": 2, "list_exited": 1, "expired": 1}
    severities = dict(duckdb.connect().execute(
        "SELECT CF_WSH, severity || '/' || rule_version FROM read_parquet(?)",
        [str(release.candidate / "records" / "admin_penalty.parquet")]).fetchall())
    assert severities == {"罚2025-01": "minor/ndrc_order_58", "罚2025-03": "general/ndrc_order_58",
                          "罚2025-05": "general/ndrc_order_58",
                          "罚2025-07": "serious_special/ndrc_order_58", "罚2025-12": "general/ndrc_order_58",
                          "罚2026-04": "general/ndrc_order_36", "罚2026-06": "serious/ndrc_order_36",
                          "罚2026-09": "serious/ndrc_order_36", "罚2026-10": "general/ndrc_order_36",
                          "罚2026-11": "general/ndrc_order_36"}
    findings = duckdb.connect().execute("SELECT document, kind FROM read_parquet(?) ORDER BY ALL",
                                        [str(release.candidate / "findings.parquet")]).fetchall()
    assert findings == [("罚2026-08", "unclassified"), ("罚2026-09", "end_disagrees")]


def test_repairs_objections_revocations_and_periods_withdraw_records(city, catalog):
    july = prepare_release(city, catalog, date(2026, 7, 31), prepared_by="test")
    approve_release(city, catalog, july.release_id, approver="审核员甲")
    later = prepare_release(city, catalog, date(2026, 11, 30), prepared_by="test")
    con = duckdb.connect()
    changes = dict(((doc_key, reason) for doc_key, reason in con.execute(
        "SELECT change || ':' || record_key, reason FROM read_parquet(?)",
        [str(later.candidate / "changes.parquet")]).fetchall()))
    keys = dict(con.execute("SELECT record_key, CF_WSH FROM read_parquet(?)",
                            [str(july.folder / "records" / "admin_penalty.parquet")]).fetchall())
    keys |= dict(con.execute("SELECT record_key, SX_RDWH FROM read_parquet(?)",
                             [str(july.folder / "records" / "dishonesty_list.parquet")]).fetchall())
    named = {f"{k.split(':')[0]}:{keys[k.split(':')[1]]}": v for k, v in changes.items()}
    # Repairs arrived 2026-08-03: 罚2025-03 repaired (2025-07-01), 罚2025-07 objection, 罚2026-09 revoked
    # (2026-08-01), 列2025-03 repaired. None of them was known to the July release. 罚2025-05's own end
    # (2026-09-30) has passed.
    assert named == {"withdrawn:罚2025-03": "repaired", "withdrawn:罚2025-07": "objection",
                     "withdrawn:罚2026-09": "revoked", "withdrawn:列2025-03": "repaired",
                     "expired:罚2025-05": "expired"}
    assert later.changes == {"added": 0, "changed": 0, "expired": 1, "withdrawn": 4}


def test_governing_choice_is_a_catalog_setting(city, tmp_path, monkeypatch):
    catalog = load_catalog(catalog_governed_by(tmp_path, "publication_date", monkeypatch))
    release = prepare_release(get_settings(), catalog, date(2026, 11, 30), prepared_by="test")
    published = _statuses(release)
    # On 2026-11-30 No. 36 governs every record: 罚2025-01 (minor) is not published; 罚2025-12 (general,
    # 12 months) expired 2026-10-01; 罚2025-03 was repaired. 罚2025-07 objection, 罚2026-09 revoked.
    assert sorted(p for p in published if p.startswith("罚")) == ["罚2026-04", "罚2026-06", "罚2026-10", "罚2026-11"]
    status = json.loads((release.candidate / "manifest.json").read_text(encoding="utf-8"))["status_counts"]
    assert status["admin_penalty"] == {"published": 4, "minor_not_published": 2, "expired": 2, "repaired": 1,
                                       "objection": 1, "revoked": 1, "unclassified": 1}


def test_published_files_hold_no_restricted_data_and_inert_text(city, catalog):
    release = prepare_release(city, catalog, date(2026, 7, 31), prepared_by="test")
    published = approve_release(city, catalog, release.release_id, approver="审核员甲")
    con = duckdb.connect()
    public_datasets = {d.id for d in catalog.published()}
    files = sorted(published.folder.rglob("*.parquet"))
    assert {p.stem for p in (published.folder / "records").glob("*.parquet")} == public_datasets
    texts = []
    for path in files:
        schema = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
        columns = [c[0] for c in schema]
        assert not [c for c in columns if c.endswith("_HASH")]
        if path.parent.name == "records":
            ds = catalog.dataset(path.stem)
            restricted = {f.code for f in ds.fields if ds.disclosure_of(f) is not Disclosure.PUBLIC}
            assert restricted and not restricted & set(columns), path
        for column, kind, *_ in schema:
            if kind == "VARCHAR":
                texts += [v for (v,) in con.execute(f'SELECT "{column}" FROM read_parquet(?)', [str(path)]).fetchall()
                          if v]
    assert [t for t in texts if resident_ids_in(t)] == []
    assert not [t for t in texts if "13912345678" in t.replace(" ", "") or "139 1234 5678" in t]
    note = [t for t in texts if SCRIPT in t]
    assert len(note) == 1 and "139****5678" in note[0] and RESIDENT_ID[6:14] not in note[0].replace(" ", "")
    assert any(FORMULA in t for t in texts)  # stored as data, as received
    page = release.review_page.read_text(encoding="utf-8")
    assert SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_nothing_is_published_without_approval_and_approving_twice_publishes_once(city, catalog):
    root = city.data_root / "publication"
    first = prepare_release(city, catalog, date(2026, 7, 31), prepared_by="test")
    assert not (root / first.release_id).exists() and current_release(city) is None
    rejected = reject_release(city, first.release_id, reviewer="审核员乙", reason="抽查不通过")
    assert rejected.status == "rejected" and not (root / first.release_id).exists()
    with pytest.raises(ReleaseError, match="rejected"):
        approve_release(city, catalog, first.release_id, approver="审核员甲")
    second = prepare_release(city, catalog, date(2026, 7, 31), prepared_by="test")
    assert second.release_id == "20260731-02" and second.content_hash == first.content_hash
    done = approve_release(city, catalog, second.release_id, approver="审核员甲")
    manifest = json.loads((done.folder / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["approved_by"], manifest["content_hash"]) == ("审核员甲", second.content_hash)
    stamp = (done.folder / "manifest.json").stat().st_mtime_ns
    again = approve_release(city, catalog, second.release_id, approver="审核员丙")
    assert again.decided_by == "审核员甲" and (done.folder / "manifest.json").stat().st_mtime_ns == stamp
    assert current_release(city) == second.release_id
    assert [r.status for r in release_status(city)] == ["published", "rejected"]
    added = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)",
                                     [str(done.folder / "diff" / "added.parquet")]).fetchall()[0][0]
    assert added == done.records == 12
    # A candidate prepared before another release was published is out of date.
    stale = prepare_release(city, catalog, date(2026, 8, 31), prepared_by="test")
    newer = prepare_release(city, catalog, date(2026, 9, 30), prepared_by="test")
    approve_release(city, catalog, newer.release_id, approver="审核员甲")
    with pytest.raises(ReleaseError, match="prepare` again"):
        approve_release(city, catalog, stale.release_id, approver="审核员甲")
    with pytest.raises(ReleaseError, match="not a release id"):
        approve_release(city, catalog, "../../etc", approver="审核员甲")
