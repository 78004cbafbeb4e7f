"""``credit check``: the credit check (信用核查, 逢办必查) of one applicant, or of a CSV of applicants.

    credit check 91371083MA3C8XQ21K --office approval
    credit check 乳山市某某有限公司 --variant authorized --office market_regulation --pdf
    credit check --batch applicants.csv --variant authorized --office tax

One applicant: a summary in the terminal and the Chinese report (credit/check_page.py) under ``--out``
(default ``<data root>/checks/``). A batch: ``check_results.csv`` (one row per applicant) and one report
per applicant found, under ``--out`` (default ``<data root>/checks/batch-<time>/``). The warehouse is
opened read-only. Output file names are the subject's USCC or a hash, never text from the input.
Exit codes: 0 checked (found, ambiguous or not found), 2 a malformed query or option, 1 no warehouse.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from credit.credit_check import CheckResult

# Headers of the applicant column in a batch CSV, compared as catalog headers are (foundation.catalog.header_key).
# Per row the first filled column wins: a code before a free query before a name.
CODE_HEADERS = ("统一社会信用代码", "社会信用代码", "信用代码", "uscc", "证件号码", "身份证号", "身份证号码",
                "公民身份号码", "id")
QUERY_HEADERS = ("query", "查询内容", "查询", "申请人")
NAME_HEADERS = ("名称", "主体名称", "企业名称", "单位名称", "申请人名称", "姓名", "name")
RESULT_HEADERS = ["row", "input", "outcome", "reason", "message", "subject", "name", "grade", "warning",
                  "list_member", "measures", "report"]
SHOWN_ROWS = 40  # batch rows listed in the terminal; the CSV has them all


class VariantChoice(StrEnum):
    public = "public"
    authorized = "authorized"


def check(
    query: Annotated[str | None, typer.Argument(
        help="The applicant: unified social credit code, resident ID number, organization code or name.")] = None,
    variant: Annotated[VariantChoice, typer.Option(
        help="public: what the credit website may show; authorized: a department's own use (score, grade, "
             "payments, every record and its status).")] = VariantChoice.public,
    office: Annotated[str | None, typer.Option(
        help="The office checking: a department code of catalogs/departments.yaml (its measures are listed).")] = None,
    day: Annotated[str | None, typer.Option(
        "--as-of", help="Check as of this day, YYYY-MM-DD (default: today, Asia/Shanghai).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Where to write the report(s) (default: <data root>/checks/, a batch in checks/batch-<time>/).")] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also print each report to PDF with headless Chromium.")] = False,
    batch: Annotated[Path | None, typer.Option(
        help="A CSV of applicants (a column 统一社会信用代码, 名称, 证件号码 or query); writes check_results.csv.",
    )] = None,
) -> None:
    """信用核查: an applicant's register details, records, lists, warnings and the measures for the office."""
    from credit.cli import _context, _esc, _read_only_warehouse, console

    if (query is None) == (batch is None):
        console.print("[red]Give either one applicant (credit check <USCC | ID | name>) or --batch FILE.csv.[/red]")
        raise typer.Exit(2)
    settings, cat = _context()
    if office is not None and office not in cat.departments:
        known = ", ".join(f"{code} ({d.name_zh})" for code, d in cat.departments.items())
        console.print(f"[red]Unknown office {_esc(office)!r} (未知的核查单位): give a department code of "
                      f"catalogs/departments.yaml: {_esc(known)}[/red]")
        raise typer.Exit(2)
    try:
        as_of = date.fromisoformat(day) if day else None
    except ValueError:
        console.print(f"[red]--as-of must be YYYY-MM-DD, not {_esc(day)!r}[/red]")
        raise typer.Exit(2) from None
    queries = _read_batch(batch) if batch is not None else None
    with _read_only_warehouse(settings) as con:
        if queries is None:
            _one(con, cat, query or "", variant.value, office, as_of, out or settings.data_root / "checks", pdf)
        else:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            _batch(con, cat, queries, variant.value, office, as_of,
                   out or settings.data_root / "checks" / f"batch-{stamp}", pdf)


# --- one applicant -----------------------------------------------------------------------------------


def _one(con, cat, query: str, variant: str, office: str | None, as_of: date | None, out: Path, pdf: bool) -> None:
    from credit.cli import _esc, console
    from credit.credit_check import check as run_check

    result = run_check(con, cat, query, variant=variant, office=office, as_of=as_of)  # type: ignore[arg-type]
    _print_result(result)
    if result.outcome == "invalid":
        raise typer.Exit(2)
    path = _write_page(result, cat, out)
    console.print(f"Report: {_esc(path)}")
    if pdf:
        _pdf(path)


def _write_page(result: CheckResult, cat, out: Path) -> Path:
    from credit.check_page import write_check_page
    from credit.cli import _esc, console
    from credit.report import RestrictedDataError

    try:
        return write_check_page(result, cat, out)
    except RestrictedDataError as exc:
        console.print(f"[red]{_esc(exc)}[/red]")
        raise typer.Exit(1) from None


def _pdf(path: Path) -> Path | None:
    from credit.check_page import write_pdf
    from credit.cli import _esc, console

    try:
        written = write_pdf(path)
    except RuntimeError as exc:
        console.print(f"[yellow]No PDF written: {_esc(exc)}[/yellow]")
        return None
    if written is None:
        console.print("[yellow]No PDF written: headless Chromium (chromium) is not on PATH; open the HTML report in a "
                      "browser and print it to PDF (未生成PDF：未找到Chromium).[/yellow]")
    else:
        console.print(f"PDF:    {_esc(written)}")
    return written


def _yes(flag: bool) -> str:
    return "[red]yes 是[/red]" if flag else "no 否"


def _print_result(r: CheckResult) -> None:
    from rich.panel import Panel

    from credit.cli import Table, _esc, console
    from credit.credit_check import VARIANT_ZH

    title = f"信用核查 Credit check — {VARIANT_ZH[r.variant]} · {r.check_day}"
    if r.office_name:
        title += f" · {r.office_name}"
    if r.outcome == "invalid":
        console.print(Panel(f"[red]{_esc(r.message_en)}\n{_esc(r.message_zh)}[/red]", title=title, expand=False))
        return
    if r.outcome == "not_found":
        console.print(Panel(f"[yellow]Not found: {_esc(r.message_en)}\n{_esc(r.message_zh)}[/yellow]", title=title,
                            expand=False))
        return
    if r.outcome == "ambiguous":
        table = Table("#", "名称 name", "统一社会信用代码 / 类别", "主体类别 kind", title=_esc(r.message_zh))
        for i, c in enumerate(r.candidates, 1):
            table.add_row(str(i), _esc(c.name or "-"), _esc(c.reference(r.variant)), c.kind_zh)
        console.print(Panel(f"[yellow]Ambiguous: {_esc(r.message_en)}[/yellow]", title=title, expand=False))
        console.print(table)
        return
    assert r.subject is not None
    who = f"[bold]{_esc(r.subject.name or '-')}[/bold]  {_esc(r.subject.reference(r.variant))}"
    lines = [f"{who}  ({r.subject.kind_zh})", f"facts as of 信息截至 {r.facts_as_of or '-'}"]
    status = next((f.value for f in r.register if f.code == "DJZT"), None)
    if status:
        lines.append(f"登记状态 register status: {_esc(status)}")
    if r.score:
        colour = "red" if r.score.grade in ("C", "D") else "green"
        limit = f"; {_esc(r.score.grade_limit_zh)}" if r.score.grade_limit_zh else ""
        lines.append(f"grade 信用等级 [{colour}][bold]{r.score.grade}[/bold] {r.score.grade_name}[/{colour}], "
                     f"score 得分 {r.score.score:g} (run {r.score.run_id}){limit}")
    elif r.variant == "authorized":
        lines.append("grade 信用等级: not scored 未评价")
    lines.append(f"on the warning list 信用预警: {_yes(r.on_warning_list)}    on a list 名单: {_yes(r.list_member)}")
    console.print(Panel("\n".join(lines), title=title, expand=False))
    if r.records:
        table = Table("dataset 信息类别", "records 条数", "negative 失信", title="Records 信用记录")
        for g in r.records:
            table.add_row(g.name_zh, str(len(g.records)), str(g.negative) if g.negative else "")
        console.print(table)
    else:
        console.print("No records 无信用记录" + (" in publication (公开版)" if r.variant == "public" else ""))
    if r.measures:
        table = Table("measure", "类型", "措施", "因为 because",
                      title=f"Measures for {r.office_name or 'every office'} 适用的措施")
        for m in r.measures:
            table.add_row(m.id, m.kind_zh, _esc(m.name_zh), _esc("；".join(m.because)))
        console.print(table)
    else:
        console.print("No sanction or reward measure applies 无适用的惩戒/激励措施.")
    for note in r.notes:
        console.print(f"[dim]{_esc(note)}[/dim]")


# --- a batch -----------------------------------------------------------------------------------------------


def _read_batch(path: Path) -> list[tuple[int, str]]:
    """(line number, applicant) for every data row of the CSV; a clear message and exit 2 when unreadable."""
    from credit.cli import _esc, console
    from foundation.catalog import header_key

    try:
        raw = path.read_bytes()
    except OSError as exc:
        console.print(f"[red]cannot read {_esc(path)}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        console.print(f"[red]{_esc(path)} is neither UTF-8 nor GB18030 text: save it as a UTF-8 CSV.[/red]")
        raise typer.Exit(2)
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        console.print(f"[red]{_esc(path)} is empty: it needs a header (统一社会信用代码, 名称, 证件号码 or query) "
                      "and one applicant per line.[/red]")
        raise typer.Exit(2)
    keys = [header_key(h) for h in rows[0]]
    order = [i for group in (CODE_HEADERS, QUERY_HEADERS, NAME_HEADERS)
             for h in group for i, k in enumerate(keys) if k == header_key(h)]
    columns = list(dict.fromkeys(order))
    if not columns:
        console.print(f"[red]{_esc(path)}: no applicant column in the header {_esc(rows[0])}; name one "
                      f"{', '.join(CODE_HEADERS[:1] + NAME_HEADERS[:1] + CODE_HEADERS[4:5] + QUERY_HEADERS[:1])} "
                      "(申请人列的表头应为 统一社会信用代码、名称、证件号码 或 query).[/red]")
        raise typer.Exit(2)
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        value = next((row[i].strip() for i in columns if i < len(row) and row[i].strip()), "")
        out.append((n, value))
    return out


def _cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _result_row(n: int, r: CheckResult, report: Path | None) -> list[str]:
    public = r.variant == "public"
    if r.outcome == "found":
        assert r.subject is not None
        return [str(n), _cell(r.query), r.outcome, "", "", _cell(r.subject.reference(r.variant)),
                _cell(r.subject.name or ""), "" if public else (r.grade or ""), "yes" if r.on_warning_list else "no",
                "yes" if r.list_member else "no", ";".join(r.measure_ids), report.name if report else ""]
    names = "；".join(f"{c.name or '-'}（{c.reference(r.variant)}）" for c in r.candidates)
    return [str(n), _cell(r.query), r.outcome, ";".join(r.reasons), _cell(f"{r.message_zh} / {r.message_en}"), "",
            _cell(names), "", "", "", "", ""]


def _batch(con, cat, queries: list[tuple[int, str]], variant: str, office: str | None, as_of: date | None, out: Path,
           pdf: bool) -> None:
    import os
    import uuid

    from credit.cli import Table, _esc, _progress, console
    from credit.credit_check import check as run_check

    out.mkdir(parents=True, exist_ok=True)
    rows, results = [], []
    written: dict[str, Path] = {}
    with _progress() as progress:
        task = progress.add_task(f"Checking {len(queries)} applicants", total=len(queries))
        for n, query in queries:
            result = run_check(con, cat, query, variant=variant, office=office, as_of=as_of)  # type: ignore[arg-type]
            report = None
            if result.found:
                assert result.subject is not None
                key = result.subject.key
                if key not in written:
                    written[key] = _write_page(result, cat, out)
                report = written[key]
            rows.append(_result_row(n, result, report))
            results.append(result)
            progress.advance(task)
    path = out / "check_results.csv"
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(RESULT_HEADERS)
            writer.writerows(rows)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    table = Table("row", "input 查询", "outcome", "subject 主体", "grade", "warning", "list", "measures",
                  title=f"Credit checks 信用核查 ({variant})")
    for row in rows[:SHOWN_ROWS]:
        subject = row[6] if row[2] == "found" else (row[4].split(" / ")[0] if row[4] else "")
        colour = {"found": "green", "ambiguous": "yellow", "not_found": "yellow", "invalid": "red"}[row[2]]
        table.add_row(row[0], _esc(row[1]), f"[{colour}]{row[2]}[/{colour}]", _esc(subject), row[7], row[8], row[9],
                      row[10])
    console.print(table)
    if len(rows) > SHOWN_ROWS:
        console.print(f"... {len(rows) - SHOWN_ROWS} more rows in the CSV")
    counts = {k: sum(1 for r in results if r.outcome == k) for k in ("found", "ambiguous", "not_found", "invalid")}
    console.print(f"{len(results)} applicants: {counts['found']} found, {counts['ambiguous']} ambiguous, "
                  f"{counts['not_found']} not found, {counts['invalid']} invalid; "
                  f"{sum(r.on_warning_list for r in results)} on the warning list, "
                  f"{sum(r.list_member for r in results)} on a list, "
                  f"{sum(bool(r.measures) for r in results)} with measures")
    console.print(f"Results: {_esc(path)}\nReports: {len(written)} in {_esc(out)}")
    if pdf and written:
        from credit.check_page import find_chromium

        if find_chromium() is None:
            console.print("[yellow]No PDF written: headless Chromium (chromium) is not on PATH.[/yellow]")
        else:
            for page in written.values():
                _pdf(page)
