# dentrix-zoho: two commands for a newcomer — `make demo` and `make test`.
# Everything below installs what it needs on a fresh Debian machine (as root):
# the unixODBC driver manager and the SQLite ODBC driver, PostgreSQL's server binaries
# (the tests start throw-away clusters with them), a virtualenv in .venv, and the
# Python dependencies.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DENTRIX_ZOHO_HOME ?= $(CURDIR)/.dentrix_zoho
export DAGSTER_HOME ?= $(DENTRIX_ZOHO_HOME)/dagster

.PHONY: help setup system-deps test test-fast demo ui bench soak clean

help:
	@echo "make demo   - set up, generate a synthetic practice, start the Zoho emulator and run the migration"
	@echo "make test   - set up and run the whole test suite"
	@echo "make ui     - start the Dagster UI (dagster dev -w workspace.yaml)"
	@echo "make bench  - run the benchmarks (ratios against limits measured in the same run)"
	@echo "make soak   - fault soak: the office practice through a faulty emulator, every phase killed and resumed"
	@echo "make clean  - remove .venv and the working folder"

system-deps:
	@if command -v odbcinst >/dev/null 2>&1 && odbcinst -q -d 2>/dev/null | grep -qi '^\[SQLite3\]'; then \
		echo "unixODBC and the SQLite3 ODBC driver are present"; \
	else \
		echo "installing unixODBC and the SQLite ODBC driver (Debian packages unixodbc, libsqliteodbc)"; \
		SUDO=""; if [ "$$(id -u)" != "0" ]; then SUDO="sudo"; fi; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q unixodbc libsqliteodbc; \
	fi
	@# Debian keeps initdb and pg_ctl in /usr/lib/postgresql/<version>/bin, off PATH;
	@# dentrix_zoho_tests/pg_server.py looks in both places, and so does this check.
	@if { command -v initdb && command -v pg_ctl; } >/dev/null 2>&1 \
		|| ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
		echo "PostgreSQL server binaries are present"; \
	else \
		echo "installing PostgreSQL (Debian package postgresql) for the tests' throw-away clusters"; \
		SUDO=""; if [ "$$(id -u)" != "0" ]; then SUDO="sudo"; fi; \
		$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postgresql; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,postgres]'
	@touch $(STAMP)

setup: system-deps $(STAMP)

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

test-fast: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not slow"

demo: setup
	$(BIN)/dentrix-zoho demo

ui: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml

bench: setup
	$(BIN)/python -m bench

soak: setup
	$(BIN)/python -m bench.soak --size office --seed 1 --kills 2

clean:
	rm -rf $(VENV) .dentrix_zoho
