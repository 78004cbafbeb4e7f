"""The demo city (sample_city/): determinism, layout, routing and a truthful truth.

The last tests re-read every feed with a small reference reader written from the loader's
contract (row numbering, normalization, reasons) and check that it finds exactly the
defects listed in truth/defects.csv, and nothing in the other rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import unicodedata
from collections import Counter, defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import openpyxl
import pytest

from foundation.catalog import CODE_TYPES, Dataset, FieldType, get_catalog, header_key
from sample_city import generate
from transforms import identifiers
from transforms.reasons import ALL_REASONS

pytestmark = pytest.mark.integration

SMALL = 300  # entities: keeps every test fast


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("city")
    generate(root, seed=371083, entities=SMALL)
    return root


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _truth(root: Path, name: str) -> list[dict]:
    with (root / "truth" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- determinism and layout -----------------------------------------------------------------


@pytest.mark.slow  # generates the city twice more
def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path, city):
    again = tmp_path / "again"
    other = tmp_path / "other"
    summary = generate(again, seed=371083, entities=SMALL)
    generate(other, seed=7, entities=SMALL)
    assert _hashes(again) == _hashes(city)  # XLSX included: no timestamps inside
    changed = {k for k, v in _hashes(other).items() if _hashes(city).get(k) != v}
    assert len(changed) > len(_hashes(city)) // 2
    assert summary["files"] == len(_truth(city, "files.csv"))
    assert summary["rows"] == sum(int(r["rows_in"]) for r in _truth(city, "files.csv"))
    assert summary["defects"] == len(_truth(city, "defects.csv"))


@pytest.mark.slow  # generates the city in two more processes
def test_output_does_not_depend_on_string_hashing(tmp_path, city):
    """Another process with another PYTHONHASHSEED writes the same bytes (no set-order leaks)."""
    root = tmp_path / "subprocess"
    code = f"from sample_city import generate; generate({str(root)!r}, 371083, {SMALL})"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=Path(__file__).parents[1])
    assert _hashes(root) == _hashes(city)


def test_inbox_holds_only_the_feeds_and_truth_sits_beside_it(city):
    files = _truth(city, "files.csv")
    in_inbox = {
        p.relative_to(city / "inbox").as_posix() for p in (city / "inbox").rglob("*") if p.is_file()
    }
    assert in_inbox == {r["file"] for r in files}
    assert all(len(Path(f).parts) == 2 for f in in_inbox)  # <department>/<file>
    assert not any("truth" in p.name for p in (city / "inbox").rglob("*"))
    assert sorted(p.name for p in (city / "truth").iterdir()) == ["defects.csv", "files.csv", "timeliness.csv"]
    assert {p.name for p in city.iterdir()} == {"inbox", "truth"}


def test_every_feed_routes_to_exactly_its_dataset(city):
    catalog = get_catalog()
    for row in _truth(city, "files.csv"):
        department, file_name = row["file"].split("/")
        assert department == row["department"]
        assert [d.id for d in catalog.route(department, file_name)] == [row["dataset_id"]], row[
            "file"
        ]


def test_formats_and_encodings_cover_what_feeds_send(city):
    kinds = {(r["format"], r["encoding"]) for r in _truth(city, "files.csv")}
    assert {
        ("csv", "utf-8-sig"),
        ("csv", "utf-8"),
        ("csv", "gb18030"),
        ("csv", "utf-8+gb18030"),
        ("xlsx", ""),
        ("jsonl", "utf-8"),
    } <= kinds
    datasets = {r["dataset_id"] for r in _truth(city, "files.csv")}
    # The snapshot is the collection catalog's feeds of 2022; the serious-dishonesty list and the repairs
    # (publication, 2025 on) come with the two-year city (tests/test_history_publication.py).
    assert datasets == set(get_catalog().datasets) - {"credit_repair", "dishonesty_list"}
    register = city / "inbox/market_regulation/legal_entity_register_2022.csv"
    assert register.read_bytes().startswith(b"\xef\xbb\xbf")


# --- truth self-consistency -----------------------------------------------------------------


def test_truth_counts_add_up(city):
    files = _truth(city, "files.csv")
    defects = _truth(city, "defects.csv")
    quarantined = defaultdict(set)
    for d in defects:
        assert d["expected_outcome"] in ("quarantine", "normalized")
        if d["expected_outcome"] == "quarantine":
            quarantined[d["file"]].add(int(d["row"]))
            code, _, field = d["expected_reason"].partition(":")
            assert code in ALL_REASONS
            assert field == d["field"]
            assert d["expected_value"] == ""
        else:
            assert d["expected_reason"] == "" and d["field"]
    per_row = Counter((d["file"], d["row"]) for d in defects)
    assert max(per_row.values()) == 1  # one defect per row
    for f in files:
        rows_in, loaded, bad = int(f["rows_in"]), int(f["rows_loaded"]), int(f["rows_quarantined"])
        assert rows_in == loaded + bad
        assert bad == len(quarantined[f["file"]])
        assert f["status"] == ("rejected" if loaded == 0 else "loaded")
    rejected = [f for f in files if f["status"] == "rejected"]
    assert [f["department"] for f in rejected] == ["transport"]


def test_every_defect_row_exists_in_its_file(city):
    counts = {f["file"]: int(f["rows_in"]) for f in _truth(city, "files.csv")}
    for name, rows_in in counts.items():
        assert len(read_feed(city / "inbox" / name)[1]) == rows_in, name
    for d in _truth(city, "defects.csv"):
        assert 1 <= int(d["row"]) <= counts[d["file"]]


def test_register_codes_pass_the_identifier_checks(city):
    defects = {(d["file"], int(d["row"])): d for d in _truth(city, "defects.csv")}
    checked = 0
    for f in _truth(city, "files.csv"):
        if f["dataset_id"] != "legal_entity":
            continue
        headers, rows = read_feed(city / "inbox" / f["file"])
        column = next(
            i for i, h in enumerate(headers) if header_key(h) in {"统一社会信用代码", "tyshxydm"}
        )
        for number, row in enumerate(rows, start=1):
            d = defects.get((f["file"], number))
            if d and d["expected_outcome"] == "quarantine":
                continue
            result = identifiers.validate(row.cells[column], "uscc")
            assert result.valid, (f["file"], number, row.cells[column], result.reasons)
            checked += 1
    assert checked >= SMALL


def test_valid_codes_also_pass_python_stdnum(city):
    """A second opinion on the check characters, independent of transforms.identifiers."""
    from stdnum.cn import ric, uscc

    defects = {(d["file"], int(d["row"])) for d in _truth(city, "defects.csv")}
    codes, ids = set(), set()
    for f in _truth(city, "files.csv"):
        if f["status"] == "rejected":
            continue
        headers, rows = read_feed(city / "inbox" / f["file"])
        ds = get_catalog().dataset(f["dataset_id"])
        mapping = _mapping(ds, headers)
        for number, record in enumerate(rows, start=1):
            if (f["file"], number) in defects:
                continue
            for i, code in mapping.items():
                value = record.cells[i]
                if value and ds.field(code).type is FieldType.USCC:
                    codes.add(value)
                elif value and ds.field(code).type is FieldType.RESIDENT_ID:
                    ids.add(value)
    assert len(codes) > SMALL and len(ids) > 100
    assert [c for c in codes if not uscc.is_valid(c)] == []
    assert [i for i in ids if not ric.is_valid(i)] == []


def test_excel_numbers_and_awkward_cells_are_really_there(city):
    sheet = openpyxl.load_workbook(city / "inbox/urban_management/penalty_zhzf_2022.xlsx").active
    numbers = [
        c.value for row in sheet.iter_rows(min_row=2) for c in row if isinstance(c.value, float)
    ]
    assert numbers and all(str(int(Decimal(format(v, ".15g")))).endswith("000") for v in numbers)
    water = (city / "inbox/water_supply/utility_water_2022.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        water.decode("utf-8")
    penalty = (city / "inbox/market_regulation/xzcf_scjg_2022.csv").read_bytes()
    assert b"\xff\xfe" in penalty
    assert "=cmd|' /C calc'!A0" in penalty.decode("utf-8", errors="replace")


# --- a reference reader and checker written from the loader's contract -------------------


class Record:
    def __init__(self, cells: list | None, error: str | None = None) -> None:
        self.cells = cells or []
        self.error = error  # ragged_row / undecodable_bytes


def _excel_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        text = format(value, ".15g")  # Excel keeps 15 significant digits
        return str(int(Decimal(text))) if Decimal(text) == Decimal(text).to_integral() else text
    return str(value)


def read_feed(path: Path) -> tuple[list[str], list[Record]]:
    data = path.read_bytes()
    if path.suffix == ".xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
        return [str(h) for h in rows[0]], [Record([_excel_text(v) for v in r]) for r in rows[1:]]
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in data.decode("utf-8").splitlines()]
        headers = list(records[0])
        return headers, [
            Record([None if r.get(h) is None else str(r[h]) for h in headers]) for r in records
        ]
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    assert lines[-1] == b""

    def decode(raw: bytes) -> str | None:
        for encoding in ("utf-8", "gb18030"):
            try:
                return raw.rstrip(b"\r").decode(encoding)
            except UnicodeDecodeError:
                pass
        return None

    headers = next(csv.reader([decode(lines[0])]))
    records = []
    for raw in lines[1:-1]:
        text = decode(raw)
        if text is None:
            records.append(Record(None, "undecodable_bytes"))
            continue
        cells = next(csv.reader([text]))
        records.append(Record(cells, None if len(cells) == len(headers) else "ragged_row"))
    return headers, records


_DATE_PATTERNS = [
    re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
]


def _parse_date(text: str) -> date | None:
    text = re.sub(r"[ T]\d{1,2}:\d{2}(:\d{2})?$", "", text)
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            try:
                return date(*map(int, match.groups()))
            except ValueError:
                return None
    return None


def _parse_amount(text: str, unit: str | None) -> Decimal | None:
    text = text.replace(",", "")
    if unit and text.endswith(unit):
        text = text[: -len(unit)]
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


_CODE_CHECKS = {
    FieldType.USCC: identifiers.uscc_reasons,
    FieldType.ORG_CODE: identifiers.org_code_reasons,
    FieldType.RESIDENT_ID: identifiers.resident_id_reasons,
}


def check_row(ds: Dataset, raw: dict[str, str | None]) -> tuple[list[str], dict[str, object]]:
    """Reasons for one mapped row and its clean values, per the loader's contract."""
    reasons, clean = [], {}
    for code, text in raw.items():
        spec = ds.field(code)
        value = None if text is None else unicodedata.normalize("NFKC", text).strip() or None
        if value is not None and spec.type in CODE_TYPES:
            value = identifiers.normalize_code(value)
        if value is None:
            if spec.required:
                reasons.append(f"required_missing:{code}")
            continue
        if spec.type is FieldType.ENUM:
            parts = re.split(r"[;；、,]", value) if spec.multi else [value]
            if any(p.strip() not in spec.allowed_values for p in parts):
                reasons.append(f"value_not_allowed:{code}")
        elif spec.type is FieldType.DATE:
            value = _parse_date(value)
            if value is None:
                reasons.append(f"invalid_date:{code}")
        elif spec.type is FieldType.AMOUNT:
            value = _parse_amount(value, spec.unit)
            if value is None:
                reasons.append(f"invalid_amount:{code}")
            elif not (spec.min_value or 0) <= value <= (spec.max_value or 10**12):
                reasons.append(f"out_of_range:{code}")
        elif spec.type is FieldType.INTEGER:
            if not value.isdigit() or not (spec.min_value or 0) <= int(value) <= (
                spec.max_value or 10**12
            ):
                reasons.append(f"invalid_integer:{code}")
        elif spec.type in CODE_TYPES:
            reasons += [f"{r}:{code}" for r in _CODE_CHECKS[spec.type](value)]
        if isinstance(value, str) and len(value) > spec.max_length:
            reasons.append(f"field_too_long:{code}")
        clean[code] = value
    for rule in ds.date_order:
        start, end = clean.get(rule.start), clean.get(rule.end)
        if isinstance(start, date) and isinstance(end, date) and start > end:
            reasons.append(f"date_order:{rule.end}")
    return reasons, clean


def _mapping(ds: Dataset, headers: list[str]) -> dict[int, str]:
    keys = {header_key(a): f.code for f in ds.fields for a in (f.code, f.name_zh, *f.aliases)}
    return {i: keys[header_key(h)] for i, h in enumerate(headers) if header_key(h) in keys}


def audit(root: Path) -> list[str]:
    """Compare what the contract finds in every feed with truth/defects.csv; [] when they agree."""
    catalog = get_catalog()
    files = _truth(root, "files.csv")
    expected = {(d["file"], int(d["row"])): d for d in _truth(root, "defects.csv")}
    problems: list[str] = []
    register: dict[str, str] = {}
    # the register first: other feeds' codes must be registered under the same name
    for f in sorted(files, key=lambda f: f["dataset_id"] != "legal_entity"):
        ds = catalog.dataset(f["dataset_id"])
        headers, records = read_feed(root / "inbox" / f["file"])
        mapping = _mapping(ds, headers)
        seen_keys: set[tuple] = set()
        for number, record in enumerate(records, start=1):
            want = expected.get((f["file"], number))
            where = f"{f['file']} row {number}"
            if not mapping:
                reasons, clean = ["unrecognized_header"], {}
            elif record.error:
                reasons, clean = [record.error], {}
            else:
                raw = {code: record.cells[i] for i, code in mapping.items()}
                reasons, clean = check_row(ds, raw)
                key = tuple(str(clean.get(k)) for k in ds.key_fields)
                if not reasons:
                    if key in seen_keys:
                        reasons = ["duplicate_row"]
                    seen_keys.add(key)
            if want is None or want["expected_outcome"] == "normalized":
                if reasons:
                    problems.append(f"{where}: unexpected {reasons}")
                    continue
            if want is None:
                pass
            elif want["expected_outcome"] == "quarantine":
                if reasons != [want["expected_reason"]]:
                    problems.append(f"{where}: expected {want['expected_reason']}, found {reasons}")
                continue
            else:
                got = clean.get(want["field"])
                got = (
                    got.isoformat()
                    if isinstance(got, date)
                    else (format(got.normalize(), "f") if isinstance(got, Decimal) else got)
                )
                if got != want["expected_value"]:
                    problems.append(
                        f"{where}: {want['field']} = {got!r}, expected {want['expected_value']!r}"
                    )
            # a loaded row: its subject code must be registered under exactly its name
            subject = ds.subject
            if ds.category == "register":
                register[clean[subject.uscc_field]] = clean[subject.name_field]
            elif subject.uscc_field and clean.get(subject.uscc_field):
                code, name = clean[subject.uscc_field], clean[subject.name_field]
                if register.get(code) != name:
                    problems.append(
                        f"{where}: {code} {name} is not in the register under that name"
                    )
    return problems


def test_the_contract_finds_exactly_the_recorded_defects(city):
    assert audit(city) == []


def test_every_defect_kind_is_present(city):
    kinds = Counter(d["defect"] for d in _truth(city, "defects.csv"))
    required = {
        "uscc_check_digit",
        "uscc_excel_damage",
        "wrong_kind_registration_number",
        "wrong_kind_org_code",
        "uscc_placeholder",
        "rid_check_digit",
        "required_missing",
        "invalid_date",
        "value_not_allowed",
        "invalid_amount",
        "date_order",
        "duplicate_row",
        "ragged_row",
        "undecodable_bytes",
        "unrecognized_header",
        "uscc_fullwidth",
        "uscc_lowercase",
        "uscc_spaced",
        "date_alt_format",
        "amount_thousands",
        "amount_unit",
        "formula_text",
        "gb18030_line",
    }
    assert required <= set(kinds), required - set(kinds)
    assert kinds["undecodable_bytes"] == 1
