"""The Watchdog's backstop in real memory cgroups: one allocation that would take the group past
its limit fails as ``MemoryError`` in the thread that asked, ``on_hard`` runs for it (caught or
not), and there is no OOM kill where an unguarded ramp is OOM-killed; its line is the kernel's,
not ``hard``: a program that peaks under the limit runs to its end; thread stacks (mapped,
never touched) are not refused; the process-wide limit and ``MemoryError`` come back when the
watchdog stops, and its cap is never taken for the process's limit."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import membound as mb
from membound._errors import SizeError
from membound.guard.watchdog import backstop as backstop_module
from tests.guard.cgroup_helpers import memory_cgroup

if sys.platform == "linux":
    import resource

APPS = Path(__file__).parent / "apps"
LIMIT = 300 << 20
pytestmark = [
    pytest.mark.skipif(not backstop_module.AVAILABLE, reason="Linux ≥ 4.7 only"),
    # Not beside the servers of test_memory_error_retry.py writing 150 MiB temporaries: a
    # watch thread starved by them let a program that fits be refused (make test runs xdist
    # with --dist loadgroup).
    pytest.mark.xdist_group("memory-pressure"),
]


def _run(app: str, *args: str) -> tuple[int, str, int]:
    """Run ``app`` in a fresh 300 MiB cgroup: exit status, output, OOM kills."""
    with memory_cgroup(LIMIT) as group:
        done = group.run([sys.executable, str(APPS / app), *args])
        return done.returncode, done.stdout + done.stderr, group.oom_kills()


def test_without_a_guard_the_big_steps_are_oom_killed() -> None:
    code, output, kills = _run("backstop_ramp.py", "64", "none", "catch")
    assert (-9, 1) == (code, kills), output


@pytest.mark.parametrize(
    ("chunk", "kind", "mode"),
    [("4", "bytes", "default"), ("16", "bytearray", "default"), ("64", "numpy", "on")],
)
def test_the_backstop_stops_a_ramp_without_an_oom_kill_and_runs_on_hard(
    chunk: str, kind: str, mode: str
) -> None:
    """``Watchdog(hard=..., on_hard=...)`` and nothing else (or ``backstop=True``)."""
    for _ in range(3):
        code, output, kills = _run("backstop_ramp.py", chunk, mode, "catch", "--kind", kind)
        assert (0, 0) == (code, kills), output
        result = re.search(r"result: (\w+) held=(\d+) hard_runs=(\d+) causes=(\S*)", output)
        assert result is not None, output
        how, held, runs, causes = result.groups()
        assert int(runs) >= 1, output  # on_hard ran, whichever way the ramp stopped
        assert int(held) < 300, output
        # numpy's own MemoryError, caught, is seen only through sys.monitoring (3.12+); before
        # that, on_hard ran for the hard crossing (asserted above)
        seen = kind != "numpy" or sys.version_info >= (3, 12)
        if how == "MemoryError":
            assert "a thread after the refusal ran" in output
        if how == "MemoryError" and seen:
            assert "backstop" in causes.split(","), output
            assert "the backstop refused an allocation" in output


def test_an_uncaught_refusal_still_runs_on_hard() -> None:
    """160 MiB pieces: the second would take the group from below ``hard`` past its limit, so
    no reading can come between; the kernel refuses it."""
    code, output, kills = _run("backstop_ramp.py", "160", "on")
    assert 0 == kills, output
    assert 1 == code, output  # the uncaught MemoryError, not a kill
    assert "MemoryError" in output
    assert "on_hard: hard: the backstop refused an allocation" in output


def test_thread_stacks_are_not_refused_near_the_limit() -> None:
    code, output, kills = _run("backstop_threads.py", "150")
    assert (0, 0) == (code, kills), output
    assert "threads: started=164 errors=0 refusals=0" in output, output


def test_stopping_gives_back_the_data_limit_and_plain_memory_errors() -> None:
    before = resource.getrlimit(resource.RLIMIT_DATA)
    start = (
        threading._start_joinable_thread
        if hasattr(threading, "_start_joinable_thread")
        else threading._start_new_thread
    )  # type: ignore[attr-defined]
    dog = mb.Watchdog(limit="64 GB", hard="90%", on_soft=None, backstop=True).start()
    try:
        capped = resource.getrlimit(resource.RLIMIT_DATA)[0]
        assert capped != before[0]
        assert capped > 0
        with pytest.raises(MemoryError) as info:
            bytearray(capped + (1 << 30))  # one mapping past the cap: refused
        assert isinstance(info.value, MemoryError)
        assert "MemoryError" == type(info.value).__name__
        assert type(pickle.loads(pickle.dumps(info.value))) is MemoryError
    finally:
        dog.stop()
    assert before == resource.getrlimit(resource.RLIMIT_DATA)
    with pytest.raises(MemoryError) as info:
        bytearray(1 << 62)
    assert type(info.value) is MemoryError
    now = (
        threading._start_joinable_thread
        if hasattr(threading, "_start_joinable_thread")
        else threading._start_new_thread
    )  # type: ignore[attr-defined]
    assert now is start
    assert dog.snapshot()["backstop"] is not None


def test_a_forked_child_has_no_cap() -> None:
    before = resource.getrlimit(resource.RLIMIT_DATA)
    dog = mb.Watchdog(limit="64 GB", hard="90%", on_soft=None, backstop=True).start()
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, repr(resource.getrlimit(resource.RLIMIT_DATA)).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        assert repr(before).encode() == os.read(read, 200)
    finally:
        dog.stop()


def test_on_by_default_at_the_kernels_limit_and_bad_values_are_one_line() -> None:
    """A limit the caller gives is the watchdog's; the backstop's line is the limit the OOM
    killer enforces (this process's cgroup, or the machine's RAM)."""
    given = mb.Watchdog(limit="1 GB", on_soft=None)
    assert given.backstop is not None
    assert given.backstop.kernel.kind in ("cgroup-v1", "cgroup-v2-max", "ram")
    assert given.backstop.kernel.bytes > given.limit.bytes or given.backstop.kernel.kind != "ram"
    assert mb.Watchdog(limit="1 GB", on_soft=None, backstop=False).backstop is None
    with pytest.raises(SizeError, match="backstop='yes' must be True, False or None") as info:
        mb.Watchdog(limit="1 GB", backstop="yes")  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    other = mb.Watchdog(limit="1 GB", pid=os.getpid(), backstop=True, on_soft=None)
    assert other.backstop is None  # another process's memory: no cap of ours applies


@pytest.mark.parametrize("asked", [[], ["on"]], ids=["default", "backstop=True"])
def test_a_program_that_peaks_under_the_limit_is_never_refused(asked: list[str]) -> None:
    """190 MiB held, then steps of 7.6 MiB to ~271 MiB of a 300 MiB group, ``hard`` at 85 %
    (255 MiB): the watchdog runs ``on_hard`` at the crossing, and the program runs to its end
    (a backstop at ``hard`` refused the step past 255 MiB)."""
    for _ in range(3):
        code, output, kills = _run("backstop_fits.py", *asked)
        assert (0, 0) == (code, kills), output
        assert "result: finished held=258 refusals=0 causes=threshold" in output, output


def test_the_backstops_cap_is_never_the_processes_limit(tmp_path: Path) -> None:
    """``memory_limit()`` (what recyclers and ``health()`` judge against) leaves membound's own
    data cap out: with a backstop in force it reports the limit it reported before."""
    before = mb.memory_limit()
    dog = mb.Watchdog(limit="64 GB", hard="90%", on_soft=None).start()
    try:
        assert dog.backstop is not None
        assert dog.backstop.cap_bytes is not None
        assert resource.getrlimit(resource.RLIMIT_DATA)[0] == dog.backstop.cap_bytes
        during = mb.memory_limit()
    finally:
        dog.stop()
    assert (before.bytes, before.kind) == (during.bytes, during.kind)
    assert "rlimit-data" != during.kind


def test_a_thread_whose_start_up_accounting_fails_at_the_cap_still_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Near the cap, reading the process's mappings in the new thread can itself raise
    # MemoryError; the thread must still run, or Thread.start() waits for it for ever.
    dog = mb.Watchdog(limit="64 GB", hard="90%", on_soft=None, backstop=True).start()
    try:
        known = {t.ident for t in threading.enumerate()}
        armed, failed = threading.Event(), threading.Event()
        real = backstop_module.data_and_anon

        def failing_in_a_new_thread() -> object:
            if armed.is_set() and threading.get_ident() not in known:  # in the new thread
                failed.set()
                raise MemoryError
            return real()

        monkeypatch.setattr(backstop_module, "data_and_anon", failing_in_a_new_thread)
        ran = threading.Event()

        def start_one() -> None:
            known.add(threading.get_ident())
            armed.set()
            threading.Thread(target=ran.set, daemon=True).start()

        starter = threading.Thread(target=start_one, daemon=True)
        starter.start()
        starter.join(10)
        assert failed.is_set()  # the failing reading did happen
        assert not starter.is_alive(), "Thread.start() never returned"
        assert ran.wait(10)
    finally:
        monkeypatch.undo()
        dog.stop()


def test_what_another_guarded_process_mapped_and_has_not_written_is_no_room() -> None:
    """Two processes, one 300 MiB group: one maps 150 MiB and writes it over a second (the
    group's usage shows only what is written so far); the other then asks for 150 MiB. Both
    fit the room the kernel shows, not together: the second is refused, nobody is killed."""
    with memory_cgroup(LIMIT) as group:
        argv = [sys.executable, str(APPS / "group_pair.py")]
        taker = subprocess.Popen(
            group.enter_argv([*argv, "taker"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs = [taker]
        try:
            assert taker.stdout is not None
            # The mapper starts once the taker's watchdog reads the group, however slowly a
            # loaded machine starts the taker.
            assert "ready" == taker.stdout.readline().strip()
            mapper = subprocess.Popen(
                group.enter_argv([*argv, "mapper"]), stdout=subprocess.PIPE, text=True
            )
            procs.append(mapper)
            assert mapper.stdout is not None
            assert taker.stdin is not None
            assert "mapped" == mapper.stdout.readline().strip()
            taker.stdin.write("go\n")
            taker.stdin.flush()
            taken, _ = taker.communicate(timeout=60)
            written, _ = mapper.communicate(timeout=60)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
        kills = group.oom_kills()
    assert 0 == kills, (written, taken)
    assert "result: written" in written, written
    assert "result: refused causes=backstop" in taken, taken


def test_a_reading_while_a_thread_starts_leaves_it_room_to_start() -> None:
    """A reading that renews the cap between the lift for a thread's start and the thread's
    first Python code already counts what the start mapped: taking the lift back after it put
    the cap below the data size, and a thread whose start-up then failed left
    ``Thread.start()`` waiting for ever (a refused ramp's next thread under a loaded suite)."""
    done = subprocess.run(
        [sys.executable, str(APPS / "backstop_thread_race.py")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = done.stdout + done.stderr
    assert 0 == done.returncode, output
    found = re.search(r"ran=(\w+) room=(-?\d+)", output)
    assert found is not None, output
    assert "True" == found[1], output
    assert int(found[2]) >= backstop_module.THREAD_START, output
    stale = re.search(r"stale room=(-?\d+)", output)
    assert stale is not None, output
    assert int(stale[1]) >= 8 << 20, output  # the start under way keeps its stack's room


def test_a_write_during_a_reading_is_not_taken_from_the_room_twice() -> None:
    """The program writes 40 MiB between the reading's look at its data size and at the
    group's usage (its thread lost the CPU there, as on a loaded machine): the cap that reading
    sets leaves the room the kernel has, not 40 MiB less (a program that peaked under its limit
    was refused then, 1 run in 10 with two busy loops beside it)."""
    code, output, kills = _run("backstop_reading_race.py")
    assert (0, 0) == (code, kills), output
    found = re.search(r"room ([\d.]+) cap ([\d.]+)", output)
    assert found is not None, output
    room, cap = float(found.group(1)), float(found.group(2))
    assert room - 4 <= cap <= room + 4, output


def test_a_crossing_of_hard_runs_the_action_before_the_backstop_reads_more() -> None:
    """The reading that crosses ``hard`` runs the hard action before it reads the group's
    other processes: every file it reads hands the GIL to a program that may hold it for the
    switch interval (a 1 MiB-piece ramp went 8-18 MiB past hard on a quiet machine). The next
    reading reads them as usual (so the count below sees what it should)."""
    with memory_cgroup(1 << 30) as group:
        done = group.run([sys.executable, str(APPS / "hard_first.py")])
    assert 0 == done.returncode, done.stdout + done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["backstop"], found
    assert "hard" == found["state"], found
    assert ["hard"] == found["actions"], found
    assert [] == [p for p in found["before_action"] if p.endswith("cgroup.procs")], found
    assert [p for p in found["next_reading"] if p.endswith("cgroup.procs")], found


def test_a_reading_whose_sizes_moved_never_lowers_the_cap() -> None:
    """A reading whose sizes moved while the usage was read (a crossing of ``hard``, or a ramp
    that never held still) counts the program's own writes twice: the cap it gives never
    falls below the last steady one's (a program that peaked at 271 of 300 MiB was refused
    at 252 MiB on a loaded machine). A steady reading lowers it as the room says."""
    kernel = mb.Watchdog(limit="1 GB", on_soft=None).backstop.kernel  # type: ignore[union-attr]
    backstop = backstop_module.Backstop(kernel, lambda: None, lambda: None)
    before = resource.getrlimit(resource.RLIMIT_DATA)
    assert backstop.arm()
    try:
        sizes = backstop.sizes()
        assert sizes is not None
        backstop.update((0, 800 << 20), sizes)
        wide = backstop.cap_bytes
        assert wide is not None
        assert wide >= sizes[0] + (800 << 20)
        backstop.update((0, 100 << 20), sizes, others_read=False, steady=False)
        assert wide == backstop.cap_bytes  # moved sizes: the steady cap stands
        backstop.update((0, 100 << 20), sizes)
        narrow = backstop.cap_bytes
        assert narrow is not None
        assert narrow < wide  # a steady reading lowers it
        assert narrow == resource.getrlimit(resource.RLIMIT_DATA)[0]
    finally:
        backstop.disarm()
    assert before == resource.getrlimit(resource.RLIMIT_DATA)
