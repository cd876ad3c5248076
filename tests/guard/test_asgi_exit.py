"""``actions.exit_gracefully`` in real servers on 127.0.0.1: under uvicorn the requests in flight
finish (no 500: ``SystemExit`` raised in the event loop used to turn them into 500s) and the
process exits with the status; under ``uvicorn --workers`` a load sees only 200 and 503 while a
worker is replaced; a gunicorn gthread worker finishes its requests in flight; a plain script
still gets ``SystemExit`` in its main thread."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.guard.server_helpers import Reply, get, load, python, serve, wait_for_line
from tests.ports import free_port

SLOW_S = 1.5


def _in_flight(url: str, count: int) -> tuple[list[Reply], list[threading.Thread]]:
    replies: list[Reply] = []
    threads = [threading.Thread(target=lambda: replies.append(get(url))) for _ in range(count)]
    for thread in threads:
        thread.start()
    return replies, threads


def test_exit_gracefully_under_uvicorn_lets_requests_in_flight_finish(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_ON_HARD": "exit", "MB_TEST_HEADROOM_MIB": "96"}
    argv = python("uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    with serve([*argv, "guarded_asgi:application"], port, tmp_path, env) as server:
        replies, threads = _in_flight(f"http://127.0.0.1:{port}/slow?{SLOW_S}", 6)
        time.sleep(0.3)  # the slow requests are in flight
        grow = get(f"http://127.0.0.1:{port}/grow?64")  # past hard: the watchdog acts
        for thread in threads:
            thread.join()
        status = server.wait_exit(timeout=30)
        after = get(f"http://127.0.0.1:{port}/")
    log = server.log
    assert [200] * 6 == [r.status for r in replies], log  # in flight: answered, not 500
    assert all(r.seconds >= SLOW_S for r in replies)  # ... by the app, after their sleep
    assert 200 == grow.status, log
    assert 75 == status, log  # the status asked for, after uvicorn's own shutdown
    assert "lifespan shutdown" in log
    assert "Traceback" not in log
    assert isinstance(after.status, str)  # gone: refused, never a 500


def test_exit_gracefully_under_uvicorn_workers_sheds_but_never_fails(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_ON_HARD": "exit", "MB_TEST_HEADROOM_MIB": "96"}
    argv = python("uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port))
    argv += ["--no-access-log", "guarded_asgi:application"]
    with serve(argv, port, tmp_path, env) as server:
        stop = threading.Event()
        background: list[Reply] = []
        loader = threading.Thread(
            target=lambda: background.extend(
                load(f"http://127.0.0.1:{port}/slow?0.5", 400, threads=8, stop=stop)
            )
        )
        loader.start()
        time.sleep(1.0)  # about four requests in flight in each worker from now on
        grow = get(f"http://127.0.0.1:{port}/grow?64")
        replaced = wait_for_line(server, rb"Child process \[\d+\] died", timeout=20)
        time.sleep(2.0)  # the load goes on while the fresh worker starts
        stop.set()
        loader.join()
        server.stop()
    log = server.log
    statuses = [r.status for r in background]
    assert replaced, log
    assert 200 == grow.status
    assert set(statuses) <= {200, 503}, log  # 503 only from the worker refusing; no 500, none lost
    assert statuses.count(200) > len(statuses) // 2
    assert all(r.headers.get("retry-after") == "5" for r in background if r.status == 503)
    assert "Traceback" not in log


def test_exit_gracefully_in_a_gunicorn_worker_finishes_its_request(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_ON_HARD": "exit", "MB_TEST_HEADROOM_MIB": "96", "MB_TEST_RECYCLER": "0"}
    conf = str(Path(__file__).parent / "apps" / "guarded_conf.py")
    argv = python("gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "-c", conf)
    with serve([*argv, "guarded_wsgi:application"], port, tmp_path, env) as server:
        stop = threading.Event()
        background: list[Reply] = []
        loader = threading.Thread(
            target=lambda: background.extend(
                load(f"http://127.0.0.1:{port}/slow?0.1", 400, threads=4, stop=stop)
            )
        )
        loader.start()
        time.sleep(1.0)  # both workers busy, their watchdogs started
        # the crossing happens inside this request: its worker must still answer it
        grows = [get(f"http://127.0.0.1:{port}/grow?64") for _ in range(2)]
        exited = wait_for_line(server, rb"Worker exiting", timeout=20)
        time.sleep(1.0)
        stop.set()
        loader.join()
        server.stop()
    log = server.log
    assert exited, log
    assert [200, 200] == [g.status for g in grows], log
    statuses = [r.status for r in background]
    assert set(statuses) <= {200, 503}, log  # no 500, none lost
    assert statuses.count(200) > len(statuses) // 2
    assert "Traceback" not in log


def test_exit_gracefully_in_a_plain_script_raises_system_exit_in_the_main_thread() -> None:
    script = """
import time
from membound.guard import actions
from membound.guard.watchdog.core import Watchdog
from membound.measure.cgroup.memory import process_usage
base = process_usage().judged
dog = Watchdog(limit=base + (256 << 20), soft=base + (32 << 20), hard=base + (64 << 20),
               on_soft=None, on_hard=actions.exit_gracefully(status=75, grace=5)).start()
kept = []
try:
    for _ in range(200):
        kept.append(b"x" * (1 << 20))
        time.sleep(0.01)
    print("never stopped", flush=True)
finally:
    print("finally ran", flush=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert 75 == done.returncode, done.stderr
    assert "finally ran" in done.stdout
    assert "never stopped" not in done.stdout
