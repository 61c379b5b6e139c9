# The README's commands. `make run` starts everything; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
export REDIS_URL ?= redis://127.0.0.1:6379/0
export PATH := $(BIN):$(PATH)


.PHONY: run rabbitmq test test-postgres test-django61 install install-dev redis browser proxy migrate demo lint typecheck format migrations-check docs messages bench clean

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
# WEB_PORT is daphne's port (supervisord.conf's, the Procfile's); SITE_URL, the base of links in
# emails, follows it.
# EMAIL_URL: filemail:// and an absolute path, so four slashes ($(CURDIR) begins with one).
# QUEUE_BACKEND=celery (README, "Choosing a queue"): RabbitMQ (scripts/ensure_rabbitmq.sh starts one
# if none answers at CELERY_BROKER_URL) and Procfile.celery's processes (supervisord-celery.conf),
# a Celery worker in place of the RQ workers; unset or "rq", everything is as it always was.
ifeq ($(QUEUE_BACKEND),celery)
RUN_CONFIG  := supervisord-celery.conf
RUN_BROKER  := rabbitmq
RUN_WORKERS := a Celery worker (RabbitMQ)
else
RUN_CONFIG  := supervisord.conf
RUN_BROKER  :=
RUN_WORKERS := an RQ worker
endif

# RabbitMQ where CELERY_BROKER_URL points, for `QUEUE_BACKEND=celery make run` and the library's
# Celery session in `make test`.
rabbitmq:
	bash scripts/ensure_rabbitmq.sh

run: export DEBUG ?= 1
run: export WEB_PORT ?= 8000
run: export SITE_URL ?= http://127.0.0.1:$(WEB_PORT)
run: export EMAIL_URL ?= filemail:///$(CURDIR)/sent-emails
run: install redis $(RUN_BROKER)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_demo
	@echo "Starting daphne on http://127.0.0.1:$(WEB_PORT)/, $(RUN_WORKERS) and the scheduler; each is restarted if it exits (Ctrl-C stops them all)."
	@echo "Emails are written to $(CURDIR)/sent-emails/ with links to $(SITE_URL)."
	$(BIN)/supervisord -n -c $(RUN_CONFIG)

# Three sessions: the library's own tests, in a project with the library alone (tests/library), on
# RQ, then again on Celery over RabbitMQ (the generic tests run on both; `rq_only` and `celery_only`
# mark what is about one queue itself), then the site's (every other folder of tests/, on RQ).
LIBRARY_TESTS := tests/library --ds=tests.library.settings --confcutdir=tests/library
LIBRARY_TESTS_RQ := $(LIBRARY_TESTS) -m "not celery_only"
LIBRARY_TESTS_CELERY := $(LIBRARY_TESTS) -m "not rq_only"
# SITE_TESTS_FILTER: what the site's session leaves out (test-postgres: the tests on a database of
# their own, which `make test` ran already).
test: install-dev redis browser proxy
	$(BIN)/pytest $(LIBRARY_TESTS_RQ)
	$(MAKE) --no-print-directory rabbitmq
	TEST_QUEUE_BACKEND=celery $(BIN)/pytest $(LIBRARY_TESTS_CELERY)
	$(BIN)/pytest $(SITE_TESTS_FILTER)

# The same suite on PostgreSQL (the local server by default; the database itself is test_<name>),
# less the site's tests on a database of their own (marked own_database), which `make test` ran.
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
test-postgres: install-dev
	DATABASE_URL=$(TEST_POSTGRES_URL) bash scripts/ensure_postgres.sh
	DATABASE_URL=$(TEST_POSTGRES_URL) $(MAKE) test SITE_TESTS_FILTER='-m "not own_database"'

# The same suite on Django 6.1 with Python 3.12, in a virtualenv of its own (CI runs it too).
# Python 3.12 from pyenv if it has one, else python3.12 on the PATH.
PYTHON312 ?= $(or $(lastword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python)),python3.12)
VENV61 := .venv-django61

$(VENV61)/.installed: requirements.txt requirements-dev.txt requirements-django61.txt
	$(PYTHON312) -m venv $(VENV61)
	$(VENV61)/bin/pip install --quiet --upgrade pip
	$(VENV61)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV61)/bin/pip install --quiet -r requirements-django61.txt
	# Django 6.1 ships django.tasks: this leg runs without the backport that requirements.txt pins for 5.2.
	$(VENV61)/bin/pip uninstall --quiet --yes django-tasks
	@touch $@

# The library on RQ only here: its Celery session runs in `make test`; and the site less the
# benchmarks' smoke run (marked tools), which `make test` checks.
test-django61: $(VENV61)/.installed redis browser proxy
	TEST_OUTPUT_DIR=$(CURDIR)/test-output/django61 $(VENV61)/bin/pytest $(LIBRARY_TESTS_RQ)
	TEST_OUTPUT_DIR=$(CURDIR)/test-output/django61 $(VENV61)/bin/pytest -m "not tools"

# Debian's Chromium for the Playwright test (Playwright's own browser download cannot work offline).
browser:
	@bash scripts/ensure_chromium.sh

# Debian's nginx, for the test that runs docs/deploy.md's proxy config in front of daphne.
proxy:
	@bash scripts/ensure_nginx.sh

# Biome (lint and format of the project's JavaScript), pinned in package.json and package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The code checks that fail CI before the tests run (.ci/run; `make docs` and `make migrations-check`
# come next): ruff, mypy, Biome.
lint: install-dev node_modules/.installed
	@! git grep -nE '^(<<<<<<<|>>>>>>>)( |$$)' -- . || { echo "merge conflict markers (above)"; exit 1; }
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory typecheck
	node_modules/.bin/biome ci --colors=off --error-on-warnings .

# mypy --strict for the apps, looser for tests and benchmarks (pyproject.toml). The django-stubs
# plugin loads project.settings, which needs a SECRET_KEY.
typecheck: install-dev
	SECRET_KEY=typecheck $(BIN)/mypy

format: install-dev node_modules/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	node_modules/.bin/biome check --write .

migrations-check: install
	SECRET_KEY=check $(BIN)/python manage.py makemigrations --check --dry-run

# The docs site (mkdocs.yml: docs/ and CHANGELOG.md) into site/, in a virtualenv of its own. Strict:
# any warning (a broken link or anchor, a page left out of the nav) fails it. Built, not published.
VENVDOCS := .venv-docs

$(VENVDOCS)/.installed: requirements-docs.txt
	$(PYTHON) -m venv $(VENVDOCS)
	$(VENVDOCS)/bin/pip install --quiet --upgrade pip
	$(VENVDOCS)/bin/pip install --quiet -r requirements-docs.txt
	@touch $@

docs: $(VENVDOCS)/.installed
	$(VENVDOCS)/bin/mkdocs build --strict --site-dir site

# The library's catalogs after its strings changed: extract them into live_tasks/locale/*/ (Python,
# templates, then live.js), translate the new entries, then compile (the .mo files ship in the wheel).
# Needs GNU gettext (Debian's `gettext`).
messages: install
	cd live_tasks && SECRET_KEY=messages $(BIN)/python ../manage.py makemessages --all --no-obsolete
	cd live_tasks && SECRET_KEY=messages $(BIN)/python ../manage.py makemessages --all --no-obsolete -d djangojs
	cd live_tasks && SECRET_KEY=messages $(BIN)/python ../manage.py compilemessages

clean:
	rm -rf $(VENV) $(VENV61) $(VENVDOCS) site staticfiles test-output .pytest_cache .ruff_cache .mypy_cache node_modules

$(VENV)/.installed-bench: requirements.txt requirements-dev.txt requirements-bench.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-bench.txt
	@touch $@ $(VENV)/.installed-dev $(VENV)/.installed

# The benchmarks on the real stack (daphne, RQ workers, Redis db 12, SQLite, PostgreSQL databases
# bench*): each writes benchmarks/results/<name>.json, then BENCHMARKS.md and its charts are
# rewritten. `make bench BENCH_ARGS=--smoke` is the quick check that they all run; `BENCH_ARGS=live`
# runs one benchmark (then `python -m benchmarks.write` renders every result on file).
bench: $(VENV)/.installed-bench redis
	$(BIN)/python -m benchmarks $(BENCH_ARGS)
