"""``credit``: the command line of the credit data platform.

    credit demo            generate the sample city and run every DAG through Airflow
    credit demo-data       write the sample city's feeds and ground truth
    credit run-dags        run the DAGs once each (dag.test), or backfill months (--from/--to)
    credit alerts          the findings with a severity and the files missing, as of a day
    credit ingest FILE     stage, load and export one file without Airflow
    credit ingest-inbox    the same for every file waiting in the inbox
    credit codes validate  validate codes, one per line, as JSON lines
    credit codes rate      重错码率 per department and dataset
    credit corrections apply FILE   apply a corrections file (old code -> new code)
    credit corrections suggest      corrections the register can vouch for, to review
    credit corrections status       纠正率: detected, corrected and open per department
    credit expectations validate --batch ID   GX checkpoint of a batch in DuckDB (results, Data Docs)
    credit expectations docs                  rebuild the GX Data Docs
    credit status          the batch ledger, summed per dataset and department
    credit catalog         validate the catalog and list its datasets
    credit contract        write docs/parquet-contract.md from the catalog
    credit report          the quality scorecard (mart.scorecard) and the HTML report
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

# Every heavy import (duckdb, pandas, pyarrow, airflow, great_expectations, the warehouse and
# transforms modules, even rich's console, progress bars and tables) happens inside the
# commands: `credit --help` and `credit codes validate` load only what they use
# (tests/test_codes_cli.py checks it).
app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
codes_app = typer.Typer(no_args_is_help=True, help="Unified social credit codes and IDs.")
app.add_typer(codes_app, name="codes")
corrections_app = typer.Typer(no_args_is_help=True, help="Corrections of quarantined records (纠正率).")
app.add_typer(corrections_app, name="corrections")
expectations_app = typer.Typer(no_args_is_help=True, help="Great Expectations suites from the catalog, run in DuckDB.")
app.add_typer(expectations_app, name="expectations")
publish_app = typer.Typer(no_args_is_help=True, help="Releases to the credit website (信用网站): prepare, review, "
                                                      "approve or reject.")
app.add_typer(publish_app, name="publish")
from credit.cli_scoring import score_app  # noqa: E402 (its commands import this module's helpers when run)

app.add_typer(score_app, name="score")
app.command("check")(__import__("credit.cli_check", fromlist=["check"]).check)  # credit check (信用核查)


class _Console:
    """rich's Console, made on first use (``console.print``, ``console.status``...)."""

    _console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console()
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.get(), name)


console = _Console()


def Table(*headers, **options):  # noqa: N802 (rich.table.Table, imported on first use)
    from rich.table import Table

    return Table(*headers, **options)


def _progress(to_terminal: bool = False) -> Progress:
    """A progress bar; ``to_terminal`` keeps it on today's standard output while the work inside
    redirects ``sys.stdout`` (Airflow's task logs go to a file, see credit/airflow_run.py)."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(file=sys.stdout) if to_terminal else console.get(),
    )


def _context():
    from foundation.catalog import CatalogError, get_catalog
    from foundation.settings import get_settings

    try:
        return get_settings(), get_catalog()
    except CatalogError as exc:
        console.print(f"[red]The catalog is invalid:[/red]\n{_esc(exc)}")
        raise typer.Exit(2) from None


@contextmanager
def _read_only_warehouse(settings):
    """The warehouse opened read-only, or a plain message (exit 1) when there is none yet."""
    from warehouse.db import open_warehouse

    try:
        with open_warehouse(settings, read_only=True) as con:
            yield con
    except FileNotFoundError as exc:
        console.print(f"[yellow]{_esc(exc)}[/yellow]")
        raise typer.Exit(1) from None


def _warehouse_as_of(day: str | None):
    """Settings, catalog and the as-of day of a command that reads an existing warehouse (``--as-of``,
    default today in Asia/Shanghai); a clear message and exit without one or with a malformed day."""
    from credit.report import today

    settings, cat = _context()
    if not settings.warehouse_path.exists():
        console.print(f"[yellow]no warehouse yet at {settings.warehouse_path}: run an ingest first[/yellow]")
        raise typer.Exit(1)
    try:
        return settings, cat, date.fromisoformat(day) if day else today()
    except ValueError:
        console.print(f"[red]--as-of must be YYYY-MM-DD, not {_esc(day)!r}[/red]")
        raise typer.Exit(2) from None


def _esc(text: object) -> str:
    """Text from outside (file names, messages) printed as it is, never read as rich markup."""
    from rich.markup import escape

    return escape(str(text))


def _print_results(results) -> None:
    table = Table("file", "dataset", "outcome", "status", "rows in", "loaded", "quarantined", "message",
                  title="Ingest results")
    for r in results:
        colour = "red" if r.status == "rejected" else "green"
        table.add_row(_esc(r.source_file), r.dataset_id or "-", r.outcome, f"[{colour}]{r.status}[/{colour}]",
                      str(r.rows_in), str(r.rows_loaded), str(r.rows_quarantined), _esc(r.message))
    console.print(table)


@app.command()
def catalog() -> None:
    """Validate the catalog and list its datasets."""
    _, cat = _context()
    table = Table(
        "dataset", "名称", "disclosure", "departments", "fields", title="Collection catalog (信用数据归集清单)"
    )
    for ds in cat.datasets.values():
        table.add_row(ds.id, ds.name_zh, ds.disclosure.value, ", ".join(ds.departments), str(len(ds.fields)))
    console.print(table)


@app.command()
def contract(
    out: Annotated[Path, typer.Option(help="Where to write the contract.")] = Path("docs/parquet-contract.md"),
) -> None:
    """Write the Parquet contract (docs/parquet-contract.md) from the catalog."""
    from warehouse.contract import render_contract

    _, cat = _context()
    out.write_text(render_contract(cat), encoding="utf-8")
    console.print(f"Wrote {out}")


@codes_app.command("validate")
def codes_validate(
    file: Annotated[str, typer.Argument(help="File with one code per line, or - for standard input.")] = "-",
    kind: Annotated[
        str | None, typer.Option(help="Check every line as this kind: uscc, org_code, resident_id.")
    ] = None,
) -> None:
    """Validate codes, one per line; print one JSON object per line. Exit 0 even for invalid codes."""
    import sys

    from warehouse.code_validation import validate_file

    # Bytes in, bytes out, in large blocks; the lines are those text mode gave (see validate_file).
    try:
        stream = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    except OSError as exc:
        console.print(f"[red]cannot read {_esc(file)}: {exc.strerror}[/red]")
        raise typer.Exit(2) from None
    try:
        sys.stdout.flush()
        validate_file(stream, sys.stdout.buffer, kind, stdin=file == "-")
        sys.stdout.buffer.flush()
    except ValueError as exc:
        console.print(f"[red]{_esc(exc)}[/red]")
        raise typer.Exit(2) from None
    finally:
        if file != "-":
            stream.close()


@codes_app.command("rate")
def codes_rate() -> None:
    """重错码率 per department and dataset, cumulative, against the catalog threshold (docs/code-error-rate.md)."""
    settings, _ = _context()
    with _read_only_warehouse(settings) as con:
        rows = con.execute(
            "SELECT coalesce(department, '全市 city'), coalesce(dataset_id, '(all)'), codes_received, codes_erroneous, "
            "codes_duplicate, codes_bad, rate, threshold FROM audit.code_error_rate"
        ).fetchall()
    table = Table("department", "dataset", "codes", "错码", "重码", "bad", "重错码率", "target",
                  title="重错码率 (distinct bad codes / distinct codes received)")
    for dept, ds, received, err, dup, bad, rate, threshold in rows:
        over = threshold is not None and rate > threshold
        shown = f"[red]{rate:.4%}[/red]" if over else f"{rate:.4%}"
        table.add_row(dept, ds, str(received), str(err), str(dup), str(bad), shown,
                      f"≤ {threshold:.2%}" if threshold is not None else "")
    console.print(table)


@corrections_app.command("apply")
def corrections_apply(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV/XLSX/JSON lines with columns 原代码, 新代码 [, 主体名称, 数据集].")],
    source: Annotated[str, typer.Option(help="Who sent it: a department code, or e.g. register_authority.")],
    department: Annotated[str | None, typer.Option(
        help="Apply only to this department's records (default: every department's, as from the register).")] = None,
) -> None:
    """Re-check the quarantined records a corrections file fixes; those that pass move to clean."""
    from credit import pipeline
    from foundation.catalog import CatalogError
    from warehouse.correction_file import CorrectionsFileError

    settings, cat = _context()
    try:
        with console.status(f"Applying {file.name}..."):
            report = pipeline.apply_corrections_file(settings, cat, file.resolve(), source=source,
                                                     department=department)
    except (CatalogError, CorrectionsFileError, pipeline.UnsafePathError) as exc:
        console.print(f"[red]{_esc(exc)}[/red]")
        raise typer.Exit(2) from None
    if report.already_applied:
        console.print(f"[yellow]{file.name} was applied before (same content): nothing changed.[/yellow]")
        return
    console.print(f"{file.name}: {report.pairs} pairs; {report.corrected} records corrected, "
                  f"{report.still_invalid} still invalid, {report.unmatched_pairs} pairs matched nothing, "
                  f"{report.refused_pairs} pairs refused (see audit.corrections)")
    if report.batches:
        _print_results(report.batches)


@corrections_app.command("suggest")
def corrections_suggest(
    out: Annotated[Path, typer.Option(help="Where to write the suggested corrections file (CSV, UTF-8).")],
) -> None:
    """Write the corrections the register can vouch for (by subject name), for the register authority to review."""
    import csv

    from warehouse.correction_file import SUGGESTION_HEADERS, suggest_from_register

    settings, cat = _context()
    with _read_only_warehouse(settings) as con:
        rows = suggest_from_register(con, cat)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SUGGESTION_HEADERS)
        writer.writerows(rows)
    console.print(f"Wrote {len(rows)} suggested corrections to {out}")


@corrections_app.command("status")
def corrections_status() -> None:
    """纠正率 per department and dataset: quarantined records with a code defect, corrected and still open."""
    settings, _ = _context()
    with _read_only_warehouse(settings) as con:
        rows = con.execute(
            "SELECT coalesce(department, '全市 city'), coalesce(dataset_id, '(all)'), rows_detected, rows_corrected, "
            "rows_open, rate FROM audit.correction_rate"
        ).fetchall()
    table = Table("department", "dataset", "detected", "corrected", "open", "纠正率",
                  title="纠正率 (corrected / detected records with a code defect)")
    for dept, ds, detected, corrected, still_open, rate in rows:
        table.add_row(dept, ds, str(detected), str(corrected), str(still_open),
                      "-" if rate is None else f"{rate:.2%}")
    console.print(table)


@app.command()
def report(
    day: Annotated[str | None, typer.Option(
        "--as-of", "--date", help="Report as of this day, YYYY-MM-DD (default: today, Asia/Shanghai): only files "
                                  "received and corrections applied by then, the deliveries due by then.")] = None,
) -> None:
    """Recompute the scorecard (mart.scorecard + Parquet), deliveries and findings as of a day, and write the
    Chinese HTML quality report."""
    from credit.period_close import state_as_of
    from credit.report import SHORT_NAMES, build_report, format_rate
    from warehouse.db import open_warehouse

    settings, cat, as_of = _warehouse_as_of(day)
    with open_warehouse(settings, cat) as con:
        state = state_as_of(con, settings, cat, as_of)
        path = build_report(con, settings, cat, as_of)
        rows, parquet, outside = state.scorecard.rows, state.scorecard.parquet, state.scorecard.outside_calendar
        city = con.execute("SELECT metric, numerator, denominator, rate, target, direction, meets_target "
                           "FROM mart.scorecard WHERE level = 'city'").fetchall()
    table = Table("metric", "numerator", "denominator", "rate", "target", title="City scorecard (全市)")
    for metric, num, den, rate, target, direction, meets in city:
        shown = format_rate(metric, rate)
        table.add_row(f"{SHORT_NAMES[metric]} {metric}", str(num), str(den), shown if meets else f"[red]{shown}[/red]",
                      ("≥ " if direction == "min" else "≤ ") + format_rate(metric, target))
    console.print(table)
    if outside:
        console.print(f"[yellow]Warning: {outside} record(s) dated outside the holiday calendar's "
                      "years: left out of 及时率 (shown in the report).[/yellow]")
    if state.calendar_warning:
        console.print(f"[yellow]Deliveries not checked: {_esc(state.calendar_warning)}[/yellow]")
    errors = len(state.errors)
    console.print(f"Findings as of {as_of}: {len(state.alerts) - errors} warning(s), {errors} error(s); "
                  f"{state.deliveries} deliveries due (audit.alerts, audit.deliveries)")
    console.print(f"Scorecard: mart.scorecard ({rows} rows) and {parquet}")
    console.print(f"Report:    {path}\n           {path.parent / 'latest.html'}")


@expectations_app.command("validate")
def expectations_validate(
    batch: Annotated[list[str], typer.Option(help="Batch id, e.g. admin_penalty-0f409995421d0336 (repeatable).")],
    record: Annotated[bool, typer.Option(help="Write the results to audit.expectation_results.")] = True,
) -> None:
    """Validate batches with their catalog suite (GX checkpoint inside DuckDB). Failed expectations exit 0."""
    from expectations.run import BatchNotFoundError, docs_index, gx_session, record_results, validate_batch

    settings, cat = _context()
    done = []
    with gx_session(settings) as context:
        for batch_id in batch:
            try:
                with console.status(f"Validating {batch_id}..."):
                    done.append(validate_batch(settings, cat, batch_id, context=context))
            except BatchNotFoundError as exc:
                console.print(f"[red]{_esc(exc)}[/red]")
                raise typer.Exit(2) from None
    for v in done:
        table = Table("rule", "field / column", "unexpected", "rows", "examples",
                      title=f"{v.suite} — {v.batch_id} ({v.department}): {len(v.failed)} of {len(v.results)} failed")
        for r in v.failed:
            table.add_row(r.rule, r.column, f"[red]{r.unexpected_count}[/red]", str(r.element_count),
                          "; ".join(r.examples))
        console.print(table)
    if record:
        from warehouse.db import open_warehouse

        with open_warehouse(settings, cat) as con:
            rows = record_results(con, done)
        console.print(f"{rows} results in audit.expectation_results")
    console.print(f"Data Docs: {docs_index(settings)}")


@expectations_app.command("docs")
def expectations_docs() -> None:
    """Rebuild the GX Data Docs from the stored suites and validation results."""
    from expectations.run import build_docs

    settings, _ = _context()
    console.print(f"Data Docs: {build_docs(settings)}")


HISTORY = ("2025-01", "2026-11")  # the sample city's two years (fixed, whatever today is)
HISTORY_MONTHS = (date(2025, 1, 1), date(2026, 11, 1))


@app.command("demo-data")
def demo_data(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same files.")] = 371083,
    entities: Annotated[int, typer.Option(help="Number of legal entities in the register.")] = 3000,
    first: Annotated[str, typer.Option("--from", help="First month of deliveries.")] = HISTORY[0],
    last: Annotated[str, typer.Option("--to", help="Last month of deliveries (a small --to for quick tests).")]
    = HISTORY[1],
    snapshot: Annotated[bool, typer.Option(
        help="Instead: one file per department feed, every defect kind at least once (the loader's test city).")
    ] = False,
) -> None:
    """Write the sample city's feeds to the inbox (two years of periodic deliveries by default) and the
    ground truth next to it."""
    from sample_city import generate, generate_history

    settings, _ = _context()
    _month(first), _month(last)  # plain errors for a malformed month
    with console.status("Writing the sample city of Rushan (371083)..."):
        if snapshot:
            summary = generate(settings.data_root, seed=seed, entities=entities)
        else:
            summary = generate_history(settings.data_root, seed=seed, entities=entities, first=first, last=last)
    console.print(f"Sample feeds in [bold]{settings.inbox}[/bold], ground truth in [bold]{settings.truth_dir}[/bold]")
    console.print(summary)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The department's file.")],
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Catalog dataset id, e.g. admin_penalty.")],
    department: Annotated[str, typer.Option(help="Department code from catalogs/departments.yaml.")],
    replace: Annotated[bool, typer.Option(help="Load again even if these bytes were loaded before.")] = False,
) -> None:
    """Stage, load and export one file (no Airflow)."""
    from credit import pipeline
    from foundation.catalog import CatalogError

    settings, cat = _context()
    try:
        cat.dataset(dataset)
        cat.department(department)
        with console.status(f"Ingesting {file.name} (staging, loading, exporting Parquet)..."):
            result = pipeline.ingest_file(settings, cat, file.resolve(), dataset, department, replace=replace)
    except (CatalogError, pipeline.UnsafePathError) as exc:
        console.print(f"[red]{_esc(exc)}[/red]")
        raise typer.Exit(2) from None
    _print_results([result])


@app.command("ingest-inbox")
def ingest_inbox() -> None:
    """Ingest every file waiting in the inbox, one after the other (no Airflow)."""
    from credit import pipeline
    from credit.inbox import scan_inbox
    from warehouse.db import open_warehouse

    settings, cat = _context()
    files = scan_inbox(settings, cat)
    with open_warehouse(settings, cat) as con, _progress() as progress:
        task = progress.add_task("Ingesting inbox files", total=len(files))

        def started(item) -> None:
            progress.update(task, description=_esc(item.relpath), completed=files.index(item))

        run = pipeline.ingest_inbox_files(con, settings, cat, ((f, None) for f in files), on_file=started)
        progress.update(task, completed=len(files))
    _print_results(run.results)
    if run.failed:
        console.print("[red]These files could not be ingested and stay in the inbox:[/red]\n"
                      + _esc("\n".join(run.failed)))
        raise typer.Exit(1)


def _month(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a month like 2025-03") from None


@app.command("run-dags")
def run_dags(
    dag: Annotated[list[str] | None, typer.Option(help="Run only these DAG ids (repeatable).")] = None,
    from_month: Annotated[str | None, typer.Option("--from", help="Backfill: first month to close (2025-01).")] = None,
    to_month: Annotated[str | None, typer.Option("--to", help="Backfill: last month to close (2026-11).")] = None,
    ingest_every_month: Annotated[bool, typer.Option(
        help="Backfill: run the ingest DAGs before every close, each taking the files received by then "
             "(slower; the default ingests once, then closes each month as of its own last day: same result).")
    ] = False,
) -> None:
    """Run every DAG once with Airflow's dag.test(), or backfill the months --from .. --to through them."""
    first, last = _month(from_month), _month(to_month)
    if (first is None) != (last is None) or (first and last and first > last):
        console.print("[red]Give both --from and --to, the first not after the last (e.g. --from 2025-01 "
                      "--to 2026-11).[/red]")
        raise typer.Exit(2)
    months = (first, last) if first and last else None
    if _broken(_run_dags(dag, months, ingest_every_month)):
        raise typer.Exit(1)


# Their failures are findings about the data, not faults: a batch's 重错码率 above the error threshold,
# a file rejected as a whole, errors in a monthly close.
FINDING_TASKS = ("code_gate", "rejected_files", "check_errors")


def _broken(outcomes) -> list:
    """DAG runs with a failed task other than the finding tasks (code gate, rejected files, close errors);
    a task skipped because there was nothing to do (no file to stage) is fine."""
    broken = [o for o in outcomes
              if any(state not in ("success", "skipped") for task, state in o.task_states.items()
                     if not task.startswith(FINDING_TASKS))]
    for o in broken:
        console.print(f"[red]{o.dag_id}: {o.state} {o.task_states}[/red]")
    gated = [o.dag_id for o in outcomes if o.task_states.get("code_gate") == "failed"]
    if gated:
        console.print(f"[yellow]code_gate failed in {len(gated)} DAG run(s): batches above the 重错码率 error "
                      "threshold, marked in audit.gate_findings; see `credit codes rate`.[/yellow]")
    closes = [o for o in outcomes if o.task_states.get("check_errors") == "failed"]
    if closes:
        console.print(f"[yellow]check_errors failed in {len(closes)} monthly close(s): missing files or rates far "
                      "from target, in audit.alerts and the report; see `credit alerts`.[/yellow]")
    rejected = [o.dag_id for o in outcomes if o.task_states.get("rejected_files") == "failed"]
    if rejected:
        console.print(f"[yellow]rejected_files failed in {len(rejected)} DAG run(s): files rejected as a whole "
                      "(ledgered and archived; the departments must send them again); see `credit status`.[/yellow]")
    return broken


def _run_dags(only: list[str] | None, months=None, ingest_every_month: bool = False):
    from credit.airflow_run import run_all, task_log_path
    from credit.mail_sink import local_relay

    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    settings, _ = _context()
    with _progress(to_terminal=True) as progress:
        task = progress.add_task("Preparing Airflow (metadata database, DAG parsing)", total=None)

        def started(dag_id: str, total: int) -> None:
            done = progress.tasks[0].completed if progress.tasks[0].total else 0
            progress.update(task, description=f"Running {dag_id}", total=total, completed=done)
            progress.advance(task)

        with local_relay(settings.data_root) as mail:
            outcomes = run_all(settings, only=only, on_start=started, months=months,
                               ingest_every_month=ingest_every_month)
    table = Table("DAG", "logical date", "state", "tasks", title="Airflow DAG runs (dag.test)")
    for o in outcomes:
        colour = "green" if o.state == "success" else "red"
        failed = [k for k, v in o.task_states.items() if v not in ("success", "skipped")]
        tasks = f"{len(o.task_states)} tasks" + (f", not successful: {', '.join(failed)}" if failed else "")
        table.add_row(o.dag_id, o.logical_date[:10] or "now", f"[{colour}]{o.state}[/{colour}]", tasks)
    console.print(table)
    console.print(f"Airflow's task logs (a failed task's traceback among them): {task_log_path(settings)}")
    if mail is not None:
        console.print(f"Departments' quality digests (local mail sink): {mail}")
    return outcomes


@app.command()
def alerts(
    day: Annotated[str | None, typer.Option("--as-of", help="The findings of this day's close or report "
                                                         "(default: the latest recorded).")] = None,
) -> None:
    """List the findings with a severity (audit.alerts) and the files still missing (audit.deliveries)."""
    settings, _ = _context()
    with _read_only_warehouse(settings) as con:
        days = [d for (d,) in con.execute("SELECT DISTINCT as_of FROM audit.alerts ORDER BY 1 DESC").fetchall()]
        if not days:
            console.print("No findings recorded yet: run the monthly close (credit run-dags) or credit report.")
            return
        try:
            as_of = date.fromisoformat(day) if day else days[0]
        except ValueError:
            console.print(f"[red]--as-of must be YYYY-MM-DD, not {_esc(day)}[/red]")
            raise typer.Exit(2) from None
        rows = con.execute("""SELECT severity, department, dataset_id, period, message_zh FROM audit.alerts
                              WHERE as_of = ? ORDER BY severity <> 'error', department, dataset_id, period""",
                           [as_of]).fetchall()
        missing = con.execute("""SELECT count(*) FROM audit.deliveries WHERE as_of = ? AND status = 'missing'""",
                              [as_of]).fetchall()[0][0]
    table = Table("severity", "department", "dataset", "period", "finding", title=f"Findings as of {as_of}")
    for severity, dept, dataset_id, period, message in rows:
        colour = "red" if severity == "error" else "yellow"
        table.add_row(f"[{colour}]{severity}[/{colour}]", dept, dataset_id, period, _esc(message))
    console.print(table)
    errors = sum(1 for r in rows if r[0] == "error")
    console.print(f"{errors} error(s), {len(rows) - errors} warning(s); {missing} file(s) missing as of {as_of} "
                  "(audit.deliveries). Other days recorded: " + ", ".join(str(d) for d in days[:6] if d != as_of))


@app.command()
def status() -> None:
    """Summarize the batch ledger (audit.batches)."""
    settings, cat = _context()
    with _read_only_warehouse(settings) as con:
        rows = con.execute(
            """SELECT coalesce(dataset_id, '(unrouted)'), department, count(*), sum(rows_in), sum(rows_loaded),
                      sum(rows_quarantined), string_agg(DISTINCT status, ',' ORDER BY status)
               FROM audit.batches GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    table = Table("dataset", "department", "batches", "rows in", "loaded", "quarantined", "status",
                  title=f"Batch ledger — {settings.warehouse_path}")
    for r in rows:
        table.add_row(*[str(v) for v in r])
    if rows:
        totals = [sum(r[i] for r in rows) for i in range(2, 6)]
        table.add_row("[bold]total[/bold]", "", *[f"[bold]{t}[/bold]" for t in totals], "")
    console.print(table)


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Random seed of the sample city.")] = 371083,
    entities: Annotated[int, typer.Option(help="Legal entities in the register.")] = 3000,
) -> None:
    """Generate the sample city, run every DAG through Airflow, print the ledger and where outputs are."""
    settings, _ = _context()
    if settings.warehouse_path.exists() or (settings.inbox.exists() and any(settings.inbox.rglob("*.*"))):
        console.print(f"[yellow]{settings.data_root} already holds data: the demo adds to it "
                      "(files already loaded are recognized by content and not loaded twice).[/yellow]")
    demo_data(seed=seed, entities=entities, first=HISTORY[0], last=HISTORY[1], snapshot=False)
    # Ingest everything, then close every month as of its own last day (credit/airflow_run.py).
    outcomes = _run_dags(None, HISTORY_MONTHS)
    status()
    # The register authority's round of corrections: what the register can vouch for, applied.
    suggested = settings.data_root / "corrections" / "register_authority.csv"
    corrections_suggest(out=suggested)
    corrections_apply(file=suggested, source="register_authority", department=None)
    corrections_status()
    from credit.airflow_run import month_start, next_month

    last_close = next_month(next_month(HISTORY_MONTHS[1]))  # the end of the last close's interval
    report(day=(month_start(last_close).date() - timedelta(days=1)).isoformat())
    # A candidate release for the credit website, as of the day the sample's publication truth is stated:
    # prepared for review, not published (a reviewer approves it: credit publish approve / the Airflow UI).
    from sample_city.history_publication import PUBLICATION_AS_OF

    publish_prepare(day=PUBLICATION_AS_OF.isoformat(), by="demo")
    console.print(
        "\nOutputs:\n"
        f"  warehouse (DuckDB)  {settings.warehouse_path}\n"
        f"  Parquet exports     {settings.parquet_root}/<dataset>/department=<code>/batch_id=<id>/\n"
        f"  received files      {settings.archive}\n"
        f"  ground truth        {settings.truth_dir}\n"
        f"  quality report      {settings.data_root / 'reports' / 'latest.html'}  (make report-screenshot)\n"
        f"  corrections applied {suggested}\n"
        f"  release candidate   {settings.data_root / 'publication' / 'candidates'}/<id>/review.html  "
        "(credit publish status)\n"
        f"  credit mart         {settings.data_root / 'mart'}/  (scores of every month-end, explanations, credit "
        "warnings: credit score runs | show <USCC> | warnings; a credit report: credit check <USCC|name>)\n"
        f"  GX Data Docs        "
        f"{settings.data_root / 'gx' / 'uncommitted' / 'data_docs' / 'local_site' / 'index.html'}\n"
        f"  Airflow home        {settings.airflow_home}  (make airflow-ui to browse the runs)"
    )
    if _broken(outcomes):
        raise typer.Exit(1)



def _print_release(release) -> None:
    changes = release.changes
    console.print(
        f"Release [bold]{release.release_id}[/bold] as of {release.as_of}: [bold]{release.status}[/bold]\n"
        f"  {release.records} public records; against {release.previous_release or 'no earlier release'}: "
        f"{changes['added']} added, {changes['changed']} changed, {changes['expired']} expired, "
        f"{changes['withdrawn']} withdrawn; {release.findings} finding(s) for the reviewer\n"
        f"  prepared by {_esc(release.prepared_by)} at {release.prepared_at:%Y-%m-%d %H:%M} UTC; "
        f"content sha256 {release.content_hash}")
    if release.decided_by:
        console.print(f"  {'approved' if release.status == 'published' else 'rejected'} by {_esc(release.decided_by)} "
                      f"at {release.decided_at:%Y-%m-%d %H:%M} UTC" + (f": {_esc(release.decision_note)}"
                                                                          if release.decision_note else ""))
    console.print(f"  review page: {release.review_page}")
    if release.status == "published":
        console.print(f"  published snapshot: {release.folder}")


def _release_call(function, *args, **kwargs):
    from credit.publication import ReleaseError

    try:
        return function(*args, **kwargs)
    except ReleaseError as exc:
        console.print(f"[red]{_esc(exc)}[/red]")
        raise typer.Exit(1) from None


@publish_app.command("prepare")
def publish_prepare(
    day: Annotated[str | None, typer.Option(
        "--as-of", help="Publish as of this day, YYYY-MM-DD (default: today, Asia/Shanghai): only files received "
                        "by then; periods, repairs and list exits counted to that day.")] = None,
    by: Annotated[str | None, typer.Option(help="Who prepares it (default: the login name).")] = None,
) -> None:
    """Compute the public records and write a candidate release with its Chinese review page; publishes nothing."""
    import getpass

    from credit.publication import prepare_release

    settings, cat, as_of = _warehouse_as_of(day)
    with console.status(f"Preparing the release as of {as_of}"):
        release = _release_call(prepare_release, settings, cat, as_of, prepared_by=by or getpass.getuser())
    _print_release(release)
    console.print(f"Review it, then: credit publish approve {release.release_id} --by <name>  "
                  f"(or reject {release.release_id} --by <name> --reason <text>)")


@publish_app.command("show")
def publish_show(release_id: Annotated[str, typer.Argument(help="Release id, e.g. 20261130-01.")]) -> None:
    """One release: its status, counts, decision and where its files are."""
    from credit.publication import show_release

    settings, cat = _context()
    release = _release_call(show_release, settings, release_id)
    _print_release(release)
    table = Table("dataset", "department", "severity", "records", title="Public records (公示记录)")
    for dataset_id, departments in release.counts.items():
        for dept, by_class in departments.items():
            for severity, n in by_class.items():
                table.add_row(dataset_id, dept, severity, str(n))
    console.print(table)


@publish_app.command("approve")
def publish_approve(
    release_id: Annotated[str, typer.Argument(help="Release id, e.g. 20261130-01.")],
    by: Annotated[str, typer.Option(help="The approving reviewer's name (recorded with the release).")],
    note: Annotated[str | None, typer.Option(help="A note recorded with the approval.")] = None,
) -> None:
    """Publish a reviewed candidate as the snapshot the website reads. Approving twice publishes once."""
    from credit.publication import approve_release

    settings, cat = _context()
    release = _release_call(approve_release, settings, cat, release_id, approver=by, note=note)
    _print_release(release)


@publish_app.command("reject")
def publish_reject(
    release_id: Annotated[str, typer.Argument(help="Release id, e.g. 20261130-01.")],
    by: Annotated[str, typer.Option(help="The reviewer's name.")],
    reason: Annotated[str, typer.Option(help="Why it is rejected (recorded with the release).")],
) -> None:
    """Reject a candidate: nothing is published."""
    from credit.publication import reject_release

    settings, _ = _context()
    release = _release_call(reject_release, settings, release_id, reviewer=by, reason=reason)
    _print_release(release)


@publish_app.command("status")
def publish_status() -> None:
    """Every release, newest first, and the one the website reads."""
    from credit.publication import current_release, release_status

    settings, _ = _context()
    releases = release_status(settings)
    current = current_release(settings)
    table = Table("release", "as of", "status", "records", "added", "changed", "expired", "withdrawn", "decided by",
                  title="Releases (信用网站发布)")
    for r in releases:
        mark = " ← website" if r.release_id == current else ""
        table.add_row(r.release_id + mark, str(r.as_of), r.status, str(r.records), *(str(r.changes[k]) for k in
                      ("added", "changed", "expired", "withdrawn")), _esc(r.decided_by or ""))
    console.print(table)
    if not releases:
        console.print("No release yet: credit publish prepare --as-of YYYY-MM-DD")


if __name__ == "__main__":
    app()
