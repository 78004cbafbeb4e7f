# The few commands people need. `make demo` and `make test` are all the set-up a
# fresh machine needs: they create the virtualenv from uv.lock first, with bytecode
# compiled (these machines set PYTHONDONTWRITEBYTECODE: without it every process
# would recompile Airflow and pandas).
PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
PY := $(VENV)/bin/python
PACKAGES := foundation transforms warehouse expectations sample_city credit
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test test-fast bench lint airflow-ui clean-data report-screenshot

$(VENV)/.synced: pyproject.toml uv.lock
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(PYTHON) -m uv sync --frozen --compile-bytecode --python $(PYTHON)
	$(PY) -m compileall -q $(PACKAGES) dags
	touch $@

## Generate the sample city, run every DAG through Airflow, print the ledger and outputs.
demo: $(VENV)/.synced fonts
	$(VENV)/bin/credit demo

## Run the test suite: every tier (unit, integration, end-to-end through Airflow).
test: $(VENV)/.synced browser
	$(VENV)/bin/pytest

## The fast loop: unit + integration tests, no Airflow DAG runs and no slow cases (under 90 s here).
test-fast: $(VENV)/.synced
	$(VENV)/bin/pytest -m "not e2e and not slow" -q -n 2

## The report's charts are laid out with Noto Sans CJK, and the report test renders the page
## in Debian's headless Chromium; the Airflow production test (tests/test_airflow_postgres.py)
## starts its own server from Debian's postgresql binaries. All installed here when missing
## (needs root and apt), so `make demo` and `make test` are all the set-up.
.PHONY: browser fonts
browser: DEBIAN_PACKAGES = chromium fonts-noto-cjk postgresql
fonts: DEBIAN_PACKAGES = fonts-noto-cjk
browser fonts:
	@if ! dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing $(DEBIAN_PACKAGES) (Debian): the report fonts and the browser and PostgreSQL tests..."; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
		else \
			echo "Needed from Debian: $(DEBIAN_PACKAGES) (sudo apt-get install $(DEBIAN_PACKAGES))" >&2; \
		fi; \
	fi

## Ingest of a 5-million-row penalty feed vs a bare DuckDB COPY (see bench/README.md).
bench: $(VENV)/.synced
	$(PY) bench/ingest_vs_copy.py --repeat 3

## Validate 5 million codes: the vectorized engine vs python-stdnum (see bench/codes_vs_stdnum.md).
.PHONY: bench-codes
bench-codes: $(VENV)/.synced
	$(PY) bench/codes_vs_stdnum.py

## `credit codes validate` on 2 million codes vs a python-stdnum job, whole processes from the shell (bench/cli_vs_stdnum.md).
.PHONY: bench-cli
bench-cli: $(VENV)/.synced
	$(PY) bench/cli_vs_stdnum.py --repeat 3 --in-process

## Our GX suite on a 10-million-row penalty table in DuckDB vs one DuckDB query; GX pandas on 2M rows (bench/gx_vs_sql.md).
.PHONY: bench-gx
bench-gx: $(VENV)/.synced
	$(PY) bench/gx_vs_sql.py --pandas-rows 2000000

## Prepare a release to the credit website from 10 million clean records vs one DuckDB scan of them (bench/publication_vs_scan.md).
.PHONY: bench-publication
bench-publication: $(VENV)/.synced
	$(PY) bench/publication_vs_scan.py

## Score 1 million subjects from 10 million facts vs one DuckDB aggregate, and `credit check` latency (bench/scoring_vs_aggregate.md).
.PHONY: bench-scoring
bench-scoring: $(VENV)/.synced
	$(PY) bench/scoring_vs_aggregate.py

## Render the latest quality report (data/reports/latest.html) to data/reports/latest.png with headless Chromium.
REPORTS = $(abspath $(or $(CREDIT_DATA_DIR),data))/reports
CHROMIUM ?= chromium
SCREENSHOT_SIZE ?= 1280,12000
report-screenshot: $(VENV)/.synced
	test -f $(REPORTS)/latest.html || $(VENV)/bin/credit report
	profile=$$(mktemp -d) && trap 'rm -rf "$$profile"' EXIT && \
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$$profile" \
		--window-size=$(SCREENSHOT_SIZE) --screenshot=$(REPORTS)/latest.png file://$(REPORTS)/latest.html
	@echo "Screenshot: $(REPORTS)/latest.png"

## ruff check, mypy on the library packages and import-linter's layers: the local hooks of
## .pre-commit-config.yaml, run on every file (no hook install, no network).
lint: $(VENV)/.synced
	$(VENV)/bin/pre-commit run --all-files

## Browse the DAG runs of the demo: http://localhost:8080, or another port with AIRFLOW_PORT=8090 (or
## AIRFLOW__API__PORT); admin password printed by Airflow, kept in data/airflow/. The data root is
## CREDIT_DATA_DIR's (./data by default). `airflow standalone` starts its parts as `airflow` from
## PATH: the virtualenv's bin/ comes first.
AIRFLOW_PORT ?= $(or $(AIRFLOW__API__PORT),8080)
airflow-ui: $(VENV)/.synced
	airflow_env="$$($(PY) -m credit.airflow_env --format shell --api-port $(AIRFLOW_PORT))" && eval "$$airflow_env" && \
	PATH="$(abspath $(VENV))/bin:$$PATH" exec $(VENV)/bin/airflow standalone

clean-data:
	rm -rf data
