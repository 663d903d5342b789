# Two commands: `make run` serves the relay, `make test` passes the whole suite.
# Both create .venv and install every pinned dependency first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint mapping-test bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# Serves the shipped mappings on :8080 against a local Trackdrive sandbox on :8089,
# unless TRACKDRIVE_BASE_URL points at a real Trackdrive.
run: install
	$(BIN)/python -m relay.devrun

test: install
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
