"""Real servers on 127.0.0.1 for the guard's tests: start one (in a memory cgroup when asked),
read its output as it comes with the time each line came, send bounded request loops, and
watch how many workers are recycling at once. Every process started is killed afterwards
(SIGTERM to its session, then SIGKILL to everything carrying the run's tag)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.guard.cgroup_helpers import MemoryCgroup
from tests.processes import kill_tagged, new_tag, tagged_env

APPS = str(Path(__file__).parent / "apps")
ROOT = str(Path(__file__).parents[2])
#: The checkout's own source, first: the servers run the code under test, whichever membound
#: the interpreter has installed.
SRC = str(Path(__file__).parents[2] / "src")
RECYCLES = re.compile(rb"worker (\d+) recycles after this request")
#: A uvicorn worker's shutdown is over (``guarded_asgi.py`` prints it): it serves no more.
STOPPED = re.compile(rb"lifespan shutdown (\d+)")


@dataclass
class Reply:
    """One request's outcome: an HTTP status, or the error that came instead."""

    status: int | str
    body: dict[str, object] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    seconds: float = 0.0


def get(url: str, timeout: float = 30.0, method: str = "GET") -> Reply:
    """GET ``url`` (or another ``method``, with an empty body); a connection error is a reply
    too (its ``status`` is the error's repr)."""
    started = time.monotonic()
    data = b"" if method not in ("GET", "HEAD") else None
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, dict(exc.headers), exc.read()
    except (OSError, urllib.error.URLError) as exc:
        return Reply(repr(exc), started=started, seconds=time.monotonic() - started)
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"raw": raw.decode(errors="replace")}
    lowered = {k.lower(): v for k, v in headers.items()}
    return Reply(status, body, lowered, started, time.monotonic() - started)


def load(
    url: str, count: int, threads: int = 1, pause: float = 0.0, stop: threading.Event | None = None
) -> list[Reply]:
    """``count`` requests to ``url`` from ``threads`` threads, each pausing ``pause`` s after
    each request (bounded: never more than ``count``)."""
    replies: list[Reply] = []
    lock = threading.Lock()
    left = [count]

    def run() -> None:
        while stop is None or not stop.is_set():
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            reply = get(url)
            with lock:
                replies.append(reply)
            if pause:
                time.sleep(pause)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return replies


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


class Server:
    """A server process started for a test; its output lines with the time each came."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.lines: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()
        self._recycling_max = 0
        self._watching = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._lock:
                self.lines.append((time.monotonic(), line))

    @property
    def log(self) -> str:
        """Everything the server said so far."""
        with self._lock:
            return b"".join(line for _, line in self.lines).decode(errors="replace")

    def recycled_pids(self) -> list[int]:
        """Workers that said they recycle, in order."""
        with self._lock:
            return [int(m.group(1)) for _, line in self.lines if (m := RECYCLES.search(line))]

    def stopped_pids(self) -> set[int]:
        """Workers whose shutdown is over (a uvicorn worker's lifespan shutdown)."""
        with self._lock:
            return {int(m.group(1)) for _, line in self.lines if (m := STOPPED.search(line))}

    def watch_recycling(self) -> None:
        """Start counting, every 5 ms, the workers recycling: from the line that says so until
        their shutdown is over or they have exited."""
        self._watcher.start()

    def _watch(self) -> None:
        while not self._watching.is_set():
            stopped = self.stopped_pids()
            busy = [p for p in set(self.recycled_pids()) if p not in stopped and _alive(p)]
            self._recycling_max = max(self._recycling_max, len(busy))
            time.sleep(0.005)

    @property
    def most_recycling_at_once(self) -> int:
        """The most workers seen recycling at the same time."""
        return self._recycling_max

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the server and wait for it; its exit status (None if it had to be killed)."""
        self._watching.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return None
        self._reader.join(timeout=5)
        return status

    def wait_exit(self, timeout: float) -> int | None:
        """Wait for the server to end by itself; its exit status, or None if it did not."""
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(timeout=5)
        return status


def wait_for_line(server: Server, pattern: bytes, timeout: float) -> bool:
    """Wait until the server has said a line matching ``pattern``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, server.log.encode()):
            return True
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def serve(
    argv: list[str],
    port: int,
    cwd: Path,
    env: dict[str, str] | None = None,
    group: MemoryCgroup | None = None,
    ready_path: str = "/",
) -> Iterator[Server]:
    """Start ``argv`` (in ``group`` when given), wait until ``ready_path`` answers, yield it;
    always stopped and every process it started killed."""
    tag = new_tag()
    full_env = {**tagged_env(tag), "PYTHONPATH": os.pathsep.join([APPS, SRC, ROOT]), **(env or {})}
    command = group.enter_argv(argv) if group is not None else argv
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(process)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server exited: {server.log}")
            if isinstance(get(f"http://127.0.0.1:{port}{ready_path}", timeout=5).status, int):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the server never answered: {server.log}")
        yield server
    finally:
        if process.poll() is None:
            server.stop()
        kill_tagged(tag)


def python(*args: str) -> list[str]:
    """``python -m ...`` with this interpreter."""
    return [sys.executable, "-m", *args]
