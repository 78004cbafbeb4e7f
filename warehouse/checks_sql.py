"""Build, from a catalog dataset, the SQL that normalizes, types and checks one raw batch.

``build_typed_sql`` normalizes and types one batch's raw Parquet file (``$rows``) in a
CTE chain ``source -> normalized -> typed``; its result, materialized once as the
temp table ``typed``, feeds two queries:
- ``build_problem_sql``: the records that fail a check, with ``reasons``
  (``code:FIELD`` strings) and ``evidence`` (JSON, e.g. the first copy of a duplicate),
  after ``build_code_checks_sql`` has validated the slice's new codes;
- ``build_clean_sql``: every other record, typed and ready for the clean layer. \
Field codes are validated identifiers; every catalog value (allowed
values, bounds, units, lengths) is a bound parameter.
"""

from __future__ import annotations

from foundation.catalog import CODE_TYPES, Dataset, FieldSpec, FieldType
from foundation.sql_names import ident, param
from transforms.masking import CONTROL, mask_id_sql

# A staged rows.parquet with ``_row`` filled in: the line-by-line reader writes each record's
# ordinal, DuckDB's CSV path leaves it NULL and keeps the file in record order.
STAGED_ROW_NUMBER = "coalesce(_row, file_row_number + 1)"
STAGED_ROWS = (f"(SELECT {STAGED_ROW_NUMBER} AS _row, * EXCLUDE (_row, file_row_number) "
               "FROM read_parquet($rows, file_row_number = true){where})")

_REASON_MACRO = {
    FieldType.USCC: "uscc_reasons",
    FieldType.ORG_CODE: "org_code_reasons",
    FieldType.RESIDENT_ID: "resident_id_reasons",
}


def normalized_sql(spec: FieldSpec) -> str:
    """How the loader normalizes a field's text (also what the scorecard counts as filled)."""
    col = ident(spec.code)
    if spec.type in CODE_TYPES:
        return f"normalize_code({col})"
    if spec.type is FieldType.TEXT:
        return f"clean_text({col})"  # free text keeps its characters; only trimmed
    if spec.type is FieldType.ENUM:
        return f"clean_enum({col})"  # = clean_text(fold_width(...)), once per distinct value
    return f"clean_text(fold_width({col}))"


TYPED = {FieldType.DATE, FieldType.AMOUNT, FieldType.INTEGER}


def typed_name(spec: FieldSpec) -> str:
    """The column of ``typed`` that holds a field's typed value."""
    return ident(f"{spec.code}__t") if spec.type in TYPED else ident(spec.code)


def _typed(spec: FieldSpec, params: dict) -> str:
    col = ident(spec.code)
    if spec.type is FieldType.DATE:
        return f"parse_cn_date({col})"
    if spec.type is FieldType.AMOUNT:
        params[f"unit_{spec.code}"] = spec.unit
        return f"parse_amount({col}, {param('unit', spec.code)}::VARCHAR)"
    if spec.type is FieldType.INTEGER:
        return f"try_cast(replace({col}, ',', '') AS BIGINT)"
    return col


def _checks(spec: FieldSpec, params: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """((condition, reason) pairs, list-valued reason expressions) for one field."""
    n = ident(spec.code)  # normalized text
    t = typed_name(spec)  # typed value
    tag = f"':{spec.code}'"
    scalar: list[tuple[str, str]] = []
    lists: list[str] = []
    if spec.required:
        scalar.append((f"{n} IS NULL", f"'required_missing' || {tag}"))
    params[f"maxlen_{spec.code}"] = spec.max_length
    scalar.append((f"length({n}) > {param('maxlen', spec.code)}", f"'field_too_long' || {tag}"))
    if spec.allowed_values:
        params[f"allowed_{spec.code}"] = list(spec.allowed_values)
        allowed = param("allowed", spec.code)
        if spec.multi:
            ok = (
                f"list_bool_and(list_transform(string_split_regex({n}, '[;；、,]'), "
                f"lambda v: list_contains({allowed}, trim(v))))"
            )
        else:
            ok = f"list_contains({allowed}, {n})"
        scalar.append((f"{n} IS NOT NULL AND NOT {ok}", f"'value_not_allowed' || {tag}"))
    failure = {FieldType.DATE: "invalid_date", FieldType.AMOUNT: "invalid_amount", FieldType.INTEGER: "invalid_integer"}
    if spec.type in failure:
        scalar.append((f"{n} IS NOT NULL AND {t} IS NULL", f"'{failure[spec.type]}' || {tag}"))
    if spec.min_value is not None or spec.max_value is not None:
        params[f"min_{spec.code}"] = spec.min_value
        params[f"max_{spec.code}"] = spec.max_value
        lo, hi = param("min", spec.code), param("max", spec.code)
        scalar.append((f"{t} < {lo}::DOUBLE OR {t} > {hi}::DOUBLE", f"'out_of_range' || {tag}"))
    if spec.type in _REASON_MACRO:
        # Looked up from the temp table code_checks, which validates each distinct code once.
        lists.append(f"coalesce({ident(spec.code + '__r')}, [])")
    return scalar, lists


def build_typed_sql(dataset: Dataset, source: str = STAGED_ROWS.format(where="")) -> tuple[str, dict]:
    """``source -> normalized -> typed`` over the batch's raw Parquet file ``$rows``.

    The result is materialized once (temp table ``typed``): both queries below read it.
    ``source`` may name another relation with the same columns (``_row`` + field codes);
    it is our own SQL text, never input.
    """
    params: dict = {}
    fields = dataset.fields
    source_cols = ", ".join(ident(f.code) for f in fields)
    normalized = ",\n        ".join(f"{normalized_sql(f)} AS {ident(f.code)}" for f in fields)
    typed = "".join(f",\n    {_typed(f, params)} AS {typed_name(f)}" for f in fields if f.type in TYPED)
    sql = f"""
WITH source AS (
    SELECT _row AS source_row, {source_cols}
    FROM {source}
),
normalized AS (
    SELECT source_row,
        {normalized}
    FROM source
)
SELECT *{typed}
FROM normalized"""
    return sql, params


def build_copies_sql(dataset: Dataset) -> tuple[str, dict]:
    """Repeated records of the whole batch (``$rows``): ``source_row``, ``copy_no``, ``first_row``.

    Only keys seen twice or more are numbered: no window over the whole batch. Materialized
    once per batch (temp table ``copies``), so the checks can run a slice of the batch at a time.
    """
    keys = ", ".join(ident(k) for k in dataset.key_fields)
    keys_present = " AND ".join(f"{ident(k)} IS NOT NULL" for k in dataset.key_fields)
    normalized = ", ".join(f"{normalized_sql(dataset.field(k))} AS {ident(k)}" for k in dataset.key_fields)
    sql = f"""
WITH keyed AS (
    SELECT _row AS source_row, {normalized} FROM {STAGED_ROWS.format(where="")}
),
repeated_keys AS (
    SELECT {keys} FROM keyed WHERE {keys_present} GROUP BY {keys} HAVING count(*) > 1
)
SELECT source_row,
    row_number() OVER (PARTITION BY {keys} ORDER BY source_row) AS copy_no,
    min(source_row) OVER (PARTITION BY {keys}) AS first_row
FROM keyed SEMI JOIN repeated_keys USING ({keys})"""
    return sql, {}


CODE_CHECKS_DDL = "CREATE OR REPLACE TEMP TABLE code_checks (kind VARCHAR, code VARCHAR, found VARCHAR[])"


def build_code_checks_sql(dataset: Dataset) -> str | None:
    """Add to the temp table ``code_checks`` (``CODE_CHECKS_DDL``) the codes of ``typed`` not in it yet.

    Each distinct code of a batch is validated once, however many rows and slices carry it:
    ``found`` holds its reasons, [] when valid. None for a dataset without code fields.
    """
    code_fields = [f for f in dataset.fields if f.type in _REASON_MACRO]
    if not code_fields:
        return None
    structs = ", ".join(f"{{'kind': '{f.type.value}', 'code': {ident(f.code)}}}" for f in code_fields)
    return f"""
INSERT INTO code_checks
SELECT kind, code,
    CASE kind WHEN 'uscc' THEN uscc_reasons_fast(code)  -- warehouse/identifier_udf.py: the macros' results
              WHEN 'org_code' THEN org_code_reasons_fast(code)
              ELSE resident_id_reasons_fast(code) END
FROM (SELECT DISTINCT c.kind, c.code FROM (SELECT unnest([{structs}]) AS c FROM typed) WHERE c.code IS NOT NULL)
ANTI JOIN code_checks USING (kind, code)"""


def build_problem_sql(dataset: Dataset) -> tuple[str, dict]:
    """Records of ``typed`` that fail a check: ``source_row``, ``reasons`` and ``evidence``.

    Reads the temp tables ``typed``, ``copies`` (see ``build_copies_sql``) and ``code_checks``
    (see ``build_code_checks_sql``, run first on the same ``typed``)."""
    params: dict = {}
    fields = dataset.fields
    scalar: list[tuple[str, str]] = []
    lists: list[str] = []
    for spec in fields:
        field_scalar, field_lists = _checks(spec, params)
        scalar += field_scalar
        lists += field_lists
    for rule in dataset.date_order:
        start, end = typed_name(dataset.field(rule.start)), typed_name(dataset.field(rule.end))
        scalar.append((f"{start} > {end}", f"'date_order:{rule.end}'"))
    scalar.append(("copy_no > 1", "'duplicate_row'"))
    register_join = ""
    s = dataset.subject
    if dataset.category != "register" and s.uscc_field:
        # Cross-check against the register (法人基础信息) once one is loaded: a well-formed
        # code must belong to a registered subject, under the name the register holds.
        code, name = ident(s.uscc_field), ident(s.name_field)
        valid_code = f"{code} IS NOT NULL AND len(coalesce({ident(s.uscc_field + '__r')}, [])) = 0"
        scalar.append((f"$register_ready AND {valid_code} AND reg.name IS NULL", f"'not_in_register:{s.uscc_field}'"))
        scalar.append((f"{valid_code} AND reg.name IS NOT NULL AND name_key({name}) <> name_key(reg.name)",
                       f"'name_mismatch:{s.name_field}'"))
        register_join = (f"\n    LEFT JOIN (SELECT subject_key, name FROM clean.subjects WHERE in_register) reg "
                         f"ON reg.subject_key = typed.{code}")
        params["register_ready"] = False  # the caller sets it
    repair_join = ""
    if dataset.repairs:  # the record a repair names must exist and be repairable by then (temp table repair_checks)
        scalar.append(("rc.reason IS NOT NULL", "rc.reason"))
        repair_join = "\n    LEFT JOIN repair_checks rc ON rc.source_row = typed.source_row"
    # Reasons are listed only for rows that fail something: building a list for every row
    # of a large batch costs more than the checks themselves.
    reasons = (
        "list_filter([" + ", ".join(f"CASE WHEN {c} THEN {r} END" for c, r in scalar) + "], lambda r: r IS NOT NULL)"
    )
    if lists:
        reasons = f"list_concat({reasons}, {', '.join(lists)})"
    fails = " OR ".join([f"({c})" for c, _ in scalar] + [f"len({x}) > 0" for x in lists])

    code_fields = [f for f in fields if f.type in _REASON_MACRO]
    code_joins = "".join(
        f"\n    LEFT JOIN (SELECT code, list_transform(found, lambda r: r || ':{f.code}') AS {ident(f.code + '__r')} "
        f"FROM code_checks WHERE kind = '{f.type.value}') {ident('j_' + f.code)} "
        f"ON {ident('j_' + f.code)}.code = typed.{ident(f.code)}"
        for f in code_fields
    )
    sql = f"""
WITH checked AS (
    SELECT typed.source_row, copies.copy_no, copies.first_row, {reasons} AS reasons,
        {"reg.name" if register_join else "NULL"} AS register_name
    FROM typed
    LEFT JOIN copies USING (source_row){code_joins}{register_join}{repair_join}
    WHERE {fails}
)
SELECT source_row, reasons,
    CASE WHEN copy_no > 1 THEN json_object('duplicate_of_row', first_row)
         WHEN list_contains(list_transform(reasons, lambda r: split_part(r, ':', 1)), 'name_mismatch')
         THEN json_object('register_name', register_name) END AS evidence
FROM checked
WHERE len(reasons) > 0
"""
    return sql, params


def _subject_key(dataset: Dataset) -> str:
    s = dataset.subject
    parts = []
    if s.uscc_field:
        parts.append(f"WHEN {ident(s.uscc_field)} IS NOT NULL THEN {ident(s.uscc_field)}")
    if s.id_field:
        parts.append(f"WHEN {ident(s.id_field)} IS NOT NULL THEN 'P:' || sha256($salt || {ident(s.id_field)})")
    return f"CASE {' '.join(parts)} ELSE 'N:' || md5(coalesce({ident(s.name_field)}, '')) END"


def build_clean_sql(dataset: Dataset, problems_table: str) -> tuple[str, dict]:
    """The rows of ``typed`` that are not in ``problems_table`` (bind ``$salt`` if present).

    Columns follow ``warehouse.schema.clean_columns`` without ``batch_id`` (a partition column).
    A resident ID leaves as a masked value plus a salted hash, never in clear; text leaves
    scrubbed (``scrub_text``: ID numbers typed into it masked, control characters removed), or with
    control characters removed only where the catalog says ``mask_ids: false``.
    """
    params: dict = {}
    exprs = ["source_row", f"{_subject_key(dataset)} AS subject_key"]
    for spec in dataset.fields:
        col, name = typed_name(spec), ident(spec.code)
        if spec.type is FieldType.RESIDENT_ID:
            exprs.append(f"{mask_id_sql(col)} AS {name}")
            exprs.append(f"CASE WHEN {col} IS NOT NULL THEN sha256($salt || {col}) END AS {ident(spec.code + '_HASH')}")
        elif spec.type is FieldType.TEXT and spec.mask_ids:  # an ID number typed into it leaves masked
            exprs.append(f"scrub_text({col}) AS {name}")
        elif spec.type is FieldType.TEXT:  # a code of its own kind: control characters removed only
            params["control"] = "[" + CONTROL.encode("unicode_escape").decode() + "]"  # RE2 reads \x00
            exprs.append(f"regexp_replace({col}, $control, '', 'g') AS {name}")
        else:
            exprs.append(f"{col} AS {name}")
    select = ",\n    ".join(exprs)
    sql = f"""
SELECT {select}
FROM typed ANTI JOIN {problems_table} USING (source_row)
"""
    return sql, params


def build_code_rows_sql(dataset: Dataset, problems_table: str) -> str | None:
    """The USCCs of ``typed`` (a slice of the batch) as ``field, code, name, erroneous, malformed``.

    One row per distinct (field, code, name); ``name`` is the subject's name for the subject
    code, NULL for the other code fields. ``build_code_sql`` sums the slices up. None without
    USCC fields.
    """
    fields = [f for f in dataset.fields if f.type is FieldType.USCC]
    if not fields:
        return None
    s = dataset.subject
    parts = []
    for f in fields:
        col = ident(f.code)
        tag = f"':{f.code}'"
        on_field = (f"len(list_filter(p.reasons, lambda r: ends_with(r, {tag}) "
                    f"AND NOT starts_with(r, 'required_missing') "
                    f"AND NOT starts_with(r, 'field_too_long'){{extra}})) > 0")
        malformed = on_field.format(extra=" AND NOT starts_with(r, 'not_in_register')")
        erroneous = on_field.format(extra="")
        subject = f.code == s.uscc_field
        if subject:
            erroneous += f" OR list_contains(p.reasons, 'name_mismatch:{s.name_field}')"
        name = f"t.{ident(s.name_field)}" if subject else "NULL::VARCHAR"
        # The reason lists are read for problem rows only.
        parts.append(f"""SELECT '{f.code}' AS field, t.{col} AS code, {name} AS name,
    bool_or(CASE WHEN p.source_row IS NULL THEN false ELSE {erroneous} END) AS erroneous,
    bool_or(CASE WHEN p.source_row IS NULL THEN false ELSE {malformed} END) AS malformed
FROM typed t LEFT JOIN {problems_table} p USING (source_row)
WHERE t.{col} IS NOT NULL
GROUP BY ALL""")
    return "\nUNION ALL\n".join(parts)


def build_code_sql(dataset: Dataset, code_rows: str) -> tuple[str, dict]:
    """Every distinct USCC of the batch (from ``code_rows``), with whether it is 错码 / 重码.

    错码: a reason on that field (format, checksum, kind, not in the register), or a
    name that differs from the register's for the subject code. 重码: the subject code
    reported under two or more names (compared with ``name_key``), or one subject name
    reported under two or more well-formed codes (every one of them, except the code the
    register holds for that name).
    """
    sql = f"""
WITH named AS (
    SELECT field, code, name_key(name) AS name_key, erroneous, malformed
    FROM (SELECT field, code, name, bool_or(erroneous) AS erroneous, bool_or(malformed) AS malformed
          FROM {code_rows} GROUP BY ALL)
),
wellformed AS (
    SELECT DISTINCT code, name_key FROM named
    WHERE field = $subject_field AND NOT malformed AND name_key IS NOT NULL
),
several_codes AS (  -- one subject under several codes: each counts, but the register's own code for it
    SELECT DISTINCT w.code FROM wellformed w
    WHERE w.name_key IN (SELECT name_key FROM wellformed GROUP BY name_key HAVING count(DISTINCT code) > 1)
      AND NOT EXISTS (SELECT 1 FROM clean.subjects r
                      WHERE r.in_register AND r.subject_key = w.code AND name_key(r.name) = w.name_key)
)
SELECT field, code, bool_or(erroneous) AS erroneous,
    count(DISTINCT name_key) > 1 OR bool_or(field = $subject_field AND code IN (SELECT code FROM several_codes))
        AS duplicate
FROM named
GROUP BY field, code"""
    return sql, {"subject_field": dataset.subject.uscc_field}


def build_conflict_sql(dataset: Dataset, code_rows: str) -> tuple[str, dict]:
    """The evidence behind 重码 (from ``code_rows``): each subject code reported under several
    names, with the names; each subject (``name_key``) reported under several well-formed codes,
    with the codes. Rows: ``kind, code, name_key, others``."""
    sql = f"""
WITH named AS (
    SELECT code, name, name_key(name) AS name_key, bool_or(malformed) AS malformed
    FROM {code_rows} WHERE field = $subject_field AND name IS NOT NULL GROUP BY code, name
)
SELECT 'one_code_several_names' AS kind, code, NULL AS name_key, list(DISTINCT name ORDER BY name) AS others
FROM named GROUP BY code HAVING count(DISTINCT name_key) > 1
UNION ALL
SELECT 'one_name_several_codes', NULL, name_key, list(DISTINCT code ORDER BY code)
FROM named WHERE NOT malformed AND name_key IS NOT NULL GROUP BY name_key HAVING count(DISTINCT code) > 1"""
    return sql, {"subject_field": dataset.subject.uscc_field}
