"""The sampler process: reads a process's memory from outside its interpreter.

Runs as ``python -E -s -S _sampler_child.py CONFIG_JSON`` with the standard library only, so it
starts in milliseconds and weighs a few MiB. It samples ``/proc/PID/statm`` (and ``VmHWM`` from
``/proc/PID/status`` in tree mode) every ``interval`` seconds, keeps a bounded timeline, kills the
watched process group when a memory limit is crossed, and on ``stop`` (or EOF on stdin: the parent
died) prints one JSON document and exits.

Why a process and not a thread (DESIGN §5.3b): a sampler thread inside a busy interpreter is
starved by the GIL; a separate process is scheduled by the kernel alone.

Why the downsampling is written here: it must run inside this stdlib-only child; it is a handful of
lines (merge neighbouring buckets pairwise, keeping each bucket's min and max).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
import time
from array import array

MAX_POINTS_DEFAULT = 10_000


class Downsampler:
    """A timeline of at most ``max_points`` buckets, each holding its start time, min and max.

    When full, neighbouring buckets merge pairwise and each bucket then spans twice as many
    samples, so memory stays bounded however long the run and no extreme is ever lost.
    """

    def __init__(self, max_points: int = MAX_POINTS_DEFAULT) -> None:
        if max_points < 2 or max_points % 2:
            raise ValueError("max_points must be an even number >= 2")
        self.max_points = max_points
        self.times = array("d")
        self.lows = array("d")
        self.highs = array("d")
        self.stride = 1
        self.samples = 0
        self._in_last = 0

    def add(self, t: float, value: float) -> None:
        """Add one sample taken at time ``t``."""
        self.samples += 1
        if self.times and self._in_last < self.stride:
            self._in_last += 1
            self.lows[-1] = min(self.lows[-1], value)
            self.highs[-1] = max(self.highs[-1], value)
            return
        if len(self.times) == self.max_points:
            self._halve()
        self.times.append(t)
        self.lows.append(value)
        self.highs.append(value)
        self._in_last = 1

    def _halve(self) -> None:
        times, lows, highs = array("d"), array("d"), array("d")
        for i in range(0, len(self.times) - 1, 2):
            times.append(self.times[i])
            lows.append(min(self.lows[i], self.lows[i + 1]))
            highs.append(max(self.highs[i], self.highs[i + 1]))
        self.times, self.lows, self.highs = times, lows, highs
        self.stride *= 2
        # The last bucket is complete after a merge; the next sample opens a new one.
        self._in_last = self.stride


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


def run(
    pid: int,
    interval: float = 0.01,
    *,
    tree: bool = False,
    limit: int | None = None,
    kill_pgid: int | None = None,
    max_points: int = MAX_POINTS_DEFAULT,
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
    down = Downsampler(max_points)
    single = StatmReader(pid) if HAS_PROC and not tree else None

    start = time.monotonic()
    max_rss = 0
    # Bounded whatever the run: the largest VmHWM seen, the pids alive at the last tick (to
    # count new processes), and a count, never a record per process.
    max_hwm: int | None = None
    live: set[int] = set()
    processes_seen = 0
    limit_hit: dict[str, float] | None = None
    late = 0
    next_tick = start
    while True:
        now = time.monotonic()
        if tree:
            total = 0
            now_live: set[int] = set()
            for p in tree_of(pid):
                rss = read_rss(p)
                if rss is None:
                    continue
                now_live.add(p)
                total += rss
                hwm = read_hwm(p)
                if hwm is not None and (max_hwm is None or hwm > max_hwm):
                    max_hwm = hwm
            processes_seen += len(now_live - live)
            live = now_live
            value: int | None = total if now_live else None
        else:
            value = single.read() if single is not None else read_rss(pid)
        if value is not None:
            down.add(now - start, value)
            max_rss = max(max_rss, value)
            if limit is not None and limit_hit is None and value > limit:
                limit_hit = {"t": now - start, "rss": value}
                if kill_pgid is not None:
                    with contextlib.suppress(OSError):
                        os.killpg(kill_pgid, signal.SIGKILL)
        next_tick += interval
        wait = next_tick - time.monotonic()
        if wait < 0:
            late += 1
            next_tick = time.monotonic()
            wait = 0.0
        if spawn is not None:
            time.sleep(wait)
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                spawned["exit_code"] = os.waitstatus_to_exitcode(status)
                spawned["ru_maxrss"] = usage.ru_maxrss * 1024
                spawned["end"] = time.monotonic() - start
                break
            if os.getppid() != parent:  # the parent died: do not leave its command running
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
        else:
            ready, _, _ = select.select([stdin], [], [], wait)
            if ready:
                if not stdin.readline() and kill_pgid is not None:
                    # EOF without "stop": the parent died; do not leave its child running.
                    with contextlib.suppress(OSError):
                        os.killpg(kill_pgid, signal.SIGKILL)
                break
    return {
        "start": start,
        "times": list(down.times),
        "lows": list(down.lows),
        "highs": list(down.highs),
        "samples": down.samples,
        "stride": down.stride,
        "interval": interval,
        "late_ticks": late,
        "max_rss": max_rss,
        "max_hwm": max_hwm,
        "processes_seen": processes_seen,
        "limit_hit": limit_hit,
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
        max_points=int(config.get("max_points", MAX_POINTS_DEFAULT)),
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
