"""Benchmark: the vectorized identifier engine against python-stdnum, on 5 million codes.

    .venv/bin/python bench/codes_vs_stdnum.py                  # 5,000,000 codes (make bench-codes)
    .venv/bin/python bench/codes_vs_stdnum.py --codes 200000   # quick check

1. Generates (or reuses) ``<out>/codes_<n>_s<seed>.txt`` (default ``bench/out/``, git-ignored):
   one code per line, about 85% valid USCCs of several divisions and authority / category
   pairs (old all-digit bodies and new ``MA...`` ones), and about 1% of each defect seen in
   feeds (a lost character, letter O, bad pair, unknown division, bad pos 17, bad pos 18,
   placeholders, Excel damage, 15-digit registration numbers, 9-char organization codes,
   resident IDs, full-width, spaces / hyphens, lower case, blank cells). Built with numpy
   over byte matrices, no loop over rows.
2. Times, in this one process, over the whole file (wall clock, and CPU seconds of all the
   process's threads, which the other load on a shared machine disturbs less):
   (a) ``fast``: pyarrow's streaming CSV reader (batches of about 200,000 lines) +
       ``transforms.identifiers_arrow.validate_codes`` (kind ``uscc``), one batch at a time,
       then again with one batch per CPU validated at once (numpy and Arrow release the GIL).
       One batch is validated before the clock starts (tables built, allocators grown);
   (b) ``udf``: DuckDB ``uscc_reasons_fast(normalize_code_fast(code))`` over ``read_csv``,
       grouped by reason list;
   (c) ``macros``: the same with the SQL macros ``normalize_code`` / ``uscc_reasons``;
   (d) ``stdnum``: a Python loop of ``stdnum.cn.uscc.is_valid`` over the same codes (already
       in memory as str; ``--stdnum-codes`` limits it to an evenly spaced subset).
3. Prints throughputs, ratios against stdnum, whether all our paths give the same verdicts and
   reason lists, and the codes where ours and stdnum disagree, each classed as a documented
   gap (see tests/test_identifiers.py) or not. Writes it all to ``<out>/codes-results.json``.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from transforms.divisions import division_codes  # noqa: E402
from transforms.identifiers import (  # noqa: E402
    GB11714_ALPHABET,
    GB11714_WEIGHTS,
    RID_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
)

GENERATOR_VERSION = 2  # bump when the generated content changes: a stale file is rebuilt
RATIO_TARGET = 100.0
RUSHAN = "371083"
WEIHAI = ("371002", "371003", "371082", "371000")  # 环翠区, 文登区, 荣成市, 威海市
# (authority, category) of valid codes and their shares: enterprises and 个体工商户 first.
PAIRS = {
    "91": 50, "92": 26, "93": 3, "12": 5, "11": 3, "13": 0.5, "51": 2, "52": 2.5, "53": 0.5,
    "31": 0.5, "71": 1, "81": 1.5, "N2": 3, "N3": 0.5, "Y1": 0.5, "A1": 0.5,
}  # fmt: skip
DEFECTS = (
    "uscc_length", "uscc_charset", "uscc_authority_category", "uscc_division", "uscc_org_check",
    "uscc_check_digit", "uscc_placeholder", "uscc_excel_damage", "registration_number",
    "org_code", "resident_id", "fullwidth", "separators", "lowercase", "blank",
)  # fmt: skip
DEFECT_SHARE = 0.01

# --------------------------------------------------------------------------- generation


def _lut(alphabet: str) -> np.ndarray:
    table = np.zeros(256, np.int64)
    table[np.frombuffer(alphabet.encode(), np.uint8)] = np.arange(len(alphabet))
    return table


_ALPHABET = np.frombuffer(USCC_ALPHABET.encode(), np.uint8)
_USCC_VALUE, _GB_VALUE = _lut(USCC_ALPHABET), _lut(GB11714_ALPHABET)
_DIGITS = np.frombuffer(b"0123456789", np.uint8)


def _bytes(texts: list[str]) -> np.ndarray:
    """Equal-length ASCII strings -> uint8 matrix."""
    return np.frombuffer("".join(texts).encode("ascii"), np.uint8).reshape(len(texts), -1).copy()


def _fill_checks(m: np.ndarray) -> np.ndarray:
    """Set pos 17 (GB 11714 over pos 9-16) and pos 18 (GB/T 17710 over pos 1-17) of USCC rows."""
    org = 11 - (_GB_VALUE[m[:, 8:16]] @ np.array(GB11714_WEIGHTS)) % 11  # 1..11; 10 -> X, 11 -> 0
    m[:, 16] = np.frombuffer(b"?0123456789X0", np.uint8)[org + 1]
    return _fill_check(m)


def _fill_check(m: np.ndarray) -> np.ndarray:
    total = _USCC_VALUE[m[:, :17]] @ np.array(USCC_WEIGHTS)
    m[:, 17] = _ALPHABET[(31 - total % 31) % 31]
    return m


def _divisions(rng: np.random.Generator, n: int) -> np.ndarray:
    every = _bytes(sorted(division_codes()))
    local = _bytes([RUSHAN, *WEIHAI])
    pick = rng.random(n)
    out = every[rng.integers(0, len(every), n)]
    out[pick < 0.7] = local[np.minimum(rng.integers(0, 8, n), 4)][pick < 0.7]  # Rushan x4
    return out


def valid_usccs(rng: np.random.Generator, n: int, digits_only: bool = False) -> np.ndarray:
    m = np.zeros((n, 18), np.uint8)
    pairs = _bytes(list(PAIRS))
    weights = np.array(list(PAIRS.values()), float)
    m[:, :2] = _bytes(["91"])[0] if digits_only else pairs[rng.choice(len(pairs), n, p=weights / weights.sum())]
    m[:, 2:8] = _divisions(rng, n)
    m[:, 8:16] = _DIGITS[rng.integers(0, 10, (n, 8))]  # old codes: the 8-digit organization code
    new = (rng.random(n) < 0.5) & (not digits_only)  # new codes: MA + 6 chars of the code set
    m[new, 8:10] = np.frombuffer(b"MA", np.uint8)
    m[new, 10:16] = _ALPHABET[rng.integers(0, 31, (int(new.sum()), 6))]
    return _fill_checks(m)


def resident_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    m = np.zeros((n, 18), np.uint8)
    m[:, :6] = _divisions(rng, n)
    days = np.datetime64("1950-01-01") + rng.integers(0, 20_000, n).astype("timedelta64[D]")
    distinct = np.unique(days)
    m[:, 6:14] = _bytes([str(d).replace("-", "") for d in distinct])[np.searchsorted(distinct, days)]
    m[:, 14:17] = _DIGITS[rng.integers(0, 10, (n, 3))]
    total = (m[:, :17] - 48).astype(np.int64) @ np.array(RID_WEIGHTS)
    m[:, 17] = np.frombuffer(b"10X98765432", np.uint8)[total % 11]
    return m


def org_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    m = np.zeros((n, 9), np.uint8)
    m[:, :8] = np.frombuffer(GB11714_ALPHABET.encode(), np.uint8)[rng.integers(0, 36, (n, 8))]
    m[:, :6] = _DIGITS[rng.integers(0, 10, (n, 6))]  # mostly digits, as issued
    org = 11 - (_GB_VALUE[m[:, :8]] @ np.array(GB11714_WEIGHTS)) % 11
    m[:, 8] = np.frombuffer(b"?0123456789X0", np.uint8)[org + 1]
    return m


def _strings(m: np.ndarray) -> pa.StringArray:
    n, width = m.shape
    offsets = (np.arange(n + 1) * width).astype(np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(m).tobytes()))


def _fullwidth(m: np.ndarray) -> np.ndarray:
    """ASCII bytes -> UTF-8 of the full-width forms U+FF01-U+FF5E (3 bytes each)."""
    cp = m.astype(np.int64) + 0xFEE0
    wide = np.stack([np.full_like(cp, 0xEF), 0x80 | ((cp >> 6) & 0x3F), 0x80 | (cp & 0x3F)], axis=-1)
    return wide.reshape(len(m), -1).astype(np.uint8)


def defect(kind: str, rng: np.random.Generator, n: int) -> pa.StringArray:
    rows = np.arange(n)
    if kind in ("resident_id", "org_code", "registration_number", "uscc_placeholder", "blank"):
        if kind == "resident_id":
            return _strings(resident_ids(rng, n))
        if kind == "org_code":  # half of them written 12345678-9
            m = org_codes(rng, n)
            hyphen = np.concatenate([m[:, :8], np.full((n, 1), ord("-"), np.uint8), m[:, 8:]], axis=1)
            return pc.if_else(pa.array(rng.random(n) < 0.5), _strings(hyphen), _strings(m))
        if kind == "registration_number":
            return _strings(np.concatenate([_divisions(rng, n), _DIGITS[rng.integers(0, 10, (n, 9))]], axis=1))
        choices = (
            ["000000000000000000", "00000000000000000X", "0", "111111111111111111"]
            if kind == "uscc_placeholder"
            else ["", " ", "   ", "-", "\u3000"]
        )
        return pa.array(np.array(choices)[rng.integers(0, len(choices), n)], pa.string())
    m = valid_usccs(rng, n, digits_only=kind == "uscc_excel_damage")
    if kind == "uscc_length":  # one character lost
        drop = rng.integers(0, 18, n)
        keep = np.arange(17)[None, :] + (np.arange(17)[None, :] >= drop[:, None])
        return _strings(m[rows[:, None], keep])
    if kind == "uscc_charset":  # letter O for zero, or another letter outside the code set
        m[rows, rng.integers(0, 18, n)] = np.frombuffer(b"OOOIZSV", np.uint8)[rng.integers(0, 7, n)]
        return _strings(m)
    if kind == "uscc_authority_category":  # 工商 with a category it does not have
        m[:, 0], m[:, 1] = ord("9"), _DIGITS[rng.integers(4, 10, n)]
        return _strings(_fill_check(m))
    if kind == "uscc_division":
        m[:, 2:8] = _bytes(["379999", "999999", "371099", "000001"])[rng.integers(0, 4, n)]
        return _strings(_fill_check(m))
    if kind == "uscc_org_check":
        value = np.where(m[:, 16] == ord("X"), 10, m[:, 16].astype(np.int64) - 48)
        m[:, 16] = np.frombuffer(b"0123456789X", np.uint8)[(value + rng.integers(1, 11, n)) % 11]
        return _strings(_fill_check(m))
    if kind == "uscc_check_digit":
        m[:, 17] = _ALPHABET[(_USCC_VALUE[m[:, 17]] + rng.integers(1, 31, n)) % 31]
        return _strings(m)
    if kind == "uscc_excel_damage":  # 18-digit codes read as a float: 15 digits kept
        while True:  # pos 17 and 18 are digits in 10/11 x 10/31 of the digit-only codes
            m = valid_usccs(rng, 5 * n, digits_only=True)
            m = m[(m[:, 16] != ord("X")) & (m[:, 17] <= ord("9"))][:n]
            if len(m) == n:
                break
        m[:, 15:] = ord("0")
        return _strings(m)
    if kind == "fullwidth":
        return _strings(_fullwidth(m))
    if kind == "separators":  # 9137 1083 MA3C8PL2XX, 91-371083-...
        sep = np.frombuffer(b" -", np.uint8)[rng.integers(0, 2, (n, 1))]
        return _strings(np.concatenate([m[:, :4], sep, m[:, 4:8], sep, m[:, 8:]], axis=1))
    if kind == "lowercase":
        return _strings(np.where(m >= ord("A"), m | 0x20, m))
    raise ValueError(kind)


def generate(n: int, seed: int) -> pa.StringArray:
    rng = np.random.default_rng(seed)
    per_defect = int(n * DEFECT_SHARE)
    parts = [defect(kind, rng, per_defect) for kind in DEFECTS]
    parts.insert(0, _strings(valid_usccs(rng, n - per_defect * len(DEFECTS))))
    codes = pa.concat_arrays([p.cast(pa.string()) for p in parts])
    return codes.take(pa.array(rng.permutation(n)))


def codes_file(out: Path, n: int, seed: int) -> Path:
    path = out / f"codes_{n}_s{seed}.txt"
    meta = path.with_suffix(".meta.json")
    expected = {"generator_version": GENERATOR_VERSION, "codes": n, "seed": seed}
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == expected:
        return path
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    codes = generate(n, seed)
    offsets = np.frombuffer(codes.buffers()[1], np.int32)[codes.offset : codes.offset + n + 1]
    data = np.frombuffer(codes.buffers()[2], np.uint8)[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    lines = np.full(len(data) + n, ord("\n"), np.uint8)  # each code followed by a newline
    lines[np.arange(len(data)) + np.repeat(np.arange(n), np.diff(offsets))] = data
    path.write_bytes(lines.tobytes())
    meta.write_text(json.dumps(expected))
    print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f}s")
    return path


# --------------------------------------------------------------------------- the runs


def read_batches(path: Path):
    """The file as record batches (about 200,000 rows) of one string column ``code``, one row per
    line, as is."""
    return pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=["code"], block_size=4 << 20),
        parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(column_types={"code": pa.string()}, strings_can_be_null=False),
    )


def run_fast(path: Path, threads: int) -> tuple[float, float, np.ndarray, Counter]:
    """Wall and CPU seconds to read and validate the file with ``threads`` batches validated at
    a time, the valid flags, and the reason-list histogram (counted after the clock stops:
    bookkeeping for the comparison, not validation). numpy and Arrow release the GIL."""
    from transforms.identifiers_arrow import validate_codes

    # Warm-up, not timed: lookup tables built, and the memory allocators grown to a batch's size
    # (a fresh page costs much on this kind of virtual machine), as in a long-running service.
    validate_codes(next(iter(read_batches(path))).column(0), "uscc")
    started, cpu_started = time.perf_counter(), time.process_time()
    results, pending = [], deque()
    with ThreadPoolExecutor(threads) as pool:
        for batch in read_batches(path):
            pending.append(pool.submit(validate_codes, batch.column(0), "uscc"))
            if len(pending) > threads:  # a bounded queue: the file is streamed, not loaded
                results.append(pending.popleft().result())
        results.extend(future.result() for future in pending)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    valid = np.concatenate([r.column("valid").to_numpy(zero_copy_only=False) for r in results])
    histogram = Counter()
    for result in results:
        counts = pc.value_counts(pc.binary_join(result.column("reasons"), ","))
        histogram.update(dict(zip(counts.field(0).to_pylist(), counts.field(1).to_pylist(), strict=True)))
    return elapsed, cpu, valid, histogram


_READ_SQL = (
    "read_csv($path, columns = {'code': 'VARCHAR'}, header = false, delim = '\\t', quote = '', escape = '',"
    " auto_detect = false)"
)


def run_sql(path: Path, normalize: str, reasons: str) -> tuple[float, float, Counter]:
    """Reason-list histogram of ``reasons(normalize(code))`` in DuckDB (normalized in a subquery:
    the macros must get a column, see warehouse/identifier_sql.py)."""
    import duckdb

    from warehouse.identifier_sql import install_identifier_macros
    from warehouse.identifier_udf import register_identifier_udfs

    con = duckdb.connect()
    install_identifier_macros(con)
    register_identifier_udfs(con)
    sql = f"""
        SELECT array_to_string({reasons}(n), ',') AS r, count(*)
        FROM (SELECT {normalize}(code) AS n FROM {_READ_SQL})
        GROUP BY r
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    rows = con.execute(sql, {"path": str(path)}).fetchall()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    con.close()
    # NULL: an empty code (our batch path says 'empty')
    return elapsed, cpu, Counter({("empty" if r is None else r): c for r, c in rows})


def run_stdnum(codes: list[str]) -> tuple[float, float, np.ndarray]:
    from stdnum.cn.uscc import is_valid

    started, cpu_started = time.perf_counter(), time.process_time()
    verdicts = [is_valid(code) for code in codes]
    return time.perf_counter() - started, time.process_time() - cpu_started, np.array(verdicts, bool)


# Where stdnum and we may disagree (tests/test_identifiers.py, test_*stdnum*): checks stdnum
# lacks (pos 1-2 pair, division, pos 17), codes we reject on purpose (placeholders, resident
# IDs), letter-first codes it rejects, and characters it does not fold (full-width letters).
CHECKS_STDNUM_LACKS = {"uscc_authority_category", "uscc_division", "uscc_org_check"}


def classify(raw: str) -> str:
    """Why ours and stdnum disagree on ``raw``: a documented gap's name, or 'UNDOCUMENTED ...'."""
    from stdnum.cn.uscc import compact, is_valid

    from transforms.identifiers import validate

    ours = validate(raw, kind="uscc")
    if ours.valid == is_valid(raw):
        return "UNDOCUMENTED: no disagreement on re-check"
    if ours.valid:  # stdnum rejects a code we accept
        if compact(raw) != ours.normalized:
            return "documented: stdnum does not fold full-width letters / Unicode spaces"
        if ours.normalized[0] in "ANY":
            return "documented: letter-first authority (A, N, Y) rejected by stdnum"
        return "UNDOCUMENTED: stdnum rejects"
    if set(ours.reasons) <= CHECKS_STDNUM_LACKS:
        return "documented: check stdnum lacks (" + ", ".join(ours.reasons) + ")"
    if ours.reasons in (("uscc_placeholder",), ("wrong_kind_resident_id",)):
        return f"documented: rejected on purpose ({ours.reasons[0]})"
    return "UNDOCUMENTED: we reject (" + ", ".join(ours.reasons) + ")"


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=5_000_000)
    parser.add_argument("--seed", type=int, default=32100)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--stdnum-codes", type=int, default=None, help="time stdnum on this many codes (evenly spaced)")
    parser.add_argument("--skip-macros", action="store_true", help="leave out the slow SQL macro path (c)")
    args = parser.parse_args()

    load_before = os.getloadavg()
    path = codes_file(args.out, args.codes, args.seed)
    n, threads = args.codes, os.cpu_count() or 1

    fast_s, fast_cpu, fast_valid, fast_hist = run_fast(path, 1)
    assert len(fast_valid) == n, (len(fast_valid), n)
    parallel_s, parallel_cpu, parallel_valid, parallel_hist = run_fast(path, threads)
    udf_s, udf_cpu, udf_hist = run_sql(path, "normalize_code_fast", "uscc_reasons_fast")
    macro_s, macro_cpu, macro_hist = (
        (None, None, None) if args.skip_macros else run_sql(path, "normalize_code", "uscc_reasons")
    )
    codes = pc.utf8_rtrim(pa.array(path.read_text(encoding="utf-8").split("\n")[:n]), characters="\r").to_pylist()
    subset = np.arange(n) if not args.stdnum_codes else np.linspace(0, n - 1, args.stdnum_codes).astype(np.int64)
    stdnum_s, stdnum_cpu, stdnum_valid = run_stdnum([codes[i] for i in subset])
    load_after = os.getloadavg()

    disagree = subset[stdnum_valid != fast_valid[subset]]
    reasons, examples = Counter(), {}
    for i in disagree:
        reason = classify(codes[i])
        reasons[reason] += 1
        examples.setdefault(reason, codes[i])
    undocumented = sum(c for r, c in reasons.items() if r.startswith("UNDOCUMENTED"))
    same = fast_hist == parallel_hist == udf_hist and (macro_hist is None or macro_hist == fast_hist)
    same &= bool((fast_valid == parallel_valid).all())

    stdnum_rate = len(subset) / stdnum_s
    stdnum_cpu_rate = len(subset) / stdnum_cpu
    runs = {  # name -> (wall seconds, CPU seconds)
        "(a) fast: pyarrow read + identifiers_arrow": (fast_s, fast_cpu),
        f"(a) fast, {threads} batches at a time": (parallel_s, parallel_cpu),
        "(b) udf: DuckDB read_csv + Arrow UDFs": (udf_s, udf_cpu),
        "(c) macros: DuckDB read_csv + SQL macros": (macro_s, macro_cpu),
    }
    print(f"\n{n:,} codes, {path.name}; stdnum timed on {len(subset):,} of them")
    print(f"{'path':44} {'seconds':>8} {'codes/s':>12} {'x stdnum':>9} {'CPU s':>7} {'x stdnum CPU':>13}")
    table = {}
    for name, (seconds, cpu) in runs.items():
        if seconds is not None:
            table[name] = {
                "seconds": seconds, "codes_per_second": n / seconds, "ratio": n / seconds / stdnum_rate,
                "cpu_seconds": cpu, "cpu_ratio": n / cpu / stdnum_cpu_rate,
            }  # fmt: skip
            row = table[name]
            print(
                f"{name:44} {seconds:8.2f} {row['codes_per_second']:12,.0f} {row['ratio']:9.1f}"
                f" {cpu:7.2f} {row['cpu_ratio']:13.1f}"
            )
    print(f"{'(d) stdnum.cn.uscc.is_valid loop':44} {stdnum_s:8.2f} {stdnum_rate:12,.0f} {1:9.1f} {stdnum_cpu:7.2f}")
    for name in list(runs)[:2]:
        ratio = table[name]["ratio"]
        verdict = "met" if ratio >= RATIO_TARGET else "NOT met"
        cpu_ratio = table[name]["cpu_ratio"]
        print(f"target {RATIO_TARGET:.0f}x stdnum, {name}: {verdict} ({ratio:.1f}x wall, {cpu_ratio:.1f}x CPU)")
    print(f"all our paths give the same verdicts and reason lists: {'yes' if same else 'NO'}")
    print(f"valid per ours: {int(fast_valid.sum()):,}; disagreements with stdnum: {len(disagree):,}")
    for reason, count in sorted(reasons.items()):
        print(f"  {count:9,}  {reason}   e.g. {examples[reason]!r}")
    print(f"undocumented disagreements: {undocumented}")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; {os.cpu_count()} CPUs")

    results = {
        "codes": n,
        "file": path.name,
        "runs": table,
        "stdnum": {"codes_timed": len(subset), "seconds": stdnum_s, "cpu_seconds": stdnum_cpu,
                   "codes_per_second": stdnum_rate},
        "paths_agree": same,
        "reason_lists": dict(sorted(fast_hist.items())),
        "valid": int(fast_valid.sum()),
        "disagreements": dict(sorted(reasons.items())),
        "disagreement_examples": examples,
        "undocumented_disagreements": undocumented,
        "load_average": {"before": load_before, "after": load_after},
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }  # fmt: skip
    out = args.out / "codes-results.json"
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
