"""Benchmark: ``credit codes validate`` as a whole command against a python-stdnum job, from the shell.

    .venv/bin/python bench/cli_vs_stdnum.py                             # 2,000,000 codes, 3 rounds (make bench-cli)
    .venv/bin/python bench/cli_vs_stdnum.py --codes 200000 --repeat 5   # quick check

1. Writes (or reuses) ``<out>/codes_<n>_s<seed>.txt`` (default ``bench/out/``, git-ignored) with
   bench/codes_vs_stdnum.py's generator: about 85% valid USCCs and 1% of each defect seen in
   feeds (see bench/codes_vs_stdnum.md).
2. Times whole processes started from this one (wall clock from start to exit: interpreter
   start-up, imports, reading, writing; and the CPU seconds of the child), ``--repeat`` rounds,
   each round running every command once:
   (a) ``stdnum``: ``python -c JOB FILE > out``, JOB reading the file line by line and writing
       ``true`` / ``false`` per line (``stdnum.cn.uscc.is_valid``);
   (b) ``credit codes validate FILE > out``;
   (c) ``credit --help > /dev/null``;
   (d) ``credit codes validate`` of one code on standard input (``echo CODE | credit codes validate``).
   Bytecode is cached: PYTHONDONTWRITEBYTECODE is left out of the children's environment and
   PYTHONPYCACHEPREFIX points at ``<out>/pycache`` (nothing written next to the sources); an untimed
   run of each command fills it first. The codes file is in the page cache.
3. With ``--in-process``: ``warehouse.code_validation.validate_file`` over the file inside this
   process too (output to /dev/null, after a warm-up): the command without its start-up.
4. Prints medians, the whole-process ratio stdnum / ours (median of the per-round ratios),
   whether both outputs have one line per input line, and writes ``<out>/cli-results.json``.

This is a benchmark, not a test: nothing here is collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH_DIR.parent
for path in (PROJECT_ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from codes_vs_stdnum import codes_file  # noqa: E402  (the generator of bench-codes)

RATIO_TARGET = 20.0
HELP_TARGET = 0.5  # seconds
ONE_CODE = b"91110000600037341L\n"
STDNUM_JOB = """\
import sys
from stdnum.cn.uscc import is_valid
out = sys.stdout
with open(sys.argv[1], encoding="utf-8") as lines:
    for line in lines:
        out.write("true\\n" if is_valid(line.rstrip("\\n")) else "false\\n")
"""


def child_env(out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(out / "pycache")
    return env


def run(
    cmd: list[str], env: dict[str, str], stdout: Path | None = None, stdin: bytes | None = None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(stdout or os.devnull, "wb") as sink:
        started = time.perf_counter()
        subprocess.run(cmd, input=stdin, stdout=sink, env=env, check=True, cwd=PROJECT_ROOT)
        wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 24), b""))


def in_process(path: Path) -> float:
    import io

    from warehouse.code_validation import validate_file

    with open(path, "rb") as fh:
        head = b"".join(fh.readline() for _ in range(1000))
    with open(os.devnull, "wb") as sink:
        validate_file(io.BytesIO(head), sink)  # warm-up: lookup tables built
        with open(path, "rb") as source:
            started = time.perf_counter()
            validate_file(source, sink)
            return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=32100)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; every figure is the median of them")
    parser.add_argument("--in-process", action="store_true", help="also time validate_file inside this process")
    args = parser.parse_args()

    path = codes_file(args.out, args.codes, args.seed)
    env = child_env(args.out)
    bin_dir = Path(sys.executable).parent
    credit = str(bin_dir / "credit")
    stdnum_out, ours_out = args.out / "cli-stdnum.out", args.out / "cli-ours.jsonl"
    small = args.out / "cli-warmup.txt"
    with open(path, "rb") as fh:
        small.write_bytes(b"".join(fh.readline() for _ in range(100)))
    commands = {
        "(a) stdnum job, FILE > out": ([sys.executable, "-c", STDNUM_JOB, str(path)], stdnum_out, None),
        "(b) credit codes validate FILE > out": ([credit, "codes", "validate", str(path)], ours_out, None),
        "(c) credit --help": ([credit, "--help"], None, None),
        "(d) echo CODE | credit codes validate": ([credit, "codes", "validate"], None, ONE_CODE),
    }
    # Untimed: bytecode written to the cache, the file read into the page cache.
    run([sys.executable, "-c", STDNUM_JOB, str(small)], env)
    run([credit, "codes", "validate", str(small)], env)
    run([credit, "--help"], env)
    count_lines(path)

    load_before = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for round_ in range(args.repeat):
        for name, (cmd, stdout, stdin) in commands.items():
            times[name].append(run(cmd, env, stdout, stdin))
        walls = ", ".join(f"{name.split()[0]} {runs[-1][0]:.2f}s" for name, runs in times.items())
        print(f"round {round_ + 1}: {walls}", flush=True)
    load_after = os.getloadavg()
    inside = in_process(path) if args.in_process else None

    stdnum, ours = "(a) stdnum job, FILE > out", "(b) credit codes validate FILE > out"
    ratios = [s[0] / o[0] for s, o in zip(times[stdnum], times[ours], strict=True)]
    cpu_ratios = [s[1] / o[1] for s, o in zip(times[stdnum], times[ours], strict=True)]
    lines = {"input": args.codes, "stdnum": count_lines(stdnum_out), "ours": count_lines(ours_out)}

    print(f"\n{args.codes:,} codes, {path.name} ({path.stat().st_size / 2**20:.0f} MiB); {args.repeat} rounds;"
          " whole processes, bytecode cached")  # fmt: skip
    print(f"{'command':42} {'wall s':>8} {'min':>7} {'max':>7} {'CPU s':>7}")
    table = {}
    for name, runs in times.items():
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        table[name] = {"wall_median": statistics.median(walls), "wall_min": min(walls), "wall_max": max(walls),
                       "cpu_median": statistics.median(cpus), "walls": walls, "cpus": cpus}  # fmt: skip
        row = table[name]
        print(f"{name:42} {row['wall_median']:8.2f} {min(walls):7.2f} {max(walls):7.2f} {row['cpu_median']:7.2f}")
    ratio, cpu_ratio = statistics.median(ratios), statistics.median(cpu_ratios)
    help_s = table["(c) credit --help"]["wall_median"]
    print(f"whole-process ratio stdnum / ours: {ratio:.1f}x wall, {cpu_ratio:.1f}x CPU (median of the rounds);"
          f" target {RATIO_TARGET:.0f}x: {'met' if ratio >= RATIO_TARGET else 'NOT met'}")  # fmt: skip
    print(f"credit --help: {help_s:.2f} s; target {HELP_TARGET} s: {'met' if help_s < HELP_TARGET else 'NOT met'}")
    one = table["(d) echo CODE | credit codes validate"]["wall_median"]
    print(f"one code: {one:.2f} s")
    if inside is not None:
        print(f"in process (validate_file, no start-up, output to /dev/null): {inside:.2f} s,"
              f" {args.codes / inside:,.0f} codes/s")  # fmt: skip
    same = lines["stdnum"] == lines["ours"] == lines["input"]
    print(f"one output line per input line: {'yes' if same else 'NO'} {lines}")
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; {os.cpu_count()} CPUs")

    results = {
        "codes": args.codes, "file": path.name, "rounds": args.repeat, "runs": table,
        "ratio_wall": ratio, "ratio_cpu": cpu_ratio, "ratios_wall": ratios, "help_seconds": help_s,
        "one_code_seconds": one, "in_process_seconds": inside, "lines": lines,
        "load_average": {"before": load_before, "after": load_after}, "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }  # fmt: skip
    out = args.out / "cli-results.json"
    out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
