"""A private redis-server and a real Celery worker for the guard's Celery tests and
``benchmarks/bench_celery.py``: redis on 127.0.0.1 at a free port with nothing saved to disk,
the worker (``tests/guard/apps/celery_tasks.py``) started in a memory cgroup when asked. Every
process started is killed afterwards (each run is tagged, ``tests/processes.py``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.guard.cgroup_helpers import MemoryCgroup
from tests.ports import free_port as _free_port
from tests.processes import kill_tagged, new_tag, tagged_env

APPS = str(Path(__file__).parent / "apps")
ROOT = str(Path(__file__).parents[2])
#: The checkout's own source, first: the servers run the code under test, whichever membound
#: the interpreter has installed.
SRC = str(Path(__file__).parents[2] / "src")


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of its own; yields its ``redis://127.0.0.1:PORT`` base URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: apt install redis-server")
    port = _free_port()
    tag = new_tag()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    argv += ["no", "--dir", str(folder), "--protected-mode", "yes"]
    process = subprocess.Popen(
        argv, env=tagged_env(tag), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), 1) as s,
            ):
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    break
            if process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {process.returncode}")
            time.sleep(0.05)
        else:
            raise RuntimeError("redis-server never answered")
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)
        kill_tagged(tag)


class Worker:
    """A running ``celery worker``: its output as it comes."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._chunks.append(line)

    @property
    def log(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def stop(self, timeout: float = 30.0) -> int | None:
        """Warm shutdown (SIGTERM: tasks in hand finish), then the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        self._reader.join(5)
        return self.process.poll()


@contextlib.contextmanager
def celery_worker(
    redis: str,
    guard: str,
    hard: str,
    concurrency: int = 2,
    group: MemoryCgroup | None = None,
    largest_task: str | None = None,
) -> Iterator[Worker]:
    """A prefork worker of ``celery_tasks`` (``guard``: ``membound``, ``celery`` or ``none``;
    ``largest_task``: ``recycle_children``'s)."""
    tag = new_tag()
    env = {
        **tagged_env(tag),
        "PYTHONPATH": os.pathsep.join([APPS, SRC, ROOT]),
        "MB_TEST_REDIS": redis,
        "MB_TEST_CELERY_GUARD": guard,
        "MB_TEST_CELERY_HARD": hard,
        **({"MB_TEST_CELERY_LARGEST": largest_task} if largest_task is not None else {}),
    }
    argv = [sys.executable, "-m", "celery", "-A", "celery_tasks", "worker", "--pool", "prefork"]
    argv += ["--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip"]
    argv += ["--without-mingle", "--without-heartbeat", "-n", f"w{tag[:8]}@localhost"]
    command = group.enter_argv(argv) if group is not None else argv
    process = subprocess.Popen(
        command,
        cwd=APPS,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = Worker(process)
    try:
        deadline = time.monotonic() + 60
        while " ready." not in worker.log:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the celery worker did not start:\n{worker.log}")
            time.sleep(0.05)
        yield worker
    finally:
        worker.stop()
        kill_tagged(tag)
