"""Custom Great Expectations for the credit center's rules, each with a SQL and a pandas side.

In: a batch typed as the load types it (``warehouse.checks_sql.build_typed_sql``: codes
normalized, text trimmed, ``<FIELD>__t`` holding parsed dates / amounts / integers).
Out: GX expectations, registered on import:

- ``expect_column_values_to_be_valid_uscc`` / ``..._valid_org_code`` / ``..._valid_resident_id``:
  the identifier engine. In SQL the DuckDB macros of ``warehouse.identifier_sql``
  (``len(uscc_reasons(col)) = 0``, on the normalized column: never a nested call); in
  pandas the Python reference ``transforms.identifiers``. Their unexpected values are
  masked (``913710********012X``) before GX stores them: a code column may hold a
  person's ID number.
- ``expect_column_values_to_be_joined_from_set``: an enum with ``multi``: one or more
  allowed values joined by ; ； 、 or , (e.g. 处罚类别 "罚款、没收违法所得").
- ``expect_column_pair_values_to_be_parsed``: where the text (column_A) is given, its
  typed value (column_B) is not NULL: the date / amount / integer parsed.
- ``expect_compound_columns_to_not_repeat``: a key occurs once; every later copy is
  unexpected, the first is not (the load quarantines the copies, not the first). Its
  examples are the repeated keys, resident ID numbers in them masked.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import pandas as pd
import sqlalchemy as sa
from great_expectations.compatibility.typing_extensions import override
from great_expectations.core.metric_domain_types import MetricDomainTypes
from great_expectations.execution_engine import PandasExecutionEngine, SqlAlchemyExecutionEngine
from great_expectations.expectations.expectation import (
    BatchExpectation,
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)
from great_expectations.expectations.metrics.metric_provider import metric_value
from great_expectations.expectations.metrics.table_metric_provider import TableMetricProvider

from transforms import identifiers
from transforms.masking import mask_id, mask_ids_in_text

EXAMPLES = 5  # repeated keys reported per batch
MULTI_SEPARATORS = "[;；、,]"  # catalog ``multi``: the separators warehouse.checks_sql splits on


def mask(value: object) -> object:
    """A code as reviewers may see it: strings masked by the platform's one rule (transforms.masking)."""
    return mask_id(value) if isinstance(value, str) else value


def _notna(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and value is not pd.NA


# --- codes (GB 32100-2015 USCC, GB 11714 organization code, GB 11643 resident ID) ---------------


class _CodeMetric(ColumnMapMetricProvider):
    macro: ClassVar[str]
    reasons: ClassVar[Any]

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column, **kwargs):
        return sa.func.len(getattr(sa.func, cls.macro)(column)) == 0

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return column.map(lambda v: not _notna(v) or not cls.reasons(v)).astype(bool)


class ColumnValuesValidUscc(_CodeMetric):
    condition_metric_name = "column_values.valid_uscc"
    macro = "uscc_reasons"
    reasons = staticmethod(identifiers.uscc_reasons)


class ColumnValuesValidOrgCode(_CodeMetric):
    condition_metric_name = "column_values.valid_org_code"
    macro = "org_code_reasons"
    reasons = staticmethod(identifiers.org_code_reasons)


class ColumnValuesValidResidentId(_CodeMetric):
    condition_metric_name = "column_values.valid_resident_id"
    macro = "resident_id_reasons"
    reasons = staticmethod(identifiers.resident_id_reasons)


class _MaskedCodeExpectation(ColumnMapExpectation):
    """Validity of a normalized code; unexpected values leave GX masked."""

    @override
    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None):
        outcome = super()._validate(metrics, runtime_configuration, execution_engine)
        result = outcome.get("result", {})
        for key in ("partial_unexpected_list", "unexpected_list"):
            if key in result:
                result[key] = [mask(v) for v in result[key]]
        for key in ("partial_unexpected_counts", "unexpected_counts"):
            if key in result:
                result[key] = [{**c, "value": mask(c["value"])} for c in result[key]]
        for key in ("partial_unexpected_index_list", "unexpected_index_list"):
            if key in result and result[key] and isinstance(result[key][0], dict):
                column = self.configuration.kwargs["column"]
                result[key] = [{k: mask(v) if k == column else v for k, v in row.items()} for row in result[key]]
        return outcome


class ExpectColumnValuesToBeValidUscc(_MaskedCodeExpectation):
    """Each value is a valid unified social credit code (GB 32100-2015), per the identifier engine."""

    map_metric = "column_values.valid_uscc"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeValidOrgCode(_MaskedCodeExpectation):
    """Each value is a valid organization code (GB 11714), per the identifier engine."""

    map_metric = "column_values.valid_org_code"
    success_keys = ("mostly",)


class ExpectColumnValuesToBeValidResidentId(_MaskedCodeExpectation):
    """Each value is a valid resident ID number (GB 11643), per the identifier engine."""

    map_metric = "column_values.valid_resident_id"
    success_keys = ("mostly",)


# --- enums with several values in one cell --------------------------------------------------------


class ColumnValuesJoinedFromSet(ColumnMapMetricProvider):
    condition_metric_name = "column_values.joined_from_set"
    condition_value_keys = ("value_set",)

    @column_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column, value_set, **kwargs):
        # Same split as the load (warehouse.checks_sql): separators, then spaces around each part.
        parts = sa.func.string_split_regex(column, sa.literal(f" *{MULTI_SEPARATORS} *"))
        return sa.func.list_has_all(sa.func.list_value(*[sa.literal(v) for v in value_set]), parts)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, value_set, **kwargs):
        allowed = set(value_set)
        split = re.compile(MULTI_SEPARATORS)
        return column.map(
            lambda v: not _notna(v) or all(p.strip(" ") in allowed for p in split.split(v))
        ).astype(bool)


class ExpectColumnValuesToBeJoinedFromSet(ColumnMapExpectation):
    """Each value is one or more members of ``value_set`` joined by ; ； 、 or , (catalog ``multi``)."""

    value_set: list[str]
    map_metric = "column_values.joined_from_set"
    args_keys = ("column", "value_set")
    success_keys = ("value_set", "mostly")


# --- typed values -----------------------------------------------------------------------------------


class ColumnPairValuesParsed(ColumnPairMapMetricProvider):
    condition_metric_name = "column_pair_values.parsed"
    condition_domain_keys = (
        "batch_id", "table", "column_A", "column_B", "row_condition", "condition_parser", "ignore_row_if",
    )

    @column_pair_condition_partial(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, column_A, column_B, **kwargs):  # noqa: N803 (GX's argument names)
        return sa.or_(column_A.is_(None), column_B.isnot(None))

    @column_pair_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_A, column_B, **kwargs):  # noqa: N803
        return (column_A.isna() | column_B.notna()).astype(bool)


class ExpectColumnPairValuesToBeParsed(ColumnPairMapExpectation):
    """Where the value as received (column_A) is given, its typed value (column_B) is not NULL."""

    ignore_row_if: Literal["both_values_are_missing", "either_value_is_missing", "neither"] = "neither"
    map_metric = "column_pair_values.parsed"
    args_keys = ("column_A", "column_B")
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")


# --- keys -----------------------------------------------------------------------------------------


class TableKeyRepeats(TableMetricProvider):
    """Rows whose key (``column_list``, all filled) was seen before in the batch: count and examples.

    SQL: one GROUP BY over the key (as warehouse.checks_sql: no window over the whole batch).
    """

    metric_name = "table.key_repeats"
    value_keys = ("column_list",)

    @metric_value(engine=SqlAlchemyExecutionEngine)
    def _sqlalchemy(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics,
                    runtime_configuration):
        selectable, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs, MetricDomainTypes.TABLE)
        keys: list[sa.ColumnClause[Any]] = [sa.column(c) for c in metric_value_kwargs["column_list"]]
        size = sa.func.count().label("copies")
        groups = (sa.select(*keys, size).select_from(selectable).where(*(k.isnot(None) for k in keys))
                  .group_by(*keys).having(sa.func.count() > 1).subquery())
        total = sa.select(sa.func.coalesce(sa.func.sum(groups.c.copies - 1), 0)).select_from(groups)
        count = execution_engine.execute_query(total).fetchall()[0][0]
        examples = execution_engine.execute_query(sa.select(groups).limit(EXAMPLES)).fetchall()
        return {"count": int(count), "examples": [_key_text(row[:-1], row[-1]) for row in examples]}

    @metric_value(engine=PandasExecutionEngine)
    def _pandas(cls, execution_engine, metric_domain_kwargs, metric_value_kwargs, metrics, runtime_configuration):
        df, _, _ = execution_engine.get_compute_domain(metric_domain_kwargs, domain_type=MetricDomainTypes.TABLE)
        keys = df[list(metric_value_kwargs["column_list"])].dropna()
        repeated = keys.duplicated(keep="first")
        groups = keys[keys.duplicated(keep=False)].value_counts(sort=False).head(EXAMPLES)
        return {"count": int(repeated.sum()), "examples": [_key_text(k, n) for k, n in groups.items()]}


def _key_text(key: tuple, copies: int) -> str:
    return mask_ids_in_text(" | ".join(str(v) for v in key)) + f" (×{copies})"


class ExpectCompoundColumnsToNotRepeat(BatchExpectation):
    """Each key (``column_list``) occurs once in the batch; every later copy is unexpected, the first is not."""

    column_list: list[str]
    metric_dependencies = ("table.key_repeats", "table.row_count")
    success_keys = ("column_list",)
    args_keys = ("column_list",)

    @override
    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None):
        repeats, rows = metrics["table.key_repeats"], metrics["table.row_count"]
        return {
            "success": repeats["count"] == 0,
            "result": {
                "observed_value": repeats["count"],
                "element_count": rows,
                "unexpected_count": repeats["count"],
                "unexpected_percent": 100.0 * repeats["count"] / rows if rows else 0.0,
                "partial_unexpected_list": repeats["examples"],
            },
        }
