"""``mb.measure`` counts the processes the call starts, as ``membound run`` does: pool workers
and forks count in the peak, in ``limit=`` and in the words (issue 27)."""

from __future__ import annotations

import functools

import pytest

import membound as mb
from tests.measure import tree_targets

MIB = 2**20


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])
def test_a_pool_whose_workers_hold_400_mib_reads_400_mib(isolate: bool) -> None:
    m = mb.measure(tree_targets.pool_holds, 200, 2, isolate=isolate)
    # two workers held 200 MiB each at the same time; the caller itself next to nothing
    assert m.rss_peak_delta >= 300 * MIB, m.rss_peak_source
    assert m.rss_peak_source.startswith("the summed RSS of the process tree (3 processes")
    assert "measured process alone" in m.rss_peak_source
    # the samples are the tree's sum too, and the words quote that peak
    assert max(m.timeline.highs) - m.rss_start >= 300 * MIB
    assert "ok" == m.outcome


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])
def test_a_forked_child_holding_50_mib_counts(isolate: bool) -> None:
    m = mb.measure(tree_targets.fork_holds, 50, isolate=isolate)
    assert m.rss_peak_delta >= 40 * MIB, m.rss_peak_source
    assert "2 processes: the measured one and 1 it started" in m.rss_peak_source


def test_the_limit_counts_the_workers() -> None:
    m = mb.measure(tree_targets.pool_holds, 200, 2, limit="150MB")
    assert "limit" == m.outcome, m.outcome_detail
    assert "memory limit" in m.outcome_detail
    with pytest.raises(mb.LimitExceeded):
        m.raise_for_outcome()


def test_a_call_that_starts_nothing_keeps_its_own_peak_source() -> None:
    """No descendants: the figures and their source are the process's own, as before."""
    from tests.measure import targets

    m = mb.measure(functools.partial(targets.allocate, 64 * MIB))
    assert m.rss_peak_source.startswith("VmHWM"), m.rss_peak_source
    assert 60 * MIB <= m.rss_peak_delta <= 80 * MIB


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])
def test_a_child_between_fork_and_exec_does_not_count_its_parents_pages(isolate: bool) -> None:
    """Until it execs, a forked child's pages are its parent's: counted, a process holding
    100 MiB that runs a small command read 200 MiB (a 600 MiB one spawning ``true`` 1.2 GiB)."""
    m = mb.measure(tree_targets.spawn_through_fork, 100, 60, isolate=isolate)
    assert 90 * MIB <= m.rss_peak_delta < 150 * MIB, m.rss_peak_source


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in-process"])
def test_a_child_slow_to_exec_counts_what_it_wrote_not_its_parents_pages(isolate: bool) -> None:
    """A child kept from its exec past the first tenth of a second (a loaded CI run: a test
    process of 727 MiB read +827 MiB when one of its forks had not yet exec'd) counts the pages
    it wrote since the fork, not the parent's it still maps."""
    m = mb.measure(tree_targets.spawn_after_a_slow_fork, 200, 0.6, isolate=isolate)
    # Counted twice, the parent's pages read the 200 MiB held twice and the caller's whole size
    # again (a 700 MiB test process: +1.1 GiB). A page the child holds alone counts: it is
    # memory of its own (a loaded CI run read +406 MiB in-process: the kernel had copied the
    # held block for the child), so the child adds at most the block, never the caller.
    assert 190 * MIB <= m.rss_peak_delta, m.rss_peak_source
    assert m.rss_peak_delta < 2 * 200 * MIB + m.rss_start // 2, m.rss_peak_source


def test_nested_tracks_do_not_count_each_others_sampler() -> None:
    """Each ``track`` has a sampler process that is a child of this one: never part of the
    tree it sums."""
    with mb.track("outer") as outer, mb.track("inner") as inner:
        block = bytearray(20 * MIB)
        del block
    for t in (outer, inner):
        assert t.result is not None
        assert 1 == t.result.timeline.extra.get("processes_seen"), t.result.timeline.extra
        assert t.result.rss_peak_source.startswith("VmHWM"), t.result.rss_peak_source


def test_a_child_that_ran_before_the_block_and_ends_in_it_is_not_counted() -> None:
    """A test runner's or an earlier pool's process is not the block's: its 150 MiB ending
    during the block must not read as memory the block gave back (nor count at all)."""
    import subprocess
    import sys
    import time

    hold = "import sys, time; b = b'\\x01' * (150 * 2**20); sys.stdout.write('up\\n'); "
    hold += "sys.stdout.flush(); time.sleep(0.6)"
    before = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE)
    assert before.stdout is not None
    assert b"up\n" == before.stdout.readline()  # its 150 MiB are resident now
    try:
        with mb.track("after the child", interval=0.01) as t:
            before.wait(30)  # it ends inside the block
            # written, so resident (calloc's zero pages are not); 100 MiB so that what the
            # long-lived test process happens to give back meanwhile (20 MiB seen under load)
            # cannot take it under the 50 MiB the block must read at least
            block = b"\x01" * (100 * MIB)
            time.sleep(1.0)  # long enough for a sampler kept off the CPU by a loaded machine
            del block
    finally:
        before.kill()
        before.wait()
    m = t.result
    assert m.rss_peak_delta >= 50 * MIB, m.rss_peak_source
    # the child's 150 MiB are not in it (counted, the peak would be 250 MiB over the start)
    assert m.rss_peak_delta < 200 * MIB, m.rss_peak_source


def test_a_child_held_between_vfork_and_exec_is_never_counted() -> None:
    """``subprocess`` starts a program through vfork: until its exec the child shares every
    page of its parent. A loaded machine kept a nested ``track``'s sampler there past the
    first tenth of a second, and the outer block counted it as a process of its own (and its
    parent's pages twice). Here ptrace holds a real vfork child at its exec for 1.5 s."""
    import shutil
    import subprocess
    import sys
    import time

    from membound import _proc
    from membound.measure.children.proc_tree import TreeReader, children_of, read_rss

    # by its path: a bare name is tried in every PATH folder, each exec held again
    true = shutil.which("true")
    assert true is not None
    script = (
        "import subprocess, sys; held = b'\\x01' * (200 * 2**20); print('up', flush=True); "
        f"sys.stdin.readline(); subprocess.run([{true!r}], check=True); print('done', flush=True)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    tracer = None
    try:
        assert parent.stdin is not None
        assert parent.stdout is not None
        assert "up\n" == parent.stdout.readline()
        own = read_rss(parent.pid)
        assert own is not None
        hold = ["-e", "trace=execve", "-e", "inject=execve:delay_enter=1500000"]
        argv = ["strace", "-f", "-qq", "-o", "/dev/null", *hold, "-p", str(parent.pid)]
        tracer = subprocess.Popen(argv)
        deadline = time.monotonic() + 30
        while not traced(parent.pid):
            assert time.monotonic() < deadline, "strace never attached"
            time.sleep(0.01)
        parent.stdin.write("\n")
        parent.stdin.flush()
        reader = TreeReader(parent.pid)
        held_for = 0.0
        first = None
        while parent.poll() is None and time.monotonic() < deadline:
            total = reader.read()
            kids = children_of(parent.pid)
            if kids and _proc.forked_not_executed(kids[0]) and _proc.shares_parents_memory(kids[0]):
                first = time.monotonic() if first is None else first
                held_for = time.monotonic() - first
                assert 1 == reader.processes_seen, f"the vfork child counted after {held_for:.2f} s"
                assert total is not None
                assert total < own * 1.5, (total, own)
            time.sleep(0.01)
        # the case happened: the child sat between vfork and exec well past the settle time
        assert held_for >= 0.5, held_for
        assert "done\n" == parent.stdout.readline()
    finally:
        for p in (parent, tracer):
            if p is not None:
                p.kill()
                p.wait()


def traced(pid: int) -> bool:
    """Whether a tracer has attached to ``pid`` (``TracerPid`` in its status is not 0)."""
    with open(f"/proc/{pid}/status") as f:
        return any(line.split()[1:] != ["0"] for line in f if line.startswith("TracerPid:"))
