# Two commands: `make run` serves the relay, `make test` runs the checks and the whole suite.
# Both create .venv and install every pinned dependency first, hash-checked.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lock run check test lint mapping-test bench clean

install: $(STAMP)

# requirements-dev.txt pins every package with its hashes, so pip checks each download. The
# project itself has no hash: it goes in by a second call, without its dependencies.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Regenerates requirements.txt (what the relay runs with) and requirements-dev.txt (that plus the
# test and check tools) from pyproject.toml, keeping every pin that still fits.
# `make lock LOCK_FLAGS=--upgrade` moves everything to the newest allowed versions;
# `make lock LOCK_FLAGS="--upgrade-package requests"` moves one package.
PIP_COMPILE = $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links $(LOCK_FLAGS)
lock: install
	$(PIP_COMPILE) --output-file=requirements.txt pyproject.toml
	$(PIP_COMPILE) --extra=dev --constraint=requirements.txt --output-file=requirements-dev.txt pyproject.toml

# Serves the shipped mappings on :8080 against a local Trackdrive sandbox on :8089,
# unless TRACKDRIVE_BASE_URL points at a real Trackdrive.
run: install
	$(BIN)/python -m relay.devrun

# Lint, types and import rules. All three run and report; any finding fails the target
# (and so `make test`).
check: install
	@status=0; \
	$(BIN)/ruff check --output-format=concise . || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/lint-imports || status=1; \
	exit $$status

test: check
	$(BIN)/python -m pytest

lint: install
	$(BIN)/relay mappings lint --no-env

mapping-test: install
	$(BIN)/relay mappings test

bench: install
	$(BIN)/python bench/mapping.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/delivery.py

clean:
	rm -rf $(VENV) var .pytest_cache
