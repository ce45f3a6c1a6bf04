# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv with the Python found as $(PYTHON) (3.11+) and install tokensmith into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Test processes (pytest-xdist); every test uses its own database, ports and Redis prefix. Four
# on two cores: many tests wait on subprocesses, PostgreSQL, sockets or a server's deadline,
# which fewer left idle (2026-12-07: 8 min 48 s with three, 7 min 41 s with four).
TEST_WORKERS ?= 4
# The demo's first port (authorization server); the CloudDocs web app, API and SPA use the next
# three: `make demo PORT=8100`.
PORT ?= 8000

.PHONY: demo test check install serve bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

install: $(BIN)/.installed

# The demo needs tokensmith alone, not the test and benchmark tools: the first `make demo` (or the
# first after pyproject.toml changed) installs just the package, with pip's progress shown; it
# installs nothing when `make test` has already installed tokensmith (with its extras).
$(BIN)/.demo-installed: pyproject.toml
	@if [ -f $(BIN)/.installed ] && ! [ pyproject.toml -nt $(BIN)/.installed ]; then \
		touch $@; \
	else \
		echo "Installing tokensmith into $(VENV) (first run only)..." && \
		$(PYTHON) -m venv $(VENV) && \
		$(BIN)/python -m pip install --disable-pip-version-check -e . && \
		touch $@; \
	fi

demo: $(BIN)/.demo-installed
	$(BIN)/tokensmith demo --port $(PORT)

# The gates (format, lint, types, architecture test) and then every test.
test: install check
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 -m "not browser" $(PYTEST_ARGS)
	# Browser tests in their own run: pytest-playwright keeps an event loop running in the
	# process, which the asyncio tests that would follow it in the same worker cannot share.
	$(BIN)/python -m pytest -m browser $(PYTEST_ARGS)

check: install
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/ruff check src tests bench examples
	$(BIN)/mypy

# The benchmarks of docs/performance.md: wrk (apt, installed when missing and root), node-oidc-provider
# (npm, into bench/node/node_modules), local PostgreSQL when reachable. About 30 minutes, a third
# of it the logins and scale-out scenarios.
bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run $(BENCH_ARGS)
