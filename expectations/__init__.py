"""Great Expectations suites built from the catalog and run inside DuckDB (see run.py)."""
