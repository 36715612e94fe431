# Two commands for a fresh Debian/Ubuntu machine with Python 3.11:
#   make up    run the whole fleet locally (Synapse + nats-server + bot) on embedded defaults
#   make test  run the test suite against real servers
# Each sets up what it needs: .venv/, the Python packages, and nats-server via apt.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: up demo test lint bench setup nats-server clean

up: setup
	$(BIN)/fleet up

demo: setup
	$(BIN)/fleet demo

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check fleet fleetcore bot agents tests bench tools
	$(BIN)/mypy

setup: $(STAMP) nats-server

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 needed, found " + sys.version.split()[0]'
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

nats-server:
	@command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || { \
	  echo "installing nats-server (Debian package) ..."; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nats-server; }

clean:
	rm -rf $(VENV) .fleet .pytest_cache .mypy_cache .ruff_cache
