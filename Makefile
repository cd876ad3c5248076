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
# --durations: the slowest tests are listed at the end of every run (the suite's time is kept
# under 8 min; CONTRIBUTING.md).
PYTEST  = $(BIN)/python -m pytest -n $(JOBS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

# Bytecode is cached (in __pycache__, which git ignores) even where the environment turns that
# off: the suite starts about 600 Python processes that import membound, and without a cache
# each compiles the modules it imports again (0.14 s of CPU for `import membound` and the CLI).
unexport PYTHONDONTWRITEBYTECODE

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

# ruff and mypy run beside the suite (about 20 s of a run of minutes: mypy's cold cache in a
# fresh clone is most of it); their output follows the suite's, and either failing fails the
# target. The docs site is built by the suite itself (tests/test_docs_site.py, as `make docs`).
test: $(STAMP)
	@lint_log=$$(mktemp); \
	( $(MAKE) --no-print-directory lint > "$$lint_log" 2>&1; echo $$? >> "$$lint_log.rc" ) & \
	$(PYTEST); suite=$$?; wait; \
	cat "$$lint_log"; lint=$$(cat "$$lint_log.rc"); rm -f "$$lint_log" "$$lint_log.rc"; \
	if [ "$$lint" != 0 ]; then echo "make test: lint failed (above)"; fi; \
	if [ "$$suite" != 0 ]; then echo "make test: the suite failed (above)"; fi; \
	[ "$$lint" = 0 ] && [ "$$suite" = 0 ]

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
