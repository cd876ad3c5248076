"""The Python lines whose calls grew malloc, for native memory no tracer saw allocated.

memray names the Python line under each ``malloc`` it intercepts; a call that reaches
``malloc`` by a pointer it looked up itself (ctypes' ``CDLL("libc.so.6").malloc``, a library
that resolved its allocator with ``dlsym``) passes no hook, and memray sees nothing. What is
always visible is malloc's own total (``mallinfo2``). Here one round of calls runs under
``sys.settrace``; at every event of a traced frame the total is read, and the change since the
last event is put on the line that was executing then, in the innermost frame. Within each call
of the target, a fall of the total cancels an earlier rise of exactly its size (the chunk that
was allocated there is the one freed: malloc counts a chunk's size in and out), else the most
recent rises; what is still standing when the call returns was kept, and is summed by line over
the round. A chunk freed in a later call (a cache that evicts as it adds) cancels the addition
of the same size, so churn keeps nothing.

No library reads malloc's growth line by line (memray, tracemalloc and Fil all hook the
allocator), hence this module. Its cost is a ``mallinfo2`` call per traced event (a few
microseconds): one round of the leak hunt's calls, only when the other means found no line.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from membound.measure import allocator
from membound.measure.heap import LIBRARY_DIRS, OWN_DIRS

__all__ = ["MallocLine", "malloc_lines"]

#: Frames kept in a line's trace (innermost first).
_TRACE_FRAMES = 8
#: Rises smaller than this are a Python object's storage resized, not worth a line.
_SMALLEST = 64
#: A line is named when it kept at least this much per call over the round: a container's
#: storage that grows in blocks (a deque's 64-entry blocks, a list's over-allocation) keeps a
#: block now and then, a few bytes per call on average, and gives it back later.
LEAST_PER_CALL = 64


@dataclass(frozen=True)
class MallocLine:
    """malloc growth kept over a round, grouped by the Python line executing when it grew."""

    file: str
    """The Python file."""
    line: int
    """The line."""
    size: int
    """Bytes kept over the round."""
    count: int
    """Rises kept over the round (a rise may be several allocations of one event)."""
    trace: tuple[str, ...]
    """Python frames, innermost first, as ``file:line`` (the first time the line kept)."""


def malloc_lines(
    func: Callable[[], Any], calls: int, limit: int = 5, least: float = LEAST_PER_CALL
) -> list[MallocLine]:
    """Call ``func`` ``calls`` times under a line tracer and return the lines under which
    malloc's total grew and stayed grown at each call's end, at least ``least`` bytes per call,
    biggest first (at most ``limit``). Empty where malloc's total cannot be read (not glibc) or
    nothing was kept."""
    if not allocator.untraced_available() or calls < 1:
        return []
    recorder = _Recorder()
    previous = sys.gettrace()
    sys.settrace(None)
    try:
        for _ in range(calls):
            recorder.start_call()
            sys.settrace(recorder.global_trace)
            try:
                func()
            finally:
                sys.settrace(None)
            recorder.end_call()
    finally:
        sys.settrace(previous)
    return [line for line in recorder.lines(limit) if line.size >= least * calls]


class _Recorder:
    """The trace functions and what they found (bounded: one entry per distinct line)."""

    def __init__(self) -> None:
        self._last = 0
        self._where: tuple[str, int] | None = None
        #: Rises of the call under way not yet cancelled: [size, where, trace].
        self._open: list[list[Any]] = []
        self._kept: Counter[tuple[str, int]] = Counter()
        self._count: Counter[tuple[str, int]] = Counter()
        self._traces: dict[tuple[str, int], tuple[str, ...]] = {}
        self._frame: FrameType | None = None

    def start_call(self) -> None:
        self._open.clear()
        self._where, self._frame = None, None
        self._last = allocator.malloc_in_use()

    def end_call(self) -> None:
        self._settle()
        for size, where, trace in self._open:
            self._kept[where] += size
            self._count[where] += 1
            self._traces.setdefault(where, trace)
        self._open.clear()

    def global_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename.startswith(OWN_DIRS):
            return None
        self._settle()
        self._at(frame)
        return self.local_trace

    def local_trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        self._settle()
        if event == "return":
            caller = frame.f_back
            if caller is not None and not caller.f_code.co_filename.startswith(OWN_DIRS):
                self._at(caller)
            else:
                self._where, self._frame = None, None
        else:
            self._at(frame)
        return self.local_trace

    def _at(self, frame: FrameType) -> None:
        self._where = (frame.f_code.co_filename, frame.f_lineno)
        self._frame = frame

    def _settle(self) -> None:
        """Put the change since the last event on the line that was executing."""
        now = allocator.malloc_in_use()
        change = now - self._last
        self._last = now
        if change >= _SMALLEST and self._where is not None:
            file, line = self._where
            caller = self._frame.f_back if self._frame is not None else None
            self._open.append([change, self._where, (f"{file}:{line}", *_stack(caller))])
        elif change < 0:
            self._cancel(-change)

    def _cancel(self, fall: int) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == fall:
                del self._open[i]
                return
        # No rise of exactly that size: a chunk of an earlier call (freed now), or several
        # chunks at once; the most recent rises go first, what is left was older memory.
        while fall > 0 and self._open:
            rise = self._open[-1]
            taken = min(rise[0], fall)
            rise[0] -= taken
            fall -= taken
            if rise[0] == 0:
                self._open.pop()

    def lines(self, limit: int) -> list[MallocLine]:
        found = [
            MallocLine(file, line, size, self._count[(file, line)], self._traces[(file, line)])
            for (file, line), size in self._kept.most_common()
            if size > 0
        ]
        return _prefer_user_lines(found)[:limit]


def _stack(frame: FrameType | None) -> tuple[str, ...]:
    out: list[str] = []
    while frame is not None and len(out) < _TRACE_FRAMES:
        if not frame.f_code.co_filename.startswith(OWN_DIRS):
            out.append(f"{frame.f_code.co_filename}:{frame.f_lineno}")
        frame = frame.f_back
    return tuple(out)


def _prefer_user_lines(found: list[MallocLine]) -> list[MallocLine]:
    """A line in a library (site-packages, the standard library) is named by the first line of
    the trace outside them, where there is one: the user's call that led into it."""
    out: dict[tuple[str, int], MallocLine] = {}
    for site in found:
        file, line = site.file, site.line
        if file.startswith(LIBRARY_DIRS):
            for entry in site.trace:
                path, _, number = entry.rpartition(":")
                if not path.startswith(LIBRARY_DIRS):
                    file, line = path, int(number)
                    break
        known = out.get((file, line))
        if known is None:
            out[(file, line)] = MallocLine(file, line, site.size, site.count, site.trace)
        else:
            out[(file, line)] = MallocLine(
                file, line, known.size + site.size, known.count + site.count, known.trace
            )
    return sorted(out.values(), key=lambda s: -s.size)
