"""Complexity verdicts on real library structures are stable: O(n) in every run at the default
sizes, each run a fresh set of fresh interpreters.

The suite runs each structure 8 times; ``benchmarks/bench_verdicts.py`` runs the same structures
20 times each and reports the verdicts it saw (README quotes them). Eight runs are the suite's
guard against a regression (a verdict wrong in one run of four fails it nine times in ten);
the rate over many runs is a benchmark figure, like every other target (CONTRIBUTING.md)."""

from __future__ import annotations

import collections

import pytest

import membound as mb
from tests.realworld import after_import_garbage, structures

#: Runs per structure in the suite (the benchmark runs :data:`BENCHMARK_RUNS`).
RUNS = 8
BENCHMARK_RUNS = 20


@pytest.mark.slow
@pytest.mark.parametrize("target", structures.LINEAR, ids=lambda f: f.__name__)
def test_linear_structures_are_o_n_every_time(target: object) -> None:
    assert_always_linear(target, RUNS)


@pytest.mark.slow
def test_a_structure_after_an_import_that_left_free_memory() -> None:
    """The import leaves megabytes of free blocks; without using them up first, the smaller
    sizes read as 0 B and the rest too small (fewer runs: each imports the garbage again)."""
    assert_always_linear(after_import_garbage.sorted_list, 5)


def assert_always_linear(target: object, runs: int) -> None:
    verdicts: collections.Counter[str] = collections.Counter()
    last = None
    for _ in range(runs):
        last = mb.complexity(target)  # type: ignore[arg-type]
        verdicts[last.big_o] += 1
    assert last is not None
    assert {"O(n)": runs} == dict(verdicts), last.explanation
    assert last.decided
    assert () == last.candidates
