"""Benchmark: our ingest of one large CSV feed against a bare DuckDB CSV -> Parquet COPY.

    .venv/bin/python bench/ingest_vs_copy.py                 # 5,000,000 rows (make bench)
    .venv/bin/python bench/ingest_vs_copy.py --rows 200000   # quick check

1. Generates (or reuses) a UTF-8 行政处罚 (admin_penalty) CSV feed under ``--out``
   (default ``bench/out/``, git-ignored): the catalog's Chinese headers, realistic values,
   about 0.1% rows with a wrong USCC check character so quarantine is exercised. Built by
   one DuckDB ``COPY (SELECT ...) TO ... (HEADER)`` over small Python-built pools.
2. Runs, each in a fresh subprocess (peak RSS per run from ``wait4`` rusage):
   - ``baseline``: ``COPY (FROM read_csv(file)) TO out.parquet (FORMAT parquet)`` with the
     warehouse's thread count and memory limit;
   - ``ours``: ``credit.pipeline.ingest_file`` on a fresh data root (stage, load, export,
     archive);
   - ``phases``: the same work split into ``credit.pipeline.stage`` and
     ``credit.pipeline.load`` (itself mostly load_staged, and every SQL
     statement timed through a thin connection wrapper).
3. Prints a table (wall seconds, peak RSS MiB, rows/s, ours/baseline ratios, targets) and
   writes it as JSON to ``<out>/results-<rows>.json``.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

DATASET = "admin_penalty"
DEPARTMENT = "market_regulation"
DIVISION = "371083"  # 乳山市
GENERATOR_VERSION = 1  # bump when the generated content changes: a stale file is rebuilt
TIME_RATIO_TARGET = 3.0
MEMORY_TARGET_MIB = 2048

# --------------------------------------------------------------------------- word pools

SURNAMES = (
    "王王王张张张李李李刘刘孙孙孙于于于宋宋姜姜林林曲曲"
    "邹邹杨徐高赵陈丛初隋宫矫鞠毕连谭战汤梁郑董吕谷柳"
)
GIVEN = (
    "志国建明海军伟强磊洪波涛平华春秋红艳芳丽静敏燕玲霞"
    "梅娟英秀兰凤桂文武成刚勇鹏飞俊杰浩宇晨博瑞涵欣怡佳"
    "琪雪梦晓东振兴德祥福永庆宏立新学民利峰松林"
)
TRADE = (
    "宏达鑫海恒信华联金银泰和瑞丰永盛嘉禾昌隆顺发佳源福康"
    "德润诚安兴旺天成汇通海洋新锐立邦广益众创宝利东升远航"
    "盛世中正聚丰合顺鸿运晟元"
)
INDUSTRIES = (
    "水产", "食品", "建筑工程", "商贸", "机械", "服装", "物流", "海洋科技", "农业开发", "石材",
    "包装", "养殖", "餐饮管理", "旅游开发", "房地产开发", "汽车销售服务", "医药", "电子科技",
    "建材", "渔业", "家居", "印刷", "化工", "橡胶制品", "工艺品", "装饰工程", "劳务", "酒店管理",
    "网络科技", "环保科技", "机电设备", "冷藏", "海产品加工",
)
SUFFIXES = ("有限公司", "有限公司", "有限公司", "有限责任公司", "股份有限公司")
SHOPS = (
    "小吃部", "便利店", "五金店", "理发店", "水果店", "海鲜批发部", "超市", "修理部", "饭店",
    "百货店", "农资店", "烟酒店", "服装店", "建材经营部", "家电维修部", "烧烤店", "快餐店",
    "副食店", "药店", "汽车美容店", "渔具店", "面食店", "茶叶店", "粮油店",
)
PRODUCTS = ("苹果种植", "茶叶种植", "花生种植", "牡蛎养殖", "蔬菜种植", "大姜种植", "海参养殖", "樱桃种植")
TOWNS = (
    "城区街道", "夏村镇", "乳山口镇", "海阳所镇", "白沙滩镇", "大孤山镇", "南黄镇", "冯家镇",
    "下初镇", "午极镇", "育黎镇", "崖子镇", "诸往镇", "乳山寨镇", "徐家镇",
)
STREETS = (
    "胜利街", "商业街", "青山路", "府前路", "杭州街", "深圳路", "上海路", "北京路", "黄山路",
    "金岭路", "银滩路", "大连路", "育才路", "建设街", "文化街", "海阳路",
)
PLACES = ("经营场所", "门店", "生产车间", "仓库", "网店", "销售柜台")
# (违法行为类型, 违法事实, 处罚依据, 处罚类别 joined by |, fine range in 万元)
TEMPLATES = (
    ("经营超过保质期的食品", "销售超过保质期的食品",
     "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项", "罚款|没收违法所得", 0.5, 5.0),
    ("销售不合格产品", "销售经抽样检验不合格的产品",
     "《中华人民共和国产品质量法》第四十九条", "罚款|没收违法所得", 0.2, 3.0),
    ("使用未经定期检验的特种设备", "使用未经定期检验的电梯",
     "《中华人民共和国特种设备安全法》第八十四条第（一）项", "罚款", 3.0, 30.0),
    ("发布虚假广告", "通过微信公众号发布含有虚假内容的广告",
     "《中华人民共和国广告法》第五十五条第一款", "罚款", 1.0, 10.0),
    ("不按规定明码标价", "销售商品未按规定明码标价",
     "《中华人民共和国价格法》第四十二条", "警告", 0.0, 0.0),
    ("未取得食品经营许可从事食品经营活动", "未取得食品经营许可从事食品销售",
     "《中华人民共和国食品安全法》第一百二十二条第一款", "没收违法所得|罚款", 0.5, 5.0),
    ("生产经营标注虚假生产日期的食品", "销售标注虚假生产日期的预包装食品",
     "《中华人民共和国食品安全法》第一百二十四条第一款第（五）项", "罚款|没收违法所得|没收非法财物", 0.5, 10.0),
    ("未按规定公示年度报告", "未按照规定期限公示年度报告",
     "《企业信息公示暂行条例》第十七条", "警告|罚款", 0.1, 1.0),
    ("计量器具未经检定", "使用未经检定的电子计价秤",
     "《中华人民共和国计量法》第二十六条", "罚款|没收违法所得", 0.1, 1.0),
    ("侵犯注册商标专用权", "销售侵犯注册商标专用权的商品",
     "《中华人民共和国商标法》第六十条第二款", "没收非法财物|罚款", 0.5, 20.0),
    ("无照经营", "未依法取得营业执照从事经营活动",
     "《无证无照经营查处办法》第十三条", "罚款|没收违法所得", 0.1, 1.0),
    ("销售未经检验的药品", "销售未经检验的医疗器械",
     "《医疗器械监督管理条例》第八十六条", "责令停产停业|罚款", 2.0, 20.0),
)


# --------------------------------------------------------------------------- pools (Python)


def _uscc(prefix: str, body: str) -> str:
    from transforms.identifiers import gb11714_check_char, uscc_check_char

    first17 = prefix + DIVISION + body + gb11714_check_char(body)
    return first17 + uscc_check_char(first17)


def agency_code() -> str:
    """A fixed code for 乳山市市场监督管理局: authority 1 (机构编制), category 1 (机关)."""
    return _uscc("11", "00712345")


def _bad_check(code: str, rng: random.Random) -> str:
    """The same code with a wrong check character (a letter: never a resident ID, never Excel damage)."""
    return code[:17] + rng.choice([c for c in "ABCDEFGHJKLMNPQRTUWY" if c != code[17]])


def build_pools(seed: int, entities: int = 50_000, persons: int = 20_000):
    """Entities with valid USCCs (division 371083) and persons with valid resident IDs."""
    from transforms.identifiers import (
        USCC_ALPHABET,
        resident_id_reasons,
        rid_check_char,
        uscc_reasons,
    )

    rng = random.Random(f"{seed}/pools")

    def person_name() -> str:
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))

    rids: set[str] = set()

    def rid() -> str:
        while True:
            born = date(1955, 1, 1) + timedelta(days=rng.randint(0, 17_000))
            first17 = f"{DIVISION}{born:%Y%m%d}{rng.randint(1, 999):03d}"
            code = first17 + rid_check_char(first17)
            if code not in rids:
                rids.add(code)
                return code

    def trade() -> str:
        i = rng.randrange(0, len(TRADE) - 1)
        return TRADE[i : i + 2] if rng.random() < 0.5 else rng.choice(TRADE) + rng.choice(TRADE)

    codes: set[str] = set()
    names: set[str] = set()
    ent = {k: [] for k in ("name", "lb", "uscc", "bad_uscc", "rep", "rep_rid", "addr")}
    while len(ent["name"]) < entities:
        r = rng.random()
        if r < 0.80:  # company
            prefix, lb = "91", "法人及非法人组织"
            body = (rng.choice("1267") + "".join(rng.choice("0123456789") for _ in range(7))
                    if rng.random() < 0.45 else "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6)))
            name = f"{rng.choice(('乳山市', '乳山'))}{trade()}{rng.choice(INDUSTRIES)}{rng.choice(SUFFIXES)}"
        elif r < 0.95:  # individual business
            prefix, lb = "92", "个体工商户"
            body = "L" + "".join(rng.choice(USCC_ALPHABET) for _ in range(7))
            name = f"乳山市{rng.choice(TOWNS)[:-2]}{trade()}{rng.choice(SHOPS)}"
        else:  # farmers' cooperative
            prefix, lb = "93", "法人及非法人组织"
            body = "MA" + "".join(rng.choice(USCC_ALPHABET) for _ in range(6))
            name = f"乳山市{trade()}{rng.choice(PRODUCTS)}专业合作社"
        if name in names:
            continue
        code = _uscc(prefix, body)
        if code in codes:
            continue
        codes.add(code)
        names.add(name)
        bad = _bad_check(code, rng)
        ent["name"].append(name)
        ent["lb"].append(lb)
        ent["uscc"].append(code)
        ent["bad_uscc"].append(bad)
        ent["rep"].append(person_name())
        ent["rep_rid"].append(rid())
        ent["addr"].append(f"乳山市{rng.choice(TOWNS)}{rng.choice(STREETS)}{rng.randint(1, 299)}号")
    per = {"name": [], "rid": [], "addr": []}
    for _ in range(persons):
        per["name"].append(person_name())
        per["rid"].append(rid())
        per["addr"].append(f"乳山市{rng.choice(TOWNS)}{rng.choice(STREETS)}{rng.randint(1, 299)}号")
    # Valid by construction; the project's reference checks confirm it on a sample.
    for i in range(0, entities, max(1, entities // 2000)):
        assert not uscc_reasons(ent["uscc"][i]), ent["uscc"][i]
        assert uscc_reasons(ent["bad_uscc"][i]) == ["uscc_check_digit"], ent["bad_uscc"][i]
        assert not resident_id_reasons(ent["rep_rid"][i]), ent["rep_rid"][i]
    assert all(not resident_id_reasons(c) for c in per["rid"][:1000])
    return ent, per


# --------------------------------------------------------------------------- generator (DuckDB)


def feed_paths(out: Path, rows: int, seed: int) -> tuple[Path, Path]:
    csv_path = out / f"xzcf_admin_penalty_{rows}_s{seed}.csv"
    return csv_path, csv_path.with_suffix(".meta.json")


def generate(out: Path, rows: int, seed: int, threads: int, memory_limit: str) -> dict:
    """Write the feed unless an identical one (rows, seed, generator version) is already there."""
    csv_path, meta_path = feed_paths(out, rows, seed)
    if csv_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if (meta.get("rows"), meta.get("seed"), meta.get("version"), meta.get("bytes")) == (
            rows, seed, GENERATOR_VERSION, csv_path.stat().st_size
        ):
            print(f"reusing {csv_path} ({meta['bytes'] / 2**20:,.0f} MiB, {rows:,} rows)")
            return meta

    import duckdb
    import pyarrow as pa

    from foundation.catalog import get_catalog

    dataset = get_catalog().dataset(DATASET)
    header = {f.code: f.name_zh for f in dataset.fields}
    allowed_kinds = set(dataset.field("CF_CFLB").allowed_values or [])
    allowed_lb = set(dataset.field("CF_XDR_LB").allowed_values or [])
    for tpl in TEMPLATES:
        assert set(tpl[3].split("|")) <= allowed_kinds, tpl
    agency_name = "乳山市市场监督管理局"
    agency = agency_code()

    t0 = time.perf_counter()
    ent, per = build_pools(seed)
    assert set(ent["lb"]) <= allowed_lb
    t_pools = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    con = duckdb.connect(config={"threads": threads, "memory_limit": memory_limit,
                                 "temp_directory": str(out / "duckdb_tmp")})
    con.register("ent_src", pa.table({"k": list(range(len(ent["name"]))), **ent}))
    con.register("per_src", pa.table({"k": list(range(len(per["name"]))), **per}))
    tpl_cols = list(zip(*TEMPLATES, strict=True))
    con.register("tpl_src", pa.table({
        "k": list(range(len(TEMPLATES))), "wfxw": tpl_cols[0], "fact": tpl_cols[1], "law": tpl_cols[2],
        "kinds": tpl_cols[3], "lo": tpl_cols[4], "hi": tpl_cols[5],
    }))
    for name in ("ent", "per", "tpl"):
        con.execute(f"CREATE TEMP TABLE {name} AS FROM {name}_src")

    def h(tag: int) -> str:  # a deterministic pseudo-random UBIGINT per row and purpose
        return f"hash(i, {int(seed)}, {tag})"

    n_ent, n_per, n_tpl = len(ent["name"]), len(per["name"]), len(TEMPLATES)
    places = "[" + ", ".join(f"'{p}'" for p in PLACES) + "]"  # constants of this module
    amount = "rtrim(rtrim(({y} / 10000.0)::DECIMAL(14, 4)::VARCHAR, '0'), '.')"
    # Column order and names: the catalog's fields, headed by their Chinese names.
    exprs = {
        "CF_XDR_MC": "CASE WHEN is_person THEN p.name ELSE e.name END",
        "CF_XDR_LB": "CASE WHEN is_person THEN '自然人' ELSE e.lb END",
        "CF_XDR_SHXYM": "CASE WHEN is_person THEN NULL WHEN defect THEN e.bad_uscc ELSE e.uscc END",
        "CF_XDR_GSZC": "NULL", "CF_XDR_ZZJG": "NULL", "CF_XDR_SWDJ": "NULL",
        "CF_XDR_SYDW": "NULL", "CF_XDR_SHZZ": "NULL",
        "CF_FRDB": "CASE WHEN with_rep THEN e.rep END",
        "CF_FR_ZJLX": "CASE WHEN with_rep THEN '身份证' END",
        "CF_FR_ZJHM": "CASE WHEN with_rep THEN e.rep_rid END",
        "CF_XDR_ZJLX": "CASE WHEN is_person THEN '身份证' END",
        "CF_XDR_ZJHM": "CASE WHEN is_person THEN p.rid END",
        "CF_WSH": "'乳市监罚〔2022〕' || (i + 1) || '号'",
        "CF_WFXW": "t.wfxw",
        "CF_SY": (
            "'经查，当事人于' || strftime(jdrq - fact_days, '%Y年%-m月%-d日') || '在其位于' || "
            "CASE WHEN is_person THEN p.addr ELSE e.addr END || '的' || place || t.fact || "
            "'，货值金额人民币' || goods || '元' || "
            "CASE WHEN gains > 0 THEN '，违法所得人民币' || gains || '元' ELSE '' END || '。' || "
            "CASE WHEN h_mix % 2 = 0 THEN '上述行为违反了' || t.law || '的规定。' "
            "WHEN h_mix % 3 = 0 THEN '当事人积极配合调查并主动消除违法行为危害后果。' ELSE '' END"
        ),
        "CF_YJ": "t.law",
        "CF_CFLB": "replace(t.kinds, '|', sep)",
        "CF_NR": (
            "concat_ws('，', CASE WHEN has_warn THEN '警告' END, "
            "CASE WHEN gains > 0 THEN '没收违法所得人民币' || gains || '元' END, "
            "CASE WHEN has_goods THEN '没收违法物品一批' END, "
            "CASE WHEN has_stop THEN '责令停产停业' END, "
            "CASE WHEN fine > 0 THEN '罚款人民币' || fine || '元' END)"
        ),
        "CF_NR_FK": f"CASE WHEN fine > 0 THEN {amount.format(y='fine')} END",
        "CF_NR_WFFF": f"CASE WHEN gains > 0 THEN {amount.format(y='gains')} END",
        "CF_NR_ZKDX": "NULL",
        "CF_JDRQ": "strftime(jdrq, '%Y-%m-%d')",
        "CF_YXQ": "strftime(jdrq + INTERVAL 1 YEAR - INTERVAL 1 DAY, '%Y-%m-%d')",
        "CF_GSJZQ": "strftime(jdrq + INTERVAL 3 YEAR - INTERVAL 1 DAY, '%Y-%m-%d')",
        "CF_CFJG": "$agency_name",
        "CF_CFJGDM": "$agency",
        "CF_SJLY": "$agency_name",
        "CF_SJLYDM": "$agency",
        "CF_AJMC": ("CASE WHEN h_mix % 2 = 0 THEN CASE WHEN is_person THEN p.name ELSE e.name END"
                    " || t.wfxw || '案' END"),
        "BZ": "CASE WHEN h_mix % 50 = 1 THEN '已履行完毕' END",
    }
    assert list(exprs) == dataset.field_codes, "catalog fields changed: update the generator"
    select = ",\n        ".join(f'{exprs[c]} AS "{header[c]}"' for c in dataset.field_codes)
    sql = f"""
COPY (
    WITH base AS (
        SELECT i,
            {h(1)} % 1000 = 0 AS defect,
            {h(2)} % 10 = 0 AS person_roll,
            {h(3)} % {n_ent} AS ek,
            {h(4)} % {n_per} AS pk,
            {h(5)} % {n_tpl} AS tk,
            {h(6)} AS h_mix,
            DATE '2022-01-04' + ({h(7)} % 361)::INTEGER AS jdrq,
            (20 + {h(8)} % 100)::INTEGER AS fact_days,
            ({h(9)} % 10000) / 10000.0 AS u,
            ['、', ';', '；', '、'][1 + ({h(10)} % 4)::INTEGER] AS sep,
            {places}[1 + ({h(11)} % {len(PLACES)})::INTEGER] AS place,
            100 * (1 + {h(12)} % 500) AS goods
        FROM range({int(rows)}) r(i)
    ),
    picked AS (
        SELECT b.*, person_roll AND NOT defect AS is_person,
            NOT (person_roll AND NOT defect) AND h_mix % 5 < 3 AS with_rep,
            t.kinds LIKE '%警告%' AS has_warn,
            t.kinds LIKE '%没收非法财物%' AS has_goods,
            t.kinds LIKE '%责令停产停业%' AS has_stop,
            CASE WHEN t.kinds LIKE '%罚款%'
                 THEN greatest(100, round((t.lo + (t.hi - t.lo) * u) * 100) * 100)::BIGINT ELSE 0 END AS fine,
            CASE WHEN t.kinds LIKE '%没收违法所得%'
                 THEN greatest(100, round(goods * (0.1 + u / 2) / 100) * 100)::BIGINT ELSE 0 END AS gains
        FROM base b JOIN tpl t ON t.k = b.tk
    )
    SELECT
        {select}
    FROM picked
    JOIN tpl t ON t.k = picked.tk
    JOIN ent e ON e.k = picked.ek
    JOIN per p ON p.k = picked.pk
    ORDER BY i
) TO '{tmp}' (FORMAT csv, HEADER)
"""
    t1 = time.perf_counter()
    con.execute(sql, {"agency": agency, "agency_name": agency_name})
    t_copy = time.perf_counter() - t1
    defects = con.execute(f"SELECT count(*) FROM range({int(rows)}) r(i) WHERE {h(1)} % 1000 = 0").fetchone()[0]
    con.close()
    shutil.rmtree(out / "duckdb_tmp", ignore_errors=True)
    tmp.rename(csv_path)
    meta = {
        "rows": rows, "seed": seed, "version": GENERATOR_VERSION, "bytes": csv_path.stat().st_size,
        "expected_quarantined": defects, "entities": n_ent, "persons": n_per,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pool_seconds": round(t_pools, 2), "copy_seconds": round(t_copy, 2),
    }
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"generated {csv_path} in {t_pools:.1f}s (pools) + {t_copy:.1f}s (COPY): "
          f"{meta['bytes'] / 2**20:,.0f} MiB, {rows:,} rows, {defects:,} with a bad check char")
    return meta


# --------------------------------------------------------------------------- child runs


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class TimingConnection:
    """Wraps a DuckDB connection: times every ``execute``/``sql`` call, forwards everything else."""

    def __init__(self, con) -> None:
        self._con = con
        self.log: list[tuple[str, float]] = []

    @staticmethod
    def _label(sql: str) -> str:
        return " ".join(sql.split())[:90]

    def execute(self, sql, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            self.log.append((self._label(sql), time.perf_counter() - t0))

    def sql(self, sql, *args, **kwargs):  # lazy relation: the time is spent by its consumer
        return self._con.sql(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def child_baseline(args) -> dict:
    import duckdb

    out = Path(args.workdir) / "baseline.parquet"
    con = duckdb.connect(config={"threads": args.threads, "memory_limit": args.memory_limit,
                                 "temp_directory": str(Path(args.workdir) / "duckdb_tmp")})
    t0 = time.perf_counter()
    con.execute(f"COPY (FROM read_csv('{args.file}')) TO '{out}' (FORMAT parquet)")
    wall = time.perf_counter() - t0
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    con.close()
    return {"wall": wall, "rows": rows, "parquet_bytes": out.stat().st_size}


def child_ours(args) -> dict:
    os.environ["CREDIT_DATA_DIR"] = str(Path(args.workdir) / "data")
    from credit.pipeline import ingest_file
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings

    settings, catalog = get_settings(), get_catalog()
    t0 = time.perf_counter()
    result = ingest_file(settings, catalog, Path(args.file), DATASET, DEPARTMENT)
    wall = time.perf_counter() - t0
    print(result)
    return {"wall": wall, "rows": result.rows_in, "result": result.__dict__,
            "warehouse_bytes": settings.warehouse_path.stat().st_size,
            "settings": {"threads": settings.duckdb_threads, "memory_limit": settings.duckdb_memory_limit}}


def child_phases(args) -> dict:
    os.environ["CREDIT_DATA_DIR"] = str(Path(args.workdir) / "data")
    import credit.pipeline as pipeline
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings
    from warehouse.db import connect

    settings, catalog = get_settings(), get_catalog()
    phases: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    # pipeline.load calls this module-level name: wrap it to time the load itself.
    pipeline.load_staged = timed("load.load_staged", pipeline.load_staged)
    rss = {}
    t0 = time.perf_counter()
    staged = pipeline.stage(settings, catalog, Path(args.file), DATASET, DEPARTMENT)
    phases["stage"] = time.perf_counter() - t0
    rss["after_stage"] = _vm_hwm_mib()
    staged_bytes = sum(p.stat().st_size for p in staged.iterdir())
    t1 = time.perf_counter()
    con = TimingConnection(connect(settings, catalog))
    phases["connect"] = time.perf_counter() - t1
    # Clean partitions stream through Arrow (warehouse/parquet_out.py): time those writes too.
    import warehouse.load as load_module

    write_query = load_module.write_query

    def timed_write(con_, sql, params, path):
        t = time.perf_counter()
        try:
            return write_query(con_, sql, params, path)
        finally:
            con.log.append(("write_query (Arrow → Parquet) " + TimingConnection._label(sql), time.perf_counter() - t))

    load_module.write_query = timed_write
    t2 = time.perf_counter()
    result = pipeline.load(con, settings, catalog, staged)
    phases["load"] = time.perf_counter() - t2
    rss["after_load"] = _vm_hwm_mib()
    phases["total"] = time.perf_counter() - t0  # without the optional profiling pass below
    explain = None
    if args.explain_to:
        explain = explain_check(con._con, catalog, result.batch_id, Path(args.explain_to))
    con.close()
    statements = sorted(con.log, key=lambda x: -x[1])
    return {"wall": phases["total"], "rows": result.rows_in, "phases": phases, "rss_hwm": rss,
            "staged_bytes": staged_bytes, "statements": statements[:12],
            "statement_totals": _totals(con.log), "explain": explain,
            "result": result.__dict__}


def _totals(log: list[tuple[str, float]]) -> list[tuple[str, float, int]]:
    """Statements grouped by their label: (label, total seconds, times run), costliest first."""
    totals: dict[str, list] = {}
    for label, seconds in log:
        entry = totals.setdefault(label, [0.0, 0])
        entry[0] += seconds
        entry[1] += 1
    return sorted(((k, v[0], v[1]) for k, v in totals.items()), key=lambda x: -x[1])


def explain_check(con, catalog, batch_id: str, path: Path) -> dict:
    """Profile the problem query (warehouse/checks_sql.py) on the loaded raw batch: one extra
    pass over the whole batch as one slice, JSON profile to ``path``, the plan (EXPLAIN, not
    run) beside it as .txt."""
    from foundation.settings import get_settings
    from warehouse.checks_sql import (
        CODE_CHECKS_DDL,
        build_code_checks_sql,
        build_copies_sql,
        build_problem_sql,
        build_typed_sql,
    )

    dataset = catalog.dataset(DATASET)
    (rows,) = get_settings().raw_root.glob(f"{DATASET}/*/batch_id={batch_id}/rows.parquet")
    for table, (sql, params) in (("copies", build_copies_sql(dataset)), ("typed", build_typed_sql(dataset))):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {sql}", {**params, "rows": str(rows)})
    con.execute(CODE_CHECKS_DDL)
    if code_checks := build_code_checks_sql(dataset):
        con.execute(code_checks)
    sql, params = build_problem_sql(dataset)
    params = {**params, "register_ready": False}
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{path}'")
    t0 = time.perf_counter()
    con.execute(f"CREATE OR REPLACE TEMP TABLE checked_bench AS {sql}", params)
    materialize = time.perf_counter() - t0
    con.execute("PRAGMA disable_profiling")
    con.execute("DROP TABLE checked_bench")
    plan = con.execute(f"EXPLAIN {sql}", params).fetchall()
    path.with_suffix(".txt").write_text("\n".join(str(r[-1]) for r in plan), encoding="utf-8")
    return {"check_materialize_seconds": materialize, "profile_json": str(path),
            "plan_txt": str(path.with_suffix(".txt")), "top_operators": top_operators(path)}


def top_operators(path: Path, n: int = 8) -> list[tuple[float, str, str]]:
    """The costliest operators of a DuckDB JSON profile: (seconds summed over threads, name, what)."""
    found: list[tuple[float, str, str]] = []

    def walk(node: dict) -> None:
        info = node.get("extra_info") or {}
        what = info.get("Projections") or info.get("Conditions") or info.get("Table") or ""
        if isinstance(what, list):
            what = f"{len(what)} columns: " + ", ".join(what)
        found.append((float(node.get("timing") or 0), node.get("name", "?"), " ".join(str(what).split())[:110]))
        for child in node.get("children", []):
            walk(child)

    for op in json.loads(path.read_text(encoding="utf-8")).get("operator", []):
        walk(op)
    return sorted(found, reverse=True)[:n]


CHILDREN = {"baseline": child_baseline, "ours": child_ours, "phases": child_phases}


def run_child(kind: str, file: Path, out: Path, args) -> dict:
    """Run one measurement in a fresh interpreter; peak RSS and CPU time from wait4."""
    workdir = Path(tempfile.mkdtemp(prefix=f"run-{kind}-", dir=out))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--file", str(file),
           "--workdir", str(workdir), "--threads", str(args.threads), "--memory-limit", args.memory_limit]
    if kind == "phases" and args.explain:
        cmd += ["--explain-to", str(out / f"check_profile_{args.rows}.json")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDIT_DATA_DIR")}
    load_before = os.getloadavg()[0]
    print(f"\n--- {kind} (1-min load average before: {load_before:.2f})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not line.startswith("@@RESULT "):
            print("   ", line, end="", flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    total = time.perf_counter() - t0
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run failed with exit code {proc.returncode}")
    payload = json.loads(next(line for line in reversed(lines) if line.startswith("@@RESULT "))[9:])
    payload.update(
        kind=kind,
        process_seconds=total,
        peak_rss_mib=usage.ru_maxrss / 1024,  # Linux: KiB
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        load_before=load_before,
    )
    return payload


# --------------------------------------------------------------------------- report


def report(rows: int, meta: dict, runs: dict[str, dict], pairs: list[float] | None = None) -> dict:
    """Print the table and the ratios; with several rounds, the time ratio is the median paired ratio."""
    base, ours = runs.get("baseline"), runs.get("ours")
    print(f"\n=== {rows:,} rows, {meta['bytes'] / 2**20:,.0f} MiB CSV, threads={runs_settings(runs)}")
    print(f"{'run':<10}{'wall s':>10}{'process s':>11}{'cpu s':>9}{'peak RSS MiB':>14}{'rows/s':>12}")
    for kind in ("baseline", "ours", "phases"):
        r = runs.get(kind)
        if r:
            print(f"{kind:<10}{r['wall']:>10.1f}{r['process_seconds']:>11.1f}{r['cpu_seconds']:>9.1f}"
                  f"{r['peak_rss_mib']:>14.0f}{r['rows'] / r['wall']:>12,.0f}")
    summary: dict = {}
    if base and ours:
        t_ratio = statistics.median(pairs) if pairs else ours["wall"] / base["wall"]
        if pairs and len(pairs) > 1:
            print(f"{len(pairs)} rounds (the table shows each run's median); paired ratios ours/baseline: "
                  + ", ".join(f"x{p:.2f}" for p in pairs) + f"; median x{t_ratio:.2f}")
        m_ratio = ours["peak_rss_mib"] / base["peak_rss_mib"]
        summary = {
            "time_ratio": t_ratio, "memory_ratio": m_ratio,
            "time_target_met": t_ratio <= TIME_RATIO_TARGET, "paired_ratios": pairs or [],
            "memory_target_met": ours["peak_rss_mib"] < MEMORY_TARGET_MIB,
        }
        print(f"ours/baseline: time x{t_ratio:.2f} (target <= {TIME_RATIO_TARGET:g}: "
              f"{'MET' if summary['time_target_met'] else 'NOT MET'}), "
              f"memory x{m_ratio:.2f}; our peak {ours['peak_rss_mib']:.0f} MiB "
              f"(target < {MEMORY_TARGET_MIB} MiB: {'MET' if summary['memory_target_met'] else 'NOT MET'})")
        res = ours["result"]
        expected = meta.get("expected_quarantined")
        print(f"ours: rows_in={res['rows_in']:,} loaded={res['rows_loaded']:,} "
              f"quarantined={res['rows_quarantined']:,} (generator injected {expected:,})")
    ph = runs.get("phases")
    if ph:
        p = ph["phases"]
        print("\nphases of ours (separate run):")
        for name in ("stage", "connect", "load", "load.load_staged", "total"):
            if name in p:
                print(f"  {name:<20}{p[name]:>9.1f} s")
        print(f"  peak RSS after stage {ph['rss_hwm']['after_stage']:.0f} MiB, "
              f"after load {ph['rss_hwm']['after_load']:.0f} MiB")
        if ph.get("statement_totals"):
            print("  costliest SQL statements inside load (summed over the slices):")
            for label, seconds, times in ph["statement_totals"][:10]:
                print(f"   {seconds:>8.1f} s  {times:>3}×  {label}")
        else:
            print("  slowest SQL statements inside load:")
            for label, seconds in ph["statements"][:8]:
                print(f"   {seconds:>8.1f} s  {label}")
        if ph.get("explain"):
            e = ph["explain"]
            print(f"  check query alone (profiled, materialized): {e['check_materialize_seconds']:.1f} s; "
                  f"profile in {e['profile_json']}")
            print("  costliest operators of the check query (thread-seconds):")
            for seconds, name, what in e["top_operators"]:
                print(f"   {seconds:>8.1f}  {name:<14} {what}")
    return summary


def runs_settings(runs: dict) -> str:
    ours = runs.get("ours") or {}
    s = ours.get("settings") or {}
    return f"{s.get('threads', '?')}, memory_limit={s.get('memory_limit', '?')}"


# --------------------------------------------------------------------------- main


def main() -> None:
    from foundation.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=20221)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--runs", default="baseline,ours,phases",
                        help="comma-separated subset of baseline,ours,phases")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the listed runs this many times, baseline and ours alternating; "
                             "the time ratio is the median of the paired ratios")
    parser.add_argument("--explain", action="store_true",
                        help="in the phases run, also time and EXPLAIN ANALYZE the check query")
    parser.add_argument("--keep", action="store_true", help="keep each run's work folder")
    parser.add_argument("--threads", type=int, default=settings.duckdb_threads)
    parser.add_argument("--memory-limit", default=settings.duckdb_memory_limit)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--explain-to", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        os.environ["CREDIT_DUCKDB_THREADS"] = str(args.threads)
        os.environ["CREDIT_DUCKDB_MEMORY_LIMIT"] = args.memory_limit
        payload = CHILDREN[args.child](args)
        payload["vm_hwm_mib"] = _vm_hwm_mib()
        payload["ru_maxrss_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("@@RESULT " + json.dumps(payload, ensure_ascii=False, default=str), flush=True)
        return

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    meta = generate(out, args.rows, args.seed, args.threads, args.memory_limit)
    file, _ = feed_paths(out, args.rows, args.seed)
    path = out / f"results-{args.rows}.json"
    runs: dict[str, dict] = {}
    if path.exists():  # a run of a subset (--runs phases) keeps the other runs' last results
        previous = json.loads(path.read_text(encoding="utf-8"))
        if (previous.get("seed"), previous.get("threads"), previous.get("memory_limit")) == (
            args.seed, args.threads, args.memory_limit
        ):
            runs.update(previous.get("runs", {}))
    kinds = [k.strip() for k in args.runs.split(",") if k.strip()]
    rounds: list[dict[str, dict]] = []
    for index in range(args.repeat):  # baseline and ours alternate, so a noisy minute hits both
        this: dict[str, dict] = {}
        for kind in kinds:
            if kind == "phases" and index > 0:
                continue  # one profile is enough
            this[kind] = run_child(kind, file, out, args)
            this[kind]["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        rounds.append(this)
    for kind in kinds:  # each kind's run of median wall time stands for it
        measured = sorted((r[kind] for r in rounds if kind in r), key=lambda run: run["wall"])
        runs[kind] = measured[(len(measured) - 1) // 2]
    pairs = [r["ours"]["wall"] / r["baseline"]["wall"] for r in rounds if "ours" in r and "baseline" in r]
    summary = report(args.rows, meta, runs, pairs)
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "rows": args.rows, "seed": args.seed,
        "cpus": os.cpu_count(), "threads": args.threads, "memory_limit": args.memory_limit,
        "feed": meta, "runs": runs, "summary": summary,
        "rounds": [{k: {"wall": v["wall"], "peak_rss_mib": v["peak_rss_mib"]} for k, v in r.items()} for r in rounds],
    }
    path.write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    print(f"\nresults written to {path}")


if __name__ == "__main__":
    main()
