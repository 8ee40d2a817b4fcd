# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
# durable-rules 2.0.28 builds and imports on CPython 3.11 and 3.12 only (not 3.13).
# (Each candidate is run, not just looked up: a pyenv shim exists even when that version is not selected.)
PYTHON ?= $(shell for p in python3.12 python3.11; do $$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
WORKERS ?= 1
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
# FHIR R4 4.0.1 validation in tests: fhir.resources 6.4 (pydantic 1) in an environment of its own (tools/r4_validate.py)
R4VENV ?= .venv-r4
R4STAMP := $(R4VENV)/.installed

.PHONY: run test venv openapi schemas lint-docker bench clean proof-scaleout

# `make run` installs what the service needs (the project's dependencies); `make test` adds the `test` extra.
$(STAMP_RUN): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or 3.11 is required (durable-rules does not support 3.13)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	@touch $@

$(STAMP_TEST): $(STAMP_RUN)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $@

$(R4STAMP): tools/r4-constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or 3.11 is required"; exit 1; }
	@test -x $(R4VENV)/bin/python || $(PYTHON) -m venv $(R4VENV)
	$(R4VENV)/bin/python -m pip install --quiet -r tools/r4-constraints.txt
	@touch $@

venv: $(STAMP_TEST)

run: $(STAMP_RUN)
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) $(BIN)/python -m service.serve

test: $(STAMP_TEST) $(R4STAMP)
	LDN_R4_PYTHON=$(R4VENV)/bin/python $(BIN)/python -m pytest -q

# Scale-out proof (tests/test_proof_scaleout.py runs it in `make test`): nginx in front of two replicas on one
# PostgreSQL, loopback only. Installs Debian's nginx when missing (root).
proof-scaleout: $(STAMP_TEST) postgres
	$(BIN)/python -m tools.proof_scaleout

# Regenerate the committed contract and JSON Schemas from the code (tests fail when they drift).
openapi: $(STAMP_RUN)
	$(BIN)/python -m tools.contract openapi > openapi.yaml

schemas: $(STAMP_RUN)
	$(BIN)/python -m tools.contract schemas

bench: $(STAMP_TEST)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(R4VENV) .pytest_cache .hypothesis

# PostgreSQL for the audit store tests (tests/test_audit_store.py, run against SQLite and PostgreSQL): a throwaway
# cluster of this checkout on a private unix socket, installed from Debian's packages when missing (root), reused
# by the next `make test`; `make postgres-stop` removes it. It fails loudly when PostgreSQL cannot be had.
# CI (.ci/run) starts it first and stops it at the end.
.PHONY: postgres postgres-stop
postgres:
	@bash .ci/postgres.sh start >/dev/null
postgres-stop:
	@bash .ci/postgres.sh stop
test: postgres
test: export TEST_DATABASE_URL ?= $(shell bash .ci/postgres.sh url)
test: export TEST_PG_CTL ?= $(shell bash .ci/postgres.sh pgctl)
proof-scaleout: export TEST_DATABASE_URL ?= $(shell bash .ci/postgres.sh url)

# Headless Chromium for the browser tests (tests/web/test_pages_browser.py): Debian's package, installed when
# missing (root), as PostgreSQL is. Playwright drives it (it cannot download browsers of its own here).
.PHONY: chromium
chromium:
	@bash .ci/chromium.sh >/dev/null
test: chromium

# Spectral for the contract lint (tests/web/test_openapi_doc.py): npm ci into tools/spectral/node_modules.
.PHONY: spectral
spectral:
	@bash .ci/spectral.sh >/dev/null
test: spectral
