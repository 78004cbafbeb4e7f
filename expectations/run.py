"""Validate one loaded batch against its catalog suite, inside DuckDB, through a GX checkpoint.

In: a batch id. Its rows are read from the raw layer
(``<data root>/raw/<dataset>/department=<d>/batch_id=<b>/rows.parquet``), typed by the
load's own SQL (``warehouse.checks_sql.build_typed_sql``) into a table of the adapter's
in-memory DuckDB database (``expectations.duckdb_engine``); the warehouse file is not
opened. Out:
- GX artifacts in a file context under ``<data root>/gx/``: the suites (rebuilt from the
  catalog on every run), one validation definition and checkpoint per dataset, the stored
  validation results (run name = batch id) and Data Docs
  (``gx/uncommitted/data_docs/local_site/index.html``);
- a ``BatchValidation`` summary (per expectation: rule, field, column, success, counts, a
  few unexpected values, codes masked), which ``record_results`` writes to
  ``audit.expectation_results`` through the warehouse's writer connection.
A failed expectation is a finding, not an error: nothing raises for it. An expectation that
could not be computed (GX raised) raises ``ExpectationRunError``, naming it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # before great_expectations is imported

import duckdb  # noqa: E402
import great_expectations as gx  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.exceptions import DataContextError  # noqa: E402

from expectations.data_docs import SITE_VIEWS, make_offline  # noqa: E402
from expectations.duckdb_engine import DuckDBDatasource, batch_connection  # noqa: E402
from expectations.suites import build_suite, suite_name  # noqa: E402
from foundation.catalog import Catalog, Dataset, FieldType  # noqa: E402
from foundation.settings import Settings  # noqa: E402
from foundation.sql_names import ident  # noqa: E402
from transforms.masking import mask_id, mask_ids_in_text  # noqa: E402
from warehouse.checks_sql import build_typed_sql  # noqa: E402
from warehouse.schema import EXPECTATION_RESULTS_DDL  # noqa: E402

DATASOURCE = "credit_warehouse_batches"
BATCH_DEFINITION = "batch"
DOCS_SITE = "local_site"
EXAMPLES = 3  # unexpected values kept per expectation in the summary
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 10}
_BATCH_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}-[0-9a-f]{16}$")  # warehouse batch ids: <dataset>-<sha256[:16]>



class BatchNotFoundError(LookupError):
    """No raw partition holds this batch id."""


class ExpectationRunError(RuntimeError):
    """GX could not compute some expectations (a query failed): the message names them."""


@dataclass(frozen=True)
class RawBatch:
    batch_id: str
    dataset_id: str
    department: str
    rows: Path


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    rule: str
    field: str
    column: str
    success: bool
    element_count: int | None
    unexpected_count: int | None
    examples: list[str] = dataclasses.field(default_factory=list)  # `field` is the attribute above


@dataclass(frozen=True)
class BatchValidation:
    batch_id: str  # the batch validated, or for several of one department and dataset: <dataset>-set-<hash>
    dataset_id: str
    department: str
    suite: str
    success: bool
    run_at: datetime
    results: list[ExpectationOutcome]
    batches: list[str] = dataclasses.field(default_factory=list)  # the batches validated (their rows together)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    def to_dict(self) -> dict:
        return {**asdict(self), "run_at": self.run_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict) -> BatchValidation:
        results = [ExpectationOutcome(**r) for r in data["results"]]
        return cls(**{**data, "run_at": datetime.fromisoformat(data["run_at"]), "results": results})


# --- where the batch is -------------------------------------------------------------------------


def find_batch(settings: Settings, batch_id: str) -> RawBatch:
    """The raw partition of ``batch_id`` (``raw/<dataset>/department=<d>/batch_id=<b>/rows.parquet``)."""
    if not _BATCH_ID.match(batch_id):
        raise BatchNotFoundError(f"'{batch_id}' is not a batch id (<dataset>-<16 hex digits>)")
    dataset_id = batch_id.rsplit("-", 1)[0]
    found = sorted((settings.raw_root / dataset_id).glob(f"department=*/batch_id={batch_id}/rows.parquet"))
    if not found:
        raise BatchNotFoundError(f"batch {batch_id}: no raw rows under {settings.raw_root / dataset_id}")
    department = found[0].parent.parent.name.removeprefix("department=")
    return RawBatch(batch_id, dataset_id, department, found[0])


# --- the GX context and its objects ---------------------------------------------------------------


def gx_root(settings: Settings) -> Path:
    return settings.data_root / "gx"


def docs_index(settings: Settings) -> Path:
    return gx_root(settings) / "uncommitted" / "data_docs" / DOCS_SITE / "index.html"


@contextmanager
def gx_session(settings: Settings) -> Iterator:
    """The GX context, held by one process at a time.

    Airflow runs the ingest DAGs' validate tasks side by side, and each may rewrite
    ``great_expectations.yml`` (the data source and its assets): without this lock, two
    tasks that load the file at once each save their own version and one asset is lost.
    """
    root = gx_root(settings)
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".credit-session.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # blocks until the other session ends
        try:
            yield get_context(settings)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def get_context(settings: Settings):
    """The file-backed GX context under ``<data root>/gx/`` (created on first use): analytics off,
    no progress bars, Data Docs without how-to buttons nor GX's remote logo (expectations/data_docs.py)."""
    context = gx.get_context(mode="file", project_root_dir=settings.data_root)
    variables = context.variables
    sites = variables.data_docs_sites
    assert sites is not None, "a file context has data_docs_sites"
    site = sites[DOCS_SITE]
    wanted = {**site, "show_how_to_buttons": False, **SITE_VIEWS,
              "site_index_builder": {**site.get("site_index_builder", {}), **SITE_VIEWS["site_index_builder"]}}
    if variables.analytics_enabled is not False or not variables.progress_bars or site != wanted:
        variables.analytics_enabled = False
        variables.progress_bars = ProgressBarsConfig(globally=False)
        variables.data_docs_sites = {**sites, DOCS_SITE: wanted}
        variables.save()
    return context


def _datasource(context) -> DuckDBDatasource:
    try:
        return context.data_sources.get(DATASOURCE)
    except (KeyError, ValueError, DataContextError):
        return context.data_sources.add_credit_duckdb(name=DATASOURCE)


def _load_batch_table(datasource: DuckDBDatasource, dataset: Dataset, rows: list[Path]) -> None:
    """The batch, typed as the load types it, as table ``<dataset>`` of the in-memory database."""
    sql, params = build_typed_sql(dataset)
    with batch_connection(datasource) as connection:
        connection.exec_driver_sql(f"CREATE OR REPLACE TABLE {ident(dataset.id)} AS {sql}",
                                   {**params, "rows": [str(r) for r in rows]})


def _drop_batch_table(datasource: DuckDBDatasource, dataset: Dataset) -> None:
    with batch_connection(datasource) as connection:
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {ident(dataset.id)}")


def _expectation_configs(suite: gx.ExpectationSuite) -> list[dict]:
    return [{k: v for k, v in e.configuration.to_json_dict().items() if k != "id"} for e in suite.expectations]


def _checkpoint(context, datasource: DuckDBDatasource, dataset: Dataset):
    """Asset, batch definition, suite, validation definition and checkpoint of a dataset.

    Created when missing; the suite is rebuilt from the catalog and saved again (with the
    validation definition and checkpoint that point at it) only when it changed.
    """
    try:
        asset = datasource.get_asset(dataset.id)
    except LookupError:
        asset = datasource.add_table_asset(dataset.id, table_name=dataset.id)  # probes the table: load it first
    try:
        batch_definition = asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_table(BATCH_DEFINITION)
    name, suite = suite_name(dataset), build_suite(dataset)
    try:
        stored = context.suites.get(name)
        checkpoint = context.checkpoints.get(name)
        if (_expectation_configs(stored) == _expectation_configs(suite) and stored.meta == suite.meta
                and not checkpoint.actions):
            return checkpoint
    except DataContextError:
        pass
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
    )
    # No Data Docs action: the site is rebuilt once per session of validations (``validate_batches``),
    # not after each one (its index grows with every result stored).
    return context.checkpoints.add_or_update(gx.Checkpoint(
        name=name, validation_definitions=[validation], result_format=RESULT_FORMAT, actions=[],
    ))


# --- running ------------------------------------------------------------------------------------


def validate_batch(settings: Settings, catalog: Catalog, batch_id: str, context=None) -> BatchValidation:
    """Run the dataset's checkpoint on one batch; store the result and update Data Docs.

    ``context``: one from ``gx_session`` (several batches in one session); without it, the
    batch gets a session of its own.
    """
    return validate_batches(settings, catalog, [batch_id], context=context)[0]


def validate_batches(settings: Settings, catalog: Catalog, batch_ids: list[str], context=None,
                     docs: bool = True) -> list[BatchValidation]:
    """Validate batches, those of one department and dataset together (one GX run over their rows), then
    rebuild the Data Docs once (``docs``). A catch-up run of two years of monthly files costs one validation
    per department and dataset, not one per file (GX spends about a second per validation, whatever its
    size). The ingest DAGs pass ``docs=False``: the site's index grows with every result, so the monthly
    close and the daily report rebuild it (``build_docs``), not every ingest run.
    """
    if context is None:
        with gx_session(settings) as context:
            return validate_batches(settings, catalog, batch_ids, context=context, docs=docs)
    groups: dict[tuple[str, str], list[RawBatch]] = {}
    for batch_id in dict.fromkeys(batch_ids):
        batch = find_batch(settings, batch_id)
        groups.setdefault((batch.dataset_id, batch.department), []).append(batch)
    validations = [_validate(catalog.dataset(dataset_id), department, group, context)
                   for (dataset_id, department), group in groups.items()]
    if validations and docs:
        context.build_data_docs(site_names=[DOCS_SITE])
        make_offline(docs_index(settings).parent)
    return validations


def validation_id(batches: list[RawBatch]) -> str:
    """The batch id, or for several: ``<dataset>-set-<sha256 of the sorted ids, 16 hex digits>``."""
    if len(batches) == 1:
        return batches[0].batch_id
    ids = sorted(b.batch_id for b in batches)
    return f"{batches[0].dataset_id}-set-{hashlib.sha256(' '.join(ids).encode()).hexdigest()[:16]}"


def _validate(dataset: Dataset, department: str, batches: list[RawBatch], context) -> BatchValidation:
    rows = [b.rows for b in batches]
    datasource = _datasource(context)
    _load_batch_table(datasource, dataset, rows)
    checkpoint = _checkpoint(context, datasource, dataset)
    # The checkpoint validates through the data source its batch definition resolves to.
    used = checkpoint.validation_definitions[0].batch_definition.data_asset.datasource
    if used is not datasource:
        _load_batch_table(used, dataset, rows)
    name = validation_id(batches)
    try:
        result = checkpoint.run(run_id=RunIdentifier(run_name=name))
    finally:
        _drop_batch_table(used, dataset)
    (suite_result,) = result.run_results.values()
    covered = RawBatch(name, dataset.id, department, rows[0])
    validation = _summarize(covered, dataset, suite_result, result.run_id.run_time)
    return dataclasses.replace(validation, batches=sorted(b.batch_id for b in batches))


def _summarize(batch: RawBatch, dataset: Dataset, suite_result, run_at: datetime) -> BatchValidation:
    outcomes, errors = [], []
    restricted = {f.code for f in dataset.fields if f.type is FieldType.RESIDENT_ID}
    for r in suite_result.results:
        cfg = r.expectation_config
        if r.exception_info and r.exception_info.get("raised_exception"):
            errors.append(f"{cfg.type} {cfg.kwargs}: {r.exception_info.get('exception_message')}")
            continue
        kwargs, meta, result = cfg.kwargs, cfg.meta or {}, r.result or {}
        column = kwargs.get("column") or ", ".join(
            kwargs.get("column_list") or [kwargs[k] for k in ("column_A", "column_B") if k in kwargs]
        )
        field_code = meta.get("field", "")
        values = [v for v in result.get("partial_unexpected_list") or [] if v is not None][:EXAMPLES]
        examples = [_example(v, field_code in restricted) for v in values]
        outcomes.append(ExpectationOutcome(
            expectation=cfg.type, rule=meta.get("rule", ""), field=field_code, column=column,
            success=bool(r.success), element_count=result.get("element_count"),
            unexpected_count=result.get("unexpected_count"), examples=examples,
        ))
    if errors:
        raise ExpectationRunError(f"batch {batch.batch_id}: GX could not compute:\n" + "\n".join(errors))
    return BatchValidation(batch.batch_id, batch.dataset_id, batch.department, suite_result.suite_name,
                           bool(suite_result.success), run_at, outcomes)


def _example(value: object, restricted: bool) -> str:
    """An unexpected value as reviewers may see it: resident IDs (anywhere in it) masked."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):  # a pair or several columns: the values given
        return " | ".join(_example(v, restricted) for v in value if v is not None)
    text = "" if value is None else str(value)
    return mask_id(text) if restricted else mask_ids_in_text(text)


def build_docs(settings: Settings) -> Path:
    """Rebuild the Data Docs site from the stored suites and results; returns its index.html."""
    with gx_session(settings) as context:
        context.build_data_docs(site_names=[DOCS_SITE])
        make_offline(docs_index(settings).parent)
    return docs_index(settings)


# --- the warehouse side -------------------------------------------------------------------------------


def record_results(con: duckdb.DuckDBPyConnection, validations: list[BatchValidation]) -> int:
    """Replace each batch's rows in ``audit.expectation_results`` (the writer's connection); returns rows."""
    con.execute(EXPECTATION_RESULTS_DDL)  # also on a connection not opened by warehouse.db.connect
    rows = [
        [v.batch_id, v.dataset_id, v.department, v.suite, r.expectation, r.rule, r.field, r.column, r.success,
         r.element_count, r.unexpected_count, r.examples, v.run_at, v.batches or [v.batch_id]]
        for v in validations
        for r in v.results
    ]
    con.execute("BEGIN TRANSACTION")
    try:
        for v in validations:
            con.execute("DELETE FROM audit.expectation_results WHERE batch_id = ?", [v.batch_id])
        if rows:
            con.executemany(f"INSERT INTO audit.expectation_results VALUES ({', '.join('?' * 14)})", rows)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return len(rows)
