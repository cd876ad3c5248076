"""Scenarios for ``membound compare examples/scenarios.py``: one job, two ways."""

from __future__ import annotations

import membound as mb

N = 3_000_000


@mb.scenario("sum of a list")
def materialised() -> int:
    """Build the whole list first."""
    return sum(list(range(N)))  # noqa: MB202 - the O(n) way, on purpose


@mb.scenario("sum of a generator")
def streamed() -> int:
    """Never hold more than one number."""
    return sum(i for i in range(N))
