# hookd developer tasks. Everything runs inside .venv, created on first use from setup.cfg.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist workers for the tests that may run side by side (2 cores: 2; see `test`)
TEST_WORKERS ?= 2

.PHONY: install lint format test unit integration interop fuzz demo bench bench-history clean verify-units

install: $(STAMP)

# The dev tools (ruff, mypy, pytest and its plugins) come at the exact versions of constraints-dev.txt.
# pip needs PyPI (or the mirror in PIP_INDEX_URL) once; later runs reuse .venv and need no network.
$(STAMP): setup.cfg pyproject.toml constraints-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints-dev.txt -e '.[dev]' || { \
	  echo "make: installing hookd and its dev tools into $(VENV) failed (above): pip needs PyPI or a mirror (PIP_INDEX_URL)" >&2; \
	  exit 1; }
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check hookd tests scripts bench
	$(BIN)/ruff format --check hookd tests scripts bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format hookd tests scripts bench
	$(BIN)/ruff check --fix hookd tests scripts bench

# The whole suite: lint, then every test against real RabbitMQ, PostgreSQL and Chromium: the
# configured ones when they answer (HOOKD_TEST_AMQP_URL, HOOKD_TEST_POSTGRES_URL; default the
# machine's own), else private ones the run starts and stops (tests/support/services.py).
# Two phases: first every test that may share the machine, on TEST_WORKERS pytest-xdist workers (the
# tests isolate themselves: own queues, schemas, ports, folders; the workers share one private
# server of each kind), a module at a time per worker (`--dist loadscope`: a module's fixtures, such
# as the API suites' serve+run stacks, are built once, not once per worker); then the tests marked
# `alone` (every `cluster` test is one) by themselves.
# Both phases run even when the first fails; the target fails if either did.
test: lint verify-units
	@status=0; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not alone" tests || status=$$?; \
	$(BIN)/python -m pytest -p no:xdist -m alone tests || status=$$?; \
	exit $$status

# No network, no services: values, in-memory fakes, files in a temporary folder.
unit: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope tests/unit

integration: $(STAMP)
	@status=0; \
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -m "not alone" tests/integration || status=$$?; \
	$(BIN)/python -m pytest -p no:xdist -m alone tests/integration || status=$$?; \
	exit $$status

# hookd against real servers (nginx plain and TLS, Node, uvicorn, hypercorn, gunicorn, waitress) and
# hostile raw-socket receivers; part of `make test`.
interop: $(STAMP)
	$(BIN)/python -m pytest tests/interop

# The response path's fuzzing at length (make test runs 300 examples per property).
fuzz: $(STAMP)
	HOOKD_FUZZ_EXAMPLES=$${HOOKD_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest tests/unit/test_response_fuzz.py

# systemd-analyze verify on deploy/systemd/*.service (skipped without systemd-analyze, except in CI).
verify-units:
	bash scripts/verify-units.sh

# End to end on embedded defaults: broker (local, or a private node), hookd, a verifying receiver.
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# hookd against its peers (bench/peers/) and the receiver's ceiling, one run (not a test: prints figures).
# Flags: make bench BENCH_ARGS="--events 2000 --only ceiling,fast,peers --profile"; see bench/README.md.
# The bench's Python packages come from bench/requirements.txt; it installs its npm packages and wrk itself.
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt || { \
	  echo "make: installing bench/requirements.txt into $(VENV) failed (above): pip needs PyPI or a mirror" >&2; \
	  exit 1; }
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# What recording delivery history costs the delivery path (not a test: prints figures).
bench-history: $(STAMP)
	$(BIN)/python bench/history_cost.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
