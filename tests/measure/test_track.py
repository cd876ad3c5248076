from __future__ import annotations

import subprocess
import sys
import time

import pytest

import membound as mb
from membound.results.timeline import STARTED_AFTER
from tests.measure import targets

MIB = 2**20


def test_native_allocation_of_200_mib_is_seen_in_the_peak() -> None:
    with mb.track("alloc") as t:
        block = bytearray(200 * MIB)
        del block
    m = t.result
    assert m is not None
    assert 190 * MIB <= m.rss_peak_delta <= 215 * MIB
    assert "VmHWM" in m.rss_peak_source
    assert m.heap_peak is None
    assert "in-process" == m.kind


def test_heap_mode_reports_python_objects() -> None:
    with mb.track("objects", heap=True) as t:
        items = [{"i": i} for i in range(200_000)]
        del items
    m = t.result
    assert m is not None
    assert m.heap_peak is not None
    assert m.heap_current is not None
    # 200k dicts are at least 100 bytes each on CPython 3.10+
    assert m.heap_peak > 200_000 * 100
    assert m.heap_current < m.heap_peak / 10  # freed again


def test_nested_tracks_keep_the_outer_peak() -> None:
    with mb.track("outer") as outer:
        with mb.track("inner") as inner:
            block = bytearray(120 * MIB)
            del block
        small = bytearray(10 * MIB)
        del small
    assert inner.result is not None
    assert outer.result is not None
    assert inner.result.rss_peak_delta > 110 * MIB
    # the inner block reset VmHWM; the outer result must still include its peak
    assert outer.result.rss_peak_delta > 110 * MIB


DECORATED = """
import membound as mb
MIB = 2**20
tracker = mb.track("decorated", interval=None)

@tracker
def work(n):
    return len(bytearray(n))

assert 50 * MIB == work(50 * MIB)
assert tracker.result is not None
assert tracker.result.rss_peak_delta > 45 * MIB, tracker.result
assert work.last_measurement is tracker.result
work(10)
assert tracker.result.rss_peak_delta < 45 * MIB, tracker.result
"""


def test_decorator_measures_each_call() -> None:
    # In a process of its own: a test worker's RSS moves with what earlier tests' threads free
    # (a 40 MiB release during the call once hid most of the 50 MiB allocated in it).
    done = subprocess.run(
        [sys.executable, "-c", DECORATED], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == done.returncode, done.stderr


def test_exception_inside_track_is_recorded_and_propagates() -> None:
    t = mb.track("boom")
    with pytest.raises(KeyError), t:
        raise KeyError("x")
    assert t.result is not None
    assert "failed" == t.result.outcome


def test_timeline_and_gc_are_filled() -> None:
    import gc

    with mb.track("gc") as t:
        gc.collect()
        time.sleep(0.1)
    m = t.result
    assert m is not None
    assert m.gc_collections is not None
    assert m.gc_collections >= 1
    assert m.timeline.samples >= 3
    # a tenth of a second is ten samples at most: flat, or too short to judge
    assert m.growth.pattern in ("flat", "unjudged"), m.growth.explanation


def test_heap_mode_reports_tracemallocs_own_memory_apart() -> None:
    """tracemalloc keeps a record per live block, resident and counted in RSS: reported apart."""
    n = 300_000
    with mb.track("dicts", heap=True) as t:
        rows = [{"i": i} for i in range(n)]
        del rows
    m = t.result
    assert m is not None
    assert m.heap_overhead is not None
    # At least ~30 bytes of record per block at the peak (two blocks per dict here), and far
    # less than a kilobyte per block.
    assert 30 * n <= m.heap_overhead <= 1000 * 2 * n
    assert "heap tracing cost" in m.to_markdown()
    with mb.track("plain") as plain:
        pass
    assert plain.result is not None
    assert plain.result.heap_overhead is None


def test_heap_overhead_from_a_fresh_interpreter_and_a_command() -> None:
    isolated = mb.measure(targets.allocate_objects, 200_000, heap=True)
    assert isolated.heap_overhead is not None
    assert isolated.heap_overhead > 30 * 200_000
    code = "rows = [{'i': i} for i in range(200_000)]"
    command = mb.measure_command([sys.executable, "-c", code], heap=True, quiet=True)
    assert command.heap_overhead is not None
    assert command.heap_overhead > 30 * 200_000


GARBAGE_THEN_CALL = """
import gc
import membound as mb

def collects_then_allocates():
    gc.collect()
    block = bytearray(30 * 2**20)
    return len(block)

class Node:
    def __init__(self):
        self.me = self
        self.payload = bytearray(2**20)

for _ in range(40):
    Node()  # 40 MiB of cycles, waiting for the collector
print(mb.measure(collects_then_allocates, isolate=False).rss_peak_delta)
"""


def test_earlier_garbage_does_not_hide_an_in_process_calls_growth() -> None:
    """Cyclic garbage from before the call is collected before the measured part: collected
    during it, the memory it frees would offset the call's own growth. (In a fresh interpreter:
    after other tests, the allocator may already hold free memory the call reuses unseen.)"""
    proc = subprocess.run(
        [sys.executable, "-c", GARBAGE_THEN_CALL],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert int(proc.stdout.strip()) > 25 * 2**20


def test_the_peak_is_never_below_the_start() -> None:
    """The kernel's RSS counters lag: a high-water mark read after its reset once came out
    120 KiB under an RSS read later, giving a negative Δ peak."""
    big = [0] * 2_000_000
    del big
    deltas = []
    for _ in range(30):
        with mb.track("nothing", interval=None) as t:
            pass
        assert t.result is not None
        deltas.append(t.result.rss_peak_delta)
        assert t.result.rss_peak >= t.result.rss_start
    assert min(deltas) >= 0, deltas


def test_a_commands_heap_held_at_end_counts_what_it_still_holds(tmp_path: object) -> None:
    from pathlib import Path

    script = Path(str(tmp_path)) / "hold.py"
    script.write_text("keep = [str(i) for i in range(200_000)]\n")
    m = mb.measure_command([sys.executable, str(script)], heap=True, quiet=True)
    assert m.heap_current is not None
    assert m.heap_peak is not None
    # What the script keeps, as this interpreter sizes it (3.13's are smaller than 3.11's).
    kept = sys.getsizeof([None] * 200_000) + sum(sys.getsizeof(str(i)) for i in range(200_000))
    assert m.heap_current > 0.9 * m.heap_peak
    assert m.heap_current > 0.9 * kept


def test_the_timeline_covers_a_short_block_from_its_start() -> None:
    # The sampler process starts in tens of milliseconds (hundreds under load): the block
    # waits for its first sample, so none of a 50 ms block falls before the timeline.
    with mb.track("short", interval=0.005) as t:
        time.sleep(0.05)
    timeline = t.result.timeline
    assert STARTED_AFTER not in timeline.extra, timeline.extra
    assert timeline.samples >= 3, timeline


def test_print_of_a_measurement_is_one_line_and_its_timeline_no_samples() -> None:
    with mb.track("thirty MiB", interval=0.005) as t:
        data = bytearray(b"x") * (30 << 20)
        time.sleep(0.2)
        del data
    m = t.result
    assert len(m.timeline) > 10
    shown = str(m)
    assert "\n" not in shown
    assert shown.startswith("thirty MiB: ok, RSS peak "), shown
    assert m.growth.label in shown
    assert f"{m.timeline.samples} rss samples" in repr(m.timeline)
    assert str(m.timeline.highs[0]) not in repr(m.timeline)  # no sample printed
    assert len(repr(m)) < 4000  # the dataclass's own repr, with the timeline folded
