# The two commands of the README: `make demo` and `make test`. Everything else
# here is what they need, plus conveniences for running the pieces by hand.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else a private copy installed from the registry into .tools/.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
export BIZOS_HOME ?= $(CURDIR)/.bizos
# pytest workers: one per core (a third worker on 2 cores was measured: 9:46 against
# 9:49, the heavy modules only slowed each other).
TEST_WORKERS ?= auto

.PHONY: demo test env lint typecheck serve dagster clean superset-env spark-env spark-build chromium

$(UV):
	@echo "uv not found: installing it into .tools/ from the package registry"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

# The environment is rebuilt only when the lockfile changes. Bytecode is compiled
# at install: where PYTHONDONTWRITEBYTECODE is set (as on CI machines) Python
# would otherwise compile every module of Dagster, dbt and GX from source in
# every process, about 30 s of CPU for each `bizos run`, dbt call and test worker.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/bizos demo

test: env superset-env spark-env chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: env
	$(VENV)/bin/mypy

# Superset's own virtualenv (it pins SQLAlchemy 1.4 and pandas 2.1), rebuilt when its
# requirements change; `bizos dashboards up` builds it the same way when missing.
superset-env: env
	$(VENV)/bin/bizos dashboards env

# The Spark target's own virtualenv (dbt-spark and pyspark, ~600 MB: only this target
# needs them), rebuilt when spark/requirements.txt or constraints.txt change; and
# Debian's Java 17 for pyspark, installed only when missing.
spark-env: env
	@command -v java >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless)
	$(VENV)/bin/python -m warehouse.spark_target env

# `dbt build` of the project on Spark (local[*]) from the lake under BIZOS_HOME:
# the `spark` selector of dbt/selectors.yml; tables under BIZOS_HOME/spark.
spark-build: spark-env
	$(VENV)/bin/python -m warehouse.spark_target build

# Debian's Chromium and its driver, for the dashboards' browser tests; installed
# only when missing (browser downloads from other hosts are not reachable).
chromium:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver)

serve: env
	$(VENV)/bin/bizos serve

# dagster.yaml as `bizos run` writes it: run queue limit, pool limit, run monitoring
# (pipelines/runner.py:instance_config).
dagster: env
	$(VENV)/bin/python -c 'from pathlib import Path; from core.settings import get_settings; \
	  from pipelines.runner import write_dagster_config; \
	  write_dagster_config(get_settings(), Path("$(BIZOS_HOME)/dagster"))'
	DAGSTER_HOME=$(BIZOS_HOME)/dagster $(VENV)/bin/dagster dev -w workspace.yaml

# dbt writes only under BIZOS_HOME/dbt; dbt/target and dbt/logs are what older
# versions (or a bare `dbt` run by hand in dbt/) left in the checkout.
clean:
	rm -rf $(BIZOS_HOME) dbt/target dbt/logs
