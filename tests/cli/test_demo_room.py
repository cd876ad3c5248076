"""``membound demo`` weighs the memory it needs against the limit it runs under (a container's
memory cgroup), not the host's RAM: refused before anything is written, one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from membound._units import format_size
from membound.demo.runner import demo_needs
from tests.guard.cgroup_helpers import memory_cgroup

MIB = 2**20


@pytest.mark.parametrize(
    ("limit", "rows", "words"),
    [
        # the fixed-size experiments alone need more than the group allows, whatever the rows
        (300 * MIB, 1000, "whatever the rows"),
        # the group has room for those, not for the load-all scenarios over these rows
        (1024 * MIB, 3_000_000, "Invalid value for --rows"),
    ],
)
def test_a_demo_the_memory_group_has_no_room_for_is_refused_naming_its_limit(
    tmp_path: Path, limit: int, rows: int, words: str
) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "membound", "demo", "--rows", str(rows), "--out", str(out)]
    with memory_cgroup(limit) as group:
        proc = subprocess.run(
            group.enter_argv(argv), capture_output=True, text=True, timeout=120, check=False
        )
    assert 2 == proc.returncode, proc.stderr
    assert words in proc.stderr
    assert f"about {format_size(demo_needs(rows)[1])} of memory" in proc.stderr
    assert f"under the memory limit of {format_size(limit)}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
