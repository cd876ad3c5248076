"""The sampler process: reads a process's memory from outside its interpreter.

Runs as ``python -E -s -S sampler_process.py`` with the standard library only, so it starts in
milliseconds and weighs a few MiB; its configuration comes first on its stdin (:func:`read_config`).
It samples ``/proc/PID/statm`` (and ``VmHWM`` from ``/proc/PID/status`` in tree mode) every
``interval`` seconds, keeps a bounded timeline, its peak and a live status line (:class:`Samples`),
kills the watched process group when a memory limit is crossed (:class:`LimitStop`), and on
``stop`` (or EOF on stdin: the parent died) prints one JSON document and exits.

When it spawns the command itself it also keeps every process of the run (:class:`Tracker`): the
command is born in a cgroup of its own (``cgroups.py``) where one can be made, and the sampler is a
child subreaper (``PR_SET_CHILD_SUBREAPER``) everywhere on Linux, so a process that ``setsid``s or
double-forks away from the command is still counted, and is killed when the run ends: when the
command exits, at the limit, when the parent closes stdin (its timeout, its Ctrl-C, its death) and
on SIGTERM or SIGHUP (the parent's death sends SIGTERM through ``PR_SET_PDEATHSIG``).

Why a process and not a thread (DESIGN §5.3b): a sampler thread inside a busy interpreter is
starved by the GIL; a separate process is scheduled by the kernel alone.

The bounded timeline is ``results/downsample.py``'s and the cgroups are ``cgroups.py``'s, both run
by path (see ``_DOWNSAMPLE``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import runpy
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# ``siblings.py`` beside this file, run by its path: it loads the other files this one needs.
_sibling = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "siblings.py"))[
    "load"
]
# ``results/downsample.py``: the downsampler belongs to ``results`` (``Timeline.from_values``
# uses it too); this child runs by path with ``-E -s -S`` and cannot import the package, so it
# loads that one stdlib-only file instead of keeping a copy.
_DOWNSAMPLE = vars(_sibling("membound.results.downsample"))
_CGROUPS = vars(_sibling("cgroups"))
_PROCFS = vars(_sibling("membound._proc"))
#: The least a traced process may still map while it hands its capture over at a limit.
_LEAST_MARGIN = 4 << 20

if TYPE_CHECKING:
    from membound.measure.children.proc_tree import (
        HAS_PROC,
        StatmReader,
        TreeReader,
        kill_descendants,
        read_hwm,
        read_rss,
        tree_of,
    )
else:
    # ``proc_tree.py`` beside this file: reading a process (tree) from /proc, by path as above.
    _PROC = vars(_sibling("proc_tree"))
    HAS_PROC = _PROC["HAS_PROC"]
    read_rss = _PROC["read_rss"]
    read_hwm = _PROC["read_hwm"]
    tree_of = _PROC["tree_of"]
    kill_descendants = _PROC["kill_descendants"]
    StatmReader = _PROC["StatmReader"]
    TreeReader = _PROC["TreeReader"]


#: The line written after the first reading, when the parent asked (``announce``).
ANNOUNCED = "sampling\n"
#: ``stack_dump.py`` beside this file, loaded at the first limit stop that reads a stack (it
#: imports subprocess: no cost to a sampler's start).
_STACK_DUMP: dict[str, Any] = {}

#: The live status line: rewritten this often at most, and this long (fixed, so a rewrite in place
#: never leaves a tail of an older, longer line).
STATUS_EVERY_S = 0.1
STATUS_BYTES = 64


class Samples:
    """The samples taken so far: a bounded timeline, the largest value, the limit crossing."""

    def __init__(
        self, start: float, max_points: int, limit: int | None, status: str | None = None
    ) -> None:
        self.start = start
        self.limit = limit
        self.timeline = _DOWNSAMPLE["Downsampler"](max_points)
        self.max_rss = 0
        self.limit_hit: dict[str, float] | None = None
        # The live figures for a progress display, rewritten in place (one fixed-size line at
        # offset 0) at most every STATUS_EVERY_S: the parent reads them, the measured process
        # never sees them.
        self._status_fd = os.open(status, os.O_WRONLY | os.O_CREAT, 0o600) if status else None
        self._status_at = 0.0

    def add(self, now: float, value: int, kill: Callable[[], object] | None) -> None:
        """Record one sample; call ``kill`` the first time the value crosses the limit."""
        self.timeline.add(now - self.start, value)
        self.max_rss = max(self.max_rss, value)
        if self._status_fd is not None and now - self._status_at >= STATUS_EVERY_S:
            self._status_at = now
            line = f"{now - self.start:.3f} {value} {self.max_rss}"
            os.pwrite(self._status_fd, line.ljust(STATUS_BYTES - 1).encode() + b"\n", 0)
        if self.limit is not None and self.limit_hit is None and value > self.limit:
            self.limit_hit = {"t": now - self.start, "rss": value}
            if kill is not None:
                kill()

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


class LimitStop:
    """Stops a spawned run at its memory limit: at once, or (with ``grace``) after asking the
    spawned process to write what it captured of its memory (SIGUSR2) and waiting at most
    ``grace`` seconds for it to end by itself.

    With ``stack_tool`` (py-spy's path), the largest process of the run (``pids`` lists them;
    a shell's Python child, a pool's worker) is first frozen and its Python stack read from
    outside (``stack_dump.py``): the line that was running when the limit was crossed, even
    inside one long C call that no capture request can interrupt. ``stack`` holds what was read.
    """

    def __init__(
        self,
        pid: int,
        kill: Callable[[], object],
        grace: float | None,
        stack_tool: str | None = None,
        pids: Callable[[], list[int]] | None = None,
        rss: Callable[[int], int | None] | None = None,
        limit: int | None = None,
    ) -> None:
        self.pid = pid
        self.kill = kill
        self.grace = grace
        #: What the run may still take while the traced process hands its capture over (5 %
        #: of the limit): mapped by it (its data cap), or in all (then it is stopped at once).
        self.margin = max(_LEAST_MARGIN, (limit or 0) // 20)
        self.limit = limit or 0
        #: The run's memory at the first reading after its capture was asked for (a starved
        #: sampler's reading before that may lag the run by tens of MiB).
        self.crossed_at: int | None = None
        self.asked = False
        self.deadline: float | None = None
        self.stack_tool = stack_tool
        self.pids = pids
        self.rss = rss
        self.stack: dict[str, object] | None = None

    def begin(self) -> None:
        """The limit was crossed."""
        # Stopped before anything else: loading py-spy's reader, listing the run's processes
        # and reading their sizes took a busy machine's sampler tens of milliseconds, in which
        # a fast job took 40-60 MiB more.
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGSTOP)
        frozen = None
        if self.stack_tool:
            processes = (self.pids() if self.pids is not None else []) or [self.pid]
            size = self.rss or (lambda pid: 0)
            frozen = max(processes, key=lambda p: size(p) or 0) if len(processes) > 1 else self.pid
            if not _STACK_DUMP:
                _STACK_DUMP.update(vars(_sibling("stack_dump")))
            self.stack = _STACK_DUMP["freeze_and_read"](frozen, self.stack_tool)
            self.stack["processes"] = len(processes)
        if self.grace is None:
            self.kill()
            return
        try:
            # Asked while it is stopped, it answers before it runs one more line: resumed
            # first, a fast job ran on for a whole time slice of a busy machine (30-60 MiB
            # past a 200 MB limit) before this process got to ask.
            self._hold_the_rest()
            _to_main_thread(self.pid, signal.SIGUSR2)
            os.kill(self.pid, signal.SIGCONT)  # the others stay stopped (_hold_the_rest)
        except OSError:
            self.kill()
            return
        self.deadline = time.monotonic() + self.grace

    def _hold_the_rest(self) -> None:
        """While the traced process hands its capture over, the run must not grow on (it ran
        to twice its limit during the handover under load): its other processes, which have
        nothing to hand over, are frozen, and the traced one may map only ``margin`` more (its
        soft ``RLIMIT_DATA`` set to its data size now plus that; an allocation past it fails
        with ``MemoryError``, and the run is stopped anyway)."""
        for pid in self.pids() if self.pids is not None else []:
            if pid != self.pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGSTOP)
        import resource

        data = _PROCFS["status_bytes"](self.pid, b"VmData:")
        if data is None or not hasattr(resource, "prlimit"):  # prlimit: Linux only
            return
        with contextlib.suppress(OSError, ValueError):
            _, hard = resource.prlimit(self.pid, resource.RLIMIT_DATA)
            cap = data + self.margin
            if hard == resource.RLIM_INFINITY or cap <= hard:
                resource.prlimit(self.pid, resource.RLIMIT_DATA, (cap, hard))

    def check(self, rss: int | None = None) -> None:
        """Kill the run once the grace has run out, or at once when the run's memory (``rss``,
        the last reading) has grown a tenth of the limit past the first reading after its
        capture was asked for
        (a fast job grows 14 MiB in the 10 ms before its capture is asked for): a process
        inside one long C call answers no request to hand its capture over, and one
        ``bytearray`` of 1.5 GiB being written ran a 200 MB limit to 1.5 GiB during the
        grace (its capture is lost; the stack read at the limit still names its line)."""
        if self.deadline is None:
            return
        if not self.asked:
            self.asked = True  # ``rss`` was read before the capture was asked for
            return
        if self.crossed_at is None:
            self.crossed_at = rss
        allowed = max(self.margin, self.limit // 10)  # a sampling interval's growth, and more
        over = rss is not None and self.crossed_at is not None and rss > self.crossed_at + allowed
        if over or time.monotonic() >= self.deadline:
            self.deadline = None
            self.kill()


def _to_main_thread(pid: int, signum: int) -> None:
    """Send ``signum`` to the main thread of ``pid`` (``tgkill``), where Python runs its signal
    handlers. Sent to the process while it is stopped, the kernel handed it to another thread
    on resumption (memray's, here), and the main thread noticed it 0.3-0.4 s later, not 14 ms:
    most of the second a capture has to be handed over at a limit stop."""
    try:
        tgkill = ctypes.CDLL(None, use_errno=True).tgkill  # glibc 2.30 and later
    except (OSError, AttributeError):
        os.kill(pid, signum)
        return
    if tgkill(ctypes.c_int(pid), ctypes.c_int(pid), ctypes.c_int(signum)) != 0:
        os.kill(pid, signum)


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
    return os.posix_spawnp(
        argv[0],
        argv,
        dict(os.environ),
        file_actions=actions,
        setsid=True,
        # The command gets default dispositions and no blocked signals, whatever this sampler
        # ignores or handles (SIGINT ignored; Python ignores SIGPIPE and SIGXFSZ).
        setsigdef=_RESET_SIGNALS,
        setsigmask=(),
    )


_RESET_SIGNALS = (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGHUP)


_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    """``prctl(option, value)``; False where it is not there (not Linux) or fails."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def adopt_orphans() -> bool:
    """Make this process a child subreaper: orphans among its descendants are re-parented to
    it instead of to init, so they stay in its tree. False where that is not possible."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


class Tracker:
    """Every process of one spawned run, and their end.

    Where a cgroup can be made, the command is born in it (the sampler steps into the group for
    the spawn and back out), and the group's member list is the run. The sampler is also a child
    subreaper, so orphans of the run are re-parented to it and stay in its tree; without a
    cgroup the run is the sampler's descendants. Either way :meth:`kill_all` reaches processes
    that left the command's session and process group.
    """

    def __init__(self) -> None:
        self.me = os.getpid()
        self.subreaper = adopt_orphans()
        self.group = _CGROUPS["RunGroup"].create(self.me)
        self.command = 0

    @property
    def mode(self) -> str:
        """How the run is tracked, in words for the report."""
        if self.group is not None:
            return "cgroup"
        return "subreaper" if self.subreaper else "process-group"

    def spawn(self, argv: list[str], stdio: list[int]) -> int:
        """Start the command inside the run's cgroup (where there is one); return its pid."""
        if self.group is None:
            self.command = _spawn(argv, stdio)
            return self.command
        self.group.enter(self.me)
        try:
            self.command = _spawn(argv, stdio)
        finally:
            self.group.leave(self.me)
        return self.command

    def pids(self) -> list[int]:
        """The run's processes now."""
        if self.group is not None:
            return [p for p in self.group.pids() if p != self.me]
        if self.subreaper:
            return tree_of(self.me)[1:]
        return tree_of(self.command)

    def kill_all(self) -> int:
        """SIGKILL every process of the run; how many there were."""
        killed = 0
        if self.group is not None:
            killed = self.group.kill_all()
        killed += kill_descendants(self.me)  # orphans adopted by this subreaper
        _kill_group(self.command or None)  # without either, the command's own group at least
        return killed

    def reap_orphans(self) -> None:
        """Reap adopted orphans that exited (never the command: its status is read apart)."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == self.command:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    def close(self) -> int:
        """After the command: kill what it left running, remove the group, reap; the count."""
        left = self.kill_all()
        if self.group is not None:
            self.group.remove()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not done:
                time.sleep(0.001)
        return left


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


class _Signals:
    """SIGTERM and SIGHUP (and the parent's death, through ``PR_SET_PDEATHSIG``) end the run:
    the handler only notes it and wakes the sampling loop through a pipe, which then kills the
    run's processes and reports as usual."""

    def __init__(self) -> None:
        self.received = 0
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._note)
        # A child's exit only wakes the loop (through the wakeup fd), so that the command's end
        # is seen at once, not at the next tick of a long interval.
        signal.signal(signal.SIGCHLD, self._wake)
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def _note(self, signum: int, frame: object) -> None:
        self.received = signum

    def _wake(self, signum: int, frame: object) -> None:
        """Nothing to do: the wakeup fd already woke the loop."""


def _kill_asked(stdin: Any, wake_r: int, wait: float) -> bool:
    """Spawn mode: wait up to ``wait`` seconds; True when the parent wrote a line or closed
    stdin (its timeout, Ctrl-C or death). A signal only wakes the wait (its handler noted it).
    ``stdin`` None: already asked, just wait."""
    watched = [wake_r] if stdin is None else [stdin, wake_r]
    ready, _, _ = select.select(watched, [], [], wait)
    if wake_r in ready:
        with contextlib.suppress(OSError):
            os.read(wake_r, 64)
    if stdin is not None and stdin in ready:
        stdin.readline()  # "kill", or EOF: either way the run ends
        return True
    return False


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
    status: str | None = None,
    flush_grace: float | None = None,
    skip: list[int] | None = None,
    stack_tool: str | None = None,
    announce: bool = False,
) -> dict[str, object]:
    """Sample until told to stop (``skip``: in tree mode, children of ``pid`` that ran before
    and are not counted); return the report (``status``: a file to keep the live
    figures in, ``elapsed rss peak``; ``flush_grace`` and ``stack_tool``: see ``LimitStop``;
    ``announce``: write ``sampling`` on stdout after the first reading, for a parent
    that waits for it before the block it measures begins).

    Three ways to name the process: ``pid`` (already running; stop on ``stop`` or EOF on
    stdin), ``pid == 0`` (wait for ``pid N [PGID]`` on stdin first, so that sampling begins the
    instant the process exists), or ``spawn`` (start that command here, announce
    ``started PID [CGROUP]`` on stdout, and stop when it exits, reporting its exit status and
    ``ru_maxrss``; kill every process of the run when the parent closes stdin, on SIGTERM or
    SIGHUP, and when the command exits, counting what it left running).
    """
    if spawn is not None:
        if stdio is None:  # not this process's stdin: that is the parent's control pipe
            stdio = [os.open(os.devnull, os.O_RDONLY), 1, 2]
        return _run_spawned(
            spawn, stdio, interval, tree, limit, max_points, status, flush_grace, stack_tool
        )
    stdin = sys.stdin.buffer
    if pid == 0:
        words = stdin.readline().split()
        if len(words) < 2 or words[0] != b"pid":
            return {"start": time.monotonic(), "samples": 0}
        pid = int(words[1])
        if len(words) > 2:
            kill_pgid = int(words[2])
    left_out = frozenset(skip or ())
    reader: TreeReader | StatmReader | None = (
        TreeReader(pid, (lambda: tree_of(pid, left_out)) if left_out else None)
        if tree
        else StatmReader(pid)
        if HAS_PROC
        else None
    )
    samples = Samples(time.monotonic(), max_points, limit, status)
    kill = (lambda: _kill_group(kill_pgid)) if kill_pgid is not None else None
    late = 0
    next_tick = samples.start
    while True:
        value = reader.read() if reader is not None else read_rss(pid)
        if value is not None:
            samples.add(time.monotonic(), value, kill)
        if announce:
            announce = False
            _tell_parent(ANNOUNCED)
        next_tick, wait, missed = _next_tick(next_tick, interval)
        late += missed
        if _stop_asked(stdin, wait, kill_pgid):
            break
    return {**samples.report(), **_tree_figures(reader), "interval": interval, "late_ticks": late}


def _next_tick(next_tick: float, interval: float) -> tuple[float, float, int]:
    """The next tick, the wait until it, and 1 when this tick ran late (then skip ahead)."""
    next_tick += interval
    wait = next_tick - time.monotonic()
    if wait < 0:
        return time.monotonic(), 0.0, 1
    return next_tick, wait, 0


def _tree_figures(reader: object) -> dict[str, object]:
    tree_reader = reader if isinstance(reader, TreeReader) else None
    return {
        "max_hwm": tree_reader.max_hwm if tree_reader else None,
        "processes_seen": tree_reader.processes_seen if tree_reader else 0,
    }


def _run_spawned(
    argv: list[str],
    stdio: list[int],
    interval: float,
    tree: bool,
    limit: int | None,
    max_points: int,
    status: str | None = None,
    flush_grace: float | None = None,
    stack_tool: str | None = None,
) -> dict[str, object]:
    """Spawn mode of :func:`run`."""
    stdin: Any = sys.stdin.buffer
    parent = os.getppid()
    signals = _Signals()
    tracker = Tracker()
    spawned: dict[str, object] = {"tracking": tracker.mode}
    if tracker.group is not None and tracker.group.stale_killed:
        spawned["stale_killed"] = tracker.group.stale_killed
    # Taken right before the spawn: the kernel starts the program's maxrss at this peak.
    try:
        pid = tracker.spawn(argv, stdio)
    except OSError as exc:
        tracker.close()
        return {"start": time.monotonic(), "samples": 0, "spawn_error": _spawn_error(exc)}
    # Read after the spawn: the program started at this process's peak as it was then, which
    # is at most this (a peak only rises); read before, the few pages the spawn itself took
    # would let a tiny command seem to outgrow a peak it only inherited.
    spawned["spawner_hwm"] = _self_hwm()
    where = tracker.group.path if tracker.group is not None else ""
    # A parent already gone (killed right after the spawn) is seen by the loop below, which
    # then ends the run: the line it can no longer read must not end this process first.
    _tell_parent(f"started {pid} {where}".rstrip() + "\n")
    reader: TreeReader | StatmReader | None = (
        TreeReader(pid, tracker.pids) if tree else StatmReader(pid) if HAS_PROC else None
    )
    samples = Samples(time.monotonic(), max_points, limit, status)
    at_limit = LimitStop(
        pid, tracker.kill_all, flush_grace, stack_tool, tracker.pids, read_rss, limit
    )
    late = 0
    next_tick = samples.start
    stopped_by = ""
    while True:
        value = reader.read() if reader is not None else read_rss(pid)
        if value is not None:
            samples.add(time.monotonic(), value, at_limit.begin)
        at_limit.check(value)
        next_tick, wait, missed = _next_tick(next_tick, interval)
        late += missed
        asked = _kill_asked(stdin, signals.wake_r, wait)
        if not stopped_by and (asked or signals.received or os.getppid() != parent):
            stopped_by = signal.Signals(signals.received).name if signals.received else "the parent"
            stdin = None
            tracker.kill_all()
        tracker.reap_orphans()
        if _spawned_ended(pid, samples.start, spawned):
            break
    spawned["leftovers_killed"] = tracker.close()
    if stopped_by:
        spawned["stopped_by"] = stopped_by
    if at_limit.stack is not None:
        spawned["limit_stack"] = at_limit.stack
    return {
        **samples.report(),
        **_tree_figures(reader),
        "interval": interval,
        "late_ticks": late,
        **spawned,
    }


def _tell_parent(line: str) -> bool:
    """Write ``line`` to the parent (stdout); False when the parent is gone (a closed pipe)."""
    try:
        sys.stdout.write(line)
        sys.stdout.flush()
    except BrokenPipeError:
        return False
    return True


def _spawn_error(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or ''}".rstrip()
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or ''} is not executable".rstrip()
    if exc.errno == errno.E2BIG:
        return (
            "the system refused to start the command: its arguments and environment are too "
            "long (E2BIG; Linux takes at most 128 KiB in one argument, and a quarter of the "
            "stack limit in all)"
        )
    return f"cannot run the command: {exc.strerror or exc}"


def read_config(fd: int) -> dict[str, Any]:
    """The configuration the parent writes first on this process's stdin: its length in bytes
    on a line, then the JSON document. Not a command-line argument: Linux takes at most
    128 KiB in one argument (``MAX_ARG_STRLEN``), and a spawned command's own arguments are
    part of the configuration. Read straight from the descriptor, to the byte: what follows
    is the control lines, which ``select`` must still see."""
    head = bytearray()
    while not head.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            raise SystemExit("membound sampler: no configuration on stdin")
        head += byte
    size = int(head)
    body = bytearray()
    while len(body) < size:
        chunk = os.read(fd, size - len(body))
        if not chunk:
            raise SystemExit("membound sampler: the configuration on stdin was cut short")
        body += chunk
    config: dict[str, Any] = json.loads(bytes(body))
    return config


def main() -> None:
    """Entry point when run as a script."""
    config = read_config(sys.stdin.fileno())
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
        status=config.get("status"),
        flush_grace=config.get("flush_grace"),
        skip=config.get("skip"),
        stack_tool=config.get("stack_tool"),
        announce=bool(config.get("announce", False)),
    )
    _tell_parent(json.dumps(report))  # False: the parent is gone, nobody to report to
    # Nothing is left to clean up: skip interpreter teardown so that stop() returns sooner.
    os._exit(0)


if __name__ == "__main__":
    main()
