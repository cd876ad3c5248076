"""The tracemalloc fallback's fast read of the live blocks against tracemalloc's public
snapshot API: random allocations from random call chains, both read, the sums compared."""

from __future__ import annotations

import gc
import importlib.util
import random
import re
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from membound.measure.children import where_capture
from membound.measure.children.where_capture import statistics_stacks, traced_stacks

FUNCTIONS = 12


def _random_module(tmp_path: Path, seed: int) -> ModuleType:
    """A module of ``f0 … f11``: each makes an object of a random kind and size on a line of
    its own, then calls a function picked at random (chains deeper than tracemalloc's frames,
    so some tracebacks are cut), or stops."""
    chooser = random.Random(seed)
    lines = ["import random", f"PICK = random.Random({seed})", "KEPT = []", ""]
    for number in range(FUNCTIONS):
        size = chooser.randint(1, 2_000)
        make = chooser.choice(
            [
                f"bytearray({size})",
                f"[str(i) for i in range({size // 100 + 1})]",
                f"{{i: i for i in range({size // 100 + 1})}}",
            ]
        )
        lines += [
            f"def f{number}(depth):",
            f"    KEPT.append({make})",
            "    if depth > 0:",
            f"        globals()[f'f{{PICK.randrange({FUNCTIONS})}}'](depth - 1)",
            "",
        ]
    path = tmp_path / f"random_calls_{seed}.py"
    path.write_text("\n".join(lines))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sums(stacks: Sequence[Sequence[Any]], file: str) -> dict[tuple[tuple[str, int], ...], int]:
    """Bytes per traceback (innermost first) of the blocks made in ``file``."""
    sums: dict[tuple[tuple[str, int], ...], int] = {}
    for frames, size, kind, symbol in stacks:
        assert (kind, symbol) == ("python", None)
        key = tuple((f[1], f[2]) for f in frames)
        if key and key[0][0] == file:
            sums[key] = sums.get(key, 0) + size
    return sums


@pytest.fixture
def tracing() -> Iterator[None]:
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(16)
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


@pytest.mark.parametrize("seed", range(3))
def test_the_fast_read_sums_what_the_snapshot_api_sums(
    tmp_path: Path, tracing: None, seed: int
) -> None:
    module = _random_module(tmp_path, seed)
    chooser = random.Random(seed)
    for _ in range(40):
        module.f0(chooser.randint(0, 25))
    file = str(module.__file__)
    excluded = frozenset({tracemalloc.__file__, where_capture.__file__})
    # Nothing of the module's may be freed between the two reads: no collection runs.
    gc.collect()
    gc.disable()
    try:
        fast = _sums(traced_stacks(excluded), file)
        public = _sums(statistics_stacks(excluded), file)
    finally:
        gc.enable()
    diff = [
        (fast.get(k), public.get(k), len(k), k[:2])
        for k in set(fast) | set(public)
        if fast.get(k) != public.get(k)
    ]
    assert fast == public, diff
    # Something to compare: many tracebacks, some cut at tracemalloc's frame limit.
    assert len(fast) > 50
    assert max(len(key) for key in fast) == tracemalloc.get_traceback_limit()
    del module.KEPT[:]


def test_blocks_made_in_an_excluded_file_are_left_out(tmp_path: Path, tracing: None) -> None:
    module = _random_module(tmp_path, 99)
    module.f0(5)
    file = str(module.__file__)
    assert _sums(traced_stacks(), file)
    for read in (traced_stacks, statistics_stacks):
        assert _sums(read(frozenset({file})), file) == {}


def _captured(note: str) -> tuple[float, float] | None:
    """The ``captured at X MiB of the heap; its peak was Y MiB`` of a where note."""
    found = re.search(r"captured at ([0-9.]+) MiB of the heap; its peak was ([0-9.]+)", note)
    return (float(found.group(1)), float(found.group(2))) if found else None


@pytest.mark.parametrize("wait", [False, True])
def test_a_new_high_is_read_once_the_last_reads_wait_is_over(
    monkeypatch: pytest.MonkeyPatch, wait: bool
) -> None:
    """After a read, the fallback reads a new high only once it has waited some multiple of
    that read's time (endless here, or none)."""
    monkeypatch.setattr(where_capture, "READ_WAIT_FACTOR", 1e9 if wait else 0.0)
    capture = where_capture.TracemallocCapture().start()
    first = bytearray(10 * 2**20)
    capture.check()  # the first high is read whatever the wait
    peak = bytearray(3 * 2**19)  # 1.15x the read: a new high, under a quarter more
    capture.check()
    del peak
    captured = _captured(capture.stop().get("where_note", ""))
    del first
    if wait:
        assert captured is not None
        assert captured[0] == pytest.approx(10, abs=0.5)
        assert captured[1] == pytest.approx(11.5, abs=0.5)
    else:
        assert captured is None


def test_a_heap_a_quarter_over_the_last_read_is_read_within_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(where_capture, "READ_WAIT_FACTOR", 1e9)
    capture = where_capture.TracemallocCapture().start()
    first = bytearray(10 * 2**20)
    capture.check()
    higher = bytearray(4 * 2**20)  # 1.4x the read
    capture.check()
    del higher
    note = capture.stop().get("where_note", "")
    del first
    assert _captured(note) is None, note


def test_a_read_that_waited_for_anothers_never_lowers_the_best() -> None:
    """The poll and the caller both check: one that judged the heap a new high before another
    read a higher one must not replace that read with its own lower figure."""
    capture = where_capture.TracemallocCapture().start()
    first = bytearray(10 * 2**20)
    higher = 12 * 2**20
    with capture._lock:
        waiter = threading.Thread(target=capture.check)
        waiter.start()
        time.sleep(0.3)  # past the gate at 10 MiB, waiting on the lock (as the poll may be)
        capture._best = higher  # meanwhile another read took a higher heap
    waiter.join(timeout=30)
    best = capture._best
    capture.stop()
    del first
    assert best == higher
