"""Expectation suites built from the collection catalog, one per dataset (nothing hand-kept in JSON).

In: a catalog ``Dataset``. Out: a GX ``ExpectationSuite`` named ``credit_<dataset>``, for the
batch as ``warehouse.checks_sql.build_typed_sql`` types it: field codes hold normalized text
(blank -> NULL, codes compacted and upper-cased), ``<FIELD>__t`` the parsed date / amount /
integer, ``source_row`` the row number. Each expectation carries ``meta`` = {"rule", "field"}:
``rule`` is the quarantine reason it mirrors (transforms/reasons.py; ``valid_code`` stands for
every identifier reason of that field), so results and quarantine can be compared.
"""

from __future__ import annotations

import great_expectations as gx
from great_expectations.expectations import Expectation

from expectations.custom import (
    ExpectColumnPairValuesToBeParsed,
    ExpectColumnValuesToBeJoinedFromSet,
    ExpectColumnValuesToBeValidOrgCode,
    ExpectColumnValuesToBeValidResidentId,
    ExpectColumnValuesToBeValidUscc,
    ExpectCompoundColumnsToNotRepeat,
)
from foundation.catalog import CODE_TYPES, Dataset, FieldSpec, FieldType
from warehouse.checks_sql import TYPED

SUITE_PREFIX = "credit_"
_CODE_EXPECTATIONS = {
    FieldType.USCC: (ExpectColumnValuesToBeValidUscc, "统一社会信用代码（GB 32100-2015）"),
    FieldType.ORG_CODE: (ExpectColumnValuesToBeValidOrgCode, "组织机构代码（GB 11714）"),
    FieldType.RESIDENT_ID: (ExpectColumnValuesToBeValidResidentId, "公民身份号码（GB 11643）"),
}
_TYPE_WORDS = {FieldType.DATE: "日期", FieldType.AMOUNT: "金额", FieldType.INTEGER: "整数"}
_TYPE_RULES = {FieldType.DATE: "invalid_date", FieldType.AMOUNT: "invalid_amount", FieldType.INTEGER: "invalid_integer"}


def suite_name(dataset: Dataset) -> str:
    return f"{SUITE_PREFIX}{dataset.id}"


def typed_column(spec: FieldSpec) -> str:
    """The column holding a field's typed value (see warehouse.checks_sql)."""
    return f"{spec.code}__t" if spec.type in TYPED else spec.code


def _label(spec: FieldSpec) -> str:
    return f"{spec.name_zh}（{spec.code}）"


def _meta(rule: str, field: str) -> dict:
    return {"rule": rule, "field": field}


def build_required(dataset: Dataset) -> list[Expectation]:
    """Required fields are filled (a blank or all-space value counts as missing: normalized to NULL)."""
    return [
        gx.expectations.ExpectColumnValuesToNotBeNull(
            column=f.code, description=f"{_label(f)}为必填项，不得为空", meta=_meta("required_missing", f.code)
        )
        for f in dataset.fields
        if f.required
    ]


def build_allowed_values(dataset: Dataset) -> list[Expectation]:
    """Enum fields hold an allowed value; ``multi`` fields one or more, joined by ; ； 、 or ,."""
    found: list[Expectation] = []
    for f in dataset.fields:
        if not f.allowed_values:
            continue
        values = list(f.allowed_values)
        meta = _meta("value_not_allowed", f.code)
        if f.multi:
            found.append(ExpectColumnValuesToBeJoinedFromSet(
                column=f.code, value_set=values, meta=meta,
                description=f"{_label(f)}取值须为规定值（可多项，以、；;,分隔）：{'、'.join(values)}",
            ))
        else:
            found.append(gx.expectations.ExpectColumnValuesToBeInSet(
                column=f.code, value_set=values, meta=meta,
                description=f"{_label(f)}取值须为规定值：{'、'.join(values)}",
            ))
    return found


def build_types(dataset: Dataset) -> list[Expectation]:
    """Dates, amounts (in the field's unit) and integers parse wherever a value is given."""
    return [
        ExpectColumnPairValuesToBeParsed(
            column_A=f.code, column_B=typed_column(f), meta=_meta(_TYPE_RULES[f.type], f.code),
            description=f"{_label(f)}须为可识别的{_TYPE_WORDS[f.type]}" + (f"（单位：{f.unit}）" if f.unit else ""),
        )
        for f in dataset.fields
        if f.type in _TYPE_RULES
    ]


def build_ranges(dataset: Dataset) -> list[Expectation]:
    """Typed values lie within the catalog's min_value / max_value (e.g. 罚款 0-100000 万元)."""
    found: list[Expectation] = []
    for f in dataset.fields:
        if f.min_value is None and f.max_value is None:
            continue
        low = "" if f.min_value is None else f"{f.min_value:g}"
        high = "" if f.max_value is None else f"{f.max_value:g}"
        found.append(gx.expectations.ExpectColumnValuesToBeBetween(
            column=typed_column(f), min_value=f.min_value, max_value=f.max_value, meta=_meta("out_of_range", f.code),
            description=f"{_label(f)}须在 {low}–{high} {f.unit or ''} 之间".rstrip(),
        ))
    return found


def build_lengths(dataset: Dataset) -> list[Expectation]:
    """Text is at most ``max_length`` characters (codes: their own validity covers length)."""
    return [
        gx.expectations.ExpectColumnValueLengthsToBeBetween(
            column=f.code, max_value=f.max_length, meta=_meta("field_too_long", f.code),
            description=f"{_label(f)}不超过 {f.max_length} 个字符",
        )
        for f in dataset.fields
        if f.type not in CODE_TYPES
    ]


def build_codes(dataset: Dataset) -> list[Expectation]:
    """USCC, organization codes and resident IDs pass the identifier engine."""
    found: list[Expectation] = []
    for f in dataset.fields:
        if f.type in _CODE_EXPECTATIONS:
            cls, what = _CODE_EXPECTATIONS[f.type]
            found.append(cls(column=f.code, meta=_meta("valid_code", f.code),
                             description=f"{_label(f)}须为有效的{what}"))
    return found


def build_date_order(dataset: Dataset) -> list[Expectation]:
    """The catalog's ``date_order``: start not after end when both are given (有效期自 <= 有效期至)."""
    found: list[Expectation] = []
    for rule in dataset.date_order:
        start, end = dataset.field(rule.start), dataset.field(rule.end)
        found.append(gx.expectations.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=typed_column(end), column_B=typed_column(start), or_equal=True,
            ignore_row_if="either_value_is_missing", meta=_meta("date_order", end.code),
            description=f"{_label(start)}不得晚于{_label(end)}",
        ))
    return found


def build_key(dataset: Dataset) -> list[Expectation]:
    """The catalog's ``key_fields`` identify a record: a key seen again in the batch is a duplicate."""
    names = "、".join(_label(dataset.field(k)) for k in dataset.key_fields)
    return [ExpectCompoundColumnsToNotRepeat(
        column_list=list(dataset.key_fields), meta=_meta("duplicate_row", ""),
        description=f"同一批次内{names}不得重复（重复记录只保留第一条）",
    )]


BUILDERS = (build_required, build_allowed_values, build_types, build_ranges, build_lengths, build_codes,
            build_date_order, build_key)


def build_suite(dataset: Dataset) -> gx.ExpectationSuite:
    expectations = [e for build in BUILDERS for e in build(dataset)]
    return gx.ExpectationSuite(
        name=suite_name(dataset), expectations=expectations,
        meta={"dataset_id": dataset.id, "name_zh": dataset.name_zh, "catalog": f"catalogs/datasets/{dataset.id}.yaml"},
    )


def build_suites(datasets: list[Dataset]) -> dict[str, gx.ExpectationSuite]:
    return {ds.id: build_suite(ds) for ds in datasets}
