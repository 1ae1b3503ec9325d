# geo: two commands. `make run` serves the whole system locally; `make test` runs every test.
# Every install comes from uv.lock (`make lock` is the only way versions change).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# uv itself, pinned here and in pyproject.toml's [tool.uv] required-version, in its own venv.
UV_VERSION := 0.13.9
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run run-full test bench lint lock up down install clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)

# Every C source and header: an edit to any of them rebuilds the extensions.
$(STAMP): uv.lock pyproject.toml setup.py $(wildcard geo_index/*.c geo_index/*.h location_api/*.c location_api/*.h) | $(UV)
	$(UV) sync --frozen --all-extras --python $(PYTHON)
	@touch $(STAMP)

install: $(STAMP)

# Re-resolve every dependency to its newest allowed release and rewrite uv.lock.
lock: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)

up: install
	$(BIN)/geo-stack up

run: install
	$(BIN)/geo-stack run

# The full local stack: nginx on :8000 in front of 2 read, 1 write and 2 WebSocket instances.
run-full: install
	$(BIN)/geo-stack run --full

LINTED := geo_index geo_common location_api friends_ws pubsub loadgen deploy bench tests

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy geo_index geo_common location_api friends_ws pubsub loadgen deploy bench

# The suite in this many processes, a file to each at a time (0: in this one).
TEST_PROCESSES ?= 2

test: up lint
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

bench: up
	@set -e; for script in bench/*_bench.py; do echo "== $$script"; $(BIN)/python $$script; done

down:
	@test -x $(BIN)/geo-stack && $(BIN)/geo-stack down || true

clean: down
	rm -rf .stack $(VENV) $(TOOLS)
