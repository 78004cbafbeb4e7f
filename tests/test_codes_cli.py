"""`credit codes validate`: one JSON object per input line, same verdicts as the reference."""

from __future__ import annotations

import json
import random

from typer.testing import CliRunner

from credit.cli import app
from transforms.identifiers import uscc_check_char, validate

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
