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
# WEB_PORT is daphne's port (the Procfile's); SITE_URL, the base of links in emails, follows it.
# EMAIL_URL: filemail:// and an absolute path, so four slashes ($(CURDIR) begins with one).
run: export DEBUG ?= 1
run: export WEB_PORT ?= 8000
run: export SITE_URL ?= http://127.0.0.1:$(WEB_PORT)
run: export EMAIL_URL ?= filemail:///$(CURDIR)/sent-emails
run: install redis
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo
	@echo "Starting daphne on http://127.0.0.1:$(WEB_PORT)/, an RQ worker and the scheduler (Ctrl-C stops them all)."
	@echo "Emails are written to $(CURDIR)/sent-emails/ with links to $(SITE_URL)."
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

# Issue #6 benchmarks on the real stack (daphne, an RQ worker, Redis db 12, SQLite, PostgreSQL);
# rewrites BENCHMARKS.md. `make bench BENCH_ARGS=--smoke` is the quick check that they all run.
bench: install-dev redis
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
