# Vigil — the two commands: `make dev` runs the whole system, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test faults lint fmt bench clean schema

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Vigil needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/vigil dev

# Three workers, each with its own embedded PostgreSQL and Redis: most tests wait on real
# servers and processes, so this is faster than one process even on two cores.
test: $(STAMP)
	$(BIN)/pytest -n 3

# The fault suite (tests/faults): whole systems on their own PostgreSQL and Redis, with agents
# killed, the API stopped for 4 minutes, PostgreSQL and Redis restarted, the worker killed; each
# case judged over every slot. About 6 minutes; CI runs it after `make test`.
faults: $(STAMP)
	$(BIN)/pytest -n 3 -m faults tests/faults

# `make bench` runs every scenario; `make bench SCENARIO=agent` (or a comma list) runs some.
# Knobs are BENCH_* environment variables (bench/config.py); reports land in bench/results/.
SCENARIO ?=
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(SCENARIO),--scenario $(SCENARIO))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared probe_agent control_plane

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# control_plane/db/schema.sql, the reference schema, from the migrations (a test checks it).
schema: $(STAMP)
	$(BIN)/python -m control_plane.db.schema

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
