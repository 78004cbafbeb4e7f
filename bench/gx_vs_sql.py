"""Benchmark: our Great Expectations suite for 行政处罚 inside DuckDB vs one hand-written DuckDB query.

    .venv/bin/python bench/gx_vs_sql.py                       # 10,000,000 rows (make bench-gx)
    .venv/bin/python bench/gx_vs_sql.py --rows 200000         # quick check
    .venv/bin/python bench/gx_vs_sql.py --pandas-rows 2000000 # GX pandas on the first 2M rows only

1. Builds (or reuses) ``bench/out/gx_vs_sql_<rows>_s<seed>.duckdb`` (git-ignored): a penalty
   table typed exactly as a loaded batch is (``warehouse.checks_sql.build_typed_sql`` over a raw
   Parquet file), generated in DuckDB SQL only: codes built with the identifier macros'
   check characters, and one defect in every ~200 rows at fixed rates (bad USCC, missing
   机关, bad enums, unparseable dates and amounts, a fine above 100000 万元, reversed dates,
   bad resident IDs, repeated keys).
2. Times, each in a fresh interpreter (best of ``--repeat``; GX's import and context setup not
   counted, its checkpoint run is):
   - ``sql``: one SELECT computing every check of the suite in a single scan of the table;
   - ``gx``: the suite (expectations/suites.py) through a GX checkpoint on the DuckDB adapter
     (expectations/duckdb_engine.py), with the runner's result format;
   - ``pandas``: the same suite through GX's pandas engine, on the table read into pandas
     (the read is timed separately).
3. Checks that the three give the same unexpected count for every expectation, prints
   seconds and ratios against the single scan, and writes ``bench/out/gx_vs_sql-<rows>.json``.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

DATASET = "admin_penalty"
GENERATOR_VERSION = 1
RATIO_TARGET = 2.0
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# One defect per row at most: (bucket of hash % 100000, what it breaks). 1000 of 100000 rows.
DEFECTS = {
    "bad_uscc": (0, 200), "no_agency": (200, 300), "bad_lb": (300, 400), "bad_kinds": (400, 500),
    "bad_date": (500, 600), "reversed": (600, 700), "huge_fine": (700, 750), "bad_amount": (750, 850),
    "bad_rid": (850, 950), "repeat": (950, 1000),
}


# --------------------------------------------------------------------------- the table (DuckDB SQL)


def db_path(out: Path, rows: int, seed: int) -> Path:
    return out / f"gx_vs_sql_{rows}_s{seed}.duckdb"


def _bucket(name: str) -> str:
    lo, hi = DEFECTS[name]
    return f"(d >= {lo} AND d < {hi})"


def build_table(out: Path, rows: int, seed: int, threads: int, memory_limit: str) -> dict:
    """Write the typed penalty table unless an identical one (rows, seed, version) is there."""
    import duckdb

    from foundation.catalog import get_catalog
    from warehouse.checks_sql import build_typed_sql
    from warehouse.identifier_sql import install_identifier_macros
    from warehouse.partitions import sql_path
    from warehouse.value_sql import install_value_macros

    path, meta_path = db_path(out, rows, seed), db_path(out, rows, seed).with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if (meta.get("rows"), meta.get("seed"), meta.get("version")) == (rows, seed, GENERATOR_VERSION):
            print(f"reusing {path} ({rows:,} rows)")
            return meta
    out.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    raw = out / f".gx_vs_sql_{rows}_raw.parquet"
    dataset = get_catalog().dataset(DATASET)
    t0 = time.perf_counter()
    con = duckdb.connect(str(path), config={"threads": threads, "memory_limit": memory_limit,
                                            "temp_directory": str(out / "duckdb_tmp")})
    install_value_macros(con)
    install_identifier_macros(con)

    def h(tag: int, of: str = "i") -> str:  # a deterministic pseudo-random UBIGINT per row and purpose
        return f"hash({of}, {int(seed)}, {tag})"

    def code_char(tag: int, of: str) -> str:
        return f"'{USCC_ALPHABET}'[1 + ({h(tag, of)} % 31)::INTEGER]"

    # Pools: 50,000 subjects with valid USCCs (division 371083), 20,000 persons with valid IDs,
    # check characters from the identifier macros (columns, not expressions, as those macros want).
    body = " || ".join(code_char(20 + n, "k") for n in range(6))
    con.execute(f"""
CREATE TEMP TABLE ent AS
WITH b AS (SELECT k, 'MA' || {body} AS body FROM range(50000) r(k)),
o AS (SELECT k, '91371083' || body || ref.gb11714_check_char(body) AS first17 FROM b)
SELECT k, '乳山市' || ['宏达', '鑫海', '恒信', '华联', '金泰', '瑞丰', '永盛', '嘉禾'][1 + k % 8]
          || ['水产', '食品', '建筑工程', '商贸', '机械', '物流'][1 + (k // 8) % 6] || '有限公司' || k AS name,
       first17 || ref.uscc_check_char(first17) AS uscc
FROM o""")
    con.execute(f"""
CREATE TEMP TABLE per AS
WITH b AS (SELECT k, '371083' || strftime(DATE '1955-01-01' + ({h(30, "k")} % 17000)::INTEGER, '%Y%m%d')
                     || lpad((1 + {h(31, "k")} % 999)::VARCHAR, 3, '0') AS first17 FROM range(20000) r(k))
SELECT k, ['王', '张', '李', '刘', '孙', '于'][1 + k % 6] || ['志国', '海军', '秀兰', '晓东'][1 + (k // 6) % 4] AS name,
       first17 || ref.rid_check_char(first17) AS rid, first17 || CASE WHEN ref.rid_check_char(first17) = '0'
       THEN '1' ELSE '0' END AS bad_rid
FROM b""")
    agency = con.execute("SELECT uscc FROM ent WHERE k = 0").fetchall()[0][0]  # stands in for the 机关 code
    exprs = {
        "CF_XDR_MC": "CASE WHEN is_person THEN p.name ELSE e.name END",
        "CF_XDR_LB": f"CASE WHEN {_bucket('bad_lb')} THEN '个人' WHEN is_person THEN '自然人' "
                     "ELSE '法人及非法人组织' END",
        "CF_XDR_SHXYM": f"CASE WHEN is_person THEN NULL WHEN {_bucket('bad_uscc')} "
                        "THEN e.uscc[1:17] || CASE WHEN e.uscc[18] = 'A' THEN 'B' ELSE 'A' END ELSE e.uscc END",
        "CF_FRDB": "CASE WHEN NOT is_person THEN p.name END",
        "CF_FR_ZJLX": "CASE WHEN NOT is_person THEN '身份证' END",
        "CF_FR_ZJHM": f"CASE WHEN NOT is_person THEN CASE WHEN {_bucket('bad_rid')} THEN p.bad_rid ELSE p.rid END END",
        "CF_XDR_ZJLX": "CASE WHEN is_person THEN '身份证' END",
        "CF_XDR_ZJHM": "CASE WHEN is_person THEN p.rid END",
        "CF_WSH": "'乳市监罚〔2022〕' || (key_i + 1) || '号'",
        "CF_WFXW": "'销售不合格产品'",
        "CF_SY": "'经查，当事人于' || strftime(jdrq - 30, '%Y年%-m月%-d日') "
                 "|| '销售经抽样检验不合格的产品，货值金额人民币' || (100 * (1 + h_mix % 500)) || '元。'",
        "CF_YJ": "'《中华人民共和国产品质量法》第四十九条'",
        "CF_CFLB": f"CASE WHEN {_bucket('bad_kinds')} THEN '罚款;罚金' "
                   "ELSE ['罚款', '警告', '罚款、没收违法所得', '罚款；没收非法财物'][1 + (h_mix % 4)::INTEGER] END",
        "CF_NR": "'罚款人民币' || fine || '元'",
        "CF_NR_FK": f"CASE WHEN {_bucket('huge_fine')} THEN '200000' WHEN {_bucket('bad_amount')} THEN '伍仟元' "
                    "ELSE rtrim(rtrim((fine / 10000.0)::DECIMAL(14, 4)::VARCHAR, '0'), '.') END",
        "CF_JDRQ": f"CASE WHEN {_bucket('bad_date')} THEN '2022-02-30' ELSE strftime(jdrq, '%Y-%m-%d') END",
        "CF_YXQ": f"CASE WHEN {_bucket('reversed')} THEN strftime(jdrq - 10, '%Y-%m-%d') "
                  "ELSE strftime(jdrq + INTERVAL 1 YEAR, '%Y-%m-%d') END",
        "CF_GSJZQ": "strftime(jdrq + INTERVAL 3 YEAR, '%Y年%-m月%-d日')",
        "CF_CFJG": f"CASE WHEN {_bucket('no_agency')} THEN '' ELSE '乳山市市场监督管理局' END",
        "CF_CFJGDM": "$agency",
        "CF_SJLY": "'乳山市市场监督管理局'",
        "CF_SJLYDM": "$agency",
    }
    select = ",\n        ".join(f'{exprs.get(f.code, "NULL::VARCHAR")} AS "{f.code}"' for f in dataset.fields)
    con.execute(f"""
COPY (
    WITH base AS (
        SELECT i, {h(1)} % 100000 AS d,
            CASE WHEN {h(1)} % 100000 BETWEEN {DEFECTS['repeat'][0]} AND {DEFECTS['repeat'][1] - 1} AND i > 0
                 THEN i - 1 ELSE i END AS key_i  -- a repeated key copies the row before
        FROM range({int(rows)}) r(i)
    ),
    picked AS (
        SELECT i, d, key_i, {h(2, "key_i")} % 10 = 0 AS is_person, {h(3, "key_i")} % 50000 AS ek,
            {h(4, "key_i")} % 20000 AS pk, {h(6)} AS h_mix, DATE '2022-01-04' + ({h(7)} % 361)::INTEGER AS jdrq,
            100 * (1 + {h(8)} % 500) AS fine
        FROM base
    )
    SELECT i + 1 AS _row,
        {select}
    FROM picked JOIN ent e ON e.k = picked.ek JOIN per p ON p.k = picked.pk
    ORDER BY i
) TO {sql_path(raw)} (FORMAT parquet, COMPRESSION zstd)""", {"agency": agency})
    t_raw = time.perf_counter() - t0
    sql, params = build_typed_sql(dataset)
    con.execute(f'CREATE TABLE "{DATASET}" AS {sql}', {**params, "rows": str(raw)})
    con.execute("CHECKPOINT")
    con.close()
    raw.unlink()
    meta = {"rows": rows, "seed": seed, "version": GENERATOR_VERSION, "raw_seconds": round(t_raw, 1),
            "typed_seconds": round(time.perf_counter() - t0 - t_raw, 1), "bytes": path.stat().st_size}
    meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"built {path} in {meta['raw_seconds']}s (raw Parquet) + {meta['typed_seconds']}s (typed): "
          f"{meta['bytes'] / 2**20:,.0f} MiB")
    return meta


# --------------------------------------------------------------------------- the single scan


def single_scan_sql(dataset) -> tuple[str, dict]:
    """Every check of the suite as one aggregate over the table: one scan, one column per expectation.

    Column names are ``rule|field`` as in the expectations' meta; the last one counts key repeats.
    """
    from expectations.suites import typed_column
    from foundation.catalog import CODE_TYPES, FieldType

    macro = {FieldType.USCC: "uscc_reasons", FieldType.ORG_CODE: "org_code_reasons",
             FieldType.RESIDENT_ID: "resident_id_reasons"}
    cols, params = [], {}
    for f in dataset.fields:
        c, t = f'"{f.code}"', f'"{typed_column(f)}"'
        if f.required:
            cols.append((f"required_missing|{f.code}", f"{c} IS NULL"))
        if f.allowed_values:
            params[f"allowed_{f.code}"] = list(f.allowed_values)
            parts = f"string_split_regex({c}, ' *[;；、,] *')" if f.multi else f"[{c}]"
            cols.append((f"value_not_allowed|{f.code}", f"NOT list_has_all($allowed_{f.code}, {parts})"))
        if f.type in (FieldType.DATE, FieldType.AMOUNT, FieldType.INTEGER):
            rule = {FieldType.DATE: "invalid_date", FieldType.AMOUNT: "invalid_amount"}.get(f.type, "invalid_integer")
            cols.append((f"{rule}|{f.code}", f"{c} IS NOT NULL AND {t} IS NULL"))
        if f.min_value is not None or f.max_value is not None:
            cols.append((f"out_of_range|{f.code}", f"{t} < {f.min_value} OR {t} > {f.max_value}"))
        if f.type in CODE_TYPES:
            cols.append((f"valid_code|{f.code}", f"len({macro[f.type]}({c})) > 0"))
        else:
            cols.append((f"field_too_long|{f.code}", f"length({c}) > {f.max_length}"))
    for rule in dataset.date_order:
        start, end = typed_column(dataset.field(rule.start)), typed_column(dataset.field(rule.end))
        cols.append((f"date_order|{rule.end}", f'"{end}" < "{start}"'))
    keys = ", ".join(f'"{k}"' for k in dataset.key_fields)
    filled = " AND ".join(f'"{k}" IS NOT NULL' for k in dataset.key_fields)
    select = [f'count(*) FILTER (WHERE {cond}) AS "{name}"' for name, cond in cols]
    select.append(f'count(*) FILTER (WHERE {filled}) - count(DISTINCT ({keys})) FILTER (WHERE {filled}) '
                  'AS "duplicate_row|"')
    return 'SELECT count(*) AS "rows",\n    ' + ",\n    ".join(select) + f'\nFROM "{DATASET}"', params


# --------------------------------------------------------------------------- child runs


def _counts_from_gx(result) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in result.results:
        assert not r.exception_info.get("raised_exception"), (r.expectation_config.type, r.exception_info)
        meta = r.expectation_config.meta
        key = f"{meta['rule']}|{meta['field']}"
        counts[key] = counts.get(key, 0) + (r.result.get("unexpected_count") or 0)
    return counts


def child(kind: str, path: Path, repeat: int, pandas_rows: int | None) -> dict:
    import duckdb
    import great_expectations as gx

    from expectations.duckdb_engine import configure_connection
    from expectations.run import RESULT_FORMAT
    from expectations.suites import build_suite
    from foundation.catalog import get_catalog
    from foundation.settings import get_settings

    dataset = get_catalog().dataset(DATASET)
    settings = get_settings()
    times, counts, extra = [], {}, {}
    if kind == "sql":
        con = duckdb.connect(str(path))
        configure_connection(con)
        sql, params = single_scan_sql(dataset)
        for _ in range(repeat):
            t0 = time.perf_counter()
            row = con.execute(sql, params).fetchall()[0]
            times.append(time.perf_counter() - t0)
        names = [d[0] for d in con.description]
        counts = {n: v for n, v in zip(names[1:], row[1:], strict=True)}
        extra["rows"] = row[0]
        con.close()
    else:
        context = gx.get_context(mode="ephemeral")
        suite = context.suites.add(build_suite(dataset))
        batch_parameters = None
        if kind == "gx":
            asset = context.data_sources.add_credit_duckdb(name="bench", connection_string=f"duckdb:///{path}")
            asset = asset.add_table_asset(DATASET, table_name=DATASET)
            batch = asset.add_batch_definition_whole_table("all")
        else:
            con = duckdb.connect(str(path), read_only=True)
            con.execute("SET threads = ?", [settings.duckdb_threads])
            limit = f" LIMIT {int(pandas_rows)}" if pandas_rows else ""
            t0 = time.perf_counter()
            frame = con.execute(f'SELECT * FROM "{DATASET}" ORDER BY source_row{limit}').df()
            extra["read_seconds"] = time.perf_counter() - t0
            extra["rows"] = len(frame)
            extra["frame_mib"] = frame.memory_usage(deep=True).sum() / 2**20
            con.close()
            batch = (context.data_sources.add_pandas("bench").add_dataframe_asset(DATASET)
                     .add_batch_definition_whole_dataframe("all"))
            batch_parameters = {"dataframe": frame}
        validation = context.validation_definitions.add(gx.ValidationDefinition(name="bench", data=batch, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(name="bench", validation_definitions=[validation],
                                                           result_format=RESULT_FORMAT))
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = checkpoint.run(batch_parameters=batch_parameters)
            times.append(time.perf_counter() - t0)
        (suite_result,) = result.run_results.values()
        counts = _counts_from_gx(suite_result)
        extra["expectations"] = len(suite_result.results)
    return {"times": times, "seconds": min(times), "counts": counts, **extra,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(kind: str, path: Path, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--db", str(path),
           "--repeat", str(1 if kind == "pandas" else args.repeat)]
    if kind == "pandas" and args.pandas_rows:
        cmd += ["--pandas-rows", str(args.pandas_rows)]
    load = os.getloadavg()[0]
    print(f"--- {kind} (1-min load average before: {load:.2f})", flush=True)
    done = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    payload = json.loads(next(x for x in reversed(done.stdout.splitlines()) if x.startswith("@@RESULT "))[9:])
    payload["load_before"] = load
    times = ", ".join(f"{t:.2f}" for t in payload["times"])
    print(f"    {payload['seconds']:.2f} s (runs: {times}), peak RSS {payload['peak_rss_mib']:,.0f} MiB", flush=True)
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=371083)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--repeat", type=int, default=2, help="runs of sql and gx; the best counts")
    parser.add_argument("--pandas-rows", type=int, default=None, help="GX pandas on the first N rows only")
    parser.add_argument("--runs", default="sql,gx,pandas")
    parser.add_argument("--child", choices=["sql", "gx", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("@@RESULT " + json.dumps(child(args.child, args.db, args.repeat, args.pandas_rows)), flush=True)
        return

    from foundation.settings import get_settings

    settings = get_settings()
    print(f"{args.rows:,} rows of {DATASET}; DuckDB threads {settings.duckdb_threads}, "
          f"memory limit {settings.duckdb_memory_limit}; load average {os.getloadavg()}")
    meta = build_table(args.out, args.rows, args.seed, settings.duckdb_threads, settings.duckdb_memory_limit)
    path = db_path(args.out, args.rows, args.seed)
    runs = {kind: run_child(kind, path, args) for kind in args.runs.split(",")}

    base = runs.get("sql")
    print(f"\n{'engine':<28}{'rows':>12}{'seconds':>10}{'vs single scan':>16}")
    for kind, r in runs.items():
        rows = r.get("rows", args.rows)
        ratio = f"x{r['seconds'] / base['seconds']:.2f}" if base and rows == base["rows"] else "-"
        label = {"sql": "DuckDB, one query", "gx": "GX on DuckDB (adapter)", "pandas": "GX on pandas"}[kind]
        print(f"{label:<28}{rows:>12,}{r['seconds']:>10.2f}{ratio:>16}")
        if kind == "pandas" and base and rows != base["rows"]:
            scaled = r["seconds"] * base["rows"] / rows
            print(f"{'  (pandas scaled to all rows)':<28}{base['rows']:>12,}{scaled:>10.1f}"
                  f"{'x' + format(scaled / base['seconds'], '.1f'):>16}   linear estimate, not measured")
        if kind == "pandas":
            print(f"{'  (read into pandas)':<28}{rows:>12,}{r['read_seconds']:>10.2f}"
                  f"   frame {r['frame_mib']:,.0f} MiB, peak RSS {r['peak_rss_mib']:,.0f} MiB")
    agree = {}
    if base and "gx" in runs:
        agree["gx"] = runs["gx"]["counts"] == base["counts"]
        print(f"\nGX on DuckDB and the single scan agree on all {len(base['counts'])} counts: {agree['gx']}")
        if not agree["gx"]:
            diff = {k: (base["counts"].get(k), runs["gx"]["counts"].get(k))
                    for k in set(base["counts"]) | set(runs["gx"]["counts"])
                    if base["counts"].get(k) != runs["gx"]["counts"].get(k)}
            print(f"  differences (sql, gx): {diff}")
        print("unexpected counts: " + ", ".join(f"{k} {v:,}" for k, v in base["counts"].items() if v))
    if "gx" in runs and "pandas" in runs and runs["pandas"].get("rows") == args.rows:
        agree["pandas"] = runs["pandas"]["counts"] == runs["gx"]["counts"]
        print(f"GX on pandas agrees with GX on DuckDB: {agree['pandas']}")
    if base and "gx" in runs:
        ratio = runs["gx"]["seconds"] / base["seconds"]
        print(f"\nGX on DuckDB / single scan = x{ratio:.2f} (target: within x{RATIO_TARGET:.0f}): "
              f"{'met' if ratio <= RATIO_TARGET else 'NOT met'}")
    out = args.out / f"gx_vs_sql-{args.rows}.json"
    out.write_text(json.dumps({"rows": args.rows, "meta": meta, "runs": runs, "agree": agree,
                               "load_after": os.getloadavg()}, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
