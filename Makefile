# The few commands people need. `make demo` and `make test` are all the set-up a
# fresh machine needs: they create the virtualenv from uv.lock first.
PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: demo test bench lint airflow-ui clean-data report-screenshot

$(VENV)/.synced: pyproject.toml uv.lock
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	$(PYTHON) -m uv sync --frozen --python $(PYTHON)
	touch $@

## Generate the sample city, run every DAG through Airflow, print the ledger and outputs.
demo: $(VENV)/.synced
	$(VENV)/bin/credit demo

## Run the test suite (unit, DAG integrity, end-to-end through Airflow).
test: $(VENV)/.synced browser
	$(VENV)/bin/pytest

## The report test renders the HTML report in Debian's headless Chromium with CJK fonts:
## installed here when missing (needs root and apt), so `make test` is all the set-up.
.PHONY: browser
browser:
	@if ! dpkg -s chromium fonts-noto-cjk >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing chromium and fonts-noto-cjk (Debian) for the report test..."; \
			apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk; \
		else \
			echo "The report test needs Debian's chromium and fonts-noto-cjk: sudo apt-get install chromium fonts-noto-cjk" >&2; \
		fi; \
	fi

## Ingest of a 5-million-row penalty feed vs a bare DuckDB COPY (see bench/README.md).
bench: $(VENV)/.synced
	$(PY) bench/ingest_vs_copy.py --repeat 3

## Validate 5 million codes: the vectorized engine vs python-stdnum (see bench/codes_vs_stdnum.md).
.PHONY: bench-codes
bench-codes: $(VENV)/.synced
	$(PY) bench/codes_vs_stdnum.py

## Our GX suite on a 10-million-row penalty table in DuckDB vs one DuckDB query; GX pandas on 2M rows (bench/gx_vs_sql.md).
.PHONY: bench-gx
bench-gx: $(VENV)/.synced
	$(PY) bench/gx_vs_sql.py --pandas-rows 2000000

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

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check credit transforms warehouse expectations dags tests bench

## Browse the DAG runs of the demo: http://localhost:8080 (credentials printed by Airflow).
airflow-ui: $(VENV)/.synced
	$(PY) -c "from credit.airflow_env import airflow_environ; from foundation.settings import get_settings; \
	print('\n'.join(f'export {k}={v!r}' for k, v in airflow_environ(get_settings()).items()))" > $(VENV)/airflow.env
	. $(VENV)/airflow.env && $(VENV)/bin/airflow standalone

clean-data:
	rm -rf data
