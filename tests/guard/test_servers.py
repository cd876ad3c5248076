"""The guard inside real servers on 127.0.0.1, with bounded request loops: gunicorn recycles a
leaking worker gracefully (every response 200, no request lost, at most ⌈workers/4⌉ recycling at
once) and serves /health; uvicorn serves /health and sheds load with 503 + Retry-After."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

APPS = str(Path(__file__).parent / "apps")
HARD_MIB = 100
REQUESTS = 400
ROOT = str(Path(__file__).parents[2])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@contextlib.contextmanager
def _server(argv: list[str], port: int, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([APPS, ROOT])}
    server = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if server.poll() is not None:
                pytest.fail(f"the server exited: {server.stdout.read() if server.stdout else ''}")
            time.sleep(0.05)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_gunicorn_recycles_a_leaking_worker_without_dropping_a_request(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(
        "from membound.guard.gunicorn import Recycler\n"
        f"recycler = Recycler(hard='{HARD_MIB} MiB', slot_dir={str(tmp_path)!r})\n"
        "post_request = recycler.post_request\n"
        "on_exit = recycler.on_exit\n"
        "control_socket_disable = True\n"  # gunicorn 27's socket has one fixed path
    )
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "-c",
        str(config),
        "--graceful-timeout",
        "10",
        "leaky_wsgi:application",
    ]
    statuses: list[int] = []
    pids: list[int] = []
    kept: list[int] = []
    with _server(argv, port, tmp_path) as server:
        first = _get(f"http://127.0.0.1:{port}/health")
        for i in range(REQUESTS):  # bounded: each request leaks 1 MiB in its worker
            status, _, body = _get(f"http://127.0.0.1:{port}/leak")
            statuses.append(status)
            if status == 200:
                answer = json.loads(body)
                pids.append(answer["pid"])
                kept.append(answer["kept_mib"])
            # Paced like a modest real load: a recycling worker holds its slot until its process
            # has exited, which takes a few hundred ms on a loaded machine, while the other
            # worker takes every request; unpaced, that was once 145 requests (145 MiB).
            time.sleep(0.005)
            if i % 10 == 0:
                health_status, _, health_body = _get(f"http://127.0.0.1:{port}/health")
                assert health_status in (200, 503)
                assert json.loads(health_body)["limit_bytes"] > 0
        server.send_signal(signal.SIGTERM)
        log = server.communicate(timeout=30)[0]
    assert 200 == first[0]
    report = json.loads(first[2])
    assert {"status", "rss_bytes", "limit_bytes", "headroom_bytes", "watchdog"} <= set(report)
    assert [200] * REQUESTS == statuses, log  # every request answered
    assert len(set(pids)) >= 3, log  # workers were replaced
    recycled_at = [float(x) for x in re.findall(r"recycles after this request: ([0-9.]+) MiB", log)]
    assert len(recycled_at) >= 2, log
    # current memory, judged after each request: never before hard; past it only while the
    # other worker's recycling (one at a time) is under way
    assert all(at >= HARD_MIB for at in recycled_at), log
    # without recycling the two workers would keep about REQUESTS / 2 MiB each
    assert max(kept) < REQUESTS // 2 - 20, log
    assert "Booting worker" in log


def test_uvicorn_serves_health_and_sheds_load_when_work_is_refused(tmp_path: Path) -> None:
    port = _free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "health_asgi:application",
    ]
    with _server(argv, port, tmp_path):
        ok = _get(f"http://127.0.0.1:{port}/")
        health_ok = _get(f"http://127.0.0.1:{port}/health")
        _get(f"http://127.0.0.1:{port}/refuse")
        shed = _get(f"http://127.0.0.1:{port}/")
        health_refusing = _get(f"http://127.0.0.1:{port}/health")
    assert 200 == ok[0]
    assert 200 == health_ok[0]
    assert "ok" == json.loads(health_ok[2])["status"]
    assert 503 == shed[0]
    assert "5" == {k.lower(): v for k, v in shed[1].items()}["retry-after"]
    assert 503 == health_refusing[0]
    assert json.loads(health_refusing[2])["refusing"] is True
