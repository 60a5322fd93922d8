# Set-up and the two everyday commands. Each target creates .venv and installs
# requirements.txt when they are missing or changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB ?= sqlite:///eventscope-demo.db

.PHONY: demo test venv clean

$(BIN)/.installed: requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("eventscope needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

venv: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/eventscope ingest examples/events.ndjson examples/consumer-logs.ndjson examples/bad-lines.ndjson --db $(DEMO_DB)
	$(BIN)/eventscope stats --db $(DEMO_DB)

test: $(BIN)/.installed
	$(BIN)/python -m pytest -n 2 -q

clean:
	rm -rf $(VENV) eventscope-demo.db eventscope-demo.db-wal eventscope-demo.db-shm
