# Vigil — the two commands: `make dev` runs the whole system, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-deps faults lint fmt bench clean schema compose-up

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Vigil needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

dev: $(STAMP)
	$(BIN)/vigil dev

# Three workers, each with its own embedded PostgreSQL and Redis: most tests wait on real
# servers and processes, so this is faster than one process even on two cores. The longest
# tests run first (tests/durations.json, see tests/conftest.py) and xdist hands out one test at
# a time (--maxschedchunk=1 in pyproject's addopts), so no worker ends the run alone on a long one.
test: $(STAMP) test-deps
	$(BIN)/pytest -n 3

# Tools the tests run that are not Python packages: promtool (Debian's prometheus package),
# nginx (`nginx -t` on the compose proxy) and chromium (the status page's browser test, driven
# by Playwright). Installed once, as root; a no-op when present.
test-deps:
	@command -v promtool >/dev/null && { command -v nginx >/dev/null || test -x /usr/sbin/nginx; } \
	  && command -v chromium >/dev/null \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends prometheus nginx chromium >/dev/null; }

# The fault suite (tests/faults): whole systems on their own PostgreSQL and Redis, with agents
# killed, the API stopped for 4 minutes, PostgreSQL and Redis restarted, the worker killed; each
# case judged over every slot once its rollups settle. About 17 minutes with three workers on
# two cores; CI runs it after `make test`.
faults: $(STAMP)
	$(BIN)/pytest -n 3 -m faults tests/faults

# `make bench` runs every scenario; `make bench SCENARIO=agent` (or a comma list) runs some.
# Knobs are BENCH_* environment variables (bench/config.py); reports land in bench/results/.
# `make bench SOAK=1`: the system scenario measures 30 minutes per step instead of 5.
SCENARIO ?=
SOAK ?=
bench: $(STAMP)
	$(if $(SOAK),BENCH_SOAK=$(SOAK) )$(BIN)/python -m bench $(if $(SCENARIO),--scenario $(SCENARIO))

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared probe_agent control_plane

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The whole system in containers (deploy/compose): secrets generated once into
# deploy/compose/.env, the image built, every service started; Grafana on :3000.
compose-up:
	deploy/compose/gen-env.sh
	cd deploy/compose && docker compose up -d --build

# control_plane/db/schema.sql, the reference schema, from the migrations (a test checks it).
schema: $(STAMP)
	$(BIN)/python -m control_plane.db.schema

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
