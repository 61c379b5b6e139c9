# The README's commands. `make run` starts everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
export REDIS_URL ?= redis://127.0.0.1:6379/0
export PATH := $(BIN):$(PATH)


.PHONY: run test test-postgres install install-dev redis browser migrate demo lint format migrations-check bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

redis: install
	$(BIN)/python scripts/ensure_redis.py

# Development defaults for `make run` only; anything already in the environment (or .env) wins.
run: export DEBUG ?= 1
run: export EMAIL_URL ?= filemail:///$(CURDIR)/sent-emails
run: install redis
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo
	@echo "Starting daphne on http://127.0.0.1:$${WEB_PORT:-8000}/, an RQ worker and the scheduler (Ctrl-C stops them all)."
	$(BIN)/honcho start

test: install-dev redis browser
	$(BIN)/pytest

# The same suite on PostgreSQL (the local server by default; the database itself is test_<name>).
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
test-postgres: install-dev
	DATABASE_URL=$(TEST_POSTGRES_URL) bash scripts/ensure_postgres.sh
	DATABASE_URL=$(TEST_POSTGRES_URL) $(MAKE) test

# Debian's Chromium for the Playwright test (Playwright's own browser download cannot work offline).
browser:
	@bash scripts/ensure_chromium.sh

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations-check: install
	SECRET_KEY=check $(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) staticfiles test-output .pytest_cache .ruff_cache

$(VENV)/.installed-bench: requirements.txt requirements-dev.txt requirements-bench.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-bench.txt
	@touch $@ $(VENV)/.installed-dev $(VENV)/.installed

# The benchmarks on the real stack (daphne, RQ workers, Redis db 12, SQLite, PostgreSQL databases
# bench*): each writes benchmarks/results/<name>.json, then BENCHMARKS.md and its charts are
# rewritten. `make bench BENCH_ARGS=--smoke` is the quick check that they all run; `BENCH_ARGS=live`
# runs one benchmark (then `python -m benchmarks.write` renders every result on file).
bench: $(VENV)/.installed-bench redis
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
