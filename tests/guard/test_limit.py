"""``memory_limit()`` and the usage each limit counts: kernel file formats (cgroup v2 files as
the kernel writes them, in a tree of plain files), and real limits on real processes (a v1 cgroup
made for the test, rlimits)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from membound import SizeError
from membound._units import parse_duration
from membound.guard.limit import memory_limit
from membound.measure.cgroup.memory import (
    MemoryGroup,
    group_usage,
    limits,
    memory_room,
    oom_kills,
    parse_flat_keyed,
    parse_limit_value,
    parse_pressure,
    pressure,
)
from tests.guard.cgroup_helpers import memory_cgroup

# The kernel's own formats (Documentation/admin-guide/cgroup-v2.rst, a 6.x kernel).
V2_STAT = """anon 104857600
file 52428800
kernel 3145728
kernel_stack 98304
pagetables 409600
sec_pagetables 0
percpu 0
sock 0
vmalloc 0
shmem 10485760
zswap 0
zswapped 0
file_mapped 4194304
file_dirty 0
file_writeback 0
swapcached 0
anon_thp 0
inactive_anon 104857600
active_anon 0
inactive_file 41943040
active_file 10485760
unevictable 0
"""
V2_EVENTS = "low 0\nhigh 12\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n"
V2_PRESSURE = (
    "some avg10=1.50 avg60=0.25 avg300=0.05 total=123456\n"
    "full avg10=0.75 avg60=0.10 avg300=0.00 total=65432\n"
)


def _v2_tree(root: Path) -> MemoryGroup:
    """``root`` (the mount) / ``system.slice`` (memory.max 512 MiB) / ``app.service``
    (memory.max ``max``, memory.high 384 MiB, memory.low 64 MiB)."""
    parent = root / "system.slice"
    child = parent / "app.service"
    child.mkdir(parents=True)
    (parent / "memory.max").write_text(f"{512 << 20}\n")
    (parent / "memory.high").write_text("max\n")
    (child / "memory.max").write_text("max\n")
    (child / "memory.high").write_text(f"{384 << 20}\n")
    (child / "memory.low").write_text(f"{64 << 20}\n")
    (child / "memory.min").write_text(f"{32 << 20}\n")
    (child / "memory.current").write_text(f"{170 << 20}\n")
    (child / "memory.stat").write_text(V2_STAT)
    (child / "memory.events").write_text(V2_EVENTS)
    (child / "memory.pressure").write_text(V2_PRESSURE)
    return MemoryGroup(2, str(child), str(root))


def test_v2_limits_walk_up_and_never_take_low_or_min(tmp_path: Path) -> None:
    from membound.measure.cgroup.memory import _v2_limits

    group = _v2_tree(tmp_path)
    found = sorted((x.bytes, x.kind, os.path.basename(x.source)) for x in _v2_limits(group))
    assert [
        (384 << 20, "cgroup-v2-high", "memory.high"),
        (512 << 20, "cgroup-v2-max", "memory.max"),
    ] == found


def test_v2_usage_names_anonymous_memory_and_page_cache_apart(tmp_path: Path) -> None:
    usage = group_usage(_v2_tree(tmp_path))
    assert usage is not None
    assert 170 << 20 == usage.charged
    assert 100 << 20 == usage.anon
    assert 50 << 20 == usage.file
    assert 10 << 20 == usage.shmem
    # judged: the charge less the page cache reclaim can take back (file that is not shmem)
    assert (170 << 20) - ((50 << 20) - (10 << 20)) == usage.judged


def test_v2_events_and_pressure(tmp_path: Path) -> None:
    group = _v2_tree(tmp_path)
    assert 1 == oom_kills(group)
    psi = pressure(group)
    assert psi is not None
    assert {"avg10": 1.5, "avg60": 0.25, "avg300": 0.05, "total": 123456.0} == psi["some"]
    assert 0.75 == psi["full"]["avg10"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max\n", None),
        ("314572800\n", 314572800),
        ("9223372036854771712\n", None),  # v1's "no limit"
        ("", None),
        (None, None),
        ("-1\n", None),
        ("garbage", None),
    ],
)
def test_limit_values(text: str | None, expected: int | None) -> None:
    assert expected == parse_limit_value(text)


_STAT_NAMES = ["rss", "total_rss", "rss_huge", "total_rss_huge", "cache", "total_cache"]
_STAT_NAMES += ["shmem", "total_shmem", "anon", "file", "anon_thp", "xrss", "rssx", "hierarchical"]


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["", " ", "\t"]),
            st.sampled_from(_STAT_NAMES),
            st.sampled_from([" ", "  ", "\t", " \t"]),
            st.one_of(
                st.integers(-(1 << 64), 1 << 64).map(str),
                st.sampled_from(["x", "1.5", "", "12 34", "-", "7x"]),
            ),
            st.sampled_from(["", " ", "\t"]),
        ),
        max_size=40,
    ),
    keys=st.lists(st.sampled_from(_STAT_NAMES), min_size=1, max_size=6, unique=True),
)
def test_reading_some_keys_gives_what_reading_all_gives_for_them(
    lines: list[tuple[str, str, str, str, str]], keys: list[str]
) -> None:
    """The watchdog reads three keys of ``memory.stat`` with one pattern: on any text in the
    kernel's format (keys that are prefixes of others, repeated keys, odd values, blanks), the
    same values as the full parse."""
    text = "".join("".join(parts) + "\n" for parts in lines)
    full = parse_flat_keyed(text)
    assert {k: v for k, v in full.items() if k in keys} == parse_flat_keyed(text, tuple(keys))


def test_flat_keyed_and_pressure_survive_odd_lines() -> None:
    assert {"a": 1, "c": -2} == parse_flat_keyed("a 1\nb\nc -2\nd x\n\n")
    assert parse_pressure("") is None
    assert parse_pressure(None) is None
    assert {"some": {"avg10": 2.0}} == parse_pressure("some avg10=2.00 bad=x\nother 1\n")


def _limit_in_child(argv_prefix: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    code = (
        "import json, membound as mb; lim = mb.memory_limit(); u = lim.usage();"
        "print(json.dumps({'bytes': lim.bytes, 'kind': lim.kind, 'source': lim.source,"
        " 'judged': u.judged, 'anon': u.anon}))"
    )
    done = subprocess.run(
        [*argv_prefix, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return dict(json.loads(done.stdout))


def test_a_process_in_a_limited_cgroup_reads_that_limit() -> None:
    with memory_cgroup(300 << 20) as group:
        found = _limit_in_child(group.enter_argv([]))
    assert 300 << 20 == found["bytes"]
    assert found["kind"] in ("cgroup-v1", "cgroup-v2-max")
    assert str(found["source"]).startswith(group.path)
    assert 0 < int(found["judged"]) < 300 << 20  # the group's usage, not the host's


def test_a_limit_above_the_group_is_the_tightest_one() -> None:
    with memory_cgroup(200 << 20) as outer:
        inner = os.path.join(outer.path, "inner")
        os.mkdir(inner)
        try:
            name = "memory.max" if outer.version == 2 else "memory.limit_in_bytes"
            with open(os.path.join(inner, name), "w") as f:
                f.write(str(400 << 20))
            procs = os.path.join(inner, "cgroup.procs")
            found = _limit_in_child(["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh"])
        finally:
            outer.remove_child("inner")
    assert 200 << 20 == found["bytes"]
    assert str(found["source"]).startswith(outer.path)


def test_the_room_left_is_the_groups_not_the_machines() -> None:
    code = (
        "import json; from membound.measure.cgroup.memory import memory_room; "
        "room, limit = memory_room(); "
        "print(json.dumps([room, limit and limit.source]))"
    )
    with memory_cgroup(300 << 20) as group:
        done = group.run([sys.executable, "-c", code], check=True)
    room, source = json.loads(done.stdout)
    assert str(source).startswith(group.path), done.stderr
    assert 200 << 20 < room < 300 << 20  # the limit less the interpreter's own memory
    machine = memory_room()
    assert machine is not None
    assert machine[0] > 300 << 20  # this box: 24 GiB, no limit around the suite's workers


def test_rlimit_as_is_a_limit_when_it_is_the_tightest() -> None:
    cap = 3 << 30
    found = _limit_in_child(["prlimit", f"--as={cap}", "--"])
    assert cap == found["bytes"]
    assert "rlimit-as" == found["kind"]
    assert "RLIMIT_AS (soft)" == found["source"]


def test_ram_is_the_last_resort_and_another_pid_can_be_read() -> None:
    found = limits()
    assert "ram" == found[-1].kind
    assert found[-1].bytes > 0
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        other = memory_limit(child.pid)
        assert other.pid == child.pid
        usage = other.usage()
        assert usage is not None
        assert usage.judged > 0
    finally:
        child.kill()
        child.wait()


def test_a_missing_pid_is_a_clear_error() -> None:
    from membound import MemboundError

    with pytest.raises(MemboundError, match="no process with pid"):
        memory_limit(2**22 + 12345)


@pytest.mark.parametrize(("text", "seconds"), [("30 min", 1800.0), ("2 min", 120.0), (5, 5.0)])
def test_durations(text: str | int, seconds: float) -> None:
    assert seconds == parse_duration(text)


@pytest.mark.parametrize("bad", ["0", "-5 s", "soon", "1e400", True, "400 days"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(SizeError, match="not a usable duration"):
        parse_duration(bad)  # type: ignore[arg-type]


def test_rlimit_helpers_agree_with_resource() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    kinds = {x.kind for x in limits()}
    assert ("rlimit-as" in kinds) == (soft != resource.RLIM_INFINITY)


def test_another_process_in_a_cgroup_reads_nothing_once_it_is_gone() -> None:
    with memory_cgroup(256 << 20) as group:
        child = subprocess.Popen(
            group.enter_argv([sys.executable, "-c", "import time; time.sleep(1)"])
        )
        try:
            time.sleep(0.3)
            limit = memory_limit(child.pid)
            assert str(limit.source).startswith(group.path)
            assert limit.usage() is not None
            child.wait(timeout=20)
            assert limit.usage() is None  # gone (the group lives on, empty)
        finally:
            child.kill()
            child.wait()


def test_two_pools_of_one_name_are_both_reported() -> None:
    import membound as mb
    from membound.guard.registry import pool_stats

    a = mb.BoundedPool(dict, name="same-name")
    b = mb.BoundedPool(list, name="same-name")
    with a.acquire(), a.acquire():
        pass
    stats = pool_stats()
    assert 2 == stats["same-name"]["created"]
    assert 0 == stats[f"same-name#{b.number}"]["created"]


def test_a_namespaced_container_root_is_its_own_group(tmp_path: Path) -> None:
    """Under a cgroup namespace (Docker's default on cgroup v2) the process sits at ``/`` of a
    mount whose root is the container's own group, which holds the container's limit."""
    from membound.measure.cgroup.memory import _v2_has_memory, _v2_limits

    (tmp_path / "memory.max").write_text(f"{512 << 20}\n")
    (tmp_path / "memory.current").write_text(f"{100 << 20}\n")
    root = MemoryGroup(2, str(tmp_path), str(tmp_path))
    assert _v2_has_memory(str(tmp_path), str(tmp_path))
    assert [(512 << 20, "cgroup-v2-max")] == [(x.bytes, x.kind) for x in _v2_limits(root)]


def test_a_forked_child_reads_its_own_memory_not_the_parents() -> None:
    code = """
import os, sys, time
import membound as mb
dog = mb.Watchdog(limit="20 GB", on_soft=None, interval=0.02).start()
limit = dog.limit
before = limit.usage().judged
pid = os.fork()
if pid == 0:
    held = b"\\x01" * (150 << 20)
    ok = limit.usage().judged - before > 100 << 20       # the child's own /proc/self
    ok = ok and mb.guard.watchdog.current() is None       # the parent's watchdog is not ours
    again = mb.Watchdog(limit="20 GB", on_soft=None, interval=0.02).start()
    time.sleep(0.1)
    ok = ok and again.readings > 1 and mb.health()["watchdog"]["running"]
    again.stop()
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
dog.stop()
sys.exit(os.waitstatus_to_exitcode(status))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert 0 == done.returncode, done.stderr
