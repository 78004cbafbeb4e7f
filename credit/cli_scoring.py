"""``credit score``: scores, grades, explanations and credit warnings (信用评价、信用预警).

    credit score run --as-of 2026-11-30          facts, scores and the warning list as of a day
    credit score run --from 2025-01 --to 2026-11  every month's last day, in order (a backfill)
    credit score show <USCC> [--run RUN]          a subject's score, line by line
    credit score runs                             every run
    credit score warnings [--as-of DAY]           the warning list and the yearly repair guidance
"""

from __future__ import annotations

import calendar
from datetime import date, datetime
from typing import Annotated

import typer

score_app = typer.Typer(no_args_is_help=True, help="Credit scores, grades with explanations, credit warnings "
                                                   "(信用评价、信用预警).")


def _month_ends(first: str, last: str) -> list[date]:
    try:
        a, b = (datetime.strptime(v, "%Y-%m").date() for v in (first, last))
    except ValueError:
        raise typer.BadParameter(f"--from and --to must be months like 2025-03, not {first!r} / {last!r}") from None
    if a > b:
        raise typer.BadParameter("--from is after --to")
    days = []
    y, m = a.year, a.month
    while (y, m) <= (b.year, b.month):
        days.append(date(y, m, calendar.monthrange(y, m)[1]))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return days


@score_app.command("run")
def score_run(
    day: Annotated[str | None, typer.Option("--as-of", help="Score as of this day, YYYY-MM-DD (default: today, "
                                                             "Asia/Shanghai): only files received by then.")] = None,
    first: Annotated[str | None, typer.Option("--from", help="Backfill: first month (its last day is scored).")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Backfill: last month.")] = None,
    model: Annotated[str | None, typer.Option(help="Model id of catalogs/scoring/ (default: the one in force "
                                                   "on the day).")] = None,
) -> None:
    """Build the credit-records mart, score every registered subject and list credit warnings."""
    from credit.cli import Table, _esc, _progress, _warehouse_as_of, console
    from credit.scoring_job import score_days
    from foundation.catalog import CatalogError

    settings, cat, as_of = _warehouse_as_of(day)
    if (first is None) != (last is None):
        console.print("[red]Give both --from and --to (e.g. --from 2025-01 --to 2026-11).[/red]")
        raise typer.Exit(2)
    days = _month_ends(first, last) if first and last else [as_of]
    try:
        with _progress() as bar:
            task = bar.add_task("Scoring", total=len(days))
            outcomes = score_days(settings, cat, days, model_id=model, triggered_by="cli",
                                  progress=lambda _: bar.advance(task))
    except CatalogError as exc:
        console.print(f"[red]Nothing was scored: the scoring catalog is invalid:[/red]\n{_esc(exc)}")
        raise typer.Exit(2) from None
    table = Table("as of", "run", "model", "facts", "subjects", "A", "B", "C", "D", "warned",
                  title="Credit scores (信用评价)")
    for o in outcomes:
        g = o.run.grades
        table.add_row(str(o.as_of), o.run.run_id, o.run.model_id, f"{o.facts:,}", f"{o.run.subjects:,}",
                      *(str(g.get(k, 0)) for k in "ABCD"), str(o.warned))
    console.print(table)
    _print_guidance(outcomes[-1].guidance)
    console.print(f"Parquet: {settings.data_root / 'mart'}  ·  a subject: credit score show <USCC>  ·  "
                  "a credit report: credit check <USCC|name>")


def _print_guidance(guidance) -> None:
    from credit.cli import Table, console

    table = Table("year", "subjects guided (预警指导)", "repairs completed (完成修复)", "of them after guidance",
                  "target", title="Repair guidance per year (信用修复指导)")
    for y in guidance:
        table.add_row(str(y.year), str(y.subjects_guided), str(y.repairs_completed), str(y.repairs_by_guided),
                      str(y.target))
    console.print(table)


@score_app.command("show")
def score_show(
    code: Annotated[str, typer.Argument(help="The subject's unified social credit code.")],
    run: Annotated[str | None, typer.Option(help="Run id (default: the latest).")] = None,
) -> None:
    """One subject's score and grade, and every line that made it (the explanation)."""
    from credit.cli import Table, _context, _esc, _read_only_warehouse, console
    from transforms.identifiers import normalize_code
    from warehouse.scoring import latest_run

    settings, _ = _context()
    with _read_only_warehouse(settings) as con:
        run_id = run or latest_run(con)
        if run_id is None:
            console.print("[yellow]No score run yet: credit score run --as-of YYYY-MM-DD[/yellow]")
            raise typer.Exit(1)
        key = normalize_code(code)
        rows = con.execute("SELECT s.score, s.grade, s.grade_by_points, s.grade_limit_zh, r.model_id, r.as_of "
                           "FROM mart.scores s JOIN mart.score_runs r USING (run_id) "
                           "WHERE s.run_id = ? AND s.subject_key = ?", [run_id, key]).fetchall()
        if not rows:
            console.print(f"[yellow]{_esc(code)}: not scored in run {_esc(run_id)} (not a registered subject, or "
                          "not a valid code: credit codes validate)[/yellow]")
            raise typer.Exit(1)
        score, grade, by_points, limit, model_id, as_of = rows[0]
        lines = con.execute("SELECT line_no, line_kind, indicator_id, dataset_id, document, decided, status, "
                            "category, age_months, measure, raw_points, factor, points, note_zh "
                            "FROM mart.score_lines WHERE run_id = ? AND subject_key = ? ORDER BY line_no",
                            [run_id, key]).fetchall()
    console.print(f"[bold]{_esc(key)}[/bold]  score {score:g}  grade [bold]{grade}[/bold]"
                  + (f" (points give {by_points}: {_esc(limit)})" if limit else "")
                  + f"  ·  model {model_id} as of {as_of}  ·  run {_esc(run_id)}")
    table = Table("#", "line", "indicator", "record", "decided", "status", "category", "age (months)", "value",
                  "points", "note", title="Explanation (评价明细)")
    for no, kind, ind, ds, doc, decided, status, cat, age, measure, raw, factor, points, note in lines:
        detail = f"{raw:g} × {factor:g}" if kind == "fact" and factor not in (None, 1) else ""
        table.add_row(str(no), kind, ind or "", _esc(f"{ds or ''} {doc or ''}".strip()), str(decided or ""),
                      status or "", _esc(cat or ""), "" if age is None else str(age),
                      "" if measure is None else f"{measure:g}", f"{points:+g} {detail}".strip(), _esc(note or ""))
    console.print(table)


@score_app.command("runs")
def score_runs() -> None:
    """Every score run, newest first."""
    from credit.cli import Table, _context, _read_only_warehouse, console

    settings, _ = _context()
    with _read_only_warehouse(settings) as con:
        rows = con.execute("SELECT run_id, model_id, as_of, subjects, facts, finished_at, triggered_by "
                           "FROM mart.score_runs ORDER BY as_of DESC, finished_at DESC").fetchall()
    table = Table("run", "model", "as of", "subjects", "facts", "finished", "by", title="Score runs")
    for run_id, model_id, as_of, subjects, facts, finished, by in rows:
        table.add_row(run_id, model_id, str(as_of), f"{subjects:,}", f"{facts:,}", f"{finished:%Y-%m-%d %H:%M}",
                      by or "")
    console.print(table)
    if not rows:
        console.print("No run yet: credit score run --as-of YYYY-MM-DD")


@score_app.command("warnings")
def score_warnings(
    day: Annotated[str | None, typer.Option("--as-of", help="The list of this day (default: the latest).")] = None,
) -> None:
    """The credit-warning list (信用预警名单) of a day and the yearly repair guidance against the target."""
    from credit.cli import Table, _context, _esc, _read_only_warehouse, console
    from foundation.catalog import CatalogError
    from foundation.scoring_model import load_warning_rules
    from warehouse.credit_warnings import guidance_by_year

    settings, cat = _context()
    try:
        rules = load_warning_rules(cat, settings.catalog_dir)
    except CatalogError as exc:
        console.print(f"[red]The warning rules are invalid:[/red]\n{_esc(exc)}")
        raise typer.Exit(2) from None
    with _read_only_warehouse(settings) as con:
        as_of = date.fromisoformat(day) if day else con.execute(
            "SELECT max(as_of) FROM mart.credit_warnings").fetchall()[0][0]
        if as_of is None:
            console.print("No warning list yet: credit score run --as-of YYYY-MM-DD")
            raise typer.Exit(1)
        rows = con.execute("""
            SELECT w.subject_key, s.name, w.records, w.dataset_id, w.document, w.decided, w.severity, w.repairable,
                w.repairable_from
            FROM mart.credit_warnings w LEFT JOIN clean.subjects s USING (subject_key)
            WHERE w.as_of = ? ORDER BY w.subject_key, w.decided""", [as_of]).fetchall()
        guidance = guidance_by_year(con, rules, as_of)
    table = Table("subject", "name", "records", "dataset", "document", "decided", "severity", "repair",
                  title=f"Credit warnings as of {as_of} (信用预警名单)")
    for key, name, n, ds, doc, decided, sev, repairable, since in rows:
        repair = ("from " + str(since)) if repairable else "not early (不可提前修复)"
        table.add_row(_esc(key), _esc(name or ""), str(n), ds, _esc(doc or ""), str(decided), sev or "", repair)
    console.print(table)
    console.print(f"{len({r[0] for r in rows})} subject(s) on the list")
    _print_guidance(guidance)
