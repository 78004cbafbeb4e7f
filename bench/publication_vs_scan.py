"""Benchmark: preparing a release to the credit website against one DuckDB scan of the same records.

    .venv/bin/python bench/publication_vs_scan.py                     # 10,000,000 records (make bench-publication)
    .venv/bin/python bench/publication_vs_scan.py --records 200000    # quick check (~1 min)

Issue 12: the time to prepare a release from 10 million clean records, within 3x of one DuckDB scan
of them, and the peak memory.

1. Builds a scratch data root (``--root``, default a new temp folder, removed at the end unless
   ``--keep``): the clean layer of 行政处罚 (``admin_penalty``) written directly as Parquet in the
   layout of docs/parquet-contract.md (``parquet/admin_penalty/department=/batch_id=/part-0.parquet``,
   the columns and types of ``warehouse.schema.clean_columns``) by one DuckDB ``COPY`` over
   generated rows: 5 departments x 100 batches received 2023-02 to 2026-11, decisions of 2023-2026,
   penalty kinds mixing 警告 / 罚款 / 没收 / 吊销许可证件 / 责令停产停业 / 其他, fines, 公示截止期 on
   about a third, about 1% of texts with a phone number or a long digit run (licence or registration
   numbers: the Python path of ``scrub_public``), unique 决定书文号. Plus 5,000 信用修复 rows naming
   penalties, and the matching ``audit.batches`` rows (status ``loaded``). The warehouse is opened
   once with ``warehouse.db.connect`` so its schema and the views over the Parquet exist.
2. Runs, each in a fresh interpreter (peak RSS from ``os.wait4``; wall time inside the child
   around the work only, except ``cli``):
   - ``scan`` (baseline): ``SELECT count(*), sum(length(text)) / count(col) of every column`` over
     ``read_parquet('<root>/parquet/admin_penalty/*/*/*.parquet', hive_partitioning = true)``,
     with the warehouse's threads and memory limit;
   - ``prepare``: ``credit.publication.prepare_release`` as of ``--as-of`` (the first release:
     every record added);
   - ``cli``: ``credit publish prepare --as-of ...`` from the shell, start-up included (once);
   - ``approve``: ``approve_release`` of the first candidate (time only);
   - ``second``: ``prepare_release`` again, now diffed against the 10M keys just published;
   - ``profile`` (when the ratio misses the target, or ``--profile yes``): ``prepare_release``
     with every SQL statement and Parquet write timed, then the records query of
     ``warehouse.public_records.records_sql`` under DuckDB's JSON profiler, and variants of it.
   ``scan`` and ``prepare`` alternate for ``--repeat`` rounds; the ratio is the median paired ratio.
3. Prints a table (seconds best / median, ratio to the scan, peak RSS, records/s), writes it to
   ``bench/out/publication_vs_scan-<records>.json`` and ``.md``, and for a full-size run (or with
   ``--write-md``) into the results section of ``bench/publication_vs_scan.md``.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
for _path in (PROJECT_ROOT, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from ingest_vs_copy import PLACES, TimingConnection, _vm_hwm_mib, build_pools, top_operators  # noqa: E402

from transforms.masking import _PHONE_SUSPECT, _SUSPECT  # noqa: E402  (scrub_public_texts' own prefilter)

SUSPECT = f"{_SUSPECT}|{_PHONE_SUSPECT}"

DATASET = "admin_penalty"
REPAIR_DATASET = "credit_repair"
RATIO_TARGET = 3.0
BATCHES_PER_DEPARTMENT = 100
REPAIR_ROWS = 5_000
GENERATOR_VERSION = 1  # bump when the generated data changes: a kept root is then rebuilt
META_NAME = "bench-meta.json"
FIRST_RECEIVED, LAST_RECEIVED = date(2023, 2, 20), date(2026, 11, 25)
MD_PATH = BENCH_DIR / "publication_vs_scan.md"
MD_START = "<!-- results: bench/publication_vs_scan.py puts each new run here, above the earlier ones -->"

# Departments that send 行政处罚 (catalog), the prefix of their decision numbers, and their penalties:
# (违法行为类型, 违法事实, 处罚依据, 处罚类别 joined by |, fine range in 万元, weight, extra), where extra is
# '简易程序' (summary procedure: minor), or the licence revoked (CF_NR_ZKDX), or ''.
DEPARTMENTS = {
    "market_regulation": ("乳市监罚", [
        ("经营超过保质期的食品", "销售超过保质期的食品", "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项",
         "罚款|没收违法所得", 0.5, 5.0, 4, ""),
        ("销售不合格产品", "销售经抽样检验不合格的产品", "《中华人民共和国产品质量法》第四十九条",
         "罚款|没收违法所得", 0.2, 3.0, 3, ""),
        ("使用未经定期检验的特种设备", "使用未经定期检验的电梯", "《中华人民共和国特种设备安全法》第八十四条第（一）项",
         "罚款", 3.0, 30.0, 2, ""),
        ("发布虚假广告", "通过微信公众号发布含有虚假内容的广告", "《中华人民共和国广告法》第五十五条第一款",
         "罚款", 1.0, 10.0, 2, ""),
        ("不按规定明码标价", "销售商品未按规定明码标价", "《中华人民共和国价格法》第四十二条", "警告", 0, 0, 3, ""),
        ("未按规定公示年度报告", "未按照规定期限公示年度报告", "《企业信息公示暂行条例》第十七条",
         "警告|罚款", 0.1, 1.0, 2, ""),
        ("计量器具未经检定", "使用未经检定的电子计价秤", "《中华人民共和国计量法》第二十六条",
         "罚款", 0.01, 0.05, 2, "简易程序"),
        ("侵犯注册商标专用权", "销售侵犯注册商标专用权的商品", "《中华人民共和国商标法》第六十条第二款",
         "没收非法财物|罚款", 0.5, 20.0, 2, ""),
        ("未取得食品经营许可从事食品经营活动", "未取得食品经营许可从事食品销售",
         "《中华人民共和国食品安全法》第一百二十二条第一款", "没收违法所得|罚款", 0.5, 5.0, 2, ""),
        ("生产经营致病性微生物超标的食品", "销售致病性微生物超过食品安全标准限量的熟肉制品",
         "《中华人民共和国食品安全法》第一百二十四条第一款第（一）项", "罚款|没收违法所得|吊销许可证件",
         5.0, 20.0, 1, "食品经营许可证"),
        ("未按规定履行进货查验义务", "未按规定查验供货者的许可证和食品出厂检验合格证",
         "《中华人民共和国食品安全法》第一百二十六条第一款第（三）项", "其他", 0, 0, 1, ""),
    ]),
    "ecology_environment": ("威环乳罚", [
        ("超标排放大气污染物", "排放的大气污染物超过国家规定的排放标准",
         "《中华人民共和国大气污染防治法》第九十九条第（二）项", "罚款", 10.0, 100.0, 3, ""),
        ("未批先建", "建设项目环境影响报告表未经批准擅自开工建设",
         "《中华人民共和国环境影响评价法》第三十一条第一款", "罚款", 5.0, 30.0, 3, ""),
        ("危险废物未按规定贮存", "未按照国家有关规定贮存危险废物",
         "《中华人民共和国固体废物污染环境防治法》第一百一十二条第一款第（六）项", "罚款", 10.0, 100.0, 2, ""),
        ("通过暗管排放水污染物", "通过暗管排放水污染物", "《中华人民共和国水污染防治法》第八十三条第（三）项",
         "责令停产停业|罚款", 20.0, 100.0, 1, ""),
        ("未按规定公开环境信息", "未按照规定如实公开企业环境信息", "《企业事业单位环境信息公开办法》第十六条",
         "警告|罚款", 0.1, 3.0, 2, ""),
    ]),
    "emergency": ("乳应急罚", [
        ("未按规定开展安全生产教育和培训", "未对从业人员进行安全生产教育和培训",
         "《中华人民共和国安全生产法》第九十七条第（三）项", "罚款", 1.0, 10.0, 3, ""),
        ("未建立事故隐患排查治理制度", "未建立事故隐患排查治理制度，未如实记录事故隐患排查治理情况",
         "《中华人民共和国安全生产法》第一百零一条第（五）项", "罚款", 1.0, 10.0, 3, ""),
        ("危险化学品经营许可证过期经营", "危险化学品经营许可证有效期届满后继续从事经营活动",
         "《危险化学品安全管理条例》第七十七条第三款", "罚款|没收违法所得", 10.0, 20.0, 1, ""),
        ("主要负责人未履行安全生产管理职责", "主要负责人未履行组织制定并实施安全生产教育和培训计划的职责",
         "《中华人民共和国安全生产法》第九十四条", "警告|罚款", 2.0, 5.0, 2, ""),
        ("烟花爆竹经营许可证被吊销", "违反规定储存烟花爆竹且拒不整改",
         "《中华人民共和国安全生产法》第一百零二条", "罚款|吊销许可证件", 1.0, 5.0, 1, "烟花爆竹经营（零售）许可证"),
    ]),
    "urban_management": ("乳综执罚", [
        ("违法占道经营", "在城市道路两侧擅自占道经营", "《城市市容和环境卫生管理条例》第三十六条",
         "警告", 0, 0, 3, ""),
        ("擅自设置户外广告", "未经批准擅自设置大型户外广告设施", "《山东省城市建设管理条例》第七十三条",
         "罚款", 0.05, 0.5, 3, ""),
        ("违法建设", "未取得建设工程规划许可证进行建设", "《中华人民共和国城乡规划法》第六十四条",
         "罚款", 1.0, 20.0, 2, ""),
        ("随意倾倒建筑垃圾", "将建筑垃圾随意倾倒在城市道路两侧", "《城市建筑垃圾管理规定》第二十六条",
         "罚款", 0.5, 5.0, 2, ""),
        ("乱扔废弃物", "在公共场所随地乱扔废弃物", "《城市市容和环境卫生管理条例》第三十四条",
         "罚款", 0.002, 0.02, 2, "简易程序"),
    ]),
    "transport": ("乳交罚", [
        ("未取得道路运输经营许可擅自从事道路运输经营", "未取得道路运输经营许可，擅自从事道路旅客运输经营",
         "《中华人民共和国道路运输条例》第六十三条", "罚款|没收违法所得", 1.0, 10.0, 3, ""),
        ("违法超限运输", "驾驶车辆违法超限运输", "《公路安全保护条例》第六十四条", "罚款", 0.1, 3.0, 4, ""),
        ("客运车辆不按批准的线路行驶", "客运班车不按批准的客运站点停靠且拒不改正",
         "《中华人民共和国道路运输条例》第六十九条", "罚款|吊销许可证件", 0.1, 0.3, 1, "道路运输证"),
        ("网约车未取得运输证", "未取得网络预约出租汽车运输证从事网约车经营",
         "《网络预约出租汽车经营服务管理暂行办法》第三十四条", "罚款", 0.3, 1.0, 2, ""),
        ("未按规定维护和检测运输车辆", "未按规定对道路运输车辆进行维护和检测",
         "《道路运输车辆技术管理规定》第三十一条", "其他", 0, 0, 1, ""),
    ]),
}


# --------------------------------------------------------------------------- the scratch warehouse


def build_warehouse(root: Path, records: int, seed: int, threads: int) -> dict:
    """Write the clean layer and the ledger under ``root`` (a fresh data root)."""
    import duckdb
    import pyarrow as pa

    from foundation.catalog import get_catalog
    from foundation.settings import get_settings
    from sample_city.entities import agency_uscc
    from transforms.masking import mask_id_sql
    from warehouse.db import connect, id_salt
    from warehouse.schema import clean_columns

    assert os.environ["CREDIT_DATA_DIR"] == str(root)
    settings, catalog = get_settings(), get_catalog()
    dataset = catalog.dataset(DATASET)
    assert set(DEPARTMENTS) <= set(dataset.departments)
    allowed_kinds = set(dataset.field("CF_CFLB").allowed_values or [])
    t0 = time.perf_counter()
    ent, per = build_pools(seed)

    depts = list(DEPARTMENTS)
    tpl: dict[str, list] = {k: [] for k in ("d", "k", "wfxw", "fact", "law", "kinds", "lo", "hi", "extra")}
    weights = []
    for d, code in enumerate(depts):
        k = 0
        for wfxw, fact, law, kinds, lo, hi, weight, extra in DEPARTMENTS[code][1]:
            assert set(kinds.split("|")) <= allowed_kinds, kinds
            for _ in range(weight):
                for key, value in zip(tpl, (d, k, wfxw, fact, law, kinds, lo, hi, extra), strict=True):
                    tpl[key].append(value)
                k += 1
        weights.append(k)
    agencies = {
        "d": list(range(len(depts))), "code": depts,
        "agency": [catalog.departments[c].name_zh for c in depts],
        "agency_code": [agency_uscc(c) for c in depts],
        "prefix": [DEPARTMENTS[c][0] for c in depts],
    }
    batches = len(depts) * BATCHES_PER_DEPARTMENT
    per_batch = -(-records // batches)
    span = (LAST_RECEIVED - FIRST_RECEIVED).days

    con = duckdb.connect(config={"threads": threads, "memory_limit": "6GB",
                                 "temp_directory": str(root / "duckdb_tmp_gen")})
    for name, data in (("ent", {"k": list(range(len(ent["name"]))), **ent}),
                       ("per", {"k": list(range(len(per["name"]))), **per}), ("tpl", tpl), ("agencies", agencies)):
        con.register(f"{name}_src", pa.table(data))
        con.execute(f"CREATE TEMP TABLE {name} AS FROM {name}_src")
        con.unregister(f"{name}_src")
    # One row per batch: its department, id and the day it was received (ledger and partition).
    con.execute(f"""
CREATE TEMP TABLE batch AS
SELECT b, b % {len(depts)} AS d, a.code AS department,
    'admin_penalty-' || left(sha256('bench/{int(seed)}/' || b), 16) AS batch_id,
    DATE '{FIRST_RECEIVED}' + round((b // {len(depts)}) * {span} / {BATCHES_PER_DEPARTMENT - 1})::INTEGER AS received
FROM range({batches}) r(b) JOIN agencies a ON a.d = b % {len(depts)}""")

    def h(tag: int) -> str:  # a deterministic pseudo-random UBIGINT per row and purpose
        return f"hash(i, {int(seed)}, {tag})"

    n_ent, n_per = len(ent["name"]), len(per["name"])
    places = "[" + ", ".join(f"'{p}'" for p in PLACES) + "]"  # constants of this module
    counts = "[" + ", ".join(str(w) for w in weights) + "]"
    salt = "$salt"
    yuan = "CASE WHEN {y} > 0 THEN ({y} / 10000.0)::DECIMAL(18, 6) END"
    exprs = {
        "source_row": "i - b * $per_batch + 1",
        "subject_key": f"CASE WHEN is_person THEN 'P:' || sha256({salt} || p.rid) ELSE e.uscc END",
        "CF_XDR_MC": "CASE WHEN is_person THEN p.name ELSE e.name END",
        "CF_XDR_LB": "CASE WHEN is_person THEN '自然人' ELSE e.lb END",
        "CF_XDR_SHXYM": "CASE WHEN NOT is_person THEN e.uscc END",
        "CF_XDR_GSZC": "NULL", "CF_XDR_ZZJG": "NULL", "CF_XDR_SWDJ": "NULL",
        "CF_XDR_SYDW": "NULL", "CF_XDR_SHZZ": "NULL",
        "CF_FRDB": "CASE WHEN with_rep THEN e.rep END",
        "CF_FR_ZJLX": "CASE WHEN with_rep THEN '身份证' END",
        "CF_FR_ZJHM": f"CASE WHEN with_rep THEN {mask_id_sql('e.rep_rid')} END",
        "CF_FR_ZJHM_HASH": f"CASE WHEN with_rep THEN sha256({salt} || e.rep_rid) END",
        "CF_XDR_ZJLX": "CASE WHEN is_person THEN '身份证' END",
        "CF_XDR_ZJHM": f"CASE WHEN is_person THEN {mask_id_sql('p.rid')} END",
        "CF_XDR_ZJHM_HASH": f"CASE WHEN is_person THEN sha256({salt} || p.rid) END",
        "CF_WSH": "a.prefix || '〔' || year(jdrq) || '〕' || (i + 1) || '号'",
        "CF_WFXW": "t.wfxw",
        "CF_SY": (
            "'经查，当事人于' || strftime(jdrq - fact_days, '%Y年%-m月%-d日') || '在其位于' || "
            "CASE WHEN is_person THEN p.addr ELSE e.addr END || '的' || place || t.fact || "
            "CASE WHEN goods > 0 THEN '，涉案货值金额人民币' || goods || '元' ELSE '' END || "
            "CASE WHEN gains > 0 THEN '，违法所得人民币' || gains || '元' ELSE '' END || '。' || "
            "CASE WHEN h_mix % 2 = 0 THEN '上述行为违反了' || t.law || '的规定。' "
            "WHEN h_mix % 3 = 0 THEN '当事人积极配合调查并主动消除违法行为危害后果。' ELSE '' END || "
            # about 0.5%: a phone number the website must not show (masked by scrub_public)
            "CASE WHEN h_mix % 200 = 7 THEN '（举报人联系电话：1' || [3, 5, 8, 9][(1 + (h_mix // 200) % 4)::INTEGER] "
            "|| lpad(((h_mix // 800) % 1000000000)::VARCHAR, 9, '0') || '）' ELSE '' END"
        ),
        "CF_YJ": "t.law",
        "CF_CFLB": "replace(t.kinds, '|', sep)",
        "CF_NR": (
            "CASE WHEN t.extra = '简易程序' THEN '适用简易程序，' ELSE '' END || "
            "concat_ws('，', CASE WHEN t.kinds LIKE '%警告%' THEN '警告' END, "
            "CASE WHEN gains > 0 THEN '没收违法所得人民币' || gains || '元' END, "
            "CASE WHEN t.kinds LIKE '%没收非法财物%' THEN '没收违法物品一批' END, "
            "CASE WHEN t.kinds LIKE '%责令停产停业%' THEN '责令停产停业' END, "
            "CASE WHEN fine > 0 THEN '罚款人民币' || fine || '元' END, "
            "CASE WHEN t.kinds LIKE '%吊销许可证件%' THEN '吊销' || t.extra END, "
            "CASE WHEN t.kinds = '其他' THEN '责令限期改正' END) || "
            # about 0.5%: a long digit run (registration number) the scrub must look at and leave
            "CASE WHEN h_mix % 200 = 11 THEN '（营业执照注册号：' || '371083' || "
            "lpad(((h_mix // 200) % 1000000000)::VARCHAR, 9, '0') || '）' ELSE '' END"
        ),
        "CF_NR_FK": yuan.format(y="fine"),
        "CF_NR_WFFF": yuan.format(y="gains"),
        "CF_NR_ZKDX": ("CASE WHEN t.kinds LIKE '%吊销许可证件%' THEN t.extra || '（编号：' || "
                       "CASE WHEN t.extra = '食品经营许可证' THEN 'JY2371083' ELSE '鲁威' END || "
                       f"lpad(({h(13)} % 100000)::VARCHAR, 5, '0') || '）' END"),
        "CF_JDRQ": "jdrq",
        "CF_YXQ": "(jdrq + INTERVAL 1 YEAR - INTERVAL 1 DAY)::DATE",
        # about a third carry their own 公示截止期; one in 500 of those beyond the rules (a finding)
        "CF_GSJZQ": ("CASE WHEN h_mix % 3 = 0 THEN (jdrq + INTERVAL 3 YEAR - INTERVAL 1 DAY)::DATE "
                     "WHEN h_mix % 1500 = 1 THEN (jdrq + INTERVAL 5 YEAR)::DATE END"),
        "CF_CFJG": "a.agency",
        "CF_CFJGDM": "a.agency_code",
        "CF_SJLY": "a.agency",
        "CF_SJLYDM": "a.agency_code",
        "CF_AJMC": ("CASE WHEN h_mix % 2 = 0 THEN CASE WHEN is_person THEN p.name ELSE e.name END"
                    " || t.wfxw || '案' END"),
        "BZ": "CASE WHEN h_mix % 50 = 1 THEN '已履行完毕' WHEN h_mix % 50 = 2 THEN '已申请行政复议' END",
    }
    columns = clean_columns(dataset)
    assert [c for c, _ in columns[1:]] == list(exprs), "catalog fields changed: update the generator"
    select = ",\n        ".join(f'({exprs[c]})::{t} AS "{c}"' for c, t in columns[1:])
    target = settings.parquet_root / DATASET
    sql = f"""
COPY (
    WITH base AS (
        SELECT i, i // $per_batch AS b,
            {h(2)} % 10 = 0 AS is_person,
            {h(3)} % {n_ent} AS ek,
            {h(4)} % {n_per} AS pk,
            {h(6)} AS h_mix,
            (1 + {h(7)} % 45)::INTEGER AS age_days,
            (20 + {h(8)} % 100)::INTEGER AS fact_days,
            ({h(9)} % 10000) / 10000.0 AS u,
            ['、', ';', '；', '、'][1 + ({h(10)} % 4)::INTEGER] AS sep,
            {places}[1 + ({h(11)} % {len(PLACES)})::INTEGER] AS place,
            {h(5)} AS h_tpl
        FROM range($records) r(i)
    ),
    picked AS (
        SELECT base.*, bt.department, bt.batch_id, bt.d, bt.received - age_days AS jdrq,
            NOT is_person AND h_mix % 5 < 3 AS with_rep,
            h_tpl % {counts}[(1 + bt.d)::INTEGER] AS tk
        FROM base JOIN batch bt USING (b)
    ),
    valued AS (
        SELECT picked.*,
            CASE WHEN t.kinds LIKE '%罚款%'
                 THEN greatest(50, round((t.lo + (t.hi - t.lo) * u) * 100) * 100)::BIGINT ELSE 0 END AS fine,
            CASE WHEN t.kinds LIKE '%没收%' THEN 100 * (1 + h_mix % 500) ELSE 0 END AS goods,
            CASE WHEN t.kinds LIKE '%没收违法所得%'
                 THEN greatest(100, round(100 * (1 + h_mix % 500) * (0.1 + u / 2) / 100) * 100)::BIGINT
                 ELSE 0 END AS gains
        FROM picked JOIN tpl t ON t.d = picked.d AND t.k = picked.tk
    )
    SELECT department, batch_id,
        {select}
    FROM valued
    JOIN tpl t ON t.d = valued.d AND t.k = valued.tk
    JOIN agencies a ON a.d = valued.d
    JOIN ent e ON e.k = valued.ek
    JOIN per p ON p.k = valued.pk
) TO '{target}' (FORMAT parquet, PARTITION_BY (department, batch_id), FILENAME_PATTERN 'part-{{i}}',
    ROW_GROUP_SIZE 122880)
"""
    target.mkdir(parents=True, exist_ok=True)
    con.execute(sql, {"records": records, "per_batch": per_batch, "salt": id_salt()})
    t_penalties = time.perf_counter() - t0

    # 信用修复: 5,000 general penalties repaired 13 months after their decision (some objections and
    # revocations), sent in one batch of the market regulator.
    repair = catalog.dataset(REPAIR_DATASET)
    repair_batch = f"credit_repair-{int(seed):016x}"[:30]
    repair_dir = settings.parquet_root / REPAIR_DATASET / "department=market_regulation" / f"batch_id={repair_batch}"
    repair_dir.mkdir(parents=True)
    rexprs = {
        "source_row": "row_number() OVER (ORDER BY CF_WSH)",
        "subject_key": "subject_key", "XF_XDR_MC": "CF_XDR_MC", "XF_XDR_LB": "CF_XDR_LB",
        "XF_XDR_SHXYM": "CF_XDR_SHXYM", "XF_XDR_ZJHM": "CF_XDR_ZJHM", "XF_XDR_ZJHM_HASH": "CF_XDR_ZJHM_HASH",
        "XF_XXLB": "'行政处罚'", "XF_YWSH": "CF_WSH",
        "XF_LB": "CASE hash(CF_WSH) % 20 WHEN 0 THEN '异议成立' WHEN 1 THEN '决定撤销' ELSE '信用修复' END",
        "XF_JDRQ": "(CF_JDRQ + INTERVAL 13 MONTH)::DATE", "XF_JG": "'乳山市市场监督管理局'",
        "XF_JGDM": f"'{agency_uscc('market_regulation')}'",
        "XF_SM": "'当事人已履行行政处罚决定，主动纠正失信行为并作出信用承诺'",
    }
    rcolumns = clean_columns(repair)
    assert [c for c, _ in rcolumns[1:]] == list(rexprs), "catalog fields changed: update the generator"
    rselect = ", ".join(f'({rexprs[c]})::{t} AS "{c}"' for c, t in rcolumns[1:])
    con.execute(f"""
COPY (SELECT {rselect} FROM (
    SELECT * FROM read_parquet('{target}/*/*/*.parquet', hive_partitioning = true)
    WHERE CF_CFLB = '罚款' AND CF_JDRQ + INTERVAL 13 MONTH <= DATE '2026-11-20' AND hash(CF_WSH) % 50 = 3
    LIMIT {REPAIR_ROWS})
) TO '{repair_dir / "part-0.parquet"}' (FORMAT parquet)""")
    repair_rows = con.execute(f"SELECT count(*) FROM '{repair_dir / 'part-0.parquet'}'").fetchone()[0]

    ledger = con.execute("""
SELECT bt.batch_id, 'admin_penalty', bt.department, 'xzcf_' || bt.department || '_' || strftime(bt.received, '%Y%m%d')
        || '.csv', sha256(bt.batch_id), NULL::BIGINT, 'csv', 'utf-8',
    (bt.received + INTERVAL 9 HOUR + INTERVAL (bt.d * 7) MINUTE)::TIMESTAMP AT TIME ZONE 'Asia/Shanghai',
    (bt.received + INTERVAL 9 HOUR + INTERVAL (bt.d * 7 + 2) MINUTE)::TIMESTAMP AT TIME ZONE 'Asia/Shanghai',
    n, n, 0, 'loaded'
FROM batch bt JOIN (SELECT batch_id, count(*) AS n FROM read_parquet($glob, hive_partitioning = true)
                    GROUP BY ALL) USING (batch_id)
ORDER BY ALL""", {"glob": str(target / "*" / "*" / "*.parquet")}).fetchall()
    con.close()
    shutil.rmtree(root / "duckdb_tmp_gen", ignore_errors=True)
    received = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    ledger.append((repair_batch, REPAIR_DATASET, "market_regulation", "xyxf_market_regulation_20261121.csv",
                   "0" * 64, None, "csv", "utf-8", received, received, repair_rows, repair_rows, 0, "loaded"))

    wh = connect(settings, catalog)  # schema, macros and the views over the Parquet just written
    wh.executemany("INSERT INTO audit.batches (batch_id, dataset_id, department, source_file, file_sha256, "
                   "file_bytes, format, encoding, received_at, loaded_at, rows_in, rows_loaded, rows_quarantined, "
                   "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", ledger)
    total = wh.execute("SELECT count(*) FROM clean.admin_penalty c JOIN audit.batches b USING (batch_id)").fetchone()[0]
    wh.close()
    assert total == records, (total, records)
    files = list(target.glob("*/*/*.parquet"))
    meta = {"records": records, "seed": seed, "version": GENERATOR_VERSION, "batches": batches, "files": len(files),
            "parquet_bytes": sum(p.stat().st_size for p in files), "repair_rows": repair_rows,
            "seconds": time.perf_counter() - t0, "penalty_seconds": t_penalties}
    print(f"built {records:,} clean records in {len(files)} partitions, "
          f"{meta['parquet_bytes'] / 2**20:,.0f} MiB Parquet, + {repair_rows:,} repairs, "
          f"in {meta['seconds']:.0f} s", flush=True)
    return meta


def reused(root: Path, records: int, seed: int) -> dict | None:
    """The meta of a data root an earlier ``--keep`` run built with the same records, seed and generator
    version, its releases removed (so the first prepare is a first release again); else None."""
    path = root / META_NAME
    if not path.exists():
        return None
    meta = json.loads(path.read_text(encoding="utf-8"))
    if (meta.get("records"), meta.get("seed"), meta.get("version")) != (records, seed, GENERATOR_VERSION):
        return None
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings
    from warehouse.db import connect

    shutil.rmtree(root / "publication", ignore_errors=True)
    con = connect(get_settings(), get_catalog())
    con.execute("DROP TABLE IF EXISTS audit.releases")
    con.close()
    print(f"reusing the data root built earlier ({records:,} records, seed {seed})", flush=True)
    return meta


# --------------------------------------------------------------------------- children


def scan_sql(root: Path) -> str:
    """One scan touching every column of every clean record: text lengths summed, others counted."""
    import duckdb

    from foundation.sql_names import ident

    pattern = str(root / "parquet" / DATASET / "*" / "*" / "*.parquet")
    source = f"read_parquet('{pattern}', hive_partitioning = true)"
    described = duckdb.connect().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    aggs = [f"sum(length({ident(name)}))" if kind == "VARCHAR" else f"count({ident(name)})"
            for name, kind, *_ in described]
    return f"SELECT count(*), {', '.join(aggs)} FROM {source}"


def child_scan(args) -> dict:
    import duckdb

    root = Path(args.root)
    sql = scan_sql(root)
    con = duckdb.connect(config={"threads": args.threads, "memory_limit": args.memory_limit,
                                 "temp_directory": str(root / "duckdb_tmp")})
    t0 = time.perf_counter()
    row = con.execute(sql).fetchone()
    wall = time.perf_counter() - t0
    con.close()
    return {"wall": wall, "records": row[0], "columns": len(row) - 1}


def _release_payload(release) -> dict:
    return {"release_id": release.release_id, "records_published": release.records, "changes": release.changes,
            "findings": release.findings, "previous_release": release.previous_release}


def child_prepare(args) -> dict:
    from credit.publication import prepare_release
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings

    settings, catalog = get_settings(), get_catalog()
    t0 = time.perf_counter()
    try:
        release = prepare_release(settings, catalog, date.fromisoformat(args.as_of), prepared_by="bench")
    except Exception as exc:  # noqa: BLE001  (a failed run is a result: reported, not a crash of the bench)
        return {"wall": time.perf_counter() - t0, "records": args.records, **_failure(exc)}
    wall = time.perf_counter() - t0
    manifest = json.loads((release.candidate / "manifest.json").read_text(encoding="utf-8"))
    return {"wall": wall, "records": args.records, **_release_payload(release),
            "status_counts": manifest["status_counts"].get(DATASET, {})}


def _failure(exc: BaseException) -> dict:
    """What failed and where: the exception's first line and the innermost project function it came through."""
    import traceback

    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if PROJECT_ROOT in path.parents and BENCH_DIR not in path.parents:
            where = f"{path.relative_to(PROJECT_ROOT)}:{frame.lineno} {frame.name}"
    return {"failed": f"{type(exc).__name__}: {str(exc).splitlines()[0]}", "failed_at": where}


class LoudTimingConnection(TimingConnection):
    """TimingConnection that also prints every statement that took a second or more, as it ends."""

    def execute(self, sql, *args, **kwargs):
        try:
            return super().execute(sql, *args, **kwargs)
        finally:
            label, seconds = self.log[-1]
            if seconds >= 1:
                print(f"    {seconds:7.1f} s  {label}", flush=True)


def child_approve(args) -> dict:
    from credit.publication import approve_release
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings

    t0 = time.perf_counter()
    release = approve_release(get_settings(), get_catalog(), args.release, approver="bench")
    return {"wall": time.perf_counter() - t0, "records": args.records, **_release_payload(release),
            "status": release.status}


def child_profile(args) -> dict:
    """prepare_release with every statement and write timed, then the records query profiled."""
    import credit.publication as publication
    import credit.review_page as review_page
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings

    settings, catalog = get_settings(), get_catalog()
    log: list[tuple[str, float]] = []
    cons: list[LoudTimingConnection] = []

    def timed(label: str, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                log.append((label, time.perf_counter() - t))
        return wrapper

    def timed_connect(*a, **kw):
        t = time.perf_counter()
        con = LoudTimingConnection(connect(*a, **kw))
        log.append(("step: connect (schema, views)", time.perf_counter() - t))
        cons.append(con)
        return con

    def timed_write(con, sql, params, path):
        t = time.perf_counter()
        try:
            return write_query(con, sql, params, path)
        finally:
            cons[-1].log.append(("write_query → " + Path(path).name + ": " + TimingConnection._label(sql),
                                 time.perf_counter() - t))
            print(f"    {cons[-1].log[-1][1]:7.1f} s  {cons[-1].log[-1][0]}", flush=True)

    connect, write_query = publication.connect, publication.write_query
    publication.connect, publication.write_query = timed_connect, timed_write
    for name in ("_write_records", "_diff", "_write_samples", "_summary"):
        setattr(publication, name, timed(f"step: {name}", getattr(publication, name)))
    review_page.write_review_page = timed("step: write_review_page", review_page.write_review_page)
    t0 = time.perf_counter()
    failure: dict = {}
    try:
        release = publication.prepare_release(settings, catalog, date.fromisoformat(args.as_of),
                                              prepared_by="bench")
        shutil.rmtree(release.candidate, ignore_errors=True)
    except Exception as exc:  # noqa: BLE001  (where it failed, and what it did until then, is the result)
        failure = _failure(exc)
        print(f"    prepare failed: {failure['failed']} at {failure['failed_at']}", flush=True)
    wall = time.perf_counter() - t0
    rss_prepare = _vm_hwm_mib()
    statements = sorted(cons[0].log, key=lambda x: -x[1])
    steps = sorted(log, key=lambda x: -x[1])
    publication.connect, publication.write_query = connect, write_query
    explain = None
    if not args.no_explain:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
        explain = profile_records_sql(settings, catalog, date.fromisoformat(args.as_of), Path(args.root), variants)
    return {"wall": wall, "records": args.records, "steps": steps, **failure,
            "statements": [s for s in statements if s[1] >= 0.5], "statements_total": sum(s for _, s in cons[0].log),
            "rss_after_prepare_mib": rss_prepare, "explain": explain}


VARIANTS = {  # name: what it measures (see profile_records_sql)
    "full": "records query as prepare_release runs it (CREATE TEMP TABLE AS), JSON-profiled",
    "no_window": "same, without the latest-copy window (QUALIFY row_number() ... = 1 dropped)",
    "no_scrub": "same, scrub_public(x) replaced by x",
    "neither": "same, without the window and without scrub_public",
    "counted": "records query aggregated (count, sum of content_hash lengths), not materialized",
    "latest": "the latest-copy CTE alone: the window over every clean column, materialized",
    "narrow": "the latest-copy window over (record_key, batch_id, source_row) only, materialized",
    # Proposals (same rows as "full", checked by --check-variants): not in the project code.
    "keyed": "proposal: the window over (batch_id, source_row) only, the wide rows semi-joined to it",
    "guarded": "proposal: scrub_public(x) only where DuckDB's regexp_matches(x, the UDF's own prefilter)",
    "keyed_guarded": "proposals keyed + guarded together",
}


def keyed_dedup(sql: str) -> str:
    """The records query with its latest-copy window over the keys only: ``keep`` numbers (batch_id,
    source_row) and the wide clean rows are semi-joined to it, so the window sorts 2 columns, not 35."""
    latest = sql.split("WITH latest AS (", 1)[1].split("\n), exits AS (")[0]
    select, rest = latest.split("\n    FROM ", 1)
    from_where, qualify = rest.split("\n    QUALIFY ", 1)
    source, where = from_where.split("\n    WHERE ", 1)
    keep = f"\n    SELECT c.batch_id, c.source_row\n    FROM {from_where}\n    QUALIFY {qualify}"
    wide = (f"{select}\n    FROM {source} SEMI JOIN keep k ON k.batch_id = c.batch_id AND k.source_row = c.source_row"
            f"\n    WHERE {where}")
    return sql.replace(f"WITH latest AS ({latest}", f"WITH keep AS ({keep}\n), latest AS ({wide}", 1)


def guarded_scrub(sql: str) -> str:
    """The records query calling the Python UDF only on texts its own prefilter would pass (same result)."""
    def guarded(m: re.Match[str]) -> str:
        return f"CASE WHEN regexp_matches({m[1]}, $suspect) THEN scrub_public({m[1]}) ELSE {m[1]} END"

    return re.sub(r'scrub_public\((r\."[A-Z_0-9]+")\)', guarded, sql)


def profile_records_sql(settings, catalog, as_of: date, root: Path, variants: list[str], check: bool = False) -> dict:
    """The records query of admin_penalty and variants of it (VARIANTS), each materialized like
    prepare_release does and timed, to tell what costs what."""
    from datetime import datetime as dt
    from datetime import timedelta

    from credit.publication import CITY_TZ
    from warehouse.db import connect
    from warehouse.public_records import install_publication_functions, records_sql, register_terms

    dataset = catalog.dataset(DATASET)
    con = connect(settings, catalog)
    register_terms(con, catalog.publication)
    install_publication_functions(con)
    sql, params = records_sql(catalog, dataset)
    bind = params | {"as_of": as_of, "cutoff": dt.combine(as_of + timedelta(days=1), dt.min.time(), CITY_TZ)}
    latest = sql.split("), exits AS (")[0].replace("WITH latest AS (", "", 1)
    key = latest.split(" AS record_key", 1)[0].split("SELECT ", 1)[1]
    queries = {
        "full": sql,
        "no_window": re.sub(r"\n\s*QUALIFY [^\n]*", "", sql),
        "no_scrub": sql.replace("scrub_public(", "("),
        "neither": re.sub(r"\n\s*QUALIFY [^\n]*", "", sql).replace("scrub_public(", "("),
        "counted": f"SELECT count(*) AS n, sum(length(content_hash)) AS h FROM ({sql})",
        "latest": latest,
        "narrow": re.sub(r"SELECT .*?\n(\s*FROM)", f"SELECT {key} AS record_key, c.batch_id, c.source_row\n\\1",
                         latest, count=1, flags=re.S),
        "keyed": keyed_dedup(sql),
        "guarded": guarded_scrub(sql),
        "keyed_guarded": guarded_scrub(keyed_dedup(sql)),
    }
    bind["suspect"] = SUSPECT
    out: dict = {"seconds": {}, "top_operators": None}
    if check:  # every variant that should give the same rows as the records query does
        used = {k: v for k, v in bind.items() if re.search(rf"\${k}\b", sql)}
        con.execute(f"CREATE OR REPLACE TEMP TABLE bench_expected AS {sql}", used)
        for name in ("no_scrub", "keyed", "guarded", "keyed_guarded"):
            query = queries[name]
            used = {k: v for k, v in bind.items() if re.search(rf"\${k}\b", query)}
            differ = con.execute(
                f"SELECT (SELECT count(*) FROM (FROM bench_expected EXCEPT ALL ({query}))) + "
                f"(SELECT count(*) FROM (({query}) EXCEPT ALL FROM bench_expected))", used).fetchone()[0]
            out.setdefault("check", {})[name] = differ
            print(f"    {name}: {differ} rows differ from the records query", flush=True)
        con.execute("DROP TABLE bench_expected")
    for name in variants:
        query = queries[name]
        profile = root / "records_profile.json" if name == "full" else None
        if profile:
            con.execute("PRAGMA enable_profiling = 'json'")
            con.execute(f"PRAGMA profiling_output = '{profile}'")
        used = {k: v for k, v in bind.items() if re.search(rf"\${k}\b", query)}
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE bench_records AS {query}", used)
        out["seconds"][name] = time.perf_counter() - t
        if profile:
            con.execute("PRAGMA disable_profiling")
            out["top_operators"] = top_operators(profile, 12)
        con.execute("DROP TABLE bench_records")
        print(f"    {out['seconds'][name]:7.1f} s  {name}: {VARIANTS[name]}", flush=True)
    con.close()
    return out


def child_explain(args) -> dict:
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings

    t0 = time.perf_counter()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    explain = profile_records_sql(get_settings(), get_catalog(), date.fromisoformat(args.as_of), Path(args.root),
                                  variants, check=args.check_variants)
    return {"wall": time.perf_counter() - t0, "records": args.records, "explain": explain}


def child_build(args) -> dict:
    meta = build_warehouse(Path(args.root), args.records, args.seed, args.threads)
    (Path(args.root) / META_NAME).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return {**meta, "wall": meta["seconds"]}


CHILDREN = {"build": child_build, "scan": child_scan, "prepare": child_prepare, "second": child_prepare,
            "approve": child_approve, "profile": child_profile, "explain": child_explain}


def run_child(kind: str, args, extra: list[str] | None = None) -> dict:
    """Run one measurement in a fresh interpreter; peak RSS and CPU time from wait4."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--root", str(args.root),
           "--records", str(args.records), "--threads", str(args.threads), "--memory-limit", args.memory_limit,
           "--as-of", args.as_of, "--seed", str(args.seed), "--variants", args.variants, *(extra or [])]
    if args.no_explain:
        cmd.append("--no-explain")
    return _wait(kind, cmd, args)


def run_cli(args) -> dict:
    """``credit publish prepare`` as a user runs it: wall time from spawn to exit."""
    cmd = [str(Path(sys.executable).with_name("credit")), "publish", "prepare", "--as-of", args.as_of, "--by", "bench"]
    return _wait("cli", cmd, args, whole=True)


def _wait(kind: str, cmd: list[str], args, whole: bool = False) -> dict:
    env = {**os.environ, "CREDIT_DATA_DIR": str(args.root), "CREDIT_DUCKDB_THREADS": str(args.threads),
           "CREDIT_DUCKDB_MEMORY_LIMIT": args.memory_limit, "COLUMNS": "120"}
    load_before = os.getloadavg()[0]
    print(f"--- {kind} (1-min load average before: {load_before:.2f})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not line.startswith("@@RESULT "):
            print("   ", line, end="", flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    total = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if whole:
        payload = {"wall": total, "records": args.records, "exit_code": code, "output": "".join(lines)[-2000:]}
        if code != 0:
            payload["failed"] = f"exit code {code}: " + " ".join("".join(lines[-12:]).split())[:300]
    elif code != 0:
        raise SystemExit(f"{kind} run failed with exit code {code}")
    else:
        payload = json.loads(next(line for line in reversed(lines) if line.startswith("@@RESULT "))[9:])
    payload.update(kind=kind, process_seconds=total, peak_rss_mib=usage.ru_maxrss / 1024,
                   cpu_seconds=usage.ru_utime + usage.ru_stime, load_before=load_before,
                   measured_at=datetime.now(UTC).isoformat(timespec="seconds"))
    print(f"    {kind}: {payload['wall']:.1f} s, peak RSS {payload['peak_rss_mib']:,.0f} MiB"
          + (f", FAILED: {payload['failed']} ({payload.get('failed_at', '')})" if "failed" in payload else ""),
          flush=True)
    return payload


def _drop_candidate(root: Path, release_id: str) -> None:
    """A measured candidate is not needed after its run (each holds the 10M records again)."""
    shutil.rmtree(root / "publication" / "candidates" / release_id, ignore_errors=True)


# --------------------------------------------------------------------------- report


def summarize(runs: dict[str, list[dict]]) -> dict:
    rows = {}
    for kind, measured in runs.items():
        walls = [r["wall"] for r in measured]
        rows[kind] = {"best": min(walls), "median": statistics.median(walls), "n": len(walls),
                      "failed": sum("failed" in r for r in measured),
                      "failures": sorted({f"{r['failed']} ({r.get('failed_at', '')})" for r in measured
                                          if "failed" in r}),
                      "walls": walls, "peak_rss_mib": max(r["peak_rss_mib"] for r in measured),
                      "cpu_seconds": statistics.median(r["cpu_seconds"] for r in measured)}
    return rows


LABELS = {
    "scan": "one DuckDB scan (baseline)",
    "prepare": "`prepare_release`, first release",
    "cli": "`credit publish prepare` (whole command)",
    "approve": "`approve_release` of the first",
    "second": "`prepare_release`, second (diff against the first)",
}


def report_table(rows: dict, pairs: list[float], records: int) -> list[str]:
    scan = rows.get("scan", {}).get("best")
    lines = ["| run | runs | best s | median s | × scan (best) | CPU s | peak RSS MiB | records/s (best) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind in ("scan", "prepare", "cli", "approve", "second"):
        if kind not in rows:
            continue
        r = rows[kind]
        ratio = f"×{r['best'] / scan:.2f}" if scan else ""
        runs = f"{r['n']}" + (f" (**{r['failed']} failed**)" if r["failed"] else "")
        speed = f"{records / r['best']:,.0f}" if not r["failed"] else "—"
        if r["failed"] == r["n"]:  # every run failed: the times are times to the failure
            ratio = f"> {ratio} (failed)" if ratio else "failed"
        lines.append(f"| {LABELS[kind]} | {runs} | {r['best']:.1f} | {r['median']:.1f} | {ratio} | "
                     f"{r['cpu_seconds']:.0f} | {r['peak_rss_mib']:,.0f} | {speed} |")
    for kind, r in rows.items():
        for failure in r["failures"]:
            lines.append(f"\n{LABELS[kind]} failed: `{failure}`")
    return lines


def markdown(args, meta: dict, rows: dict, pairs: list[float], profile: dict | None, started: str) -> str:
    ratio = statistics.median(pairs) if pairs else None
    prep = rows.get("prepare", {})
    if ratio and prep.get("failed") == prep.get("n"):
        verdict = f"prepare FAILED in every run, after ×{ratio:.1f} the scan's time: target NOT met"
    elif ratio:
        verdict = f"prepare/scan ×{ratio:.2f} ({'target met' if ratio <= RATIO_TARGET else 'target NOT met'})"
    else:
        verdict = "no ratio"
    out = [f"### {started[:16].replace('T', ' ')} UTC: {args.records:,} records, memory_limit {args.memory_limit}, "
           + verdict, "",
           f"Command: `{args.command}`  ",
           f"Machine: {os.cpu_count()} cores, {_mem_gib():.0f} GiB RAM, Python {platform.python_version()}, "
           f"DuckDB {_version('duckdb')}, pyarrow {_version('pyarrow')}; warehouse settings threads = "
           f"{args.threads}, memory_limit = {args.memory_limit}; as of {args.as_of}.  ",
           f"Data: {meta['records']:,} clean records in {meta['files']} partitions ({meta['batches']} batches), "
           f"{meta['parquet_bytes'] / 2**20:,.0f} MiB Parquet, plus {meta['repair_rows']:,} 信用修复 rows "
           f"(built in {meta['seconds']:.0f} s, not measured).", ""]
    out += report_table(rows, pairs, args.records)
    out.append("")
    if pairs:
        out.append(f"Paired ratios prepare/scan per round: {', '.join(f'×{p:.2f}' for p in pairs)}; "
                   f"median **×{ratio:.2f}** (target ≤ ×{RATIO_TARGET:g}). 1-minute load average before the runs: "
                   + ", ".join(f"{r['kind']} {r['load_before']:.1f}" for r in args.all_runs) + ".")
    first = args.first_release
    if first:
        out.append(f"First release: {first['records_published']:,} published, changes {first['changes']}, "
                   f"{first['findings']:,} findings; statuses {first['status_counts']}.")
    if "second" in args.last and "failed" not in args.last["second"]:
        s = args.last["second"]
        out.append(f"Second release (against {s['previous_release']}): changes {s['changes']}.")
    if profile:
        failed = f", **failed**: `{profile['failed']}` at {profile['failed_at']}" if "failed" in profile else ""
        out += ["", f"Profile run (prepare {profile['wall']:.1f} s{failed}; timed statements "
                    f"{profile['statements_total']:.1f} s, peak {profile['rss_after_prepare_mib']:,.0f} MiB):", "",
                "| step / statement (≥ 0.5 s) | s |", "|---|---:|"]
        for label, seconds in profile["steps"]:
            out.append(f"| {label} | {seconds:.1f} |")
        for label, seconds in profile["statements"]:
            out.append(f"| `{label.replace('|', '/')}` | {seconds:.1f} |")
        ex = profile["explain"]
    if profile and ex:
        out += ["", "Records query of admin_penalty alone and variants:", "", "| variant | s |", "|---|---:|"]
        out += [f"| `{k}`: {VARIANTS[k]} | {v:.1f} |" for k, v in ex["seconds"].items()]
        if ex["top_operators"]:
            out += ["", "Costliest operators of the records query (thread-seconds):", "", "| s | operator | what |",
                    "|---:|---|---|"]
            out += [f"| {s:.1f} | {name} | {what.replace('|', '/')[:100]} |" for s, name, what in ex["top_operators"]]
    return "\n".join(out) + "\n"


def _version(module: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(module)


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def update_md(text: str) -> None:
    """Put ``text`` first in the results section of bench/publication_vs_scan.md (after the start marker;
    earlier results stay below it)."""
    doc = MD_PATH.read_text(encoding="utf-8")
    head, rest = doc.split(MD_START, 1)
    MD_PATH.write_text(f"{head}{MD_START}\n\n{text}{rest}", encoding="utf-8")


# --------------------------------------------------------------------------- main


def main() -> None:
    from foundation.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--root", type=Path, help="scratch data root (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch data root")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--as-of", default="2026-11-30")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of scan + prepare, and of second")
    parser.add_argument("--runs", default="scan,prepare,cli,approve,second",
                        help="subset of scan,prepare,cli,approve,second (second needs approve)")
    parser.add_argument("--profile", choices=("auto", "yes", "no"), default="auto",
                        help="profile run: auto = when prepare/scan misses the target")
    parser.add_argument("--write-md", action="store_true",
                        help="update bench/publication_vs_scan.md even for a non-default --records")
    parser.add_argument("--threads", type=int, default=settings.duckdb_threads)
    parser.add_argument("--memory-limit", default=settings.duckdb_memory_limit)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--release", help=argparse.SUPPRESS)
    parser.add_argument("--no-explain", action="store_true", help="profile run: skip the records-query variants")
    parser.add_argument("--check-variants", action="store_true",
                        help="explain run: first check that the proposals give the records query's rows")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="profile run: the records-query variants to time (default: all): " + ", ".join(VARIANTS))
    args = parser.parse_args()

    if args.child:
        payload = CHILDREN[args.child](args)
        payload["vm_hwm_mib"] = _vm_hwm_mib()
        print("@@RESULT " + json.dumps(payload, ensure_ascii=False, default=str), flush=True)
        return

    args.command = " ".join([".venv/bin/python", "bench/publication_vs_scan.py", *sys.argv[1:]])
    started = datetime.now(UTC).isoformat(timespec="seconds")
    kinds = [k.strip() for k in args.runs.split(",") if k.strip()]
    made_root = args.root is None
    if made_root:
        args.root = Path(tempfile.mkdtemp(prefix="publication-bench-"))
    else:
        args.root = args.root.resolve()
    os.environ["CREDIT_DATA_DIR"] = str(args.root)
    os.environ["CREDIT_DUCKDB_THREADS"], os.environ["CREDIT_DUCKDB_MEMORY_LIMIT"] = str(args.threads), args.memory_limit
    print(f"scratch data root: {args.root}", flush=True)
    meta = reused(args.root, args.records, args.seed)
    if meta is None and args.root.exists() and any(args.root.iterdir()):
        raise SystemExit(f"{args.root} is not empty and not a data root this benchmark built: "
                         "give an empty or new folder")  # before the try: never remove a folder not ours
    try:
        if meta is None:
            args.root.mkdir(parents=True, exist_ok=True)
            # In a child too: a parent grown by the build would pass its high-water mark on to every
            # child's ru_maxrss (Linux keeps it across fork and exec).
            meta = run_child("build", args)
        runs: dict[str, list[dict]] = {}
        args.all_runs, args.last, args.first_release = [], {}, None
        pairs = []

        def record(run: dict) -> dict:
            runs.setdefault(run["kind"], []).append(run)
            args.all_runs.append(run)
            args.last[run["kind"]] = run
            return run

        first_ids = []
        for _ in range(args.repeat):  # scan and prepare alternate, so a noisy minute hits both
            scan = record(run_child("scan", args)) if "scan" in kinds else None
            if "prepare" in kinds:
                prep = record(run_child("prepare", args))
                if "failed" not in prep:
                    first_ids.append(prep["release_id"])
                    args.first_release = prep
                if scan:
                    pairs.append(prep["wall"] / scan["wall"])
        ratio = statistics.median(pairs) if pairs else None
        profile = None  # of the first release, before anything is approved
        if args.profile == "yes" or (args.profile == "auto" and ratio and ratio > RATIO_TARGET):
            profile = run_child("profile", args)
        if "cli" in kinds:
            if "failed" not in record(run_cli(args)):
                first_ids.append(max(p.name for p in (args.root / "publication" / "candidates").iterdir()
                                     if not p.name.endswith(".tmp")))
        if "approve" in kinds and first_ids:
            approved = record(run_child("approve", args, ["--release", first_ids[0]]))
            for release_id in first_ids:
                _drop_candidate(args.root, release_id)
            if "second" in kinds:
                for _ in range(args.repeat):
                    second = record(run_child("second", args))
                    _drop_candidate(args.root, second["release_id"])
            shutil.rmtree(args.root / "publication" / approved["release_id"], ignore_errors=True)
        else:
            for release_id in first_ids:
                _drop_candidate(args.root, release_id)
        rows = summarize(runs)
        text = markdown(args, meta, rows, pairs, profile, started)
        print("\n" + text)
        out = BENCH_DIR / "out"
        out.mkdir(exist_ok=True)
        (out / f"publication_vs_scan-{args.records}.md").write_text(text, encoding="utf-8")
        (out / f"publication_vs_scan-{args.records}.json").write_text(json.dumps(
            {"date": started, "command": args.command, "meta": meta, "rows": rows, "pairs": pairs,
             "runs": runs, "profile": profile}, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        if args.records == parser.get_default("records") or args.write_md:
            update_md(text)
            print(f"results written to {MD_PATH} and {out}")
        else:
            print(f"results written to {out}")
    finally:
        if args.keep:
            print(f"kept {args.root}")
        else:
            shutil.rmtree(args.root, ignore_errors=True)


if __name__ == "__main__":
    main()
