# The two set-up commands of the README. Each works from a clean clone on a fresh machine:
# it creates .venv, installs what it needs, then runs.
#   make run    the engine (embedded Postgres unless DATABASE_URL is set)
#   make test   the whole test suite (real Postgres, real WebSocket server, real PDS: its
#               Node 22 + @atproto/pds install goes to tests/pds/node_modules, ~2 min once)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install promtool

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/coves run

test: $(STAMP) promtool
	tests/pds/install.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The alert tests need promtool (Debian's prometheus package); installed when missing.
promtool:
	@command -v promtool >/dev/null || { \
	  echo "installing Debian's prometheus package for promtool"; \
	  (apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 || \
	   (apt-get update >/dev/null && apt-get install -y --no-install-recommends prometheus >/dev/null)) && \
	  (systemctl stop prometheus 2>/dev/null; pkill -x prometheus; true); }
