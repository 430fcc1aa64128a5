# Two commands on a fresh machine:  make serve   |   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
HOST   ?= 127.0.0.1
PORT   ?= 8443
SCENARIO ?= fgt-healthy
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: serve test lint conformance install bench clean

# The venv is rebuilt only when the project's metadata changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,thirdparty]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/mockfgt serve --scenario $(SCENARIO) --host $(HOST) --port $(PORT) --certs-dir certs

# The contracts machines check (settings in pyproject.toml): style and imports, then types.
lint: $(STAMP)
	$(BIN)/ruff check mockfgt tests bench && $(BIN)/mypy

# pytest exits 5 when it collects nothing; make treats that as a failure, as it must.
# The third-party client libraries run in a second pass (marker thirdparty), so a plain `pytest`
# stays fast and works without them; `make test` always runs both.
# The suite runs on XDIST workers (pytest-xdist; default 2, one per core of the CI machines), a whole
# file per worker (loadfile), so a file's module fixtures (a built wheel, a server per scenario) are
# made once, not once per worker. XDIST=0 runs it in one process. The third-party pass stays in one
# process: it is short, and two workers' start-up and session devices cost it more than they save
# (17 s alone against 28 s on two workers, measured back to back).
XDIST ?= 2
XDIST_ARGS := $(if $(filter 0,$(XDIST)),,-n $(XDIST) --dist loadfile)
test: lint
	$(BIN)/python -m pytest $(XDIST_ARGS) $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m thirdparty

# Every catalogue scenario x every client stack, from a real run; fails on any mismatch.
conformance: $(STAMP)
	$(BIN)/python -m mockfgt.conformance --write docs/conformance.md

# Prints a table of figures next to their targets; it never decides pass/fail (docs/performance.md).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Hostile input, failed handshakes, concurrent writers and swaps at full size; prints the figures.
.PHONY: stress
stress: $(STAMP)
	PYTHONPATH=tests $(BIN)/python -m stress $(STRESS_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
	find certs -mindepth 1 ! -name README.md ! -name .gitignore -delete
