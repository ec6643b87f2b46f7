# BizOSaaS data platform. `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
PIP := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: install demo test lint bench bench-foundation bench-api bench-directory bench-gaming bench-esports bench-ecommerce bench-crm bench-crm-api bench-knowledge-embeddings bench-knowledge-vectors bench-knowledge-graph bench-knowledge-api bench-trading bench-api-scale bench-backfill bench-scale bench-materialize-memory soak clean-data help

help:
	@echo "make demo   - install, start Postgres, materialize every asset, start the UI"
	@echo "make test   - install, lint, run the test suite against a real Postgres"
	@echo "make bench  - run the benchmarks behind BENCHMARKS.md (bench-<name> runs one: foundation,"
	@echo "              api, directory, gaming, esports, ecommerce, crm, crm-api, knowledge-embeddings,"
	@echo "              knowledge-vectors, knowledge-graph, knowledge-api, trading, api-scale,"
	@echo "              backfill, scale, materialize-memory)"
	@echo "make soak   - 30-minute soak: 50 tenants, schedules + sensors + API load, injected source faults"

# The stamp makes a second install free; editing pyproject.toml or the lock reinstalls,
# and pip then only adds what changed.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U "pip>=25" setuptools wheel
	# The CPU build of torch lies on disk; installing it first keeps pip from pulling a
	# multi-GB CUDA build in for sentence-transformers.
	$(PIP) install -q -c requirements.lock torch==2.13.0
	$(PIP) install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/bizosaas demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

bench: bench-foundation bench-api bench-directory bench-gaming bench-esports bench-ecommerce bench-crm bench-crm-api bench-knowledge-embeddings bench-knowledge-vectors bench-knowledge-graph bench-knowledge-api bench-trading bench-api-scale bench-backfill bench-scale bench-materialize-memory

bench-foundation: install
	$(BIN)/python -m bench.foundation --cold-install

bench-api: install
	$(BIN)/python -m bench.api

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean-data:
	-$(BIN)/bizosaas db stop
	rm -rf .data

bench-directory: install
	$(BIN)/python -m bench.directory

bench-crm: install
	$(BIN)/python -m bench.crm

bench-crm-api: install
	$(BIN)/python -m bench.crm_api

bench-knowledge-embeddings: install
	$(BIN)/python -m bench.knowledge_embeddings

bench-knowledge-vectors: install
	$(BIN)/python -m bench.knowledge_vectors

bench-knowledge-graph: install
	$(BIN)/python -m bench.knowledge_graph

bench-knowledge-api: install
	$(BIN)/python -m bench.knowledge_api

bench-ecommerce: install
	$(BIN)/python -m bench.ecommerce

bench-esports: install
	$(BIN)/python -m bench.esports

bench-gaming: install
	$(BIN)/python -m bench.gaming

bench-trading: install
	$(BIN)/python -m bench.trading_backtest

bench-api-scale: install
	$(BIN)/python -m bench.api_scale

bench-backfill: install
	$(BIN)/python -m bench.backfill

bench-scale: install
	$(BIN)/python -m bench.scale

bench-materialize-memory: install
	$(BIN)/python -m bench.materialize_memory

# The soak (issue 9): 30 minutes of schedules, sensors and API load for 50 tenants with injected
# source faults, then the checks; not part of `bench` (about an hour with the baseline).
soak: install
	$(BIN)/python -m bench.soak
