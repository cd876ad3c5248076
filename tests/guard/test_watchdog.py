"""The Watchdog on real memory of this process and of children: thresholds, hysteresis,
callbacks off the hot path, ready-made actions, bad input."""

from __future__ import annotations

import logging
import mmap
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import membound as mb
from membound import SizeError
from membound.guard import actions
from membound.guard.watchdog.core import Watchdog, WatchdogEvent
from membound.measure.cgroup.memory import process_usage
from tests.guard.cgroup_helpers import memory_cgroup

MiB = 1 << 20


def _judged() -> int:
    usage = process_usage()
    assert usage is not None
    return usage.judged


def _hold(mib: int) -> list[mmap.mmap]:
    """``mib`` MiB resident at once, each MiB given back to the OS the moment it is dropped.

    Anonymous maps, not ``bytes``: glibc raises its mmap threshold after a big free, and later
    buffers then come from the heap, whose freed pages may stay resident (RSS would not fall).
    """
    held = []
    for _ in range(mib):
        block = mmap.mmap(-1, MiB)
        block.write(b"\x01" * MiB)
        held.append(block)
    return held


def _dog(**kwargs: object) -> Watchdog:
    """A watchdog whose limit sits 160 MiB above this process's memory now: soft at +60 MiB,
    hard at +100 MiB, recover at +30 MiB (so hard → soft below +70 MiB)."""
    base = _judged()
    options: dict[str, object] = {
        "limit": base + 160 * MiB,
        "soft": base + 60 * MiB,
        "hard": base + 100 * MiB,
        "recover": base + 30 * MiB,
        "on_soft": None,
    }
    options.update(kwargs)
    return Watchdog(**options)  # type: ignore[arg-type]


def test_states_step_with_hysteresis() -> None:
    seen: list[tuple[str, str, str]] = []

    def note(event: WatchdogEvent) -> None:
        seen.append((event.kind, event.previous, event.state))

    dog = _dog(on_soft=note, on_hard=note, on_recover=note)
    assert "ok" == dog.check()
    held = _hold(75)  # +75 MiB: soft
    assert "soft" == dog.check()
    more = _hold(35)  # +110 MiB: hard
    assert "hard" == dog.check()
    del more[:20]  # +90 MiB: under hard, above hard's way back (+70): still hard
    assert "hard" == dog.check()
    del more[:]  # +75 MiB: still above hard's way back (+70): hard holds
    assert "hard" == dog.check()
    del held[:10]  # +65 MiB: under +70 → soft
    assert "soft" == dog.check()
    del held[:20]  # +45 MiB: under soft, above recover: soft holds
    assert "soft" == dog.check()
    del held[:]  # +0: ok
    assert "ok" == dog.check()
    assert [("soft", "ok", "soft"), ("hard", "soft", "hard"), ("recover", "soft", "ok")] == seen
    assert ["soft", "hard", "soft", "ok"] == [t["to"] for t in dog.transitions]


def test_a_ramp_straight_past_soft_fires_hard() -> None:
    seen: list[str] = []
    dog = _dog(on_soft=lambda e: seen.append(e.kind), on_hard=lambda e: seen.append(e.kind))
    held = _hold(110)
    assert "hard" == dog.check()
    assert ["hard"] == seen
    del held


def test_user_callbacks_run_off_the_watchdog_thread_and_errors_are_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    where: list[str] = []
    ran = threading.Event()

    def broken(event: WatchdogEvent) -> None:
        where.append(threading.current_thread().name)
        ran.set()
        raise RuntimeError("callback bug")

    dog = _dog(on_soft=broken, interval=0.02)
    with caplog.at_level(logging.ERROR, logger="membound.guard"), dog:
        held = _hold(75)
        assert ran.wait(5), "the soft callback never ran"
        time.sleep(0.1)
        assert dog._threads[0].is_alive(), "a raising callback stopped the watch"
        del held
    assert ["membound-callbacks"] == where
    assert 1 == dog.callback_errors
    assert "callback bug" in caplog.text


def test_ready_made_actions_run_in_the_watchdog_thread_at_once() -> None:
    caught: list[BaseException] = []
    started = threading.Event()

    def work() -> None:
        started.set()
        try:
            while True:  # busy in Python: the exception lands between bytecodes
                sum(range(100))
        except actions.HardLimitReached as exc:
            caught.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    started.wait(5)
    dog = _dog(on_hard=actions.raise_in([worker]), interval=0.02)
    with dog:
        held = _hold(110)
        worker.join(10)
        del held
    assert not worker.is_alive()
    assert 1 == len(caught)
    assert isinstance(caught[0], mb.MemoryBudgetExceeded)


def test_refusing_work_clears_itself_on_recovery() -> None:
    dog = _dog(on_hard=actions.refuse_new_work())
    held = _hold(110)
    dog.check()
    assert actions.refusing()
    del held
    assert "ok" == dog.check()
    assert not actions.refusing()


def test_the_hard_action_never_waits_behind_a_soft_action_still_running() -> None:
    """A soft action that takes its time (a long ``gc.collect`` on a big heap, a slow cache)
    runs in the callback thread; the crossing of ``hard`` runs ``on_hard`` at once in the
    watchdog's own thread, before the soft action has finished."""
    soft_started, soft_done, hard_ran = threading.Event(), threading.Event(), threading.Event()
    where: list[str] = []

    def slow_soft(event: WatchdogEvent) -> None:
        soft_started.set()
        time.sleep(3)
        soft_done.set()

    def on_hard(event: WatchdogEvent) -> None:
        where.append(threading.current_thread().name)
        hard_ran.set()

    dog = _dog(on_soft=slow_soft, on_hard=on_hard, interval=0.02)
    with dog:
        held = _hold(75)  # soft
        assert soft_started.wait(5), "the soft action never ran"
        held += _hold(40)  # hard, while the soft action sleeps
        assert hard_ran.wait(2), "on_hard waited"
        assert not soft_done.is_set()
        del held
    assert ["membound-watchdog"] == where


def test_a_refusal_ends_below_recover_even_without_a_recovery_from_hard() -> None:
    """Work refused for a reason other than a reading past ``hard`` (a backstop refusal runs
    ``on_hard`` while the state stays ``ok``) stops being refused once memory is under
    ``recover``: no refusal lasts with memory back down."""
    dog = _dog(on_hard=actions.refuse_new_work())
    actions.refuse_new_work()(dog._event("hard", "ok", _judged(), dog.hard_bytes, "backstop"))
    try:
        assert actions.refusing()
        assert "ok" == dog.check()
        assert not actions.refusing()
    finally:
        actions.stop_refusing()


def test_the_default_soft_action_clears_pools_and_frees_memory() -> None:
    import contextlib

    pool = mb.BoundedPool(lambda: bytearray(MiB), max_size=50, name="buffers")
    with contextlib.ExitStack() as stack:
        for _ in range(20):
            stack.enter_context(pool.acquire())
    assert 20 == pool.stats().idle  # a pool full of idle buffers
    dog = _dog(on_soft=actions.free_memory)
    held = _hold(75)
    dog.check()
    assert "soft" == dog.state
    assert 0 == pool.stats().idle
    del held


def test_health_reports_the_watchdog_and_pools() -> None:
    import json

    pool = mb.BoundedPool(dict, max_size=3, name="health-pool")
    dog = _dog(interval=0.02)
    with dog:
        report = mb.health()
    json.dumps(report)  # JSON-ready
    assert report["status"] in ("ok", "soft", "hard")
    assert report["limit_bytes"] == dog.limit.bytes
    assert "given" == report["limit_source"]
    assert report["headroom_bytes"] == report["limit_bytes"] - report["usage_bytes"]
    assert isinstance(report["rss_bytes"], int)
    assert report["rss_bytes"] > 0
    assert "health-pool" in report["pools"]  # type: ignore[operator]
    assert report["watchdog"]["state"] == "ok"  # type: ignore[index]
    assert set(report["growth"]) >= {"pattern", "slope_bytes_per_s", "time_to_limit_s"}  # type: ignore[arg-type]
    del pool


def test_watching_a_process_that_exits_ends_the_watch() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    dog = Watchdog(pid=child.pid, limit="1 GB", on_soft=None, interval=0.02, switch_interval=None)
    dog.start()
    child.wait()
    deadline = time.monotonic() + 5
    while not dog.gone and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dog.gone
    dog.stop()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"soft": "150%"}, "no percentage"),
        ({"soft": "0%"}, "no percentage"),
        ({"soft": "x%"}, "no percentage"),
        ({"soft": "90%", "hard": "80%"}, "must be below hard"),
        ({"recover": "85%"}, "must be below soft"),
        ({"hard": "2 GB"}, "above the limit"),
        ({"soft": "lots"}, "not a size"),
        ({"soft": 0.5}, "give bytes as a whole number"),
        ({"soft": 0}, "more than 0 bytes"),
        ({"interval": 0}, "interval"),
        ({"interval": "fast"}, "interval"),
        ({"leak_window": "never"}, "leak_window"),
        ({"switch_interval": 5}, "switch_interval"),
    ],
)
def test_thresholds_that_make_no_sense_are_one_line_errors(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(SizeError, match=message) as info:
        Watchdog(limit="1 GB", **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def _rising_for(dog: Watchdog, seconds: float) -> list[mmap.mmap]:
    """Grow memory 2 MiB every 20 ms for ``seconds`` (the watchdog sees it rise)."""
    held: list[mmap.mmap] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        held += _hold(2)
        time.sleep(0.02)
    return held


def test_the_switch_interval_is_lowered_near_the_thresholds_while_memory_rises_only() -> None:
    before = sys.getswitchinterval()
    base = _judged()
    far = Watchdog(
        limit=base + 2000 * MiB,
        soft=base + 1000 * MiB,  # half of it is still above usage now: far
        hard=base + 1500 * MiB,
        on_soft=None,
        interval=0.02,
    )
    with far:
        held = _rising_for(far, 0.2)
        assert before == sys.getswitchinterval()  # far below recover: left alone
        assert mb.guard.watchdog.current() is far
    del held
    near = _dog(interval=0.02, recover=_judged() // 2)  # usage is above recover: near
    with near:
        time.sleep(0.2)
        # Near but steady (a service that does not leak): no fast reading, no GIL hand-overs.
        assert before == sys.getswitchinterval()
        held = _rising_for(near, 0.2)
        assert sys.getswitchinterval() <= 0.0005
        del held
    assert before == sys.getswitchinterval()
    assert mb.guard.watchdog.current() is None


def test_a_slow_rise_far_from_the_next_line_keeps_the_switch_interval() -> None:
    """A leaking service rises all the time, slowly: the GIL switch interval (what costs a
    busy program its latency) is lowered only for a rise that reaches the next line soon."""
    before = sys.getswitchinterval()
    near = _dog(interval=0.02, recover=_judged() // 2)  # near; soft 60 MiB away
    held: list[mmap.mmap] = []
    with near:
        for _ in range(8):  # 2 MiB every 0.25 s: 8 MiB/s, soft in 7 s
            held += _hold(2)
            time.sleep(0.25)
            assert before == sys.getswitchinterval()
        assert near._pace.fast(_judged())  # still read often: the backstop stays current
    del held
    assert before == sys.getswitchinterval()


def test_two_watchdogs_restore_the_switch_interval_when_the_last_one_stops() -> None:
    before = sys.getswitchinterval()
    a = _dog(interval=0.02, recover=_judged() // 2).start()
    b = _dog(interval=0.02, recover=_judged() // 2).start()
    held = _rising_for(a, 0.2)
    a.stop()
    assert sys.getswitchinterval() <= 0.0005  # b still runs near its thresholds
    b.stop()
    del held
    assert before == sys.getswitchinterval()


def test_stop_returns_even_when_the_callback_queue_is_full() -> None:
    release = threading.Event()
    dog = _dog(on_soft=lambda event: release.wait(30), interval=0.02)
    event = WatchdogEvent("soft", "soft", "ok", 1, 2, 1, 0.0)
    with dog:
        for _ in range(60):  # one runs and blocks, 32 wait, the rest are dropped
            dog._dispatch(dog.on_soft, event)  # type: ignore[arg-type]
        assert dog.callbacks_dropped > 0
        started = time.monotonic()
        release.set()
    assert time.monotonic() - started < 5
    assert not any(t.name == "membound-callbacks" for t in threading.enumerate())


def test_a_leak_event_reads_once() -> None:
    from membound.guard.watchdog.trend import LeakTrend

    trend = LeakTrend(10)
    for i in range(300):
        trend.add(i / 10, 1e8 + 5e5 * i)
    verdict = trend.verdict(1 << 40)
    event = WatchdogEvent("leak", "ok", "ok", 1, 2, 2, 0.0, verdict)
    assert event.describe().startswith("leak: the floor")
    assert "leak: leak" not in event.describe()


def test_a_cached_method_registers_and_clears() -> None:
    import functools

    from membound.guard.registry import clear_all, pool_stats, register, unregister

    class Repo:
        @functools.lru_cache(maxsize=8)  # noqa: B019 - the object lives as long as the test
        def find(self, n: int) -> int:
            return n * 2

    repo = Repo()
    repo.find(1)
    register(repo.find, "repo-find")
    try:
        assert 1 == pool_stats()["repo-find"]["currsize"]
        clear_all()
        assert 0 == pool_stats()["repo-find"]["currsize"]
    finally:
        unregister("repo-find")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"grace": "10"}, "grace"), ({"grace": float("nan")}, "grace"), ({"status": 300}, "status")],
)
def test_exit_action_arguments_are_checked_when_made(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        actions.exit_gracefully(**kwargs)  # type: ignore[arg-type]


def test_watching_another_pid_is_not_this_process_current_watchdog() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        with Watchdog(pid=child.pid, limit="1 GB", on_soft=None, switch_interval=None):
            assert mb.guard.watchdog.current() is None
    finally:
        child.kill()
        child.wait()


def test_the_watch_thread_is_preferred_by_the_scheduler_where_allowed() -> None:
    """Woken by a kernel event on a busy machine, the watch thread must run before a fast ramp
    takes the headroom: it raises its own priority where the process may (root here)."""
    import os

    watchdog = mb.Watchdog(soft="80%", hard="90%", interval=0.05).start()
    try:
        thread = next(t for t in threading.enumerate() if t.name == "membound-watchdog")
        deadline = time.monotonic() + 5
        while thread.native_id is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # the thread sets it first thing
        nice = os.getpriority(os.PRIO_PROCESS, thread.native_id)  # type: ignore[arg-type]
        main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    finally:
        watchdog.stop()
    if os.geteuid() == 0:
        assert -10 == nice
    else:
        assert main == nice  # not allowed: unchanged, and no error
    assert main >= 0  # the measured code's own priority is left alone


def test_a_hard_below_the_default_soft_brings_soft_down_with_it() -> None:
    """``Watchdog(hard="70%")`` alone: soft keeps the defaults' ratio below it (not an error);
    a soft given is kept as given, and the default stays 80 % where hard is above it."""
    low = Watchdog(limit="900 MiB", hard="70%", on_soft=None, backstop=False)
    assert low.soft_bytes == int(900 * MiB * 0.7) * 8 // 9  # 560 MiB
    assert low.recover_bytes < low.soft_bytes < low.hard_bytes
    usual = Watchdog(limit="900 MiB", on_soft=None, backstop=False)
    assert usual.soft_bytes == int(900 * MiB * 0.8)
    # A limit whose 90 % is no whole byte: the truncated hard's 8/9 was a byte under 80 %.
    odd = Watchdog(limit=244_178_944, on_soft=None, backstop=False)
    assert odd.soft_bytes == int(244_178_944 * 0.8)
    given = Watchdog(limit="900 MiB", soft="50%", hard="70%", on_soft=None, backstop=False)
    assert given.soft_bytes == int(900 * MiB * 0.5)


def test_a_hard_that_the_groups_other_processes_already_hold_is_one_line() -> None:
    """In 300 MiB, another process holds 160 MiB: hard 50 % (150 MiB) cannot be reached back
    from this process alone — one line at start; hard 85 % is silent."""
    app = Path(__file__).parent / "apps" / "others_hold.py"
    holder_code = (
        "import sys,time; b=bytearray(b'\\x01')*(160<<20); print('held',flush=True); time.sleep(60)"
    )
    with memory_cgroup(300 * MiB) as group:
        holder = subprocess.Popen(
            group.enter_argv([sys.executable, "-c", holder_code]), stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None
            assert "held" in holder.stdout.readline()
            outputs = {hard: group.run([sys.executable, str(app), hard]) for hard in ("50%", "85%")}
        finally:
            holder.kill()
            holder.wait()
    low, high = outputs["50%"], outputs["85%"]
    assert 0 == low.returncode, low.stderr
    lines = [line for line in low.stdout.splitlines() if "other processes in this cgroup" in line]
    assert 1 == len(lines), low.stdout + low.stderr
    assert "of its 300.0 MiB limit, at or above hard 150.0 MiB" in lines[0]
    assert "other processes" not in high.stdout + high.stderr
    assert "started and stopped" in high.stdout
