# Billable: the verbs a person or cron uses. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_SYSTEM ?= python3.11
VENV          := .venv
PY            := $(VENV)/bin/python
PRESET        ?= demo
SEED          ?= 7
PORT          ?= 8800
DATA          := data
WORLD         ?= $(DATA)/worlds/$(PRESET)-$(SEED)
SANDBOX_URL   := http://127.0.0.1:$(PORT)
DASHBOARD_PORT ?= 8501

.PHONY: help setup run pipeline sandbox generate advance ingest transform sync test lint bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml requirements.lock
	@command -v $(PYTHON_SYSTEM) >/dev/null || { echo "need $(PYTHON_SYSTEM) on PATH" >&2; exit 1; }
	@test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed ## create the virtual environment and install pinned dependencies

generate: setup ## generate a world (PRESET=tiny|demo|large|xl SEED=n) unless it exists
	@if [ -f $(WORLD)/world.json ]; then echo "world $(WORLD) exists (make clean or WORLD=... for another)"; \
	else $(PY) -m sandbox generate --preset $(PRESET) --seed $(SEED) --out $(WORLD); fi

sandbox: generate ## serve the sandbox systems on http://127.0.0.1:$(PORT) (Ctrl-C stops)
	$(PY) -m sandbox serve --world $(WORLD) --port $(PORT)

advance: setup ## move the world's clock forward (DAYS=n, default 1)
	$(PY) -m sandbox advance --world $(WORLD) --days $(or $(DAYS),1)

pipeline: generate ## the whole non-interactive run: world, sandbox, ingest, transform, sync
	$(PY) -m billable.pipeline --world $(WORLD) --port $(PORT)

run: pipeline ## make pipeline, then serve the dashboard on http://localhost:$(DASHBOARD_PORT)
	@echo "The dashboard is not built yet (issue 7); the pipeline above is what runs today."

lint: setup ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint ## lint, then the whole test suite against real components
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup ## benchmarks; results go to docs/benchmarks.md
	$(PY) -m billable.bench $(BENCH_ARGS)

clean: ## remove generated worlds, warehouses and logs (keeps the virtual environment)
	rm -rf $(DATA)
