# Two commands: `make demo` (the whole path on the embedded dataset) and `make test`. Each sets itself up.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_WORKSPACE ?= demo-workspace
# torch/torchvision are pinned to the pair that installs together on CPU-only x86-64 and aarch64 machines here.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test test-fast test-shared lint install clean bench

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found (topo needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	TOPO_WORKSPACE=$(DEMO_WORKSPACE) bash scripts/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	BIN=$(abspath $(BIN)) bash scripts/typecheck.sh

# Two pytest workers (pytest-xdist): most of the slow tests wait on subprocesses and Ray start-up, so two workers on
# two cores take ~30 % less wall time than one. TEST_WORKERS=0 runs everything in one process (e.g. to debug).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist worksteal)

# Every test, from a plain clone (generated data; real data beside the repository is opt-in, below).
test: $(STAMP) lint
	$(PYTEST)

# The tests marked slow (> 5 s each) left out: a quick check while working.
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# The opt-in tests on the real data beside the repository (../shared/data); they fail if it is missing.
test-shared: $(STAMP)
	$(PYTEST) -m shared_data

bench: $(STAMP)
	$(BIN)/python bench/bench_persistence.py
	$(BIN)/python bench/bench_loader.py

clean:
	rm -rf $(DEMO_WORKSPACE) build dist *.egg-info .pytest_cache .ruff_cache
