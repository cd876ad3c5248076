"""Reading the allocators writes nothing of its own to standard error."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import sys, tracemalloc
from membound.measure import allocator
if sys.argv[1] == "traced":
    tracemalloc.start()
held = allocator.held()
print(held.malloc > 0)
"""


@pytest.mark.parametrize("mode", ["plain", "traced"])
def test_reading_the_allocators_leaves_standard_error_alone(mode: str) -> None:
    """While tracemalloc traces, pymalloc's report holds only its free lists: they are the
    report's, not another thread's output to give back to standard error."""
    done = subprocess.run(
        [sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True
    )
    assert "True" == done.stdout.strip()
    assert "" == done.stderr
