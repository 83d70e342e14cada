# likelab: two commands are all the set-up anyone needs.
#   make demo   create .venv, install, run the seed walkthrough, write report/
#   make test   install the dev extras, run ruff and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --disable-pip-version-check -q -c constraints/dev.txt
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints/dev.txt | $(BIN)/python
	$(PIP) torch==2.13.0
	$(PIP) -e .
	@touch $@

$(DEVSTAMP): $(STAMP) pyproject.toml constraints/dev.txt
	$(PIP) -e ".[dev]"
	@touch $@

demo: $(STAMP)
	$(BIN)/likelab demo --out report
	@echo "$$($(BIN)/likelab --version) is installed in $(VENV): run 'source $(VENV)/bin/activate', then 'likelab --help' (or run $(BIN)/likelab directly)"

test: $(DEVSTAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

lint: $(DEVSTAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(DEVSTAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) report .pytest_cache
