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
# The third-party client libraries' tests (marker thirdparty) are deselected by a plain `pytest`, so it
# stays fast and works without them; `make test` selects them too, in the same run: a second pass
# paid a second start and its own session devices (16 to 17 s) while one worker sat idle at the end.
# The suite runs on XDIST workers (pytest-xdist; default 2, one per core of the CI machines), a whole
# file per worker (loadfile), so a file's module fixtures (a built wheel, a server per scenario) are
# made once, not once per worker (worksteal or load would split them). XDIST=0 runs it in one process.
# ruff runs first (it takes a moment); mypy runs beside the tests (from a fresh clone, without its
# cache, it takes 10 s of CPU, most of a minute on a busy machine), and its verdict counts the same.
XDIST ?= 2
XDIST_ARGS := $(if $(filter 0,$(XDIST)),,-n $(XDIST) --dist loadfile)
ALL_TESTS := -m "thirdparty or not thirdparty"
test: $(STAMP)
	$(BIN)/ruff check mockfgt tests bench
	@types_log=$$(mktemp); $(BIN)/mypy >"$$types_log" 2>&1 & types=$$!; \
	$(BIN)/python -m pytest $(XDIST_ARGS) $(ALL_TESTS) $(PYTEST_ARGS); tests=$$?; \
	wait $$types; typed=$$?; echo "mypy: $$(cat "$$types_log")"; rm -f "$$types_log"; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

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
