# Every target bootstraps .venv from python3; re-installs only when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST  = $(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

.PHONY: demo test test-loaded bench lint venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/membound demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy --strict src

test: lint
	$(PYTEST)

# The same suite with two busy CPU loops beside it (as on a shared CI runner): it must pass too.
test-loaded: $(STAMP)
	.ci/loaded $(PYTEST)

bench: $(STAMP)
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache membound-demo
