# Quick start: `make demo` (sample data through the whole lake) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export ANALYTICS_LAKE_DIR ?= $(CURDIR)/.lake
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DAGSTER_PORT ?= 3000
export ANALYTICS_API_PORT ?= 8000

UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen --no-sync

.PHONY: help install dagster-home demo sample-data process dev api test lint typecheck bench clean aws-env terraform-check image-check

help:
	@echo "make demo     sample data for every dataset -> the whole lake, headless; prints tables"
	@echo "make dev      Dagster UI + daemon on http://127.0.0.1:$(DAGSTER_PORT), sensors running"
	@echo "make process  process everything in $(ANALYTICS_LAKE_DIR)/landing to completion"
	@echo "make api      the analytics API + viewer on http://127.0.0.1:$(ANALYTICS_API_PORT) (read-only)"
	@echo "make test     lint, type check and the whole test suite"
	@echo "make bench    ingest/query benchmarks against a floor measured in the same run"
	@echo "make image-check  build both images with buildah (root, minutes) and run their entry points"

# The environment is synced once per lock change, with bytecode compiled: these machines (and
# many images) set PYTHONDONTWRITEBYTECODE, so without it every start compiles every module.
INSTALLED := .venv/.installed
install: $(INSTALLED)
	@$(UV) run --frozen --no-sync python -m compileall -q analytics_pipeline

$(INSTALLED): pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv
	@# Once more if it fails: uv's compile workers have been seen to drop a file on a loaded
	@# machine ("Bytecode compilation failed ... received ''"); a second sync compiles it.
	@$(UV) sync --frozen --quiet --compile-bytecode \
		|| $(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

dagster-home: install
	@$(RUN) python -m analytics_pipeline.cli.dagster_home "$(DAGSTER_HOME)"

sample-data: install
	$(RUN) python -m analytics_pipeline.cli.sample_data --lake-dir "$(ANALYTICS_LAKE_DIR)"

process: install
	$(RUN) python -m analytics_pipeline.cli.process

demo: install
	$(RUN) python -m analytics_pipeline.cli.demo

dev: install dagster-home
	$(RUN) dagster dev -h 127.0.0.1 -p $(DAGSTER_PORT) -w workspace.yaml

api: install  # keys: $(RUN) python -m analytics_pipeline.cli.api_key --scope global
	$(RUN) uvicorn --factory analytics_pipeline.serving.app:create_app \
		--host 127.0.0.1 --port $(ANALYTICS_API_PORT)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy analytics_pipeline benchmarks local_servers

# Three workers on two cores: most of the suite waits (servers starting, the daemon's ticks, the
# AWS provider polling moto), a file per worker at a time, the slowest files first (conftest.py).
test: install lint typecheck
	$(RUN) pytest -q -n 3 --dist loadfile --no-loadscope-reorder

# Quick sizes by default; BENCH_ARGS=--full gives the issue's (see benchmarks/README.md).
bench: install dagster-home
	$(RUN) python -m benchmarks.spread $(BENCH_ARGS)
	$(RUN) python -m benchmarks.startup --repeat 3
	$(RUN) python -m benchmarks.instance_storage
	$(RUN) python -m benchmarks.dev_latency
	$(RUN) python -m benchmarks.run $(RUN_BENCH_ARGS)
	$(RUN) python -m benchmarks.source_extract $(SOURCE_BENCH_ARGS)

aws-env:  # `make -s aws-env > .env.aws` after terraform apply
	@terraform -chdir=terraform output -json | python3 scripts/terraform_env.py

terraform-check:
	bash scripts/terraform_checks.sh

# Not part of `make test`: it downloads a few hundred MB and takes minutes.
image-check: install
	$(RUN) python -m scripts.build_image

clean:
	rm -rf .lake .dagster_home
