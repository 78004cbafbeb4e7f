"""`credit codes validate`: one JSON object per input line, same verdicts as the reference.

The command reads bytes in large blocks and assembles its JSON with Arrow
(warehouse/code_validation.py). Its output must stay byte for byte what the former
implementation wrote: lines as Python's text mode split them (universal newlines for a file,
``\\n`` only for standard input, ``errors="replace"`` for a file), verdicts of
transforms/identifiers_arrow.py, DuckDB's ``to_json`` of each row.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys

import duckdb
import pyarrow as pa
import pytest
from test_identifiers import ORG_CASES, RID_CASES, STDNUM_VALID_USCC, USCC_CASES, fullwidth
from typer.testing import CliRunner

from credit.cli import app
from transforms.identifiers import uscc_check_char, validate
from transforms.identifiers_arrow import validate_codes
from warehouse.code_validation import validate_file, validate_lines

pytestmark = pytest.mark.unit

VALID = "91110000600037341L"


def _run(text: str, *args: str):
    done = CliRunner().invoke(app, ["codes", "validate", "-", *args], input=text)
    assert done.exit_code == 0, done.output  # exit 0 even when codes are invalid
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_one_object_per_line_in_order():
    lines = [VALID, "９１１１００００６０００３７３４１Ｌ", "91110000600037341X", "", "913710831234568000"]
    got = _run("\n".join(lines) + "\n")
    assert [g["input"] for g in got] == lines
    assert [(g["normalized"], g["kind"], g["valid"], g["reasons"]) for g in got] == [
        (VALID, "uscc", True, []),
        (VALID, "uscc", True, []),  # full-width folded
        ("91110000600037341X", "uscc", False, ["uscc_check_digit"]),
        (None, "unknown", False, ["empty"]),
        ("913710831234568000", "uscc", False, ["uscc_excel_damage"]),  # Excel kept 15 digits
    ]


def test_forced_kind():
    (got,) = _run(VALID + "\n", "--kind", "org_code")
    assert (got["kind"], got["reasons"]) == ("org_code", ["org_length"])


def test_agrees_with_the_python_reference_on_random_codes():
    rng = random.Random(7)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    lines = []
    for _ in range(3000):
        body = "91" + rng.choice(["371083", "371002", "999999"]) + "".join(rng.choice(alphabet) for _ in range(9))
        code = body + uscc_check_char(body)
        if rng.random() < 0.5:  # one substituted character
            i = rng.randrange(18)
            code = code[:i] + rng.choice(alphabet + "IOZ") + code[i + 1 :]
        lines.append(code)
    got = _run("\n".join(lines) + "\n")
    for line, result in zip(lines, got, strict=True):
        ref = validate(line)
        assert (result["normalized"], result["kind"], result["valid"], tuple(result["reasons"])) == (
            ref.normalized, ref.kind, ref.valid, ref.reasons), line


# --- the exact text -------------------------------------------------------------------------


def _former(lines: list[str], kind: str | None = None) -> list[str]:
    """What the former implementation wrote for these lines: DuckDB's to_json of each row."""
    batch = validate_codes(pa.array(lines, pa.string()), kind)
    con = duckdb.connect()
    con.register("verdicts", pa.Table.from_batches([batch]).append_column("i", pa.array(range(len(lines)))))
    rows = con.sql(
        "SELECT to_json({'input': input, 'normalized': normalized, 'kind': kind, 'valid': valid, 'reasons': reasons})"
        " FROM verdicts ORDER BY i"
    ).fetchall()
    con.close()
    return [row for (row,) in rows]


def _varied_lines() -> list[str]:
    """Codes of every kind and defect, feed formatting, and every character of the BMP (but
    the line ends) alone and inside a code: the JSON escapes and the normalization of each."""
    cases = [raw for raw, *_ in USCC_CASES + ORG_CASES + RID_CASES] + STDNUM_VALID_USCC
    lines = cases + [fullwidth(c) for c in cases] + [c.lower() for c in cases] + ["", " ", "\u3000", "-"]
    chars = [chr(c) for c in range(0x10000) if c not in (0x0A, 0x0D) and not 0xD800 <= c <= 0xDFFF]
    chars += ["\U0001f600", "\U00020000", "\U0010ffff"]
    lines += chars + [VALID[:9] + c + VALID[9:] for c in chars]
    lines += ['"' + VALID + '"', "\\" + VALID, VALID + "\x00", "＂" + VALID, "＼", "\x7f", "\u2028", "\ufeff" + VALID]
    return lines


@pytest.mark.parametrize("kind", [None, "uscc", "org_code", "resident_id"])
def test_writes_what_duckdb_to_json_wrote(kind):
    lines = _varied_lines()
    assert list(validate_lines(lines, kind)) == _former(lines, kind)


def test_exact_text_of_escapes_and_nulls():
    got = list(validate_lines(['"a\\\x01\x1b\x1f\t', "", "＂x"]))  # (\x1f and \t are separators)
    assert got == [
        '{"input":"\\"a\\\\\\u0001\\u001B\\u001F\\t","normalized":"\\"A\\\\\\u0001\\u001B",'
        '"kind":"unknown","valid":false,"reasons":["uscc_length"]}',
        '{"input":"","normalized":null,"kind":"unknown","valid":false,"reasons":["empty"]}',
        '{"input":"＂x","normalized":"\\"X","kind":"unknown","valid":false,"reasons":["uscc_length"]}',
    ]


# --- lines as text mode split them, block after block ------------------------------------------


def _text_mode_lines(data: bytes, stdin: bool) -> list[str]:
    """The lines the former implementation read: a file opened with encoding="utf-8",
    errors="replace" (universal newlines), or standard input (lines end at \\n only)."""
    if stdin:
        return list(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="\n"))
    return list(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace"))


def _validated(data: bytes, stdin: bool = False, block_bytes: int = 1 << 23, kind: str | None = None) -> bytes:
    out = io.BytesIO()
    validate_file(io.BytesIO(data), out, kind, stdin=stdin, block_bytes=block_bytes)
    return out.getvalue()


def _line_by_line(data: bytes, stdin: bool = False, kind: str | None = None) -> bytes:
    return "".join(line + "\n" for line in validate_lines(_text_mode_lines(data, stdin), kind)).encode()


def _messy_bytes(seed: int, utf8: bool) -> bytes:
    """Codes, blanks, full-width and non-BMP text, with every kind of line end (\\n, \\r\\n, \\r,
    \\r\\r\\n, \\n\\r, none at the end) and, unless ``utf8``, bytes that are not UTF-8."""
    rng = random.Random(seed)
    pieces = [VALID, fullwidth(VALID), "9111 0000-6000 3734 1l", "", " ", "\u3000", "é中😀", '"\\\t\x00', "\ufeff"]
    ends = [b"\n", b"\r\n", b"\r", b"\r\r\n", b"\n\r", b"\r\r"]
    bad = [b"\xff", b"\xe4\xb8", b"\xc3", b"\x80\x80", b"\xed\xa0\x80", b"\xf0\x9f\x98"]
    out = bytearray(b"\xef\xbb\xbf" if seed % 2 else b"")
    for _ in range(400):
        line = rng.choice(pieces).encode()
        if not utf8 and rng.random() < 0.2:
            i = rng.randrange(len(line) + 1)
            line = line[:i] + rng.choice(bad) + line[i:]
        out += line + rng.choice(ends)
    return bytes(out) + rng.choice([b"", VALID.encode(), b"\r", "９".encode()])


@pytest.mark.parametrize("block_bytes", [1, 3, 64, 1000, 1 << 23])
@pytest.mark.parametrize("stdin", [False, True])
def test_blocks_of_any_size_give_the_lines_of_text_mode(block_bytes, stdin):
    for seed in range(4):
        data = _messy_bytes(seed, utf8=stdin)
        assert _validated(data, stdin, block_bytes) == _line_by_line(data, stdin), (seed, block_bytes)


def test_a_file_spanning_many_blocks_gives_the_lines_one_by_one():
    rng = random.Random(3)
    choices = [VALID, "９１", "91110000600037341X", "", "60003734-1", "360426199101010071"]
    lines = [rng.choice(choices) for _ in range(50_000)]
    data = "\r\n".join([*lines, VALID]).encode()  # CRLF, the last line without a line end
    expected = _line_by_line(data)
    assert expected.count(b"\n") == len(lines) + 1
    for block_bytes in (4096, 65_537, 1 << 20):
        assert _validated(data, block_bytes=block_bytes) == expected
    assert _validated(data, block_bytes=4096, kind="org_code") == _line_by_line(data, kind="org_code")


def test_line_ends_exactly(tmp_path):
    data = b"91110000600037341L\r\n\r\n\xff\r 1\n\r"
    path = tmp_path / "codes.txt"
    path.write_bytes(data)
    done = CliRunner().invoke(app, ["codes", "validate", str(path)])
    assert done.exit_code == 0
    assert done.stdout == (
        '{"input":"91110000600037341L","normalized":"91110000600037341L","kind":"uscc","valid":true,"reasons":[]}\n'
        '{"input":"","normalized":null,"kind":"unknown","valid":false,"reasons":["empty"]}\n'
        '{"input":"\ufffd","normalized":"\ufffd","kind":"unknown","valid":false,"reasons":["uscc_length"]}\n'
        '{"input":" 1","normalized":"1","kind":"unknown","valid":false,"reasons":["uscc_length"]}\n'
        '{"input":"","normalized":null,"kind":"unknown","valid":false,"reasons":["empty"]}\n'
    )
    # Standard input: lines end at \n only, the \r before it dropped; a final line without one.
    piped = CliRunner().invoke(app, ["codes", "validate"], input="a\rb\r\r\n\r")
    assert piped.exit_code == 0
    assert piped.stdout == (
        '{"input":"a\\rb","normalized":"AB","kind":"unknown","valid":false,"reasons":["uscc_length"]}\n'
        '{"input":"","normalized":null,"kind":"unknown","valid":false,"reasons":["empty"]}\n'
    )
    assert CliRunner().invoke(app, ["codes", "validate"], input="").stdout == ""


def test_errors_exit_2(tmp_path):
    missing = CliRunner().invoke(app, ["codes", "validate", str(tmp_path / "missing.txt")])
    assert missing.exit_code == 2 and "cannot read" in missing.stdout
    bogus = CliRunner().invoke(app, ["codes", "validate", "-", "--kind", "bogus"], input=VALID)
    assert bogus.exit_code == 2 and "--kind must be one of uscc, org_code, resident_id" in bogus.stdout
    # Standard input is decoded strictly (as before: surrogates that Arrow refused).
    not_utf8 = CliRunner().invoke(app, ["codes", "validate"], input=b"91\xff\n")
    assert not_utf8.exit_code == 2
    message = "'utf-8' codec can't encode character '\\udcff' in position 2: surrogates not allowed"
    assert message in " ".join(not_utf8.stdout.split())


# --- start-up -----------------------------------------------------------------------------------

HEAVY = {"duckdb", "pandas", "pyarrow", "numpy", "airflow", "great_expectations", "matplotlib", "sqlalchemy"}


def _imported(*args: str, stdin: str = "") -> set[str]:
    """The top-level packages `credit ARGS` imports (python -X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "credit.cli", *args],
        input=stdin, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}


def test_help_and_validate_import_only_what_they_use():
    assert not _imported("--help") & (HEAVY | {"warehouse", "transforms", "foundation", "pydantic"})
    assert _imported("codes", "validate", stdin=VALID + "\n") & HEAVY == {"numpy", "pyarrow"}
