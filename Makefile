# Every target bootstraps .venv from python3; re-installs only when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Twice the cores: most of the suite's time is spent waiting (servers starting, child processes,
# watched workloads), so two workers per core keep the CPU busy (about 60 % with one per core).
JOBS   ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))
# --dist loadgroup: tests marked with one xdist_group run one after the other in one worker (a
# program's backstop judged beside servers writing 150 MiB temporaries is another test).
PYTEST  = $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup $(PYTEST_ARGS)

.PHONY: demo test test-loaded test-matrix test-matrix-fast bench lint docs venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all,dev,docs]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/membound demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy --strict src

# The documentation site (mkdocs.yml) into site/: --strict fails on a broken internal link or
# anchor and on a docstring the API reference cannot render; nothing is fetched from the web.
# Not --quiet: mkdocs then stops counting warnings, and --strict passes a broken link.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: lint docs
	$(PYTEST)

# The same suite with two busy CPU loops beside it (as on a shared CI runner): it must pass too.
test-loaded: $(STAMP)
	.ci/loaded $(PYTEST)

# On every other Python pyproject.toml promises (3.10, 3.12, 3.13; a venv each, .venv-3.X):
# the whole suite, or its `fast` part (what CI runs); `.ci/matrix` says how they are found.
test-matrix:
	.ci/matrix

test-matrix-fast:
	.ci/matrix -m fast

bench: $(STAMP)
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) .venv-3.* build dist site .pytest_cache .mypy_cache .ruff_cache membound-demo
