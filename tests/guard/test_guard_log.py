"""The guard's log lines people can read (issue 36): one line per event per service, with the
pid and the time, sizes in MiB. Every worker of a gunicorn server runs its own watchdog on the
same cgroup, so every one of them sees the group cross ``soft``: it is said once, by the first
worker that sees it, not once per worker (133 lines in 34 s)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from membound.guard.limit import Limit
from membound.guard.serving import Supervisor
from membound.guard.slots import Setting, use_setting
from membound.guard.watchdog import actions
from membound.guard.watchdog.core import Watchdog
from membound.guard.watchdog.event import WatchdogEvent
from membound.guard.watchdog.eventlog import SAME_EVENT_S, first_in_service
from membound.measure.cgroup.memory import MemoryGroup, process_usage
from tests.guard.cgroup_helpers import MemoryCgroup, memory_cgroup
from tests.guard.server_helpers import get, python, serve
from tests.ports import free_port

MIB = 1 << 20
CONF = str(Path(__file__).parent / "apps" / "guarded_conf.py")
#: An event line: the time, the pid, then what happened, in MiB.
LINE = re.compile(
    r"membound guard: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d pid (\d+): (soft|hard|recover): "
)


def test_a_group_crossing_is_logged_once_per_service(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_GUARD": "full", "MB_TEST_RECYCLER": "0", "MB_TEST_SLOT_DIR": str(tmp_path)}
    argv = python("gunicorn", "-w", "3", "-b", f"127.0.0.1:{port}", "-c", CONF)
    with (
        memory_cgroup(600 * MIB) as group,
        serve([*argv, "guarded_wsgi:application"], port, tmp_path, env, group=group) as server,
    ):
        base = f"http://127.0.0.1:{port}"
        for _ in range(12):  # every worker has served, and started its watchdog
            assert 200 == get(f"{base}/").status
        # between soft (480 MiB) and hard (540 MiB): every worker's watchdog sees soft. Grown
        # 20 MiB at a time while the group's usage, read again before each step, leaves room
        # for it below 510 MiB (one reading up front, then a count of steps, overshot to hard
        # on a loaded run: the usage moves by more than the steps).
        for _ in range(30):
            usage = int(get(f"{base}/health").body["usage_bytes"])  # type: ignore[call-overload]
            if usage + 20 * MIB > 510 * MIB:
                break
            assert 200 == get(f"{base}/grow?20").status
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reports = [get(f"{base}/health").body for _ in range(9)]
            if all(r.get("state") == "soft" for r in reports):
                break
            time.sleep(0.1)
        time.sleep(1)  # every watchdog has read the group by now (they read every 0.1 s)
        server.stop()
        log = server.log
        assert 0 == group.oom_kills()
    assert all(r["state"] == "soft" for r in reports), reports
    said = [line for line in log.splitlines() if "membound guard" in line]
    events = [m for line in said if (m := LINE.search(line))]
    soft = [m for m in events if m.group(2) == "soft"]
    assert 1 == len(soft), "\n".join(said)
    line = soft[0].string
    assert re.search(r"soft: \d+\.\d MiB of 600\.0 MiB", line), line
    assert group.path in line, line  # whose memory it is: the group's
    assert not [x for x in said if re.search(r"\d{5,} bytes", x)], said  # no raw byte counts


def test_the_soft_action_says_its_pid_and_mib(caplog: pytest.LogCaptureFixture) -> None:
    usage = process_usage()
    assert usage is not None
    dog = Watchdog(limit=usage.judged * 4, soft="5%", hard="90%", recover="2%")
    event = dog._event("soft", "ok", usage.judged, dog.soft_bytes)
    with caplog.at_level(logging.INFO, logger="membound.guard"):
        actions.free_memory(event)
    (record,) = [r for r in caplog.records if "collected" in r.getMessage()]
    message = record.getMessage()
    assert re.search(r"^membound guard: \S+ \S+ pid \d+: ", message), message
    assert re.search(r"RSS \d+\.\d MiB → \d+\.\d MiB", message), message
    assert "bytes" not in message


def test_a_claim_made_while_this_worker_waited_for_the_lock_silences_it(tmp_path: Path) -> None:
    """Two workers read the clock, one claims the event first: the other, whose reading came
    a moment before that claim, is the second to say it, not the first (both said it)."""
    use_setting(Setting(slot_dir=str(tmp_path)))
    service = Supervisor("gunicorn", 4242, 3)
    event = WatchdogEvent("soft", "soft", "ok", 500 * MIB, 600 * MIB, 480 * MIB, 0.0, group="/g")
    try:
        assert first_in_service(event, now=1000.0, service=service)
        assert not first_in_service(event, now=999.99, service=service)  # read before the claim
        assert not first_in_service(event, now=1000.0 + SAME_EVENT_S / 2, service=service)
        assert first_in_service(event, now=1000.0 + 2 * SAME_EVENT_S, service=service)
    finally:
        use_setting(Setting())


@contextlib.contextmanager
def _holding_300_mib(group: MemoryCgroup) -> Iterator[None]:
    """Another process of ``group`` holding 300 MiB written, for the time of the block."""
    code = (
        "import sys, time\n"
        "block = bytearray(b'\\x01') * (300 << 20)\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        group.enter_argv([sys.executable, "-c", code]), stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert "written" == holder.stdout.readline().strip()
        yield
    finally:
        holder.kill()
        holder.wait()


def test_a_group_others_already_hold_past_hard_is_said_with_pid_and_time() -> None:
    """A watchdog started where the group's other processes already hold ``hard`` says so
    once, as every line of the guard does: when, which process, sizes in MiB."""
    watcher_code = (
        "import logging, os\n"
        "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
        "from membound.guard.watchdog.core import Watchdog\n"
        "print('pid', os.getpid(), flush=True)\n"
        "with Watchdog(hard='100 MiB', on_soft=None, backstop=False):\n"
        "    pass\n"
    )
    with memory_cgroup(512 * MIB) as group, _holding_300_mib(group):
        watcher = group.run([sys.executable, "-c", watcher_code], timeout=120)
    assert 0 == watcher.returncode, watcher.stderr
    pid = int(watcher.stdout.split()[1])
    said = [line for line in watcher.stderr.splitlines() if "already hold" in line]
    assert 1 == len(said), watcher.stderr
    assert re.match(
        rf"membound guard: \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d pid {pid}: the other "
        r"processes in this cgroup already hold \d+\.\d MiB of its 512\.0 MiB limit",
        said[0],
    ), said[0]


def test_a_group_watched_from_outside_is_all_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """A watchdog given the limit of a group its process is not in: everything the group holds
    is the others' (this process's own memory is charged elsewhere, not subtracted)."""
    with memory_cgroup(512 * MIB) as group:
        if group.version != 1:
            pytest.skip("the group's limit is built for cgroup v1 here")
        memory = MemoryGroup(1, group.path, os.path.dirname(group.path))
        limit = Limit(512 * MIB, group.file("memory.limit_in_bytes"), "cgroup-v1", group=memory)
        with (
            _holding_300_mib(group),
            caplog.at_level(logging.WARNING),
            Watchdog(limit=limit, hard="100 MiB", on_soft=None, backstop=False),
        ):
            pass
    said = [r.getMessage() for r in caplog.records if "already hold" in r.getMessage()]
    assert 1 == len(said), caplog.text
    held = re.search(r"already hold (\d+\.\d) MiB", said[0])
    assert held is not None, said[0]
    assert float(held.group(1)) >= 300.0  # the holder's block at least, nothing taken off
