"""uvicorn workers recycled on their current memory, in a real memory cgroup, with real servers
on 127.0.0.1 and bounded request loops: ``uvicorn --workers`` with ``ASGIRecycler`` in the app,
and gunicorn's ``UvicornWorker`` with ``GunicornRecycler.post_worker_init`` wrapping it. A 1 MiB
leak per request: every response 200, none lost, no OOM kill, workers replaced, at most
⌈workers/4⌉ recycling at once; a worker that boots above ``hard`` is reported once and not
recycled; a single process with no supervisor is not stopped."""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from membound.guard.recycle.lasting import LastingFloor
from membound.guard.recycle.policy import Policy
from membound.guard.slots import release_slot, replaced, take_slot
from tests.guard.cgroup_helpers import memory_cgroup
from tests.guard.server_helpers import Reply, load, python, serve
from tests.ports import free_port

MiB = 1 << 20
WORKERS = 3
HARD_MIB = 72
#: Without recycling the leak alone (400 MiB) passes the limit: every request must be served.
LIMIT_MIB = 384
REQUESTS = 400


def _served(replies: list[Reply]) -> tuple[list[int | str], set[object], float]:
    statuses = [r.status for r in replies]
    pids = {r.body.get("pid") for r in replies if r.status == 200}
    kept = max(float(str(r.body.get("kept_mib", 0))) for r in replies if r.status == 200)
    return statuses, pids, kept


def _check_recycled(replies: list[Reply], log: str, recycled: list[int], most: int) -> None:
    statuses, pids, kept = _served(replies)
    assert [200] * REQUESTS == statuses, log  # every request answered, none lost, no 500
    assert len(recycled) >= WORKERS, log  # workers recycled ...
    assert len(pids) >= WORKERS + 2, log  # ... and replaced by fresh ones that served
    assert most <= 1, log  # ⌈3/4⌉ = 1 at once
    # no worker kept the leak: without recycling they would share all 400 MiB of it
    assert kept < REQUESTS / 2, log
    at = [float(x) for x in re.findall(r"recycles after this request: ([0-9.]+) MiB", log)]
    assert all(a >= HARD_MIB * 0.9 for a in at), log  # never before its jittered point


def test_uvicorn_workers_recycle_a_leak_without_losing_a_request(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "MB_TEST_GUARD": "recycle",
        "MB_TEST_HARD": f"{HARD_MIB} MiB",
        "MB_TEST_SLOT_DIR": str(tmp_path),
    }
    argv = python("uvicorn", "--workers", str(WORKERS), "--host", "127.0.0.1")
    argv += ["--port", str(port), "--no-access-log", "guarded_asgi:application"]
    with memory_cgroup(LIMIT_MIB * MiB) as group:
        kills = group.oom_kills()
        with serve(argv, port, tmp_path, env, group) as server:
            server.watch_recycling()
            # Paced like a modest real load: while one worker recycles, the others take its
            # share and keep growing until their turn.
            replies = load(f"http://127.0.0.1:{port}/leak", REQUESTS, threads=3, pause=0.01)
            recycled, most = server.recycled_pids(), server.most_recycling_at_once
            server.stop()
        assert kills == group.oom_kills(), server.log  # no OOM kill
    _check_recycled(replies, server.log, recycled, most)
    assert len(re.findall(r"lifespan shutdown", server.log)) >= len(recycled)  # drained


def test_gunicorn_uvicorn_worker_recycles_through_post_worker_init(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "MB_TEST_GUARD": "health",  # GunicornRecycler's post_worker_init wraps it
        "MB_TEST_HARD": f"{HARD_MIB} MiB",
        "MB_TEST_SLOT_DIR": str(tmp_path),
    }
    argv = python("gunicorn", "-w", str(WORKERS), "-k", "uvicorn.workers.UvicornWorker")
    argv += [
        "-b",
        f"127.0.0.1:{port}",
        "-c",
        str(Path(__file__).parent / "apps" / "guarded_conf.py"),
    ]
    argv += ["guarded_asgi:application"]
    with memory_cgroup(LIMIT_MIB * MiB) as group:
        kills = group.oom_kills()
        with serve(argv, port, tmp_path, env, group) as server:
            server.watch_recycling()
            replies = load(f"http://127.0.0.1:{port}/leak", REQUESTS, threads=3, pause=0.01)
            recycled, most = server.recycled_pids(), server.most_recycling_at_once
            server.stop()
        assert kills == group.oom_kills(), server.log
    _check_recycled(replies, server.log, recycled, most)
    assert "Traceback" not in server.log


def test_a_worker_that_boots_above_hard_is_reported_once_and_not_recycled(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_GUARD": "recycle", "MB_TEST_HARD": "8 MiB", "MB_TEST_SLOT_DIR": str(tmp_path)}
    argv = python("uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port))
    argv += ["--no-access-log", "guarded_asgi:application"]
    with serve(argv, port, tmp_path, env) as server:
        replies = load(f"http://127.0.0.1:{port}/", 60, threads=2)
        server.stop()
    assert [200] * 60 == [r.status for r in replies], server.log
    assert 1 == server.log.count("at or above hard 8.0 MiB"), server.log  # once per server
    assert "recycles after this request" not in server.log
    assert len({r.body["pid"] for r in replies}) <= 2  # no worker was replaced


def test_a_single_uvicorn_process_is_not_stopped_without_a_supervisor(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_GUARD": "recycle", "MB_TEST_HARD": "48 MiB", "MB_TEST_SLOT_DIR": str(tmp_path)}
    argv = python("uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    with serve([*argv, "guarded_asgi:application"], port, tmp_path, env) as server:
        replies = load(f"http://127.0.0.1:{port}/leak", 40)
        alive = server.process.poll() is None
        server.stop()
    assert [200] * 40 == [r.status for r in replies], server.log
    assert alive
    assert 1 == len({r.body["pid"] for r in replies})
    assert 1 == server.log.count("nothing here starts a fresh process"), server.log


def _try_slot(folder: str, supervisor: int, slots: int, hold: Any, results: Any) -> None:
    results.put(take_slot(folder, supervisor, slots))
    hold.wait(10)  # every process holds what it took until all have tried


def test_slots_let_at_most_n_workers_recycle_and_wait_for_replacements(tmp_path: Path) -> None:
    # The supervisor must be a live process: folders of dead supervisors are removed as stale,
    # which would race with the workers taking their slots.
    supervisor = os.getpid()
    context = multiprocessing.get_context("fork")
    hold, results = context.Event(), context.Queue()
    workers = [
        context.Process(target=_try_slot, args=(str(tmp_path), supervisor, 2, hold, results))
        for _ in range(5)
    ]
    for worker in workers:
        worker.start()
    taken = sorted(results.get(timeout=20) for _ in workers)
    hold.set()
    for worker in workers:
        worker.join(10)
    assert [False, False, False, True, True] == taken  # two slots: two of five
    # both holders are gone, but no replacement has started serving yet
    assert not take_slot(str(tmp_path), supervisor, 2)
    # a worker already past hard does not wait for replacements
    assert take_slot(str(tmp_path), supervisor, 2, wait_for_replacement=False)
    release_slot()
    assert replaced(str(tmp_path), supervisor, 2)  # a fresh worker serves: one slot is free again
    assert take_slot(str(tmp_path), supervisor, 2)
    release_slot()


def test_each_worker_draws_its_point_and_one_that_boots_above_hard_is_exempt(
    tmp_path: Path,
) -> None:
    policy = Policy(hard="100 MiB", jitter=0.2, slot_dir=str(tmp_path))
    point = policy.point_bytes(1)
    assert 80 * MiB <= point <= 100 * MiB
    assert "keep" == policy.judge(point - 1, 1, 4243).verdict
    booted = Policy(hard="10 MiB", slot_dir=str(tmp_path))
    message = booted.boot(12 * MiB, 2, 4243)
    assert message is not None
    assert "at or above hard 10.0 MiB" in message
    assert "exempt" == booted.judge(500 * MiB, 2, 4243).verdict  # never recycled for memory
    again = Policy(hard="10 MiB", slot_dir=str(tmp_path))
    assert again.boot(12 * MiB, 2, 4243) is None  # reported once per server
    assert "exempt" == again.judge(500 * MiB, 2, 4243).verdict


def test_other_requests_temporaries_are_not_a_workers_lasting_memory() -> None:
    """Readings taken while another request holds 200 MiB for 1.2 s (a busy worker's
    neighbours; shorter than the 2 s its lasting memory spans) never put the worker above its
    point; memory a request keeps does."""
    script = Path(__file__).parent / "apps" / "asgi_temporaries.py"
    done = subprocess.run(
        [sys.executable, str(script), "1.2"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == done.returncode, done.stderr
    assert [
        "while another request holds a temporary: 0",
        "after it ended: 0",
        "after a request kept memory: 1",
    ] == done.stdout.splitlines(), done.stderr


def test_the_lasting_floor_skips_temporaries_and_follows_what_is_kept() -> None:
    floor = LastingFloor(span=2.0, buckets=4)
    for tick in range(10):  # 1 s of readings, 100 MiB kept, a 150 MiB temporary at 0.5 s
        floor.add(100.0 + tick / 10, (250 if tick == 5 else 100) * MiB)
    assert floor.floor(100.9) is None  # not yet two seconds of readings: not judged
    for tick in range(10, 30):  # the worker keeps 1 MiB more every 0.1 s from now on
        floor.add(100.0 + tick / 10, (100 + tick - 9) * MiB + (150 * MiB if tick == 20 else 0))
    low = floor.floor(102.9)
    assert low is not None
    # the lowest of the last two seconds: what was kept then, never the temporary
    assert 101 * MiB <= low <= 106 * MiB
    floor.add(110.0, 300 * MiB)  # after an idle stretch one reading says nothing yet
    assert floor.floor(110.0) is None
