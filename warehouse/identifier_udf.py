"""The vectorized identifier engine as DuckDB functions (Arrow UDFs over transforms/identifiers_arrow.py).

    register_identifier_udfs(con)
    SELECT normalize_code_fast(raw)          -- VARCHAR, NULL when nothing is left
         , code_kind_fast(code)              -- 'uscc' | 'org_code' | 'resident_id' | 'unknown'
         , uscc_reasons_fast(code)           -- VARCHAR[], [] when valid, NULL on NULL
         , org_code_reasons_fast(code)
         , resident_id_reasons_fast(code)
         , validate_code_fast(raw, kind)     -- STRUCT(normalized, kind, valid, reasons); kind NULL = guess

The first five return what the macro of the same name without ``_fast`` in
warehouse/identifier_sql.py returns (tests/test_identifiers_arrow.py), so a query switches by
renaming the call; normalize_code_fast differs only in applying full NFKC like the Python
reference, where the macro folds full-width ASCII alone. validate_code_fast is
transforms.identifiers.validate in one call. DuckDB hands a UDF 2,048 rows at a time. Unlike
the macros, a UDF may be given an expression: ``uscc_reasons_fast(normalize_code_fast(raw))``
evaluates each function once per row.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
from duckdb import sqltypes

from transforms import identifiers_arrow as engine


def _validate(raw: pa.Array, kind: pa.Array) -> pa.StructArray:
    return engine.validate_codes(raw, kind).drop_columns("input").to_struct_array()


def register_identifier_udfs(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``*_fast`` functions on ``con`` (replacing any of the same name)."""
    varchar, varchar_list = sqltypes.VARCHAR, con.list_type(sqltypes.VARCHAR)
    result = con.struct_type(
        {"normalized": varchar, "kind": varchar, "valid": sqltypes.BOOLEAN, "reasons": varchar_list}
    )
    functions = [
        ("normalize_code_fast", engine.normalize_codes, [varchar], varchar),
        ("code_kind_fast", engine.code_kinds, [varchar], varchar),
        ("uscc_reasons_fast", engine.uscc_reasons, [varchar], varchar_list),
        ("org_code_reasons_fast", engine.org_code_reasons, [varchar], varchar_list),
        ("resident_id_reasons_fast", engine.resident_id_reasons, [varchar], varchar_list),
        ("validate_code_fast", _validate, [varchar, varchar], result),
    ]
    engine.validate_codes(pa.array(["91110000600037341L"]))  # build the lookup tables once, here
    for name, function, parameters, return_type in functions:
        try:
            con.remove_function(name)
        except duckdb.InvalidInputException:
            pass  # not registered yet
        # null_handling 'special': NULLs reach the function (code_kind_fast(NULL) is 'unknown').
        # The ignore: duckdb's stubs accept only the PythonUDFType / FunctionNullHandling enums, not the
        # strings the runtime takes (the enums moved module between duckdb 1.x and 2.x).
        con.create_function(  # type: ignore[call-overload]
            name, function, parameters, return_type, type="arrow", null_handling="special", side_effects=False
        )
