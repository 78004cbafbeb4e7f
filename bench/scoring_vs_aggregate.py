"""Benchmark: scoring every subject against one DuckDB aggregate over the same facts; the credit check's latency.

    .venv/bin/python bench/scoring_vs_aggregate.py                                   # 1M subjects, 10M facts
    .venv/bin/python bench/scoring_vs_aggregate.py --subjects 100000 --facts 1000000 # quick check (~3 min)
    .venv/bin/python bench/scoring_vs_aggregate.py --keep /tmp/scoring-bench --runs check,cli   # reuse a warehouse

Issue 13: scoring 1 million subjects with 10 million records (time and peak memory) within 3x of one
DuckDB aggregate over the same records; ``credit check`` under 50 ms in-process on that warehouse, and
as a whole command.

1. Builds a scratch data root (a temp folder, removed at the end; or ``--keep DIR``, kept and reused
   when it holds a warehouse built with the same sizes, seed and generator version): the warehouse's
   schema by ``warehouse.db.connect``, then ``mart.credit_records`` filled for ``--as-of`` directly in
   DuckDB (SQL over ``range()``, hash-based pseudo-random values, deterministic for a ``--seed``), in
   the engine's order (subject_key, dataset_id, record_id), and the matching ``clean.subjects`` rows:
   - N legal entities with valid USCCs (division 371083; 91 companies 80%, 92 individual businesses
     15%, 93 cooperatives 5%), each one ``register`` fact of ``legal_entity`` (存续 / 在业 / 吊销 / 注销,
     founded over the last 30 years);
   - the other facts, a realistic mix for ``catalogs/scoring/city_2026.yaml``: 行政许可 (neutral, not
     scored: the largest share), 行政处罚 (severity minor / general / serious / serious_special, rule
     versions and publication ends from catalogs/publication.yaml, statuses published / expired /
     repaired / objection / revoked / minor_not_published / unclassified), 行政检查 (合格 / 不合格 /
     责令整改 ...), 行政强制, 行政奖励, 严重失信主体名单 (published / list_exited / repaired), 信用修复,
     and per subject and payment dataset (tax, social insurance, housing fund, utilities) an
     ``on_time_streak`` fact (months reported since the last arrears) plus ``arrears`` facts (one per
     month in arrears, 1-6 months per subject in arrears). Records go 30% to a busy 5% of subjects.
   Also the register batch as a clean Parquet partition (the check reads a subject's register row
   there), ``audit.batches`` rows for every batch id, and the day's warning list (``build_warnings``).
2. Runs, each in a fresh interpreter (peak RSS from ``os.wait4``; wall time inside the child around
   the work only, after the warehouse is opened):
   - ``aggregate`` (baseline): ONE ``CREATE TEMP TABLE AS SELECT subject_key, count(*), 100 + sum(CASE
     <the model's category points> END) ... GROUP BY subject_key`` over the same facts (no decay,
     caps, ranges, grades or explanation: the floor any scoring must pay to read the facts once);
   - ``score``: ``warehouse.scoring.run_scoring(con, catalog, models, as_of, build_facts=False)``:
     scores, grades and explanation lines stored in ``mart.scores`` / ``mart.score_lines``, no Parquet;
   - ``export``: the same with ``settings`` (the run also exported to Parquet), once;
   - ``profile`` (when score/aggregate misses the target, or ``--profile yes``): ``run_scoring`` with
     every SQL statement timed and JSON-profiled, the costliest operators of the slowest ones;
   - ``check``: ``credit.credit_check.check`` on ``--checks`` random subjects' USCCs per variant
     (public, authorized) on one connection: median, p95, max; skipped (or waited for, with
     ``--wait-check-minutes``) when that module does not exist yet;
   - ``cli``: ``credit check <uscc> --variant authorized`` from the shell, ``--cli-runs`` times,
     start-up included.
   ``aggregate`` and ``score`` alternate for ``--repeat`` rounds; the ratio is the median paired ratio.
   Earlier score runs are deleted before each ``score`` run (untimed), so every run writes to the same
   empty tables and the last one stays for the checks.
3. Prints a table and puts it first in the results section of ``--out`` (bench/scoring_vs_aggregate.md);
   everything measured also goes to ``bench/out/scoring_vs_aggregate-<subjects>-<facts>.json``.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
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

from ingest_vs_copy import GIVEN, SURNAMES, TOWNS, TimingConnection, _vm_hwm_mib, top_operators  # noqa: E402

RATIO_TARGET = 3.0
CHECK_TARGET_MS = 50.0
GENERATOR_VERSION = 1  # bump when the generated data changes: a kept root is then rebuilt
META_NAME = "scoring-bench-meta.json"
MD_PATH = BENCH_DIR / "scoring_vs_aggregate.md"
MD_START = "<!-- results: bench/scoring_vs_aggregate.py puts each new run here, above the earlier ones -->"
MD_HEAD = f"""# Benchmark: scoring every subject vs one DuckDB aggregate; `credit check` latency

`bench/scoring_vs_aggregate.py` (`make bench-scoring`; see its docstring and bench/README.md). Issue 13:
scoring 1 million subjects with 10 million facts within 3x of one DuckDB aggregate over the same
facts (and its peak memory); `credit check` under 50 ms in-process on that warehouse, and as a whole
command from the shell.

## Results

{MD_START}
"""

DIVISION = "371083"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GB11714_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
PAYMENT_DATASETS = ["tax_payment", "social_insurance", "housing_fund", "utility_payment"]
# Share of the facts other than the register ones. admin_license takes what the others leave.
SHARES = {
    "on_time_streak": 0.28, "arrears": 0.08, "admin_penalty": 0.12, "admin_inspection": 0.12,
    "admin_enforcement": 0.02, "admin_reward": 0.04, "dishonesty_list": 0.005, "credit_repair": 0.015,
}
# Per record dataset: days back from the as-of day its decisions spread over, document prefix, kinds (weights %).
RECORDS = {
    "admin_license": (3650, "乳审批许", [("普通", 70), ("核准", 10), ("登记", 8), ("特许", 5), ("认可", 5),
                                         ("其他", 2)]),
    "admin_penalty": (2555, "乳市监罚", [("罚款", 45), ("警告", 25), ("罚款、没收违法所得", 18), ("警告、罚款", 7),
                                         ("责令停产停业、罚款", 3), ("吊销许可证件", 2)]),
    "admin_inspection": (1460, "乳市监查", [("合格", 60), ("基本合格", 10), ("不合格", 15), ("责令整改", 12),
                                            ("其他", 3)]),
    "admin_enforcement": (1460, "乳市监强", [("查封场所、设施或者财物", 35), ("扣押财物", 30), ("冻结存款、汇款", 10),
                                             ("加处罚款或者滞纳金", 15), ("代履行", 5), ("其他", 5)]),
    "admin_reward": (1460, "乳政奖", [("通报表扬", 50), ("授予荣誉称号", 25), ("发放奖金", 10), ("其他", 15)]),
    "dishonesty_list": (1095, "乳信认", [("严重违法失信名单", 50), ("安全生产严重失信主体名单", 25),
                                         ("拖欠农民工工资失信联合惩戒对象名单", 25)]),
    "credit_repair": (1095, "乳信修", [("信用修复", 90), ("异议成立", 5), ("决定撤销", 5)]),
}
PENALTY_SEVERITY = [("minor", 30), ("general", 50), ("serious", 15), ("serious_special", 4), (None, 1)]
REGISTER_KINDS = [("存续", 80), ("在业", 12), ("吊销", 4), ("注销", 4)]
NAME_TRADES = list("海华鑫泰盛福银滩乳山金岭东兴源隆丰诚信")
NAME_KINDS = ["商贸有限公司", "水产有限公司", "建筑工程有限公司", "食品有限公司", "物流有限公司", "农业科技有限公司",
              "机械制造有限公司", "餐饮店", "超市", "五金店", "养殖专业合作社", "果蔬专业合作社"]

# The baseline: the category points of city_2026 applied per fact in one CASE, summed per subject.
AGGREGATE_SQL = """
CREATE OR REPLACE TEMP TABLE bench_aggregate AS
SELECT subject_key, count(*) AS facts,
    100 + sum(CASE
        WHEN dataset_id = 'legal_entity' THEN CASE WHEN record_kind IN ('吊销', '注销') THEN -30 ELSE 0 END
        WHEN dataset_id = 'admin_penalty' AND status IN ('published', 'minor_not_published') THEN
            CASE severity WHEN 'general' THEN -4 WHEN 'serious' THEN -12 WHEN 'serious_special' THEN -20 ELSE 0 END
        WHEN dataset_id = 'dishonesty_list' AND status = 'published' THEN -30
        WHEN dataset_id = 'admin_enforcement' AND status = 'published' THEN -2
        WHEN dataset_id = 'admin_inspection' AND status = 'published' THEN
            CASE record_kind WHEN '不合格' THEN -3 WHEN '责令整改' THEN -2 ELSE 0 END
        WHEN dataset_id = 'admin_reward' AND status = 'published' THEN
            CASE record_kind WHEN '授予荣誉称号' THEN 5 WHEN '发放奖金' THEN 3 WHEN '通报表扬' THEN 2 ELSE 1 END
        WHEN fact_kind = 'arrears' AND decided > $as_of - INTERVAL 12 MONTH THEN -1
        WHEN fact_kind = 'on_time_streak' AND measure >= 12 THEN 1
        WHEN dataset_id = 'credit_repair' AND record_kind = '信用修复' THEN 2
        ELSE 0 END) AS points
FROM mart.credit_records WHERE as_of = $as_of
GROUP BY subject_key
"""


# --------------------------------------------------------------------------- the warehouse


def _weighted(expr: str, choices: list[tuple[str | None, int]]) -> str:
    """A CASE picking one of ``choices`` by ``expr % 100`` (weights in percent, summing to 100)."""
    assert sum(w for _, w in choices) == 100, choices
    parts, upto = [], 0
    for value, weight in choices:
        upto += weight
        parts.append(f"WHEN ({expr}) % 100 < {upto} THEN " + ("NULL" if value is None else f"'{value}'"))
    return "CASE " + " ".join(parts) + " END"


def _pick(expr: str, values: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + f"][(({expr}) % {len(values)})::INTEGER + 1]"


def _char_value(alphabet: str, s: str, pos: int) -> str:
    return f"(instr('{alphabet}', substr({s}, {pos}, 1)) - 1)"


def first17_sql(prefix: str, body: str) -> str:
    """SQL of the first 17 characters of a USCC from the SQL expressions (plain columns) of its 2-char
    prefix and 8-char org body: the GB 11714 check character of the body appended."""
    org = " + ".join(f"{_char_value(GB11714_ALPHABET, body, k + 1)} * {w}"
                     for k, w in enumerate((3, 7, 9, 10, 5, 8, 4, 2)))
    org_check = f"['1','2','3','4','5','6','7','8','9','X','0'][11 - ({org}) % 11]"
    return f"{prefix} || '{DIVISION}' || {body} || {org_check}"


def uscc_check_sql(f17: str) -> str:
    """SQL of the GB 32100 check character of ``f17`` (a column): the arithmetic of transforms/identifiers.py,
    which ``build_warehouse`` verifies on a sample."""
    total = " + ".join(f"{_char_value(USCC_ALPHABET, f17, k + 1)} * {pow(3, k, 31)}" for k in range(17))
    return f"substr('{USCC_ALPHABET}', (31 - ({total}) % 31) % 31 + 1, 1)"


def _base31(x: str, digits: int) -> str:
    return " || ".join(f"substr('{USCC_ALPHABET}', (({x}) // {31 ** k} % 31)::INTEGER + 1, 1)"
                       for k in reversed(range(digits)))


def plan_counts(subjects: int, facts: int) -> dict[str, int]:
    rest = facts - subjects
    if rest < 0:
        raise SystemExit("--facts must be at least --subjects (one register fact per subject)")
    counts = {k: int(rest * share) for k, share in SHARES.items()}
    counts["on_time_streak"] = min(counts["on_time_streak"], 4 * subjects)
    counts["arrears"] = min(counts["arrears"], 3 * counts["on_time_streak"])
    counts["admin_license"] = rest - sum(counts.values())
    return {"legal_entity": subjects, **counts}


def build_warehouse(root: Path, subjects: int, facts: int, seed: int, as_of: date) -> dict:
    """The schema, ``clean.subjects`` and ``mart.credit_records`` of ``as_of`` in a fresh data root."""
    from foundation.catalog import get_catalog
    from foundation.scoring_model import load_warning_rules
    from foundation.settings import get_settings
    from transforms.identifiers import uscc_reasons
    from warehouse.credit_warnings import build_warnings
    from warehouse.db import connect
    from warehouse.public_records import register_terms
    from warehouse.schema import clean_columns

    assert os.environ["CREDIT_DATA_DIR"] == str(root)
    settings, catalog = get_settings(), get_catalog()
    counts = plan_counts(subjects, facts)
    t0 = time.perf_counter()
    con = connect(settings, catalog)
    register_terms(con, catalog.publication)
    p = {"seed": seed, "as_of": as_of}

    # Subjects: i -> a unique 6-char base-31 tail (a bijection of i modulo 31^6), prefix by hash.
    mult = 387_420_489  # 3^18: coprime with 31
    assert subjects < 31 ** 6
    h = "hash(i, $seed, 1)"
    prefix = f"CASE WHEN {h} % 100 < 80 THEN '91' WHEN {h} % 100 < 95 THEN '92' ELSE '93' END"
    tail = _base31(f"(i * {mult} + 12345) % {31 ** 6}", 6)
    body = (f"CASE WHEN {h} % 100 < 80 OR {h} % 100 >= 95 THEN 'MA' "
            f"ELSE 'L' || substr('{USCC_ALPHABET}', ({h} // 100 % 31)::INTEGER + 1, 1) END || {tail}")
    trades = "[" + ", ".join(f"'{t}'" for t in NAME_TRADES) + "]"
    kinds = "[" + ", ".join(f"'{k}'" for k in NAME_KINDS) + "]"
    con.execute(f"""
    CREATE OR REPLACE TEMP TABLE gen_subjects AS
    SELECT i, uscc AS subject_key, uscc, prefix,
        '乳山市' || {trades}[(hash(i, $seed, 2) % {len(NAME_TRADES)})::INTEGER + 1]
            || {trades}[(hash(i, $seed, 3) % {len(NAME_TRADES)})::INTEGER + 1]
            || {kinds}[(hash(i, $seed, 4) % {len(NAME_KINDS)})::INTEGER + 1] AS name,
        {_weighted("hash(i, $seed, 5)", REGISTER_KINDS)} AS register_kind,
        ($as_of - (hash(i, $seed, 6) % 10950)::INTEGER)::DATE AS founded
    FROM (SELECT i, prefix, f17 || {uscc_check_sql("f17")} AS uscc
          FROM (SELECT i, prefix, {first17_sql("prefix", "body")} AS f17
                FROM (SELECT i, {prefix} AS prefix, {body} AS body FROM range($n) r(i))))
    """, {"seed": seed, "n": subjects, "as_of": as_of})
    distinct = con.execute("SELECT count(DISTINCT subject_key) FROM gen_subjects").fetchone()[0]
    assert distinct == subjects, (distinct, subjects)
    sample = [r[0] for r in con.execute("SELECT uscc FROM gen_subjects USING SAMPLE 2000 ROWS").fetchall()]
    bad = [(c, uscc_reasons(c)) for c in sample if uscc_reasons(c)]
    assert not bad, bad[:5]
    con.execute("INSERT INTO clean.subjects SELECT subject_key, 'legal_entity', uscc, name, true, 'bench', 'bench' "
                "FROM gen_subjects ORDER BY subject_key")

    con.execute("CREATE OR REPLACE TABLE bench_gen AS SELECT * FROM mart.credit_records WHERE false")
    cols = ("as_of, record_id, subject_key, dataset_id, fact_kind, record_kind, polarity, severity, rule_version, "
            "decided, published_until, status, repair_kind, repaired_on, measure, document, department, batch_id, "
            "source_row")

    # Register: one fact per subject, and the register batch itself as a clean partition (the check reads
    # the subject's row there by batch and row), in the layout of docs/parquet-contract.md.
    ds = catalog.dataset("legal_entity")
    assert ds.credit is not None
    register_batch = f"legal_entity-{hashlib.sha256(f'bench/{seed}'.encode()).hexdigest()[:16]}"
    con.execute(f"""
    INSERT INTO bench_gen ({cols})
    SELECT $as_of, md5(concat_ws(chr(31), 'legal_entity', subject_key)), subject_key, 'legal_entity', 'register',
        register_kind, $polarity, NULL, NULL, founded, NULL, 'in_effect', NULL, NULL, NULL, NULL,
        'market_regulation', $batch, i + 1
    FROM gen_subjects""", {"as_of": as_of, "polarity": ds.credit.polarity, "batch": register_batch})
    exprs = {
        "source_row": "i + 1", "subject_key": "subject_key", "TYSHXYDM": "uscc", "JGMC": "name",
        "ZTLX": "CASE prefix WHEN '91' THEN '企业' WHEN '92' THEN '个体工商户' ELSE '农民专业合作社' END",
        "FDDBR": f"{_pick('hash(i, $seed, 7)', SURNAMES)} || {_pick('hash(i, $seed, 8)', GIVEN)}",
        "CLRQ": "founded", "ZCZB": "(1 + hash(i, $seed, 9) % 5000)::DECIMAL(18, 6)",
        "DJJG": "'乳山市市场监督管理局'", "DJZT": "register_kind",
        "ZS": f"'山东省威海市乳山市' || {_pick('hash(i, $seed, 10)', TOWNS)} || (1 + hash(i, $seed, 11) % 300) || '号'",
    }
    columns = clean_columns(ds)
    assert [c for c, _ in columns[1:]] == list(exprs), "catalog fields changed: update the generator"
    folder = settings.parquet_root / "legal_entity" / "department=market_regulation" / f"batch_id={register_batch}"
    folder.mkdir(parents=True)
    select = ", ".join(f'({exprs[c]})::{t} AS "{c}"' for c, t in columns[1:]).replace("$seed", str(int(seed)))
    con.execute(f"COPY (SELECT {select} FROM gen_subjects ORDER BY i) TO '{folder / 'part-0.parquet'}' "
                "(FORMAT parquet, ROW_GROUP_SIZE 122880)")  # COPY takes no parameters

    # Payments: on_time_streak s -> (subject ((s // 4) * P) % N, dataset s % 4): unique pairs.
    mult_s = next(m for m in (1_000_003, 1_000_033, 1_000_037) if math.gcd(m, subjects) == 1)
    depts = "[" + ", ".join(f"'{catalog.dataset(d).departments[0]}'" for d in PAYMENT_DATASETS) + "]"
    names = "[" + ", ".join(f"'{d}'" for d in PAYMENT_DATASETS) + "]"
    month0 = "date_trunc('month', $as_of::DATE)::DATE"
    con.execute(f"""
    INSERT INTO bench_gen ({cols})
    SELECT $as_of, md5(concat_ws(chr(31), ds, subject_key, 'streak')), subject_key, ds, 'on_time_streak',
        strftime(last_month, '%Y-%m'), 'positive', NULL, NULL, last_month, NULL, 'in_effect', NULL, NULL,
        (1 + hash(s, $seed, 11) % 60)::DOUBLE, NULL, NULL, NULL, NULL
    FROM (SELECT s, {names}[(s % 4)::INTEGER + 1] AS ds,
              ({month0} - INTERVAL (CASE WHEN hash(s, $seed, 12) % 10 < 8 THEN 0 ELSE hash(s, $seed, 12) % 10 - 7 END)
                  MONTH)::DATE AS last_month,
              ((s // 4) * {mult_s}) % $n AS si
          FROM range($k) r(s))
    JOIN gen_subjects g ON g.i = si""", p | {"k": counts["on_time_streak"], "n": subjects})
    # Arrears: group g -> streak (g * Q) % streaks, 1 + g % 6 months (ordinal 21 * (g // 6) + r (r + 1) / 2 + m),
    # spaced 1-3 months apart from 0-17 months back.
    n_streak = counts["on_time_streak"]
    if counts["arrears"]:
        groups = counts["arrears"] // 3 + 7
        assert groups <= n_streak, (groups, n_streak)
        mult_a = next(m for m in (999_983, 999_979, 999_961) if math.gcd(m, n_streak) == 1)
        con.execute(f"""
        INSERT INTO bench_gen ({cols})
        SELECT $as_of, md5(concat_ws(chr(31), ds, subject_key, month)), subject_key, ds, 'arrears',
            strftime(month, '%Y-%m'), 'negative', NULL, NULL, month, NULL, 'in_effect', NULL, NULL, NULL, NULL,
            {depts}[(s % 4)::INTEGER + 1], ds || '-' || substr(md5(ds || $seed), 1, 16), ordinal + 1
        FROM (
            SELECT s, ordinal, {names}[(s % 4)::INTEGER + 1] AS ds, ((s // 4) * {mult_s}) % $n AS si,
                ({month0} - INTERVAL (hash(g, $seed, 21) % 18 + m * (1 + hash(g, $seed, 22) % 3)) MONTH)::DATE
                    AS month
            FROM (SELECT g, s, m, first_ordinal + m AS ordinal
                  FROM (SELECT g, (g * {mult_a}) % $streaks AS s, unnest(range(1 + g % 6)) AS m,
                            21 * (g // 6) + (g % 6) * (g % 6 + 1) // 2 AS first_ordinal
                        FROM range($groups) r(g)))
            WHERE ordinal < $k)
        JOIN gen_subjects g ON g.i = si""",
                    p | {"k": counts["arrears"], "n": subjects, "streaks": n_streak, "groups": groups})

    # Records: 30% to the busy 5% of subjects.
    busy = max(1, subjects // 20)
    for salt, (dataset_id, (span, doc_prefix, kinds_w)) in enumerate(RECORDS.items(), start=100):
        ds = catalog.dataset(dataset_id)
        assert ds.credit is not None
        kind_values = {v for v, _ in kinds_w}
        allowed = ds.field(ds.credit.kind_field).allowed_values if ds.credit.kind_field else None
        assert allowed is None or dataset_id == "admin_penalty" or kind_values <= set(allowed), dataset_id
        polarity = "$polarity"
        params = p | {"k": counts[dataset_id], "n": subjects, "busy": busy, "polarity": ds.credit.polarity,
                      "ds": dataset_id, "depts": list(ds.departments)}
        if ds.credit.polarity_by_kind:
            params["pk_kinds"] = list(ds.credit.polarity_by_kind)
            params["pk_values"] = list(ds.credit.polarity_by_kind.values())
            polarity = "coalesce($pk_values[list_position($pk_kinds, record_kind)], $polarity)"
        pub = ds.publication
        if dataset_id == "admin_penalty":
            severity = _weighted(f"hash(j, $seed, {salt}, 7)", PENALTY_SEVERITY)
        elif pub is not None and pub.basis == "list":
            severity = f"'{pub.list_severity}'"
        else:
            severity = "NULL::VARCHAR"
        if pub is None:  # credit_repair: in effect from its date, no publication terms
            terms = ("NULL::VARCHAR AS version_id, NULL::DATE AS published_until, NULL::INTEGER AS min_months, "
                     "true AS publish")
            join = ""
        elif pub.basis in ("severity", "list"):
            terms = ("t.version_id, (decided + to_months(t.max_months) - INTERVAL 1 DAY)::DATE AS published_until, "
                     "t.min_months, t.publish")
            join = "LEFT JOIN pub_terms t ON t.severity = b.severity AND b.decided BETWEEN t.eff_from AND t.eff_to"
        elif pub.basis == "fixed":
            terms = (f"NULL::VARCHAR AS version_id, (decided + INTERVAL {pub.max_months} MONTH - INTERVAL 1 DAY)::DATE "
                     "AS published_until, 0 AS min_months, true AS publish")
            join = ""
        else:  # validity: the licence's own end, 1-5 years after the decision
            terms = ("NULL::VARCHAR AS version_id, (decided + to_years(1 + (h3 // 100 % 5)::INTEGER) "
                     "- INTERVAL 1 DAY)::DATE AS published_until, 0 AS min_months, true AS publish")
            join = ""
        if pub is None:
            status = "'in_effect'"
            repair = "NULL::VARCHAR AS repair_kind, NULL::DATE AS repaired_on"
        elif pub.basis in ("severity", "list"):
            # 5% repaired once the class's minimum has passed (dishonesty list: 25% exited first),
            # 1% objection, 1% revoked; then expired or published.
            repaired = "(decided + to_months(coalesce(min_months, 0)) + to_days((h3 // 100 % 90)::INTEGER))::DATE"
            cut = "25" if pub.basis == "list" else "0"
            repair = (f"CASE WHEN h3 % 100 < {cut} THEN NULL WHEN h3 % 100 < {cut} + 5 AND {repaired} <= $as_of "
                      f"THEN 'repair' WHEN h3 % 100 = {cut} + 5 THEN 'objection' WHEN h3 % 100 = {cut} + 6 "
                      f"THEN 'revoked' END AS repair_kind, "
                      f"CASE WHEN h3 % 100 < {cut} THEN (decided + to_days((h3 // 100 % 700)::INTEGER))::DATE "
                      f"WHEN h3 % 100 < {cut} + 5 AND {repaired} <= $as_of THEN {repaired} "
                      f"WHEN h3 % 100 IN ({cut} + 5, {cut} + 6) THEN (decided + INTERVAL 2 MONTH)::DATE "
                      "END AS repaired_on")
        else:  # no credit repair for these (信用修复 names penalties and the list only): 1% revoked
            repair = ("CASE WHEN h3 % 100 = 5 THEN 'revoked' END AS repair_kind, "
                      "CASE WHEN h3 % 100 = 5 THEN (decided + INTERVAL 2 MONTH)::DATE END AS repaired_on")
        if pub is not None:
            exited = (f"WHEN h3 % 100 < {cut} AND repaired_on <= $as_of THEN 'list_exited' " if pub.basis == "list"
                      else "")
            status = (
                "CASE "
                + ("WHEN severity IS NULL THEN 'unclassified' WHEN version_id IS NULL THEN 'no_rule_version' "
                   "WHEN NOT publish THEN 'minor_not_published' " if pub.basis == "severity" else "")
                + exited
                + "WHEN repair_kind = 'repair' THEN 'repaired' WHEN repair_kind = 'objection' THEN 'objection' "
                  "WHEN repair_kind = 'revoked' THEN 'revoked' WHEN published_until < $as_of THEN 'expired' "
                  "ELSE 'published' END")
        con.execute(f"""
        INSERT INTO bench_gen ({cols})
        SELECT $as_of, md5(concat_ws(chr(31), $ds, j, $seed)), subject_key, $ds, 'record', record_kind, {polarity},
            severity, version_id, decided, published_until, {status}, repair_kind, repaired_on, NULL,
            '{doc_prefix}〔' || year(decided) || '〕' || (j % 9973 + 1) || '号', department,
            $ds || '-' || substr(md5(department || $ds || $seed), 1, 16), j + 1
        FROM (
            SELECT *, {repair}
            FROM (
                SELECT b.*, {terms}
                FROM (
                    SELECT j, h3, decided, {_weighted(f"hash(j, $seed, {salt}, 5)", kinds_w)} AS record_kind,
                        {severity} AS severity,
                        $depts[(hash(j, $seed, {salt}, 6) % len($depts))::INTEGER + 1] AS department,
                        CASE WHEN h0 % 10 < 3 THEN h0 // 10 % $busy ELSE h0 // 10 % $n END AS si
                    FROM (SELECT j, hash(j, $seed, {salt}, 1) AS h0, hash(j, $seed, {salt}, 3) AS h3,
                              ($as_of - (hash(j, $seed, {salt}, 4) % {span})::INTEGER)::DATE AS decided
                          FROM range($k) r(j))
                ) b {join}
            )
        )
        JOIN gen_subjects g ON g.i = si""", params)

    got = dict(con.execute("SELECT CASE WHEN fact_kind IN ('record', 'register') THEN dataset_id ELSE fact_kind END, "
                           "count(*) FROM bench_gen GROUP BY ALL").fetchall())
    assert got == {k: v for k, v in counts.items() if v}, (got, counts)
    t_gen = time.perf_counter() - t0
    con.execute("DELETE FROM mart.credit_records WHERE as_of = $as_of", {"as_of": as_of})
    con.execute("INSERT INTO mart.credit_records SELECT * FROM bench_gen ORDER BY subject_key, dataset_id, record_id")
    con.execute("""
    INSERT INTO audit.batches (batch_id, dataset_id, department, source_file, file_sha256, file_bytes, format,
        encoding, received_at, loaded_at, rows_in, rows_loaded, rows_quarantined, status)
    SELECT batch_id, dataset_id, department, 'bench_' || batch_id || '.csv', sha256(batch_id), NULL, 'csv', 'utf-8',
        $received, $received, n, n, 0, 'loaded'
    FROM (SELECT batch_id, any_value(dataset_id) AS dataset_id, any_value(department) AS department, count(*) AS n
          FROM bench_gen WHERE batch_id IS NOT NULL GROUP BY batch_id)""",
                {"received": datetime.combine(as_of, datetime.min.time(), UTC)})
    con.execute("DROP TABLE bench_gen")
    warned = build_warnings(con, catalog, load_warning_rules(catalog), as_of)
    con.execute("CHECKPOINT")
    statuses = con.execute("SELECT dataset_id, status, count(*) FROM mart.credit_records WHERE fact_kind = 'record' "
                           "GROUP BY ALL ORDER BY ALL").fetchall()
    per_subject = con.execute("SELECT max(n), quantile_cont(n, 0.5), quantile_cont(n, 0.99) FROM "
                              "(SELECT count(*) AS n FROM mart.credit_records GROUP BY subject_key)").fetchone()
    con.close()
    meta = {"subjects": subjects, "facts": facts, "seed": seed, "as_of": as_of.isoformat(),
            "version": GENERATOR_VERSION, "counts": counts,
            "statuses": {f"{d}/{s}": n for d, s, n in statuses},
            "facts_per_subject": {"max": per_subject[0], "median": per_subject[1], "p99": per_subject[2]},
            "warned_subjects": warned,
            "warehouse_bytes": settings.warehouse_path.stat().st_size,
            "generate_seconds": t_gen, "seconds": time.perf_counter() - t0}
    print(f"built {subjects:,} subjects and {facts:,} facts as of {as_of} in {meta['seconds']:.0f} s "
          f"(generated in {t_gen:.0f} s), warehouse {meta['warehouse_bytes'] / 2**20:,.0f} MiB", flush=True)
    return meta


def reused(root: Path, args) -> dict | None:
    path = root / META_NAME
    if not path.exists():
        return None
    meta = json.loads(path.read_text(encoding="utf-8"))
    if (meta.get("subjects"), meta.get("facts"), meta.get("seed"), meta.get("as_of"), meta.get("version")) != (
            args.subjects, args.facts, args.seed, args.as_of, GENERATOR_VERSION):
        return None
    print(f"reusing the warehouse built earlier in {root}", flush=True)
    return meta


# --------------------------------------------------------------------------- children


def _open():
    from foundation.catalog import get_catalog
    from foundation.scoring_model import load_scoring_models
    from foundation.settings import get_settings
    from warehouse.db import connect

    settings, catalog = get_settings(), get_catalog()
    return settings, catalog, load_scoring_models(catalog), connect(settings, catalog)


def child_build(args) -> dict:
    meta = build_warehouse(Path(args.root), args.subjects, args.facts, args.seed, date.fromisoformat(args.as_of))
    (Path(args.root) / META_NAME).write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")
    return {**meta, "wall": meta["seconds"]}


def child_aggregate(args) -> dict:
    _, _, _, con = _open()
    as_of = date.fromisoformat(args.as_of)
    t0 = time.perf_counter()
    con.execute(AGGREGATE_SQL, {"as_of": as_of})
    wall = time.perf_counter() - t0
    subjects, facts, low = con.execute("SELECT count(*), sum(facts), count(*) FILTER (WHERE points < 80) "
                                       "FROM bench_aggregate").fetchone()
    con.close()
    return {"wall": wall, "subjects": subjects, "facts": int(facts), "under_80": low}


def _clear_runs(con) -> None:
    """Earlier score runs out (untimed), so each run writes to the same empty tables."""
    for t in ("score_lines", "scores", "score_runs"):
        con.execute(f"DELETE FROM mart.{t}")
    con.execute("CHECKPOINT")


def child_score(args, export: bool = False) -> dict:
    from warehouse.scoring import run_scoring

    settings, catalog, models, con = _open()
    as_of = date.fromisoformat(args.as_of)
    _clear_runs(con)
    shutil.rmtree(settings.data_root / "mart" / "scores", ignore_errors=True)
    t0 = time.perf_counter()
    run = run_scoring(con, catalog, models, as_of, build_facts=False, settings=settings if export else None,
                      triggered_by="bench")
    wall = time.perf_counter() - t0
    lines = con.execute("SELECT count(*) FROM mart.score_lines WHERE run_id = ?", [run.run_id]).fetchone()[0]
    kinds = dict(con.execute("SELECT line_kind, count(*) FROM mart.score_lines WHERE run_id = ? GROUP BY ALL",
                             [run.run_id]).fetchall())
    con.close()
    out = {"wall": wall, "run_id": run.run_id, "subjects": run.subjects, "facts": run.facts, "grades": run.grades,
           "lines": lines, "line_kinds": kinds}
    if export and run.folder is not None:
        out["parquet_bytes"] = sum(p.stat().st_size for p in Path(run.folder).iterdir())
    return out


def child_export(args) -> dict:
    return child_score(args, export=True)


class ProfilingConnection(TimingConnection):
    """Times every statement; each statement that makes or changes a table also leaves a DuckDB JSON profile."""

    def __init__(self, con, folder: Path) -> None:
        super().__init__(con)
        self.folder, self.profiles = folder, {}

    def execute(self, sql, *args, **kwargs):
        verb = sql.lstrip().split(None, 1)[0].upper()
        profiled = verb in ("CREATE", "INSERT", "UPDATE") and ";" not in sql.strip()[:-1]
        if profiled:
            path = self.folder / f"score_profile_{len(self.log):03d}.json"
            self._con.execute("PRAGMA enable_profiling = 'json'")
            self._con.execute(f"PRAGMA profiling_output = '{path}'")
        try:
            return super().execute(sql, *args, **kwargs)
        finally:
            if profiled:
                self._con.execute("PRAGMA disable_profiling")
                self.profiles[len(self.log) - 1] = path


def child_profile(args) -> dict:
    from warehouse.scoring import run_scoring

    settings, catalog, models, con = _open()
    as_of = date.fromisoformat(args.as_of)
    _clear_runs(con)
    folder = Path(args.root) / "profiles"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    pcon = ProfilingConnection(con, folder)
    t0 = time.perf_counter()
    run_scoring(pcon, catalog, models, as_of, build_facts=False, triggered_by="bench-profile")  # type: ignore[arg-type]
    wall = time.perf_counter() - t0
    con.close()
    ranked = sorted(range(len(pcon.log)), key=lambda n: -pcon.log[n][1])
    statements = [{"label": pcon.log[n][0], "seconds": pcon.log[n][1],
                   "operators": [op for op in top_operators(pcon.profiles[n], 5) if op[0] >= 0.01]
                   if n in pcon.profiles and n in ranked[:3] else []}
                  for n in ranked if pcon.log[n][1] >= 0.2]
    updates = sum(s for label, s in pcon.log if label.startswith("UPDATE run_lines"))
    return {"wall": wall, "statements_total": sum(s for _, s in pcon.log), "statements": statements,
            "note_updates_total": updates}


def _check_module_ready() -> bool:
    return (PROJECT_ROOT / "credit" / "credit_check.py").exists()


def _check_command_ready() -> bool:
    exe = Path(sys.executable).with_name("credit")
    done = subprocess.run([str(exe), "check", "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    return done.returncode == 0


def child_check(args) -> dict:
    import random

    from credit.credit_check import check

    settings, catalog, _, con = _open()
    rng = random.Random(args.seed)
    keys = [r[0] for r in con.execute("SELECT uscc FROM clean.subjects ORDER BY subject_key").fetchall()]
    picks = rng.sample(keys, min(len(keys), args.checks + 1))
    busiest = con.execute("SELECT subject_key FROM mart.credit_records GROUP BY ALL ORDER BY count(*) DESC, "
                          "subject_key LIMIT 1").fetchone()[0]
    as_of = date.fromisoformat(args.as_of)  # the bench's day, whatever the clock says
    out: dict = {"n": args.checks, "outcomes": {}}
    for variant in ("public", "authorized"):
        t = time.perf_counter()
        first = check(con, catalog, picks[0], variant=variant, as_of=as_of)
        first_ms = (time.perf_counter() - t) * 1000
        times, outcomes = [], {}
        for uscc in picks[1:]:
            t = time.perf_counter()
            result = check(con, catalog, uscc, variant=variant, as_of=as_of)
            times.append((time.perf_counter() - t) * 1000)
            outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        out["outcomes"][variant] = outcomes
        t = time.perf_counter()
        check(con, catalog, busiest, variant=variant, as_of=as_of)
        busiest_ms = (time.perf_counter() - t) * 1000
        times.sort()
        out[variant] = {"first_ms": first_ms, "median_ms": statistics.median(times),
                        "p95_ms": times[max(0, math.ceil(0.95 * len(times)) - 1)], "max_ms": times[-1],
                        "busiest_ms": busiest_ms}
        out.setdefault("sample_type", type(first).__name__)
        print(f"    {variant}: first {first_ms:.1f} ms, median {out[variant]['median_ms']:.1f} ms, "
              f"p95 {out[variant]['p95_ms']:.1f} ms, max {times[-1]:.1f} ms over {len(times)}; "
              f"busiest subject ({busiest}) {busiest_ms:.1f} ms; outcomes {outcomes}", flush=True)
    out["busiest"] = busiest
    out["wall"] = out["authorized"]["median_ms"] / 1000
    con.close()
    return out


CHILDREN = {"build": child_build, "aggregate": child_aggregate, "score": child_score, "export": child_export,
            "profile": child_profile, "check": child_check}


def _env(args) -> dict:
    return {**os.environ, "CREDIT_DATA_DIR": str(args.root), "CREDIT_DUCKDB_THREADS": str(args.threads),
            "CREDIT_DUCKDB_MEMORY_LIMIT": args.memory_limit, "COLUMNS": "120"}


def run_child(kind: str, args, env: dict | None = None) -> dict:
    """One measurement in a fresh interpreter; peak RSS and CPU time from wait4."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--keep", str(args.root),
           "--subjects", str(args.subjects), "--facts", str(args.facts), "--seed", str(args.seed),
           "--as-of", args.as_of, "--checks", str(args.checks)]
    load_before = os.getloadavg()[0]
    print(f"--- {kind} (1-min load average before: {load_before:.2f})", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env or _env(args), cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not line.startswith("@@RESULT "):
            print("   ", line, end="", flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{kind} run failed with exit code {code}")
    payload = json.loads(next(line for line in reversed(lines) if line.startswith("@@RESULT "))[9:])
    payload.update(kind=kind, process_seconds=time.perf_counter() - t0, peak_rss_mib=usage.ru_maxrss / 1024,
                   cpu_seconds=usage.ru_utime + usage.ru_stime, load_before=load_before,
                   measured_at=datetime.now(UTC).isoformat(timespec="seconds"))
    print(f"    {kind}: {payload['wall']:.2f} s, peak RSS {payload['peak_rss_mib']:,.0f} MiB, "
          f"CPU {payload['cpu_seconds']:.1f} s", flush=True)
    return payload


def run_cli(args, usccs: list[str]) -> dict:
    """``credit check <uscc> --variant authorized`` as a user runs it: wall time from spawn to exit."""
    exe = str(Path(sys.executable).with_name("credit"))
    walls, rss, codes, output = [], [], [], ""
    print(f"--- cli (1-min load average before: {os.getloadavg()[0]:.2f})", flush=True)
    for uscc in usccs:
        t0 = time.perf_counter()
        proc = subprocess.Popen([exe, "check", uscc, "--variant", "authorized"], env=_env(args), cwd=PROJECT_ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        codes.append(os.waitstatus_to_exitcode(status))
        rss.append(usage.ru_maxrss / 1024)
    floor = []  # start-up alone: interpreter, imports and the CLI's parsing, no warehouse
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([exe, "check", "--help"], env=_env(args), cwd=PROJECT_ROOT, capture_output=True, check=True)
        floor.append(time.perf_counter() - t0)
    print(f"    cli: walls {', '.join(f'{w:.2f}' for w in walls)} s, exit codes {codes}, peak RSS "
          f"{max(rss):,.0f} MiB; `credit check --help` {', '.join(f'{w:.2f}' for w in floor)} s", flush=True)
    print("    last output:\n" + "\n".join("      " + line for line in output.splitlines()[:40]), flush=True)
    return {"walls": walls, "median": statistics.median(walls), "exit_codes": codes, "output": output[-3000:],
            "peak_rss_mib": max(rss), "help_walls": floor, "help_median": statistics.median(floor)}


# --------------------------------------------------------------------------- report


def markdown(args, meta: dict, runs: dict, pairs: list[float], started: str) -> str:
    ratio = statistics.median(pairs) if pairs else None
    verdict = (f"score/aggregate ×{ratio:.2f} ({'target ≤ ×3 met' if ratio <= RATIO_TARGET else 'target ≤ ×3 NOT met'})"
               if ratio else "no ratio")
    loads = ", ".join(f"{r['kind']} {r['load_before']:.1f}" for rs in runs.values() for r in rs if "load_before" in r)
    c = meta["counts"]
    out = [f"### {started[:16].replace('T', ' ')} UTC: {args.subjects:,} subjects, {args.facts:,} facts, {verdict}", "",
           f"Command: `{args.command}`  ",
           f"Machine: {os.cpu_count()} cores, {_mem_gib():.0f} GiB RAM, Python {platform.python_version()}, "
           f"DuckDB {_version('duckdb')}; warehouse settings threads = {args.threads}, memory_limit = "
           f"{args.memory_limit}; as of {args.as_of}; 1-minute load average before each run: {loads}.  ",
           f"Data: {meta['facts']:,} facts of {meta['subjects']:,} subjects in `mart.credit_records` "
           f"(warehouse {meta['warehouse_bytes'] / 2**20:,.0f} MiB; built in {meta['seconds']:.0f} s, not measured): "
           + ", ".join(f"{k} {v:,}" for k, v in c.items())
           + f". Facts per subject: median {meta['facts_per_subject']['median']:.0f}, p99 "
             f"{meta['facts_per_subject']['p99']:.0f}, max {meta['facts_per_subject']['max']:,}.", ""]
    agg = runs.get("aggregate", [])
    best_agg = min((r["wall"] for r in agg), default=None)
    labels = {"aggregate": "one DuckDB aggregate (baseline)", "score": "`run_scoring`, no Parquet",
              "export": "`run_scoring` + Parquet export", "profile": "`run_scoring`, every statement profiled"}
    if any(k in runs for k in labels):
        out += ["| run | runs | best s | median s | × aggregate (best) | CPU s | peak RSS MiB | facts/s (best) |",
                "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for kind, label in labels.items():
            if kind not in runs:
                continue
            walls = [r["wall"] for r in runs[kind]]
            best = min(walls)
            x = f"×{best / best_agg:.2f}" if best_agg else ""
            out.append(f"| {label} | {len(walls)} | {best:.2f} | {statistics.median(walls):.2f} | {x} | "
                       f"{statistics.median(r['cpu_seconds'] for r in runs[kind]):.0f} | "
                       f"{max(r['peak_rss_mib'] for r in runs[kind]):,.0f} | {args.facts / best:,.0f} |")
        out.append("")
    if pairs:
        out.append(f"Paired ratios score/aggregate per round: {', '.join(f'×{p:.2f}' for p in pairs)}; median "
                   f"**×{ratio:.2f}** (target ≤ ×{RATIO_TARGET:g}).")
    if "score" in runs:
        s = runs["score"][-1]
        out.append(f"Scored {s['subjects']:,} subjects from {s['facts']:,} facts: {s['lines']:,} explanation lines "
                   f"({', '.join(f'{k} {v:,}' for k, v in sorted(s['line_kinds'].items()))}); grades {s['grades']}.")
    if "export" in runs and "parquet_bytes" in runs["export"][-1]:
        out.append(f"Export: {runs['export'][-1]['parquet_bytes'] / 2**20:,.0f} MiB of Parquet (scores + lines).")
    if "profile" in runs:
        p = runs["profile"][-1]
        out += ["", f"Profile run ({p['wall']:.1f} s; statements {p['statements_total']:.1f} s; the 9 "
                    f"`UPDATE run_lines SET note_zh` together {p['note_updates_total']:.1f} s):", "",
                "| statement (≥ 0.2 s) | s |", "|---|---:|"]
        out += [f"| `{st['label'].replace('|', '/')}` | {st['seconds']:.2f} |" for st in p["statements"]]
        ops = [(st["label"], op) for st in p["statements"] for op in st["operators"]]
        if ops:
            out += ["", "Costliest operators of the slowest statements (thread-seconds):", "",
                    "| statement | s | operator | what |", "|---|---:|---|---|"]
            out += [f"| `{label[:40].replace('|', '/')}` | {s:.2f} | {name} | {what.replace('|', '/')[:90]} |"
                    for label, (s, name, what) in ops]
    if "check" in runs:
        ch = runs["check"][-1]
        out += ["", f"`credit.credit_check.check` in-process, {ch['n']} random subjects per variant on one connection "
                    f"(peak RSS {ch['peak_rss_mib']:,.0f} MiB):", "",
                "| variant | first call ms | median ms | p95 ms | max ms | busiest subject ms | target < 50 ms |",
                "|---|---:|---:|---:|---:|---:|---|"]
        for variant in ("public", "authorized"):
            v = ch[variant]
            verdict = ", ".join(f"{k} {'met' if v[k + '_ms'] < CHECK_TARGET_MS else 'NOT met'}"
                                for k in ("median", "p95"))
            out.append(f"| {variant} | {v['first_ms']:.1f} | {v['median_ms']:.1f} | {v['p95_ms']:.1f} | "
                       f"{v['max_ms']:.1f} | {v['busiest_ms']:.1f} | {verdict} |")
        out.append(f"\nOutcomes: {ch.get('outcomes')}; the busiest subject: `{ch['busiest']}` (most facts).")
    elif "check_skipped" in runs:
        out += ["", f"`credit check`: not measured ({runs['check_skipped'][0]['why']})."]
    if "cli_skipped" in runs:
        out += ["", f"`credit check` from the shell: not measured ({runs['cli_skipped'][0]['why']})."]
    if "cli" in runs:
        cli = runs["cli"][-1]
        out += ["", f"`credit check <uscc> --variant authorized` from the shell, {len(cli['walls'])} runs: median "
                    f"**{cli['median']:.2f} s** ({', '.join(f'{w:.2f}' for w in cli['walls'])} s), exit codes "
                    f"{cli['exit_codes']}, peak RSS {cli['peak_rss_mib']:,.0f} MiB"
                    + (f"; `credit check --help` alone (start-up, imports) median {cli['help_median']:.2f} s."
                       if "help_median" in cli else ".")]
    return "\n".join(out) + "\n"


def _version(module: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(module)


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def update_md(path: Path, text: str) -> None:
    """Put ``text`` first in the results section of ``path`` (after the start marker; earlier results stay)."""
    doc = path.read_text(encoding="utf-8") if path.exists() else MD_HEAD
    if MD_START not in doc:
        doc += "\n" + MD_START + "\n"
    head, rest = doc.split(MD_START, 1)
    path.write_text(f"{head}{MD_START}\n\n{text}{rest}", encoding="utf-8")


# --------------------------------------------------------------------------- main


def main() -> None:
    from foundation.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--facts", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--as-of", default="2026-11-30")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the warehouse in DIR and keep it (reused by a later run with the same sizes)")
    parser.add_argument("--out", type=Path, default=MD_PATH, help="markdown results file (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of aggregate + score")
    parser.add_argument("--runs", default="aggregate,score,export,check,cli",
                        help="subset of aggregate,score,export,profile,check,cli (profile also runs on its own "
                             "when score/aggregate misses the target, see --profile)")
    parser.add_argument("--profile", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--checks", type=int, default=200, help="in-process checks per variant")
    parser.add_argument("--cli-runs", type=int, default=5)
    parser.add_argument("--wait-check-minutes", type=float, default=0,
                        help="wait this long for credit/credit_check.py to appear (polled every minute)")
    parser.add_argument("--threads", type=int, default=settings.duckdb_threads)
    parser.add_argument("--memory-limit", default=settings.duckdb_memory_limit)
    parser.add_argument("--build-memory-limit", default="4GB", help="DuckDB memory limit of the (unmeasured) build")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        args.root = args.keep
        payload = CHILDREN[args.child](args)
        payload["vm_hwm_mib"] = _vm_hwm_mib()
        print("@@RESULT " + json.dumps(payload, ensure_ascii=False, default=str), flush=True)
        return

    args.command = " ".join([".venv/bin/python", "bench/scoring_vs_aggregate.py", *sys.argv[1:]])
    started = datetime.now(UTC).isoformat(timespec="seconds")
    kinds = [k.strip() for k in args.runs.split(",") if k.strip()]
    args.root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="scoring-bench-"))
    print(f"scratch data root: {args.root}", flush=True)
    meta = reused(args.root, args)
    if meta is None and args.root.exists() and any(args.root.iterdir()):
        raise SystemExit(f"{args.root} is not empty and not a data root this benchmark built with these sizes: "
                         "give an empty or new folder")  # before the try: never remove a folder not ours
    runs: dict[str, list[dict]] = {}
    try:
        if meta is None:
            args.root.mkdir(parents=True, exist_ok=True)
            meta = run_child("build", args, env={**_env(args), "CREDIT_DUCKDB_MEMORY_LIMIT": args.build_memory_limit})
        pairs = []
        for _ in range(args.repeat):  # aggregate and score alternate, so a noisy minute hits both
            if "aggregate" in kinds:
                runs.setdefault("aggregate", []).append(run_child("aggregate", args))
            if "score" in kinds:
                runs.setdefault("score", []).append(run_child("score", args))
                if "aggregate" in kinds:
                    pairs.append(runs["score"][-1]["wall"] / runs["aggregate"][-1]["wall"])
        ratio = statistics.median(pairs) if pairs else None
        if "profile" in kinds or args.profile == "yes" or (args.profile == "auto" and ratio and ratio > RATIO_TARGET):
            runs["profile"] = [run_child("profile", args)]
        if "export" in kinds:
            runs["export"] = [run_child("export", args)]
        if {"check", "cli"} & set(kinds):
            deadline = time.monotonic() + 60 * args.wait_check_minutes

            def ready() -> bool:
                return _check_module_ready() and ("cli" not in kinds or _check_command_ready())

            while not ready() and time.monotonic() < deadline:
                print("    credit/credit_check.py or `credit check` not there yet: waiting a minute", flush=True)
                time.sleep(60)
            if not _check_module_ready():
                runs["check_skipped"] = [{"why": "credit/credit_check.py did not exist yet"}]
            else:
                if "check" in kinds:
                    runs["check"] = [run_child("check", args)]
                if "cli" in kinds and not _check_command_ready():
                    runs["cli_skipped"] = [{"why": "`credit check` was not a command of the CLI yet"}]
                elif "cli" in kinds:
                    import random

                    from foundation.catalog import get_catalog
                    from foundation.settings import get_settings as _gs
                    from warehouse.db import connect

                    os.environ["CREDIT_DATA_DIR"] = str(args.root)
                    con = connect(_gs(), get_catalog(), read_only=True)
                    keys = [r[0] for r in
                            con.execute("SELECT uscc FROM clean.subjects ORDER BY subject_key").fetchall()]
                    con.close()
                    runs["cli"] = [run_cli(args, random.Random(args.seed + 1).sample(keys, args.cli_runs))]
        text = markdown(args, meta, runs, pairs, started)
        print("\n" + text)
        out = BENCH_DIR / "out"
        out.mkdir(exist_ok=True)
        stem = f"scoring_vs_aggregate-{args.subjects}-{args.facts}"
        (out / f"{stem}.json").write_text(json.dumps(
            {"date": started, "command": args.command, "meta": meta, "pairs": pairs, "runs": runs},
            ensure_ascii=False, indent=1, default=str), encoding="utf-8")
        update_md(args.out, text)
        print(f"results written to {args.out} and {out / stem}.json")
    finally:
        if args.keep:
            print(f"kept {args.root}")
        else:
            shutil.rmtree(args.root, ignore_errors=True)


if __name__ == "__main__":
    main()
