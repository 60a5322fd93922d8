# Set-up and the two everyday commands. Each target creates .venv and installs
# requirements.txt when they are missing or changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB ?= sqlite:///eventscope-demo.db

.PHONY: demo test lint venv clean

# npm installs the official AsyncAPI JSON Schemas (package.json) into ./node_modules, no lock
# file; without npm, AsyncAPI imports still run but say that documents were not validated.
$(BIN)/.installed: requirements.txt pyproject.toml package.json
	@$(PYTHON) -c 'import sys; sys.exit("eventscope needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	if command -v npm >/dev/null; then npm install --no-package-lock --no-audit --no-fund --loglevel=error; \
	else echo "warning: npm not found: AsyncAPI documents will not be validated on import"; fi
	touch $@

venv: $(BIN)/.installed

# The demo company on an emulated AWS (moto), collected into $(DEMO_DB), and the dashboard on
# http://127.0.0.1:8501 (Ctrl-C stops everything). DEMO_ARGS passes options, e.g. --rate 10.
demo: $(BIN)/.installed
	$(BIN)/eventscope demo --db $(DEMO_DB) $(DEMO_ARGS)

# Four xdist workers on two cores: many tests wait on a browser, a server, PostgreSQL or a
# child process, and two workers per core fill those waits (17.0 -> 14.5 min on this machine
# kind); worksteal hands a waiting worker's queued tests to an idle one.
test: $(BIN)/.installed
	$(BIN)/python -m pytest -n 4 --dist worksteal -q

# ruff, then mypy (both configured in pyproject.toml). mypy cannot follow setuptools'
# package-dir mapping, so build/mypy_path/eventscope/ links collectors/ and dashboard/ under
# the names they install as (eventscope.collectors, eventscope.dashboard).
lint: $(BIN)/.installed
	mkdir -p build/mypy_path/eventscope
	ln -sfn ../../../collectors build/mypy_path/eventscope/collectors
	ln -sfn ../../../dashboard build/mypy_path/eventscope/dashboard
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) node_modules build/mypy_path .mypy_cache .ruff_cache eventscope-demo.db eventscope-demo.db-wal eventscope-demo.db-shm
