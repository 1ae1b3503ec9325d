# geo: two commands. `make run` serves the whole system locally; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run run-full test bench lint up down install clean

# Every C source and header: an edit to any of them rebuilds the extensions.
$(STAMP): pyproject.toml setup.py $(wildcard geo_index/*.c geo_index/*.h location_api/*.c location_api/*.h)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	@touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/geo-stack up

run: install
	$(BIN)/geo-stack run

# The full local stack: nginx on :8000 in front of 2 read, 1 write and 2 WebSocket instances.
run-full: install
	$(BIN)/geo-stack run --full

lint: install
	$(BIN)/mypy geo_index geo_common location_api friends_ws pubsub loadgen deploy bench

test: up lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: up
	@set -e; for script in bench/*_bench.py; do echo "== $$script"; $(BIN)/python $$script; done

down:
	@test -x $(BIN)/geo-stack && $(BIN)/geo-stack down || true

clean: down
	rm -rf .stack $(VENV)
