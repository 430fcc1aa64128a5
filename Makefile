# Two commands on a fresh machine:  make serve   |   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8443
SCENARIO ?= fgt-healthy
PYTEST_ARGS ?=

.PHONY: serve test install bench clean

# The venv is rebuilt only when the project's metadata changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/mockfgt serve --scenario $(SCENARIO) --host $(HOST) --port $(PORT) --certs-dir certs

# pytest exits 5 when it collects nothing; make treats that as a failure, as it must.
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Hostile input, failed handshakes, concurrent writers and swaps at full size; prints the figures.
.PHONY: stress
stress: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m stress $(STRESS_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
	find certs -mindepth 1 ! -name README.md ! -name .gitignore -delete
