"""The parent side of the out-of-process sampler (see ``sampler_process.py`` for the child).

``Sampler(pid).start()`` launches a small stdlib-only Python process that reads the memory of
``pid`` (or of its whole process tree) every ``interval`` seconds; ``stop()`` returns a
:class:`SamplerReport` with a bounded :class:`~membound.results.timeline.Timeline`. The sampler can
enforce a memory limit itself, killing the watched process group within one interval.

In spawn mode the sampler also keeps every process of the run (a cgroup per run, or a subreaper;
see ``sampler_process.py``) and kills them all when the run ends. A line on its stdin or EOF (the
timeout, Ctrl-C, this process's death) tells it to kill the run and report.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from membound._units import format_size
from membound.measure import child_code
from membound.measure.cgroup import groups as cgroups
from membound.results.downsample import MAX_POINTS_DEFAULT
from membound.results.timeline import Timeline

if TYPE_CHECKING:
    from membound.measure.children.proc_tree import HAS_PROC, kill_descendants
    from membound.measure.children.sampler_process import ANNOUNCED
else:
    HAS_PROC = child_code.load("proc_tree").HAS_PROC
    kill_descendants = child_code.load("proc_tree").kill_descendants
    ANNOUNCED = child_code.load("sampler_process").ANNOUNCED

__all__ = ["Sampler", "SamplerReport", "kill_descendants", "tree_source"]

_CHILD = child_code.path("sampler_process")
_STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SamplerReport:
    """What the sampler saw."""

    timeline: Timeline
    """RSS over time (bytes), bounded to ``max_points`` buckets."""
    start: float
    """``time.monotonic()`` of the sampler's first sample (system-wide clock)."""
    max_rss: int
    """Largest sampled RSS (of the whole tree in tree mode), bytes."""
    max_hwm: int | None
    """Largest ``VmHWM`` of any single process seen (tree mode only), bytes."""
    limit_hit_at: float | None
    """Seconds after ``start`` when the limit was crossed, or None."""
    limit_hit_rss: int | None
    """The RSS that crossed the limit, or None."""
    exit_code: int | None = None
    """Spawn mode: the command's exit status (negative: killed by that signal)."""
    ru_maxrss: int | None = None
    """Spawn mode: the kernel's peak RSS of the command (``wait4``), bytes."""
    end: float | None = None
    """Spawn mode: seconds after ``start`` when the command's exit was seen."""
    spawner_hwm: int | None = None
    """Spawn mode: the sampler's own peak when it spawned the command; ``ru_maxrss`` above
    this is exact, at or below it only a bound (the kernel starts a program at its spawner's)."""
    leftovers_killed: int = 0
    """Spawn mode: processes of the run still running when the command ended, killed then."""
    tracking: str = ""
    """Spawn mode: how the run's processes were kept: ``cgroup``, ``subreaper`` or
    ``process-group`` (only the command's own group)."""
    limit_stack: dict[str, Any] | None = None
    """Spawn mode with ``stack_tool``: the Python stack read when the limit was crossed
    (``stack_dump.py``'s answer), or None (no limit stop)."""


def tree_source(
    processes: int, interval: float, sampled: float, own: float, own_source: str, exact: bool
) -> str:
    """Where a peak came from when the measured process started others (``processes`` in all,
    itself included): the sampler summed the RSS of the whole tree at each sample
    (``sampled`` at most); the process's own peak (``own``, from ``own_source``; ``exact``
    when it is the kernel's) stands when no sample of the sum went above it, and is named
    beside the sum otherwise."""
    tree = (
        f"the summed RSS of the process tree ({processes} processes: the measured one and "
        f"{processes - 1} it started), sampled every {interval * 1000:g} ms"
    )
    if exact and own >= sampled:
        return f"{own_source}; {tree}, never sampled above it"
    return (
        f"{tree}: a lower bound, the tree may have peaked between samples (the measured "
        f"process alone: {format_size(own)}, {own_source})"
    )


class Sampler:
    """Samples the RSS of a process from a separate process.

    Args:
        pid: the process to watch; ``None`` to start the sampler first and name the process
            with :meth:`attach` (sampling then begins the instant the process exists).
        interval: seconds between samples.
        tree: sum the RSS of ``pid`` and all its descendants, and track each one's ``VmHWM``.
        limit: bytes; when the sampled RSS crosses it, SIGKILL the process group ``kill_pgid``.
        kill_pgid: the process group to kill at the limit (required with ``limit``).
        max_points: the timeline's bound.
        spawn: start this command from the sampler itself (in a new session; its pid is in
            ``.pid`` after :meth:`start`) and sample its process tree until it exits; see
            :meth:`finish`.
        stdio: file descriptors to give the spawned command as its stdin, stdout, stderr;
            the sampler owns them: :meth:`start` closes them here once the sampler process
            has them (or could not be started).
        env: environment of the sampler (and so of the spawned command).
        status: a file where the sampler keeps its live figures for :meth:`live` (rewritten
            in place about every 0.1 s), or None.
        flush_grace: spawn mode with ``limit``: at the limit, first send the spawned process
            SIGUSR2 (it writes what it captured of its memory and exits) and kill the run only
            when it has not ended after this many seconds; None kills at once.
        stack_tool: spawn mode with ``limit``: py-spy's path; at the limit the spawned process
            is frozen and its Python stack read before it is stopped (``limit_stack``).
        announce: ``pid`` mode: the sampler says when its first sample is taken, so that
            :meth:`wait_until_sampling` can hold the measured block until the timeline covers
            it (a sampler starts in tens of milliseconds, hundreds on a loaded machine).
    """

    def __init__(
        self,
        pid: int | None,
        *,
        interval: float = 0.01,
        tree: bool = False,
        limit: int | None = None,
        kill_pgid: int | None = None,
        max_points: int = MAX_POINTS_DEFAULT,
        spawn: Sequence[str] | None = None,
        stdio: Sequence[int] | None = None,
        env: Mapping[str, str] | None = None,
        status: str | None = None,
        flush_grace: float | None = None,
        skip: Sequence[int] = (),
        stack_tool: str | None = None,
        announce: bool = False,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        if limit is not None and kill_pgid is None and pid is not None and spawn is None:
            raise ValueError("a limit needs a process group to kill")
        self.config: dict[str, Any] = {
            "pid": pid or 0,
            "interval": interval,
            "tree": tree,
            "limit": limit,
            "kill_pgid": kill_pgid,
            "max_points": max_points,
            "spawn": list(spawn) if spawn is not None else None,
            "stdio": list(stdio) if stdio is not None else None,
            "status": status,
            "flush_grace": flush_grace,
            "skip": list(skip),
            "stack_tool": stack_tool,
            "announce": announce and spawn is None and bool(pid),
        }
        self._env = dict(env) if env is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        #: The sampler's ``sampling`` line is still on its stdout, before the report.
        self._announcement_due = bool(self.config["announce"])
        #: The spawned command's pid (spawn mode), once :meth:`start` returned.
        self.pid: int | None = None
        #: Why the command could not be started (spawn mode), or None.
        self.spawn_error: str | None = None
        #: The run's cgroup directory (spawn mode, where one was made), or None.
        self.cgroup: str | None = None

    def start(self) -> Sampler:
        """Launch the sampler process; returns self."""
        # -E -s -S: no environment, no site: a bare interpreter starts in milliseconds. Without
        # /proc the child needs site-packages for psutil.
        flags = ["-E", "-s", "-S"] if HAS_PROC else []
        stdio = set(self.config["stdio"] or ())
        try:
            proc = self._proc = subprocess.Popen(
                [sys.executable, *flags, str(_CHILD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
                pass_fds=tuple(fd for fd in stdio if fd > 2),
                env=self._env,
            )
        finally:  # the sampler process holds its copies now: ours would keep pipes open
            for fd in stdio:
                with contextlib.suppress(OSError):
                    os.close(fd)
        try:
            # On stdin, not as an argument: a spawned command's arguments are part of it, and
            # Linux takes at most 128 KiB in one argument (``children/sampler_process.py``'s
            # ``read_config``).
            config = json.dumps(self.config).encode()
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):  # it died: its report (or none) says why
                proc.stdin.write(b"%d\n%s" % (len(config), config))
                proc.stdin.flush()
            if self.config["spawn"] is not None:
                self._read_started(proc)
        except BaseException:  # Ctrl-C, SIGTERM: the command may be running already
            self.abort()
            raise
        return self

    def _read_started(self, proc: subprocess.Popen[bytes]) -> None:
        """Spawn mode: the sampler's first line, the command's pid (and cgroup), or what kept
        the sampler from starting the command (then :attr:`spawn_error`)."""
        assert proc.stdout is not None
        first = _read_line(proc.stdout.fileno())
        if first.startswith(b"started "):
            words = first.decode(errors="replace").split(maxsplit=2)
            self.pid = int(words[1])
            self.cgroup = words[2].rstrip("\n") if len(words) > 2 else None
            return
        chunks = [first]
        _read_until_eof(proc, chunks, _STOP_TIMEOUT_S)
        rest = b"".join(chunks)
        proc.kill()
        proc.wait()
        self._proc = None
        self.spawn_error = "the sampler process ended before it started the command"
        with contextlib.suppress(ValueError, AttributeError):
            said = json.loads(rest or b"{}").get("spawn_error")
            self.spawn_error = str(said) if said else self.spawn_error

    def wait_until_sampling(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the first sample of a sampler created with
        ``announce``; True once it is taken (False: not within ``timeout``, or not asked)."""
        proc = self._proc
        if proc is None or proc.stdout is None or not self._announcement_due:
            return False
        line = _read_line(proc.stdout.fileno(), timeout)
        if not line.endswith(b"\n"):
            return False  # the rest of the line, if any, is taken off the report (stop)
        self._announcement_due = False
        return line == ANNOUNCED.encode()

    def finish(self, timeout: float | None = None) -> tuple[SamplerReport, bool]:
        """Spawn mode: wait for the command to end; at ``timeout`` have the whole run killed.

        On any exception here (Ctrl-C, a SIGTERM turned into an exception) the run is killed
        before the exception goes on: every process of it, not just the command's group.

        Returns:
            The report and whether the timeout was reached.
        """
        proc = self._proc
        if proc is None or self.pid is None:
            raise RuntimeError("no spawned command to wait for")
        timed_out = False
        chunks: list[bytes] = []
        try:
            if not _read_until_eof(proc, chunks, timeout):
                timed_out = True
                _ask_to_kill(proc)
                if not _read_until_eof(proc, chunks, _STOP_TIMEOUT_S):
                    self._kill_outright(proc)
            if proc.wait() != 0:  # the sampler itself died (killed, out of memory)
                self._kill_outright(proc)
        except BaseException:  # Ctrl-C, SIGTERM turned into an exception: never leave it running
            self.abort()
            raise
        self._proc = None  # only now: an exception before this line still finds the run to kill
        try:
            data = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            data = {}
        return _report_from(data, float(self.config["interval"])), timed_out

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Spawn mode: whatever ended the block (an error, Ctrl-C, a SIGTERM turned into an
        exception, anywhere from before :meth:`start` to the end of :meth:`finish`), the run
        does not outlive it (:meth:`abort`; nothing once the run has ended)."""
        self.abort()

    def abort(self) -> None:
        """Spawn mode: kill the whole run now, for an exception between :meth:`start` and the
        end of :meth:`finish` (Ctrl-C, a SIGTERM turned into an exception): the sampler is told
        to kill every process of the run and given its stop timeout to do so, then it, the
        command's group and the run's cgroup are killed outright. Killing the sampler alone
        would orphan the command, which would go on running (and holding the streams it
        shares with membound). Nothing once the run has ended."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        _ask_to_kill(proc)
        with contextlib.suppress(BaseException):  # a second Ctrl-C: kill outright below
            _read_until_eof(proc, [], _STOP_TIMEOUT_S)
        self._kill_outright(proc)

    def live(self) -> tuple[float, int, int] | None:
        """The sampler's latest figures (seconds since its start, RSS, highest RSS so far) from
        its status file, or None before the first (or without a status file)."""
        path = self.config["status"]
        if not path:
            return None
        try:
            with open(path, "rb") as f:
                words = f.read(128).split()
            return float(words[0]), int(words[1]), int(words[2])
        except (OSError, ValueError, IndexError):
            return None

    def _kill_outright(self, proc: subprocess.Popen[bytes]) -> None:
        """The sampler did not end the run in time: kill it, the command's group and the group."""
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if self.pid is not None:
            _killpg(self.pid)
        if self.cgroup:
            cgroups.remove(self.cgroup)

    def attach(self, pid: int, kill_pgid: int | None = None) -> None:
        """Name the process to watch (for a sampler created with ``pid=None``)."""
        if self._proc is None or self._proc.stdin is None:
            raise RuntimeError("sampler was not started")
        line = f"pid {pid}" + (f" {kill_pgid}" if kill_pgid is not None else "") + "\n"
        self._proc.stdin.write(line.encode())
        self._proc.stdin.flush()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._proc is not None

    def stop(self) -> SamplerReport:
        """Stop sampling and return the report."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("sampler was not started")
        self._proc = None
        try:
            out, _ = proc.communicate(b"stop\n", timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if self._announcement_due:  # said (or its rest) after the wait gave up: not the report
            out = out.split(b"\n", 1)[-1]
        try:
            data = json.loads(out or b"{}")
        except ValueError:
            data = {}
        return _report_from(data, float(self.config["interval"]))

    def __del__(self) -> None:  # pragma: no cover - safety net only
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self.pid is not None:  # the command's group first: never orphaned
                _killpg(self.pid)
            proc.kill()


def _read_line(fd: int, timeout: float | None = None) -> bytes:
    """One line, a byte at a time: a buffered read could take the report that follows it, and
    :func:`_read_until_eof` reads the descriptor itself. With ``timeout`` (seconds), what came
    by then: no line end when the time ran out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    line = bytearray()
    while not line.endswith(b"\n"):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return bytes(line)


def _ask_to_kill(proc: subprocess.Popen[bytes]) -> None:
    """Tell the sampler to kill every process of the run (spawn mode): a line, then EOF (the
    line still arrives if a forked process of ours holds a copy of the pipe)."""
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.write(b"kill\n")
            proc.stdin.flush()
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _read_until_eof(
    proc: subprocess.Popen[bytes], chunks: list[bytes], timeout: float | None
) -> bool:
    """Read the sampler's stdout into ``chunks`` until it closes; False at ``timeout``.

    Not ``communicate``: that closes stdin, which in spawn mode means "kill the run".
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return True
        chunks.append(chunk)


def _killpg(pgid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def _report_from(data: dict[str, Any], interval: float) -> SamplerReport:
    source = "sampler process reading /proc/PID/statm" if HAS_PROC else "sampler process (psutil)"
    times = data.get("times", [])
    timeline = Timeline(
        times=tuple(times),
        lows=tuple(data.get("lows", [])),
        highs=tuple(data.get("highs", [])),
        interval=interval,
        samples=int(data.get("samples", 0)),
        stride=int(data.get("stride", 1)),
        metric="rss",
        source=source,
        extra={
            "late_ticks": data.get("late_ticks", 0),
            "processes_seen": data.get("processes_seen", 0),
        },
    )
    hit = data.get("limit_hit")
    return SamplerReport(
        timeline=timeline,
        start=float(data.get("start", 0.0)),
        max_rss=int(data.get("max_rss", 0)),
        max_hwm=data.get("max_hwm"),
        limit_hit_at=float(hit["t"]) if hit else None,
        limit_hit_rss=int(hit["rss"]) if hit else None,
        exit_code=data.get("exit_code"),
        ru_maxrss=data.get("ru_maxrss"),
        spawner_hwm=data.get("spawner_hwm"),
        end=data.get("end"),
        leftovers_killed=int(data.get("leftovers_killed", 0)),
        tracking=str(data.get("tracking", "")),
        limit_stack=data.get("limit_stack"),
    )
