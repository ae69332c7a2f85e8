# Corral — every target sets up what it needs itself (virtual environment in .venv, pinned installs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
EXTRAS := dev,aws,azure,gcp,postgresql,chat
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup test lint type doctest check demo bench golden-update constraints conformance clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install Corral with every extra, pinned

test: $(STAMP) package iac-tools ## Run the test suite (builds the artifacts it imports; starts PostgreSQL, moto_server, rsyslog, emulators itself)
	$(BIN)/pytest

LINTED := shared functions tests benchmarks infra
# Each cloud's entry module; they are not a package, so mypy takes them as files.
ENTRY_POINTS := functions/aws/handler.py functions/azure/function_app.py functions/gcp/main.py

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

type: $(STAMP) ## mypy --strict on the corral package and the functions' entry points
	$(BIN)/mypy
	$(BIN)/mypy --strict $(ENTRY_POINTS)

doctest: $(STAMP) ## The examples in corral's docstrings
	$(BIN)/pytest --doctest-modules shared/corral -q -p no:cacheprovider

check: lint type doctest test ## Everything CI cares about

demo: $(STAMP) ## Run Corral's main job on bundled deliveries of all three clouds (SQLite, file sinks)
	$(BIN)/python demo/run.py

bench: $(STAMP) ## Benchmarks, as ratios to baselines measured in the same run
	$(BIN)/python -m benchmarks

conformance: $(STAMP) ## Normalize every published sample in ../shared/samples and validate it
	$(BIN)/python ../shared/conformance/run_samples.py

golden-update: $(STAMP) ## Rewrite golden files (review the diff)
	CORRAL_GOLDEN_UPDATE=1 $(BIN)/pytest tests -k golden -q

constraints: ## Re-pin constraints.txt from a fresh resolve of pyproject.toml
	rm -rf .venv-pin && $(PYTHON) -m venv .venv-pin && .venv-pin/bin/pip install --quiet -e ".[$(EXTRAS)]"
	{ head -2 constraints.txt; .venv-pin/bin/pip freeze --exclude-editable | grep -v '^corral'; } > constraints.new
	mv constraints.new constraints.txt && rm -rf .venv-pin

clean: ## Remove build output and local state
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache corral.db corral.db-* demo-out

-include mk/*.mk

screenshot: $(STAMP) ## Refresh docs/dashboard.png: the dashboard over the demo's deliveries, in headless Chromium
	CORRAL_SCREENSHOT_UPDATE=1 $(BIN)/pytest tests/dashboard/test_screenshot.py -q
