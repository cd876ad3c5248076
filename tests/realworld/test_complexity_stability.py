"""Complexity verdicts on real library structures are stable: O(n) in 20 of 20 runs at the
default sizes, each run a fresh set of fresh interpreters."""

from __future__ import annotations

import collections

import pytest

import membound as mb
from tests.realworld import after_import_garbage, structures

RUNS = 20


@pytest.mark.slow
@pytest.mark.parametrize(
    "target",
    [
        structures.sorted_list,
        structures.sorted_builtin,
        structures.ordered_dict,
        structures.json_list,
        structures.dataclass_instances,
    ],
    ids=lambda f: f.__name__,
)
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
