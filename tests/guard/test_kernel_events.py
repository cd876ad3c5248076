"""cgroup v1 usage thresholds (``guard/watchdog/kernel_events.py``): registered by the event
source's own thread, each one really registered, replaced whole, and nothing left open.

Registering a threshold waits for an RCU grace period under the group's lock: three workers of
one group starting their watchdogs together each took 0.8 s in ``start()`` when the
thresholds were registered there."""

from __future__ import annotations

import os
import resource
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

import membound as mb
from membound.guard.limit import Limit
from membound.guard.watchdog import kernel_events
from membound.guard.watchdog.kernel_events import EventSource, open_events
from membound.measure.cgroup.memory import MemoryGroup
from tests.guard.cgroup_helpers import MemoryCgroup, memory_cgroup

MIB = 1 << 20


def _eventfds() -> int:
    """This process's open eventfds."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[eventfd]":
                count += 1
        except OSError:
            continue  # the descriptor listdir itself used, closed since
    return count


def _v1_limit(group: MemoryCgroup, limit: int) -> Limit:
    if group.version != 1:
        pytest.skip("cgroup v1 thresholds: this machine's memory controller is v2")
    memory = MemoryGroup(1, group.path, os.path.dirname(group.path))
    return Limit(limit, group.file("memory.limit_in_bytes"), "cgroup-v1", group=memory)


def _taken(source: EventSource, seconds: float = 10.0) -> bool:
    """Take what the source's thread registers, waiting up to ``seconds`` for it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if source.take():
            return True
        time.sleep(0.005)
    return False


def _settle(expected: int, seconds: float = 10.0) -> int:
    deadline = time.monotonic() + seconds
    while _eventfds() != expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return _eventfds()


def _allocating(group: MemoryCgroup, mib: int) -> Iterator[subprocess.Popen[str]]:
    code = (
        "import sys, time\n"
        f"block = bytearray(b'\\x01') * ({mib} << 20)\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        group.enter_argv([sys.executable, "-c", code]), stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert "written" == process.stdout.readline().strip()
        yield process
    finally:
        process.kill()
        process.wait()


def test_every_threshold_is_registered_and_fires_when_crossed() -> None:
    """The thresholds are written one registration a write through one descriptor: each of
    them must fire (an eventfd counts its events) when a process of the group crosses it."""
    with memory_cgroup(512 * MIB) as group:
        limit = _v1_limit(group, 512 * MIB)
        base = group.usage()
        points = [base + 20 * MIB, base + 40 * MIB, base + 60 * MIB]
        source = open_events(limit, points)
        try:
            assert source.kind.startswith("cgroup-v1-thresholds")
            assert _taken(source)
            assert tuple(points) == source.armed
            threshold_fd = [fd for fd, _ in source.fds][-1]
            for _ in _allocating(group, 100):
                poller = select.poll()
                poller.register(threshold_fd, select.POLLIN)
                assert poller.poll(5000), "no threshold fired"
                time.sleep(0.2)  # the kernel checks every 128 page events per CPU
                fired = int.from_bytes(os.read(threshold_fd, 8), sys.byteorder)
                assert fired >= len(points)
        finally:
            source.close()


def test_thresholds_asked_again_replace_the_old_ones_only_once_registered() -> None:
    with memory_cgroup(512 * MIB) as group:
        limit = _v1_limit(group, 512 * MIB)
        before = _eventfds()
        source = open_events(limit, [100 * MIB, 200 * MIB])
        try:
            assert _taken(source)
            first = list(source.fds)
            generation = source.generation
            source.request([150 * MIB, 250 * MIB])
            assert source.arming
            assert first == source.fds  # still armed meanwhile
            assert _taken(source)
            assert (150 * MIB, 250 * MIB) == source.armed
            assert generation < source.generation
            assert not source.arming
            # the old eventfd was closed: one for the thresholds, one for memory pressure
            assert before + 2 == _eventfds()
        finally:
            source.close()
        assert before == _settle(before)


def test_a_source_closed_while_registering_leaves_nothing_open() -> None:
    with memory_cgroup(512 * MIB) as group:
        limit = _v1_limit(group, 512 * MIB)
        before = _eventfds()
        for round_ in range(5):
            source = open_events(limit, [(10 + n + round_) * MIB for n in range(7)])
            source.close()  # at once: the registrations in flight are closed by its thread
        assert before == _settle(before)
        threads = [t for t in threading.enumerate() if t.name == "membound-watchdog-events"]
        for thread in threads:
            thread.join(timeout=10)
        assert not any(t.is_alive() for t in threads)


def test_a_watchdog_starts_without_registering_thresholds_in_its_callers_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``start()`` returns at once; the source's thread registers the thresholds, the watch
    takes them, and ``stop()`` leaves no eventfd open."""
    callers: list[str] = []
    register = kernel_events._register

    def noted(*args: object, **kwargs: object) -> int | None:
        callers.append(threading.current_thread().name)
        return register(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(kernel_events, "_register", noted)
    with memory_cgroup(512 * MIB) as group:
        limit = _v1_limit(group, 512 * MIB)
        before = _eventfds()
        dog = mb.Watchdog(limit=limit, on_soft=None, backstop=False)
        dog.start()
        try:
            assert threading.current_thread().name not in callers  # none registered here
            assert dog.events_kind.startswith("cgroup-v1-thresholds")
            assert before + 2 == _settle(before + 2)  # thresholds and pressure, in place
            assert callers
            assert {"membound-watchdog-events"} == set(callers)
        finally:
            dog.stop()
        assert not [t for t in threading.enumerate() if t.name.startswith("membound-watchdog")]
        assert before == _settle(before)


def test_no_threshold_wanted_drops_the_armed_ones_and_keeps_the_kind() -> None:
    """Every point at or above the limit is left out (charge never passes the limit): none
    left to arm is no failure to register, and the source still says what it waits on."""
    with memory_cgroup(512 * MIB) as group:
        limit = _v1_limit(group, 512 * MIB)
        before = _eventfds()
        source = open_events(limit, [100 * MIB])
        try:
            assert _taken(source)
            source.request([])
            assert _taken(source)
            assert () == source.armed
            assert source.kind.startswith("cgroup-v1-thresholds")
            assert before + 1 == _eventfds()  # memory pressure's only
        finally:
            source.close()


_FEW_DESCRIPTORS = """
import ctypes, os, sys, threading, time
import membound as mb
from membound.guard.limit import Limit
from membound.guard.watchdog import kernel_events
from membound.measure.cgroup.memory import MemoryGroup

path, limit_bytes = sys.argv[1], int(sys.argv[2])
group = MemoryGroup(1, path, os.path.dirname(path))
limit = Limit(limit_bytes, os.path.join(path, "memory.limit_in_bytes"), "cgroup-v1", group=group)
ctypes.CDLL("libgcc_s.so.1")  # a thread's exit loads it: with no descriptor left, glibc aborts
# counted without opening a descriptor (none is left): every eventfd is this one anonymous inode
reference = os.fstat(os.eventfd(0))


def eventfds():
    count = -1  # the reference
    for fd in range(os.sysconf("SC_OPEN_MAX")):
        try:
            found = os.fstat(fd)
        except OSError:
            continue
        count += (found.st_dev, found.st_ino) == (reference.st_dev, reference.st_ino)
    return count


# the source's thread registers once this process has no descriptor left (the kernel's real
# EMFILE; the gate only orders it after start())
gate = threading.Event()
register = kernel_events._register
kernel_events._register = lambda *args: gate.wait(10) and register(*args)
dog = mb.Watchdog(limit=limit, on_soft=None, backstop=False).start()
started = dog.events_kind
fillers = []
try:
    while True:
        fillers.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
gate.set()
deadline = time.monotonic() + 5
while time.monotonic() < deadline:  # until what it says it waits on is what is open
    kind, count = dog.events_kind, eventfds()
    if ("cgroup-v1-thresholds" in kind) + ("+pressure" in kind) == count:
        break
    time.sleep(0.02)
for fd in fillers:
    os.close(fd)
dog.stop()
print(started, kind, count)
"""


def test_the_kind_a_watchdog_reports_is_what_the_kernel_registered() -> None:
    """The source's thread cannot register the thresholds (no descriptor left): the watch
    polls, and the watchdog says so (its ``events`` kept the kind it had at start)."""
    with memory_cgroup(512 * MIB) as group:
        if group.version != 1:
            pytest.skip("cgroup v1 thresholds: this machine's memory controller is v2")
        done = subprocess.run(
            [sys.executable, "-c", _FEW_DESCRIPTORS, group.path, str(512 * MIB)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)),
        )
    assert 0 == done.returncode, done.stderr
    started, kind, count = done.stdout.split()
    assert "cgroup-v1-thresholds+pressure" == started  # registering was left to the thread
    assert "polling+pressure" == kind  # which could not: the watch polls
    assert 1 == int(count)  # memory pressure's eventfd only
