# The two commands of the README: `make demo` and `make test`. Everything else
# here is what they need, plus conveniences for running the pieces by hand.
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else a private copy installed from the registry into .tools/.
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
export BIZOS_HOME ?= $(CURDIR)/.bizos

.PHONY: demo test env lint typecheck serve dagster clean

$(UV):
	@echo "uv not found: installing it into .tools/ from the package registry"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

# The environment is rebuilt only when the lockfile changes.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	@touch $@

env: $(VENV)/.synced

demo: env
	$(VENV)/bin/bizos demo

test: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -n auto --dist loadfile

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: env
	$(VENV)/bin/mypy

serve: env
	$(VENV)/bin/bizos serve

dagster: env
	mkdir -p $(BIZOS_HOME)/dagster && test -f $(BIZOS_HOME)/dagster/dagster.yaml || \
	  printf 'telemetry:\n  enabled: false\n' > $(BIZOS_HOME)/dagster/dagster.yaml
	DAGSTER_HOME=$(BIZOS_HOME)/dagster $(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf $(BIZOS_HOME) dbt/target dbt/logs
