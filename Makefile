# hhsync developer commands. `make test` sets everything up itself on a fresh machine:
# the project venv, a real NetBox 4.7 (cached in ~/.cache/hhsync-test), systemd-analyze.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint fmt unit demo bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy hhsync

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two workers, each with its own NetBox: the suite waits on timeouts and on NetBox's CPU in
# turns, and NetBox has two cores here. Whole files go to one worker (the reliability suite
# carries NetBox's state from one test to the next).
WORKERS ?= 2

test: lint
	@command -v systemd-analyze >/dev/null || scripts/install-systemd.sh
	$(BIN)/pytest -n $(WORKERS) --dist loadfile $(PYTEST_ARGS)

unit: $(STAMP)
	HHSYNC_SKIP_NETBOX=1 $(BIN)/pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .demo
