# The two set-up commands of the README. Each works from a clean clone on a fresh machine:
# it creates .venv, installs what it needs, then runs.
#   make run    the engine (embedded Postgres unless DATABASE_URL is set)
#   make test   the whole test suite (real Postgres, real WebSocket server, real PDS: its
#               Node 22 + @atproto/pds install goes to tests/pds/node_modules, ~2 min once)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/coves run

test: $(STAMP)
	tests/pds/install.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)
