"""Tests that guard memory: ``pytest examples/test_memory.py --membound``."""

from __future__ import annotations

import pytest
from examples.leaky_handler import handle_request
from examples.load_all import load_all


@pytest.mark.limit_memory("40 MB")
def test_load_a_few_records() -> None:
    assert 100 == len(load_all(100))


@pytest.mark.no_leak(iterations=200)
def test_a_request_keeps_nothing() -> None:
    handle_request()
