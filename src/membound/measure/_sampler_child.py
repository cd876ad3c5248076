"""The sampler process: reads a process's memory from outside its interpreter.

Runs as ``python -E -s -S _sampler_child.py CONFIG_JSON`` with the standard library only, so it
starts in milliseconds and weighs a few MiB. It samples ``/proc/PID/statm`` (and ``VmHWM`` from
``/proc/PID/status`` in tree mode) every ``interval`` seconds, keeps a bounded timeline, kills the
watched process group when a memory limit is crossed, and on ``stop`` (or EOF on stdin: the parent
died) prints one JSON document and exits.

Why a process and not a thread (DESIGN §5.3b): a sampler thread inside a busy interpreter is
starved by the GIL; a separate process is scheduled by the kernel alone.

The bounded timeline is ``results/downsample.py``'s, run by its path (see ``_DOWNSAMPLE``).
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import select
import signal
import sys
import time
from typing import Any

# ``results/downsample.py``, run by its path. The downsampler belongs to ``results``
# (``Timeline.from_values`` uses it too); this child runs by path with ``-E -s -S`` and cannot
# import the package, so it runs that one stdlib-only file instead of keeping a copy.
_DOWNSAMPLE = runpy.run_path(
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "downsample.py"
    )
)


HAS_PROC = os.path.exists("/proc/self/statm")


def _psutil_rss(pid: int) -> int | None:
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # psutil missing or the process is gone: no sample
        return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def read_rss(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes from ``/proc/PID/statm``; None when it is gone.

    Where there is no /proc the sampler runs with site-packages and psutil answers instead.
    """
    if not HAS_PROC:
        return _psutil_rss(pid)
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            resident = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    # A zombie reports 0 pages: its memory is already gone, and so is the process for us.
    return resident * _PAGE if resident else None


def read_hwm(pid: int) -> int | None:
    """Peak resident set size (``VmHWM``) of ``pid`` in bytes; None when unavailable."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class StatmReader:
    """Re-reads one process's ``statm`` through a file descriptor kept open: one ``pread`` per
    sample instead of open/read/close, which keeps the sampler's own cost per tick minimal."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self.fd: int | None = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
        except OSError:
            self.fd = None

    def read(self) -> int | None:
        """Current RSS in bytes, or None when the process is gone."""
        if self.fd is None:
            return read_rss(self.pid)
        try:
            resident = int(os.pread(self.fd, 128, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return None
        return resident * _PAGE if resident else None


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` from ``/proc/PID/task/*/children``."""
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                # a few pids: the whole file is tiny
                kids.extend(int(x) for x in f.read().split())  # noqa: MB103
        except (OSError, ValueError):
            continue
    return kids


def tree_of(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    seen = [pid]
    i = 0
    while i < len(seen):
        seen.extend(children_of(seen[i]))
        i += 1
    return seen


def _self_hwm() -> int:
    return read_hwm(os.getpid()) or 0


def _spawn(argv: list[str], stdio: list[int]) -> int:
    """Start ``argv`` in a new session with ``stdio`` as its fds 0, 1, 2; return its pid.

    posix_spawn from this small process matters: the kernel starts a new program's ``maxrss``
    at the spawner's peak, so ``ru_maxrss`` is exact for any program that outgrows this sampler.
    """
    actions: list[tuple[int, ...]] = [
        (os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio)
    ]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in set(stdio) if fd > 2]
    return os.posix_spawnp(argv[0], argv, dict(os.environ), file_actions=actions, setsid=True)


class TreeReader:
    """Sums the RSS of a process and all its descendants, and keeps the largest ``VmHWM`` seen.

    Bounded whatever the run: the largest VmHWM, the pids alive at the last read (to count new
    processes) and a count, never a record per process.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.max_hwm: int | None = None
        self.processes_seen = 0
        self._live: set[int] = set()

    def read(self) -> int | None:
        """The tree's summed RSS in bytes, or None when no process of it is left."""
        total = 0
        now_live: set[int] = set()
        for p in tree_of(self.pid):
            rss = read_rss(p)
            if rss is None:
                continue
            now_live.add(p)
            total += rss
            hwm = read_hwm(p)
            if hwm is not None and (self.max_hwm is None or hwm > self.max_hwm):
                self.max_hwm = hwm
        self.processes_seen += len(now_live - self._live)
        self._live = now_live
        return total if now_live else None


class Samples:
    """The samples taken so far: a bounded timeline, the largest value, the limit crossing."""

    def __init__(self, start: float, max_points: int, limit: int | None) -> None:
        self.start = start
        self.limit = limit
        self.timeline = _DOWNSAMPLE["Downsampler"](max_points)
        self.max_rss = 0
        self.limit_hit: dict[str, float] | None = None

    def add(self, now: float, value: int, kill_pgid: int | None) -> None:
        """Record one sample; kill ``kill_pgid`` the first time the value crosses the limit."""
        self.timeline.add(now - self.start, value)
        self.max_rss = max(self.max_rss, value)
        if self.limit is not None and self.limit_hit is None and value > self.limit:
            self.limit_hit = {"t": now - self.start, "rss": value}
            if kill_pgid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(kill_pgid, signal.SIGKILL)

    def report(self) -> dict[str, object]:
        """The JSON-ready part of the report that the samples make."""
        down = self.timeline
        return {
            "start": self.start,
            "times": list(down.times),
            "lows": list(down.lows),
            "highs": list(down.highs),
            "samples": down.samples,
            "stride": down.stride,
            "max_rss": self.max_rss,
            "limit_hit": self.limit_hit,
        }


def _kill_group(pgid: int | None) -> None:
    if pgid is not None:
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)


def _spawned_ended(pid: int, start: float, spawned: dict[str, object]) -> bool:
    """True when the spawned command has exited; its status goes into ``spawned``."""
    done, status, usage = os.wait4(pid, os.WNOHANG)
    if not done:
        return False
    spawned["exit_code"] = os.waitstatus_to_exitcode(status)
    spawned["ru_maxrss"] = usage.ru_maxrss * 1024
    spawned["end"] = time.monotonic() - start
    return True


def _stop_asked(stdin: Any, wait: float, kill_pgid: int | None) -> bool:
    """Wait up to ``wait`` seconds for a line on stdin; True when sampling must stop."""
    ready, _, _ = select.select([stdin], [], [], wait)
    if not ready:
        return False
    if not stdin.readline():
        _kill_group(kill_pgid)  # EOF without "stop": the parent died; do not leave its child
    return True


def run(
    pid: int,
    interval: float = 0.01,
    *,
    tree: bool = False,
    limit: int | None = None,
    kill_pgid: int | None = None,
    max_points: int = _DOWNSAMPLE["MAX_POINTS_DEFAULT"],
    spawn: list[str] | None = None,
    stdio: list[int] | None = None,
) -> dict[str, object]:
    """Sample until told to stop; return the report.

    Three ways to name the process: ``pid`` (already running; stop on ``stop`` or EOF on
    stdin), ``pid == 0`` (wait for ``pid N [PGID]`` on stdin first, so that sampling begins the
    instant the process exists), or ``spawn`` (start that command here, announce ``started PID``
    on stdout, and stop when it exits, reporting its exit status and ``ru_maxrss``; if the
    parent dies meanwhile, kill the command's process group).
    """
    stdin = sys.stdin.buffer
    spawned: dict[str, object] = {}
    parent = os.getppid()
    if spawn is not None:
        spawner_hwm = _self_hwm()
        try:
            pid = _spawn(spawn, stdio or [0, 1, 2])
        except OSError as exc:
            return {"start": time.monotonic(), "samples": 0, "spawn_error": _spawn_error(exc)}
        kill_pgid = pid
        spawned["spawner_hwm"] = spawner_hwm
        sys.stdout.write(f"started {pid}\n")
        sys.stdout.flush()
    elif pid == 0:
        words = stdin.readline().split()
        if len(words) < 2 or words[0] != b"pid":
            return {"start": time.monotonic(), "samples": 0}
        pid = int(words[1])
        if len(words) > 2:
            kill_pgid = int(words[2])
    reader: TreeReader | StatmReader | None = (
        TreeReader(pid) if tree else StatmReader(pid) if HAS_PROC else None
    )
    samples = Samples(time.monotonic(), max_points, limit)
    late = 0
    next_tick = samples.start
    while True:
        now = time.monotonic()
        value = reader.read() if reader is not None else read_rss(pid)
        if value is not None:
            samples.add(now, value, kill_pgid)
        next_tick += interval
        wait = next_tick - time.monotonic()
        if wait < 0:
            late += 1
            next_tick = time.monotonic()
            wait = 0.0
        if spawn is not None:
            time.sleep(wait)
            if _spawned_ended(pid, samples.start, spawned):
                break
            if os.getppid() != parent:  # the parent died: do not leave its command running
                _kill_group(pid)
        elif _stop_asked(stdin, wait, kill_pgid):
            break
    tree_reader = reader if isinstance(reader, TreeReader) else None
    return {
        **samples.report(),
        "interval": interval,
        "late_ticks": late,
        "max_hwm": tree_reader.max_hwm if tree_reader else None,
        "processes_seen": tree_reader.processes_seen if tree_reader else 0,
        **spawned,
    }


def _spawn_error(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or ''}".rstrip()
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or ''} is not executable".rstrip()
    return f"cannot run the command: {exc.strerror or exc}"


def main() -> None:
    """Entry point when run as a script."""
    config = json.loads(sys.argv[1])
    # The parent may be killed by the user's Ctrl-C: the sampler ends on EOF, not on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    report = run(
        int(config["pid"]),
        float(config.get("interval", 0.01)),
        tree=bool(config.get("tree", False)),
        limit=config.get("limit"),
        kill_pgid=config.get("kill_pgid"),
        max_points=int(config.get("max_points", _DOWNSAMPLE["MAX_POINTS_DEFAULT"])),
        spawn=config.get("spawn"),
        stdio=config.get("stdio"),
    )
    try:
        sys.stdout.write(json.dumps(report))
        sys.stdout.flush()
    except BrokenPipeError:  # the parent is gone; nobody to report to
        pass
    # Nothing is left to clean up: skip interpreter teardown so that stop() returns sooner.
    os._exit(0)


if __name__ == "__main__":
    main()
