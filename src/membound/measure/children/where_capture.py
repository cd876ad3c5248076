"""Where the memory was: the lines that held the heap's high-water mark and the end of a run.

Two engines, one answer (a list of site dicts, the fields of ``results.sites.PeakSite``):

- **memray** (preferred), in one of two formats chosen by the job. A run of its own (an isolated
  call, a command) *streams* every allocation to a file and keeps nothing per allocation in the
  measured process: memray's own memory stays a few MiB whatever the job does, so the job's RSS
  figures and a ``--limit`` sized from a run without ``where`` hold (measured on an lxml parse
  that keeps 2.8 M small mallocs, 374.7 MiB plain: +14 MiB streamed, +291 MiB aggregated; 1.5×
  and 4.6× the plain run's time). The file
  grows with the number of allocations (a few bytes each) and is read in another process after
  the run. A block inside a longer-lived process (``track``: a service, a test session, a
  notebook) uses the *aggregated* format, whose file does not grow with the run (DESIGN §5 rule
  4) but whose table of live allocations lives in the measured process (about 96 B per live
  allocation): its size at the end is measured as the capture closes and, with the live counts
  the capture holds, estimated at the peak and said beside the figures (DESIGN §5 rule 7). With
  ``where=True`` Python's own allocators are *not* traced (pymalloc's arenas are
  attributed to the line that made them: ~1.1× the untraced time, against 3–5× with them), so a
  site's bytes are what the line took from the system allocator; C code called from a line
  counts at that line, as Fil counts it. ``where="native"`` adds native stacks, which split
  what C code allocated (named by its innermost native function) from Python's objects.
- **tracemalloc** (fallback when memray is missing): tracemalloc has no hook at a new peak, so a
  thread polls the traced size every 10 ms and takes a snapshot whenever it reaches a new high
  (grouped at once and dropped: only the largest sites are kept), no sooner after the last than
  :data:`READ_WAIT_FACTOR` times that read's duration (each read walks every live block) unless
  the heap grew by a quarter since (:data:`READ_ANYWAY_GROWTH`). A
  peak shorter than a poll is missed, and the cost is tracemalloc's at 16 frames; both are said
  in ``where_source``, and tracemalloc's own memory in ``where_note``.

A memray capture is closed in the measured process and read by ``where_reader.py`` in a process of
its own (:func:`read_ticket`). Sites are grouped by the stack of the user's own frames: the
standard library, installed packages and membound are folded away, so a helper called from two
lines is two sites, each with its caller in ``trace``. Standard library only (memray when it is
used) and importing nothing of membound: the isolated-run child and the heap runner of commands
load this file by path.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import json
import os
import re
import runpy
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

__all__ = [
    "MAX_SITES",
    "SERVED_READER",
    "Capture",
    "MemrayCapture",
    "ServedReader",
    "TracemallocCapture",
    "finish_here",
    "folder_disk_use",
    "group_sites",
    "install_flush",
    "is_user_file",
    "malloc_in_use",
    "padded",
    "prepare_capture",
    "read_ticket",
    "resident",
    "statistics_stacks",
    "summed_traces",
    "traced_stacks",
]

if TYPE_CHECKING:
    import membound._proc as _PROC
else:
    # ``membound/_proc.py``, the one reader of ``statm`` (the imported module where there is
    # one), loaded by ``siblings.py`` beside this file.
    _PROC = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "siblings.py"))[
        "load"
    ]("membound._proc")

#: Named sites at most; smaller ones are summed in one ``other`` row.
MAX_SITES = 10
#: A site under this share of the total is summed in the ``other`` row too (noise: a few KiB).
MIN_SHARE = 0.001
#: User frames kept per site (innermost first): enough to name the caller's callers.
MAX_TRACE = 8
#: tracemalloc's frames per allocation in the fallback: library frames count against it.
TRACEMALLOC_FRAMES = 16
#: The fallback's polling interval, seconds.
POLL_S = 0.01
#: After a read of tracemalloc's traces the fallback waits this many times the read's own
#: duration before the next: reads (which hold the GIL, so the job waits) then take at most a
#: fifth of the run, besides those :data:`READ_ANYWAY_GROWTH` makes. Reading at every 5 % new
#: high cost a csv job 14.7 s where tracing alone took 3.0 s (Python 3.10, 1.2 M live blocks:
#: ~150 reads of a growing heap).
READ_WAIT_FACTOR = 4.0
#: A heap this many times the last read's is read at once, wait or not: a peak well above the
#: last read is never left to a wait, and reads at every 25 % cost at most about five times
#: the last one, in all. At every doubling (twice the last read) a short peak 1.4x over a
#: transient read before it passed unread under load: a test job's peak was named at an
#: import's line.
READ_ANYWAY_GROWTH = 1.25

_HERE = os.path.dirname(os.path.abspath(__file__))
#: ``src/membound``: this file is in ``measure/children/``.
_MEMBOUND = os.path.dirname(os.path.dirname(_HERE))
#: Code that is not the user's: the standard library, installed packages, membound itself.
_LIBRARY_DIRS = tuple(
    sorted(
        {
            os.path.realpath(p)
            for p in (
                *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib")),
                *(sysconfig.get_paths().get(k) for k in ("purelib", "platlib")),
                _MEMBOUND,
            )
            if p
        }
    )
)


@functools.lru_cache(maxsize=4096)  # files, not allocations: bounded by the code's size
def is_user_file(path: str) -> bool:
    """True for the user's own code: not the standard library, an installed package, membound,
    or code a library generated. Notebook cells and ``-c`` code (``<string>``) are the user's."""
    if path.startswith("<"):
        # ``-c`` code, stdin and IPython cells are the user's; other pseudo-files are code that
        # a library generated (a Jinja template's compiled code, namedtuple's methods, attrs'
        # and SQLAlchemy's wrappers, frozen imports): their lines cannot be opened, so the
        # user's line that called them names the site.
        return path in ("<string>", "<stdin>") or path.startswith(("<ipython-input", "<cell"))
    real = os.path.realpath(path) if os.path.isabs(path) else path
    if any(real == d or real.startswith(d + os.sep) for d in _LIBRARY_DIRS):
        return False
    parts = real.split(os.sep)
    # Another interpreter's packages (the command may run in a venv of its own), and packages
    # installed into a folder of their own on the path (``pip install --target``, a vendored
    # or zipapp-style layout): their folder holds the distributions' ``*.dist-info``.
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not (os.path.isabs(real) and _installed_here(_package_root(os.path.dirname(real))))


def _package_root(folder: str) -> str:
    """The folder a module's top-level package sits in: up from ``folder`` past every folder
    that is a package (has an ``__init__.py``)."""
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folder


@functools.lru_cache(maxsize=256)  # folders on the path: bounded by the code's size
def _installed_here(folder: str) -> bool:
    """True when ``folder`` holds installed distributions' metadata (``*.dist-info``): what is
    imported from it was installed, not written by the user. Not ``*.egg-info``: setuptools
    writes one into the user's own project folder when it builds it (an editable install)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return any(name.endswith(".dist-info") for name in names)


def _site_key(
    frames: Sequence[tuple[str, str, int]],
) -> tuple[tuple[str, str, int], tuple[str, ...]]:
    """The innermost user frame (function, file, line) and the user frames' ``file:line``,
    innermost first; the innermost frame of all when no frame is the user's."""
    user: list[tuple[str, str, int]] = []
    generated = _made_by_code_outside(frames)
    for index, frame in enumerate(frames):
        # A comprehension's own frame (before 3.12) stands on its function's line: one place.
        if not is_user_file(frame[1]) or generated[index]:
            continue
        if user and user[-1][1:] == frame[1:]:
            if user[-1][0].startswith("<"):  # name the function, not ``<listcomp>``
                user[-1] = frame
            continue
        user.append(frame)
        if len(user) == MAX_TRACE:
            break
    if not user:
        user = list(frames[:1]) or [("(unknown)", "(unknown)", 0)]
    return user[0], tuple(f"{file}:{line}" for _func, file, line in user)


#: The standard library: with membound, the code that runs a program, not the program.
_STDLIB_DIRS = tuple(
    os.path.realpath(p)
    for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib"))
    if p
)


def _made_by_code_outside(frames: Sequence[tuple[str, str, int]]) -> list[bool]:
    """Per frame: a ``<string>`` frame that code in a real file further out generated (the
    ``__init__`` dataclasses and attrs write with ``exec``, a namedtuple's methods): a
    library's code, whose line cannot be opened; the user's line that called it names the
    site. ``-c`` code is ``<string>`` down to its last frame (beside the standard library's and
    membound's, which run it)."""
    made = [False] * len(frames)
    outside = False
    for i in range(len(frames) - 1, -1, -1):
        path = frames[i][1]
        made[i] = outside and path in ("<string>", "<stdin>")
        if not path.startswith("<") and not _runs_programs(path):
            outside = True
    return made


@functools.lru_cache(maxsize=4096)  # files, not allocations: bounded by the code's size
def _runs_programs(path: str) -> bool:
    """True for membound's and the standard library's files (not an installed package's)."""
    real = os.path.realpath(path) if os.path.isabs(path) else path
    if real == _MEMBOUND or real.startswith(_MEMBOUND + os.sep):
        return True
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return any(real == d or real.startswith(d + os.sep) for d in _STDLIB_DIRS)


def _own(frames: Sequence[tuple[str, str, int]]) -> bool:
    """True when membound's own measuring code made the allocation (every frame is
    membound's, or memray's set-up): overhead, not the workload."""
    own = _MEMBOUND
    return bool(frames) and all(f[1].startswith(own) for f in frames)


def thread_kind(name: str | None) -> str | None:
    """A thread's name with its numbers as ``N`` (``ThreadPoolExecutor-0_3`` →
    ``ThreadPoolExecutor-N_N``): the threads of one pool are one kind. None for the main
    thread (no name, or ``MainThread``)."""
    if not name or name == "MainThread":
        return None
    return re.sub(r"\d+", "N", name)


def _threads_named(names: set[str] | None) -> str | None:
    """One thread's name, or how many of one kind (``4 threads like ThreadPoolExecutor-0_0``)."""
    if not names:
        return None
    first = min(names)
    if len(names) == 1:
        return first
    more = "+" if len(names) >= MAX_THREADS else ""
    return f"{len(names)}{more} threads like {first}"


def group_sites(
    stacks: Iterable[Sequence[Any]],
    total: int | None = None,
) -> list[dict[str, Any]]:
    """Site dicts, largest first: ``MAX_SITES`` named, then an ``other`` remainder.

    Args:
        stacks: ``(frames, bytes, kind, native_symbol)`` per allocation stack, or with a fifth
            item, the name of the thread that allocated (None: the main thread), and a sixth,
            the pid of the forked process that allocated (None: the measured one); frames are
            ``(function, file, line)``, innermost first. A site made by other threads names
            the thread, or how many of one kind (:func:`thread_kind`); one made in forked
            processes, the process or how many.
        total: the traced total ``share`` is a fraction of (default: the sum of ``bytes``).
    """
    sizes: dict[tuple[Any, ...], int] = {}
    heads: dict[tuple[Any, ...], tuple[str, str, int]] = {}
    threads: dict[tuple[Any, ...], set[str]] = {}
    pids: dict[tuple[Any, ...], set[str]] = {}
    own = 0
    for entry in stacks:
        frames, size, kind, symbol = entry[:4]
        thread = entry[4] if len(entry) > 4 else None
        pid = entry[5] if len(entry) > 5 else None
        if size <= 0:
            continue
        if _own(frames):
            own += size
            continue
        head, trace = _site_key(frames)
        key = (kind, symbol, trace, thread_kind(thread), pid is not None)
        sizes[key] = sizes.get(key, 0) + size
        heads.setdefault(key, head)
        if key[3] is not None:
            names = threads.setdefault(key, set())
            if len(names) < MAX_THREADS:
                names.add(str(thread))
        if pid is not None:
            forked = pids.setdefault(key, set())
            if len(forked) < MAX_THREADS:
                forked.add(str(pid))
    # membound's own allocations are left out of the rows, so out of the whole too.
    whole = (total - own) if total else sum(sizes.values())
    ranked = sorted(
        sizes.items(), key=lambda item: (-item[1], item[0][2], item[0][3] or "", item[0][4])
    )
    named = [item for item in ranked[:MAX_SITES] if not whole or item[1] / whole >= MIN_SHARE]
    out: list[dict[str, Any]] = []
    for key, size in named:
        kind, symbol, trace, _thread, _forked = key
        function, file, line = heads[key]
        out.append(
            {
                "file": file,
                "line": line,
                "function": function,
                "bytes": size,
                "share": size / whole if whole else 0.0,
                "kind": kind,
                "trace": list(trace),
                "native_symbol": symbol,
                "thread": _threads_named(threads.get(key)),
                "process": _processes_named(pids.get(key)),
            }
        )
    rest = ranked[len(named) :]
    if rest:
        size = sum(s for _k, s in rest)
        out.append(
            {
                "file": "(other)",
                "line": 0,
                "function": f"{len(rest)} smaller site{'s' if len(rest) > 1 else ''}",
                "bytes": size,
                "share": size / whole if whole else 0.0,
                "kind": "other",
                "trace": [],
                "native_symbol": None,
                "thread": None,
                "process": None,
            }
        )
    return out


def _processes_named(pids: set[str] | None) -> str | None:
    """``forked process 4121``, or how many (``3 forked processes like 4121``)."""
    if not pids:
        return None
    first = min(pids, key=int)
    if len(pids) == 1:
        return f"forked process {first}"
    more = "+" if len(pids) >= MAX_THREADS else ""
    return f"{len(pids)}{more} forked processes like {first}"


#: Threads whose start a capture remembers, at most (the first ones started).
MAX_THREADS = 256
#: Frames kept of the code that started a thread (innermost first).
_START_FRAMES = 32


class ThreadOrigins:
    """Who started each thread while a capture runs: the frames that called
    ``threading.Thread.start``, by the thread's name (memray names a record's thread, not where
    it came from). A library's worker thread allocates under library frames only; the line of
    the user's code that led to its start is then the site (``pandas.read_csv(..., engine=
    "pyarrow")`` rather than a line in pyarrow). Bounded: the first ``MAX_THREADS`` threads."""

    def __init__(self) -> None:
        self.frames: dict[str, list[tuple[str, str, int]]] = {}
        self._original: Any = None

    def install(self) -> None:
        """Wrap ``threading.Thread.start`` until :meth:`remove`."""
        if self._original is not None:
            return
        original = threading.Thread.start
        frames = self.frames

        def start(thread: threading.Thread) -> None:
            if len(frames) < MAX_THREADS and thread.name not in frames:
                frames[thread.name] = _calling_frames(sys._getframe(1))
            original(thread)

        start.__doc__ = original.__doc__
        self._original = original
        threading.Thread.start = start  # type: ignore[method-assign,assignment]

    def remove(self) -> None:
        """Put ``threading.Thread.start`` back."""
        if self._original is not None:
            threading.Thread.start = self._original  # type: ignore[method-assign]
            self._original = None

    def save(self, folder: str) -> None:
        """Write what was found beside the capture (``threads.json``)."""
        with open(os.path.join(folder, "threads.json"), "w", encoding="utf-8") as out:
            json.dump(self.frames, out)


def _calling_frames(frame: Any) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    while frame is not None and len(out) < _START_FRAMES:
        code = frame.f_code
        out.append((code.co_name, code.co_filename, frame.f_lineno))
        frame = frame.f_back
    return out


#: Frames :func:`padded` puts between a started tracker and the measured call.
PAD_FRAMES = 8


def padded(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func`` through :data:`PAD_FRAMES` frames of membound's own.

    Each Python frame that returns after memray started, having been entered before (the
    ``__enter__`` of a context manager, a generator-based one's yield, a pytest hook wrapper's
    yield), costs memray's stack its outermost frame pushed later (measured here: k such
    returns lose k - 1 frames). The padding frames are lost instead of the user's, and being
    membound's they are folded away from every site anyway.
    """
    return _pad(PAD_FRAMES, func, args, kwargs)


def _pad(depth: int, func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    if depth:
        return _pad(depth - 1, func, args, kwargs)
    return func(*args, **kwargs)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


@functools.lru_cache(maxsize=1)
def _mallinfo2() -> Any:
    """glibc's ``mallinfo2`` through ctypes, or None (another C library, glibc < 2.33). The
    library side reads it in ``measure/allocator.py``; this file is run by path in children
    and imports nothing of membound, hence its own few lines."""
    try:
        func = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    func.restype = _MallInfo2
    func.argtypes = []
    return func


def malloc_in_use() -> int | None:
    """Bytes malloc has handed out and not had back in this process (small chunks and mapped
    ones), or None where ``mallinfo2`` is missing."""
    func = _mallinfo2()
    if func is None:
        return None
    info = func()
    return int(info.uordblks + info.hblkhd)


def _nothing() -> None:
    """What :attr:`MemrayCapture.enter` is before a tracker is made, and the fallback's."""


#: A streamed capture's files (the run's and those of the processes it forks) stop growing at
#: about this many bytes, or a quarter of the free space where they are written if that is
#: less: each process then stops tracing, and the sites are those of the run until then. At a
#: few bytes per allocation, 1 GiB holds a few hundred million of them (minutes of the densest
#: parse measured here, hours of most jobs). ``MEMBOUND_CAPTURE_BOUND`` (bytes) sets another.
STREAM_BOUND = 1 << 30
#: How often the bound is checked, seconds.
_BOUND_POLL_S = 0.25


def folder_disk_use(folder: str) -> int:
    """The disk the folder's files take (their blocks: what a file of holes would not)."""
    try:
        with os.scandir(folder) as entries:
            return sum(e.stat().st_blocks * 512 for e in entries if e.is_file())
    except OSError:
        return 0


class _StreamBound:
    """Keeps a streamed capture's disk use bounded (:data:`STREAM_BOUND`): a thread reads the
    folder's size every :data:`_BOUND_POLL_S` and calls ``stop`` once it reaches the bound. A
    process the run forks watches the same folder and stops its own tracing the same way."""

    def __init__(self, folder: str, stop: Callable[[], None]) -> None:
        self.folder = folder
        self._stop = stop
        try:
            free = shutil.disk_usage(folder).free // 4
        except OSError:
            free = STREAM_BOUND
        asked = os.environ.get("MEMBOUND_CAPTURE_BOUND", "")
        self.limit = int(asked) if asked.isdigit() else min(STREAM_BOUND, free)
        #: Seconds from the start to the stop, when the bound stopped this process's tracing.
        self.stopped_after: float | None = None
        self._done = threading.Event()
        self._t0 = time.monotonic()

    def start(self) -> _StreamBound:
        """Start watching (and in every process forked from here on, while this one runs)."""
        self._t0 = time.monotonic()
        self._thread()
        _WATCHED.append(self)
        if not _FORK_HOOK:  # once per process: a hook cannot be taken back
            os.register_at_fork(after_in_child=_watch_in_child)
            _FORK_HOOK.append(True)
        return self

    def _thread(self) -> None:
        threading.Thread(target=self._watch, name="membound-capture-bound", daemon=True).start()

    def _watch(self) -> None:
        while not self._done.wait(_BOUND_POLL_S):
            if folder_disk_use(self.folder) >= self.limit:
                self.stopped_after = time.monotonic() - self._t0
                self._stop()
                # said beside the capture: a forked process has no other way to tell
                with open(os.path.join(self.folder, f"stopped.{os.getpid()}"), "w") as said:
                    said.write(f"{self.stopped_after:.3f}")
                return

    def end(self) -> None:
        """Stop watching."""
        self._done.set()
        if self in _WATCHED:
            _WATCHED.remove(self)


#: The bounds being watched in this process (one per running streamed capture, at most a few).
_WATCHED: list[_StreamBound] = []
#: Whether this process registered :func:`_watch_in_child` (empty until it does).
_FORK_HOOK: list[bool] = []


def _watch_in_child() -> None:
    """In a forked process: memray traces it into a file of its own in the same folder, and the
    parent's watching thread did not come along; watch here too."""
    for bound in _WATCHED:
        bound._thread()


class _SpareFolder:
    """One emptied capture folder of this process, kept for its next capture.

    A capture that is dropped unread (a small test under ``--membound-where``) leaves a folder
    to remove, and making and removing a folder costs more than the small capture in it where
    the file system discards freed blocks at once (ext4 mounted with ``discard``: 3 ms a
    folder against 0.2 ms for a file, measured). At most one is kept, only by the process that
    made it (a forked child makes its own), and it is removed at exit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[int, str] | None = None  # (the pid that kept it, the folder)
        atexit.register(self.remove)

    def take(self) -> str | None:
        """The kept folder (now the caller's), or None."""
        with self._lock:
            kept, self._kept = self._kept, None
        if kept is not None and kept[0] == os.getpid() and os.path.isdir(kept[1]):
            return kept[1]
        return None

    def keep(self, folder: str) -> None:
        """Empty ``folder`` and keep it, or remove it when one is kept already."""
        try:
            for name in os.listdir(folder):
                os.unlink(os.path.join(folder, name))
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return
        with self._lock:
            if self._kept is None or self._kept[0] != os.getpid():
                self._kept = (os.getpid(), folder)
                return
        shutil.rmtree(folder, ignore_errors=True)

    def remove(self) -> None:
        """Remove the kept folder (at exit)."""
        folder = self.take()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


_SPARE = _SpareFolder()


class MemrayCapture:
    """One memray tracker for the heap figures, the sites, or both.

    Args:
        sites: read the sites at the high-water mark and at the end.
        native: record native stacks (``where="native"``): C code's allocations are named apart.
        python_allocators: trace Python's allocators too (``heap="memray"``: every object as
            tracemalloc sees it; costs 3–5×); without them pymalloc's arenas are attributed to
            the line that made them.
        streamed: write every allocation to the file instead of aggregating them in this
            process (see the module docstring: for a run of its own; not with
            ``python_allocators``, whose records would be every object the run makes).
    """

    def __init__(
        self,
        *,
        sites: bool,
        native: bool = False,
        python_allocators: bool = False,
        streamed: bool = False,
    ):
        self.sites = sites
        self.native = native
        self.python_allocators = python_allocators
        self.streamed = streamed and not python_allocators
        self._folder = ""
        self._spare_ok = False
        self._tracker: Any = None
        self._outer: tuple[str, str, int] | None = None
        self._threads = ThreadOrigins()
        self.enter: Callable[[], object] = _nothing
        #: What the code that runs the measured program, memray with it, added to the RSS
        #: before the program began, where that was measured (a command's runner), bytes.
        self.start_cost: int | None = None
        self._bound: _StreamBound | None = None
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def source(self) -> str:
        """How the sites were captured, in words."""
        how = "native stacks" if self.native else "Python stacks"
        form = "streamed capture" if self.streamed else "aggregated capture"
        return f"memray at the high-water mark ({how}, {form})"

    def prepare(
        self, outer: tuple[str, str, int] | None = None, within: str | None = None
    ) -> MemrayCapture:
        """Make the tracker; :attr:`enter` starts it. Returns self.

        memray's Python stacks start from the frame that starts the tracker, and every Python
        frame that returns after that point, having been entered before it, throws its record
        of the stack off (measured: one such return loses the frames that were live at the
        start, two lose one more frame pushed later). So the caller starts the tracker itself,
        in its own frame, by calling :attr:`enter` (memray's compiled ``__enter__``: no Python
        frame of its own), and returns at most once before the measured code runs.

        Args:
            outer: the frame that runs the measured block, ``(function, file, line)``: added as
                the outermost frame of every stack, since memray cannot see it once the
                caller's frame has returned (a ``with`` block's own lines).
            within: the folder to make the capture's folder in (a parent's temporary folder,
                removed with it even when this process is killed before the capture closes);
                the system's temporary folder when None.

        Raises:
            ImportError: memray is not installed.
            RuntimeError: another memray tracker is active in this process.
        """
        import threading

        import memray

        # memray's Tracker installs this hook for new threads while it runs: another tracker
        # is active (memray run, pytest-memray, an outer block).
        if threading._profile_hook is getattr(memray._memray, "start_thread_trace", None):
            raise RuntimeError("another memray tracker is already active in this process")
        self._outer = outer
        self._spare_ok = within is None  # a folder in another's is removed with that one
        spare = _SPARE.take() if self._spare_ok else None
        self._folder = spare or tempfile.mkdtemp(prefix="membound-memray-", dir=within)
        destination = memray.FileDestination(
            os.path.join(self._folder, "heap.bin"), overwrite=True, compress_on_exit=False
        )
        self._tracker = memray.Tracker(
            destination=destination,
            native_traces=self.native,
            trace_python_allocators=self.python_allocators,
            # A streamed capture follows the processes the run forks (a Pool's workers): each
            # writes ``heap.bin.<pid>`` beside it, read with it. The aggregated format cannot
            # (a forked child's file was left unreadable in a trial).
            follow_fork=self.streamed,
            file_format=(
                memray.FileFormat.ALL_ALLOCATIONS
                if self.streamed
                else memray.FileFormat.AGGREGATED_ALLOCATIONS
            ),
        )
        self.enter = self._tracker.__enter__
        if self.streamed:
            self._bound = _StreamBound(self._folder, self.stop_early).start()
        self._threads.install()
        return self

    def stop_early(self) -> None:
        """Stop tracking before the run ends (its files reached their bound, in this process
        or a forked one); :meth:`close` then hands over what was captured until then."""
        with self._lock:
            if self._tracker is not None and not self._stopped:
                self._tracker.__exit__(None, None, None)
                self._stopped = True

    def discard(self) -> None:
        """Forget a tracker that could not start."""
        if self._bound is not None:
            self._bound.end()
            self._bound = None
        self._tracker = None
        self._threads.remove()
        shutil.rmtree(self._folder, ignore_errors=True)

    def close(self) -> dict[str, Any]:
        """Stop tracking and hand over what reading the capture needs (a ``ticket``): the
        capture is read by :func:`read_ticket` in another process, so that reading it (native
        symbols above all: hundreds of MiB for a large library) never counts in the measured
        process's memory nor holds it up at a limit. Empty when it was not running."""
        if self._tracker is None:
            return {}
        bound = self._bound
        if bound is not None:
            bound.end()
        # The aggregated format's tables are freed as the tracker stops: what malloc gives back
        # then is their size at the end (memray's own allocations are not traced, so nothing
        # else of the run's is freed here).
        before = malloc_in_use()
        with self._lock:
            if not self._stopped:
                self._tracker.__exit__(None, None, None)
        after = malloc_in_use()
        tables = (
            max(0, before - after)
            if before is not None and after is not None and not self.streamed
            else None
        )
        self._tracker = None
        self._threads.remove()
        self._threads.save(self._folder)
        return {
            "ticket": {
                "folder": self._folder,
                "sites": self.sites,
                "native": self.native,
                "python_allocators": self.python_allocators,
                "streamed": self.streamed,
                "tables_at_end": tables,
                "start_cost": self.start_cost,
                "bound": bound.limit if bound is not None else None,
                "stopped_after": bound.stopped_after if bound is not None else None,
                "outer": list(self._outer) if self._outer else None,
                "source": self.source,
            }
        }

    def stop(self) -> dict[str, Any]:
        """Stop tracking and read the capture in a fresh process of this interpreter
        (``where_reader.py``); the figures as :func:`read_ticket` returns them."""
        return read_ticket(self.close(), sys.executable)

    def drop(self) -> None:
        """Stop tracking and remove the capture unread: the caller wants no sites from it
        (reading one costs about 20 ms, most of a small block's cost)."""
        self.close()
        if self._spare_ok:
            _SPARE.keep(self._folder)
        else:
            shutil.rmtree(self._folder, ignore_errors=True)


def read_ticket(
    figures: dict[str, Any], python: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``figures`` with a memray ``ticket`` replaced by what the capture holds, read by
    ``python`` (the interpreter that wrote it, with ``env``: the memray it was lent) in a
    process of its own; figures without a ticket come back as they are. A capture that cannot
    be read is said in ``where_note``."""
    ticket = figures.get("ticket")
    if not ticket:
        return figures
    rest = {k: v for k, v in figures.items() if k != "ticket"}
    if python == sys.executable and env is None:
        # This interpreter's own captures (a block, a test, an isolated call): one reader
        # process serves them all. One that could not answer falls back to a reader of its own.
        answer = SERVED_READER.read(ticket)
        if answer is not None:
            if "error" in answer:
                shutil.rmtree(ticket["folder"], ignore_errors=True)
                return {**rest, "where_note": f"the capture could not be read: {answer['error']}"}
            return _with_read(rest, ticket, answer["read"])
    try:
        done = subprocess.run(
            [python, os.path.join(_HERE, "where_reader.py"), json.dumps(ticket)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(ticket["folder"], ignore_errors=True)
        return {**rest, "where_note": f"the capture could not be read: {exc}"}
    if done.returncode != 0:
        shutil.rmtree(ticket["folder"], ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {**rest, "where_note": f"the capture could not be read: {last}"}
    return _with_read(rest, ticket, json.loads(done.stdout))


def _with_read(
    rest: dict[str, Any], ticket: dict[str, Any], read: dict[str, Any]
) -> dict[str, Any]:
    if ticket.get("python_allocators") and rest.get("heap_overhead") is None:
        # memray measured the heap: its table is the heap tracer's own memory.
        read["heap_overhead"] = read.get("tracer_overhead")
    merged = {**rest, **read}
    # The heap traced by an engine of its own beside the capture (tracemalloc, with ``--where``
    # and ``--heap``): the heap figures are that engine's, as ``heap_source`` names it; the
    # capture's own are in ``where_source``.
    merged.update({k: rest[k] for k in ("heap_current", "heap_peak") if k in rest})
    return merged


class ServedReader:
    """One ``where_reader.py --serve`` process that reads this interpreter's captures one
    after another: a reader's start (an interpreter and memray's import, 0.14 s) is paid once,
    not once a capture — most of what ``--membound-where`` cost a suite of small tests.

    Started at the first capture, detached: the process that starts it ends at once, so the
    reader is no child of this one (a program that waits for all its children, or counts
    them, never finds it). It ends when its input closes: when this process exits or is
    killed (the pipe closes with it), and when a forked child of this one would keep a copy
    open (the child closes its copies); after a read that left it holding more than
    :data:`SERVED_READER_MAX_RSS` (symbols of a large library), so that it never keeps more
    than one read's memory for long; and it is killed after an answer that did not come
    within :data:`SERVED_READER_TIMEOUT_S`. A reader that is gone is started again.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipes: tuple[Any, Any] | None = None  # (its stdin, its stdout)
        #: The serving reader's pid (0 when none runs).
        self.pid = 0
        self._owner = 0
        self._cannot_start = False
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forget_in_child)

    def _forget_in_child(self) -> None:
        """In a forked child: its copies of the pipes are closed (the reader must see the end
        of its input when the process that started it ends, whatever children outlive it),
        and a lock another thread held at the fork is made anew."""
        self._lock = threading.Lock()
        self._close_pipes()

    def read(self, ticket: dict[str, Any]) -> dict[str, Any] | None:
        """The reader's answer for ``ticket`` (``{"read": …}`` or ``{"error": …}``); None when
        no reader could answer (the caller reads it in a process of its own)."""
        with self._lock:
            # Twice at most: a reader found gone (ended after a large read, killed) is started
            # again for this capture; one that fails on it as well leaves it to the caller.
            for _ in range(2):
                pipes = self._running()
                if pipes is None:
                    return None
                into, out = pipes
                try:
                    into.write(json.dumps(ticket).encode() + b"\n")
                    into.flush()
                    line = _line_within(out.fileno(), SERVED_READER_TIMEOUT_S)
                except OSError:  # its end of the pipe is closed: it is gone
                    line = b""
                if line:
                    answer: dict[str, Any] = json.loads(line)
                    return answer
                self._end(kill=line is None)  # None: no answer in time, it is stuck
                if line is None:
                    return None
            return None

    def _running(self) -> tuple[Any, Any] | None:
        if self._pipes is not None and self._owner == os.getpid():
            return self._pipes
        self._close_pipes()
        if self._cannot_start:
            return None
        command = [sys.executable, os.path.join(_HERE, "where_reader.py"), "--serve"]
        try:
            starter = subprocess.Popen(
                [*command, str(SERVED_READER_MAX_RSS)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError:
            return None
        assert starter.stdout is not None
        pipes = (starter.stdin, starter.stdout)
        try:
            starter.wait(timeout=SERVED_READER_TIMEOUT_S)  # it forks the reader and ends
            first = _line_within(starter.stdout.fileno(), SERVED_READER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            starter.kill()
            starter.wait()
            first = None
        if not first or not first.strip().isdigit():
            # It cannot start here (no fork, an interpreter that fails): every capture of
            # this process is read by a reader of its own, as before, without trying again.
            self._pipes, self._cannot_start = pipes, True
            self._close_pipes()
            return None
        self._pipes, self.pid, self._owner = pipes, int(first), os.getpid()
        return self._pipes

    def _close_pipes(self) -> None:
        pipes, self._pipes, self.pid = self._pipes, None, 0
        for stream in pipes or ():
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def _end(self, kill: bool = False) -> None:
        """Let the reader go (it ends at the end of its input); ``kill``: it is stuck."""
        pid = self.pid
        self._close_pipes()
        if kill and pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        """End the reader (at exit), waiting up to a second for it to go: a run that counts
        what its command left running (``membound run``) must not find it still ending."""
        with self._lock:
            if self._owner != os.getpid():
                return
            pid = self.pid
            self._end()
            deadline = time.monotonic() + 1.0
            while pid and _PROC.running(pid) and time.monotonic() < deadline:
                time.sleep(0.005)


#: A served reader's answer waits at most this long (as a reader of its own would).
SERVED_READER_TIMEOUT_S = 300.0
#: A served reader left holding more than this after a read ends, the next read starts anew.
SERVED_READER_MAX_RSS = 256 * 2**20


def _line_within(fd: int, timeout: float) -> bytes | None:
    """One line from ``fd`` within ``timeout`` seconds; ``b""`` when its writer ended before
    one, None on a timeout."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b""
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            return b"".join(chunks)


#: This interpreter's served reader.
SERVED_READER = ServedReader()
atexit.register(SERVED_READER.close)


class TracemallocCapture:
    """The fallback without memray: tracemalloc polled for its highs (see the module docstring).

    When tracemalloc already traces (``heap=True`` in the same block), its setting stays; it is
    started here (with :data:`TRACEMALLOC_FRAMES` frames) otherwise, before any heap figure is
    read from it.
    """

    source = (
        f"tracemalloc polled every {POLL_S * 1000:g} ms at its highs (memray is not installed: "
        "a shorter peak is missed; Python allocations only; each allocation traced with "
        f"{TRACEMALLOC_FRAMES} frames takes 7× to 20× the time, and tracemalloc's own records "
        "are in the RSS figures, up to several times the job's own memory)"
    )

    def __init__(self) -> None:
        self._started = False
        self._best = 0
        self._best_sites: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._base = 0
        # tracemalloc's own memory (its record of each traced block and each traceback), the
        # largest seen at a poll: resident, so inside the RSS figures, and not the job's.
        self._own_peak = 0
        self._next_read = 0.0  # time.monotonic() before which no read is taken (but the last)
        self._read_peak = 0  # the most RSS a read of the traces added while it was held
        # Blocks this capture and tracemalloc itself allocate (the snapshot's own lists).
        self._excluded = frozenset({tracemalloc.__file__, __file__})

    #: Nothing to start in the caller's frame (see :meth:`MemrayCapture.prepare`).
    enter = staticmethod(_nothing)

    def prepare(self, outer: tuple[str, str, int] | None = None) -> TracemallocCapture:
        """Begin tracing and polling (tracemalloc sees every frame); returns self."""
        return self.start()

    def start(self) -> TracemallocCapture:
        """Begin tracing and polling; returns self."""
        if not tracemalloc.is_tracing():
            tracemalloc.start(TRACEMALLOC_FRAMES)
            self._started = True
        self._base = tracemalloc.get_traced_memory()[0]
        self._thread = threading.Thread(target=self._poll, name="membound-where", daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            self.check()

    def check(self, last: bool = False) -> bool:
        """Take a snapshot when the traced size has reached a new high (5 % over the last),
        once the wait after the last read is over (``last``: whatever the wait); whether it
        took one."""
        if self._started and tracemalloc.is_tracing():
            self._own_peak = max(self._own_peak, tracemalloc.get_tracemalloc_memory())
        if not self._worth_reading(last):
            return False
        with self._lock:
            # The poll and the caller both check: judged again here, with the heap read
            # under the lock, so a read that waited for another's never lowers the best.
            current = self._worth_reading(last)
            if not current:
                return False
            began = time.monotonic()
            sites = self._snapshot_sites()
            self._best, self._best_sites = current, sites
            ended = time.monotonic()
            self._next_read = ended + READ_WAIT_FACTOR * (ended - began)
        return True

    def _worth_reading(self, last: bool) -> int:
        """The traced heap now if it is a new high worth a read (0 if not): 5 % over the
        last read, and the wait after that read over unless ``last`` or a quarter's growth."""
        current = int(tracemalloc.get_traced_memory()[0] - self._base)
        if current <= 0 or current < self._best * 1.05 + 64 * 1024:
            return 0
        waiting = time.monotonic() < self._next_read
        if waiting and not last and current < self._best * READ_ANYWAY_GROWTH:
            return 0
        return current

    def _snapshot_sites(self) -> list[dict[str, Any]]:
        before = resident()
        traces = tracemalloc._get_traces()  # type: ignore[attr-defined]
        # The read is a list of every live block (each entry traced in its turn), resident
        # while it is summed: its size is the capture's, inside the RSS figures.
        self._read_peak = max(self._read_peak, resident() - before)
        stacks = summed_traces(traces, self._excluded)
        del traces
        return group_sites(stacks)

    @staticmethod
    def own_memory_words(size: int, read: int = 0) -> str:
        """What tracemalloc's own records (``size``) and the largest read of them (``read``,
        RSS added while it was held) cost the traced process, in words."""
        # ``get_tracemalloc_memory()`` counts its tables, not what its allocator adds to each
        # record: a million traced strings measured 46.5 MiB by it and 92 MiB more RSS than
        # untraced (3.11), so the words give it as a lower bound.
        return (
            f"tracemalloc's own records of the traced blocks took at least {size / 2**20:.1f} "
            f"MiB (its own count at the largest {POLL_S * 1000:g} ms poll)"
            + (
                f", and a read of them for the sites {read / 2**20:.1f} MiB more while it ran"
                if read >= 2**20
                else ""
            )
            + "; resident in the traced process: inside its RSS figures, not the job's"
        )

    def stop(self) -> dict[str, Any]:
        """Stop polling (and tracing, if started here): ``peak_sites``, ``end_sites``,
        ``where_source`` and, when the largest capture fell short of tracemalloc's peak,
        ``where_note``."""
        self._stop_polling()
        # The job is over and the poll stopped: a read taken now is also the end's.
        read_now = self.check(last=True)
        peak = tracemalloc.get_traced_memory()[1] - self._base
        with self._lock:
            end = list(self._best_sites) if read_now else self._snapshot_sites()
            out: dict[str, Any] = {
                "peak_sites": self._best_sites,
                "end_sites": end,
                "where_source": self.source,
            }
            notes = []
            if peak > 0 and self._best < peak * 0.9:
                notes.append(
                    f"the sites were captured at {self._best / 2**20:.1f} MiB of the heap; its "
                    f"peak was {peak / 2**20:.1f} MiB (between two polls)"
                )
            if self._own_peak:
                notes.append(self.own_memory_words(self._own_peak, self._read_peak))
            if notes:
                out["where_note"] = "; ".join(notes)
        self._stop_tracing()
        return out

    def drop(self) -> None:
        """Stop polling (and tracing, if started here) without reading the sites."""
        self._stop_polling()
        self._stop_tracing()

    def _stop_polling(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _stop_tracing(self) -> None:
        if self._started:
            tracemalloc.stop()
            self._started = False


def resident() -> int:
    """This process's RSS, bytes (0 where ``/proc`` cannot be read)."""
    fields = _PROC.statm()
    return fields[1] * _PROC.PAGE if fields else 0


def traced_stacks(excluded: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """tracemalloc's live blocks summed per traceback, as :func:`group_sites` stacks (frames
    innermost first); blocks whose innermost frame is in an ``excluded`` file are left out.

    The same sums as ``take_snapshot().filter_traces(...).statistics("traceback")``
    (:func:`statistics_stacks`, compared in the tests), read without running Python code per
    block through those: for 470k blocks at 16 frames they take 9.5 s and 1.8 s, this 0.3 s.
    A snapshot slower than the peak it was taken for let that peak pass unseen (the poll
    cannot take another while one is being read).

    The loop allocates nothing per block, only per traceback: tracemalloc traces this thread's
    allocations too, each with its 16 frames, so a new int per block (a running sum, an
    ``id()``) made the read of 1.2 M blocks take 3.6 s instead of 0.55 s (Python 3.11). The
    sizes are kept in a list per traceback and summed in C at the end.
    """
    # The raw read take_snapshot() itself makes (CPython's tracemalloc, 3.4 on).
    return summed_traces(tracemalloc._get_traces(), excluded)  # type: ignore[attr-defined]


def summed_traces(
    traces: Iterable[tuple[Any, int, Any, Any]], excluded: frozenset[str] = frozenset()
) -> list[tuple[Any, ...]]:
    """:func:`traced_stacks` of ``traces``, tracemalloc's raw read."""
    sizes: dict[tuple[tuple[str, int], ...], list[int]] = {}
    for _domain, size, frames, _total in traces:
        kept = sizes.get(frames)
        if kept is not None:
            kept.append(size)
        elif not frames or frames[0][0] not in excluded:
            sizes[frames] = [size]
    return [
        ([("", file, line) for file, line in frames], sum(kept), "python", None)
        for frames, kept in sizes.items()
    ]


def statistics_stacks(excluded: frozenset[str] = frozenset()) -> list[tuple[Any, ...]]:
    """:func:`traced_stacks` read through tracemalloc's public snapshot API."""
    filters = [tracemalloc.Filter(False, file) for file in sorted(excluded)]
    snapshot = tracemalloc.take_snapshot().filter_traces(filters)
    # tracemalloc's tracebacks run from the oldest frame to the newest.
    return [
        ([("", f.filename, f.lineno) for f in reversed(stat.traceback)], stat.size, "python", None)
        for stat in snapshot.statistics("traceback")
    ]


def _functions(sites: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """tracemalloc names no functions: read them from the source (``def`` lines above)."""
    for site in sites:
        if not site["function"] and site["kind"] != "other":
            site["function"] = _enclosing_function(site["file"], site["line"])
    return sites


def _enclosing_function(file: str, line: int) -> str:
    """The ``def`` a line stands in, read from its source (``<module>`` at top level, ``?``
    when the source cannot be read)."""
    import linecache

    lines = linecache.getlines(file)
    if not 0 < line <= len(lines):
        return "?"
    text = lines[line - 1]
    indent = len(text) - len(text.lstrip())
    for number in range(line - 2, -1, -1):
        text = lines[number]
        stripped = text.lstrip()
        if not stripped or stripped.startswith(("#", "@")):
            continue
        here = len(text) - len(stripped)
        if here >= indent:
            continue
        if stripped.startswith(("def ", "async def ")):
            return stripped.split("def ", 1)[1].split("(", 1)[0].strip()
        indent = here
        if here == 0:
            break
    return "<module>"


def finish(figures: dict[str, Any]) -> dict[str, Any]:
    """Name the functions of tracemalloc's sites (memray names them itself)."""
    for key in ("peak_sites", "end_sites"):
        if key in figures:
            figures[key] = _functions(figures[key])
    return figures


Capture = MemrayCapture | TracemallocCapture


def prepare_capture(
    mode: str | None,
    engine: str | None,
    *,
    memray_heap: bool = False,
    outer: tuple[str, str, int] | None = None,
    streamed: bool = False,
    within: str | None = None,
) -> Capture | None:
    """Prepare what ``where``/``heap`` ask for in this process; None when neither needs a
    capture. The caller then calls ``capture.enter()`` in its own frame (see
    :meth:`MemrayCapture.prepare` for why).

    Args:
        mode: ``where``'s mode: None, ``"python"`` or ``"native"``.
        engine: ``"memray"`` or ``"tracemalloc"`` (``measure/where/engine.py`` picked it).
        memray_heap: ``heap="memray"`` too: one memray tracker serves both (with Python's
            allocators traced); with ``mode`` None it is made for the heap alone.
        outer: the frame that runs the measured block (memray only).
        streamed: a run of its own (an isolated call, a command): memray streams its records
            to the file instead of keeping a table of live allocations in the measured process
            (see the module docstring).
        within: the folder to make a memray capture's folder in (see
            :meth:`MemrayCapture.prepare`).

    Raises:
        ImportError: memray is needed and missing.
        RuntimeError: another memray tracker is active in this process.
    """
    if mode is not None and engine == "memray":
        capture = MemrayCapture(
            sites=True, native=mode == "native", python_allocators=memray_heap, streamed=streamed
        )
        return capture.prepare(outer, within)
    if memray_heap:
        return MemrayCapture(sites=False, python_allocators=True).prepare(outer, within)
    if mode is not None:
        return TracemallocCapture().prepare()
    return None


def finish_here(capture: Capture) -> dict[str, Any]:
    """Stop ``capture`` in the measured process: a memray capture is closed (its ``ticket`` is
    read elsewhere, :func:`read_ticket`), the tracemalloc fallback is read here (its snapshots
    live in this process)."""
    if isinstance(capture, MemrayCapture):
        return capture.close()
    return finish(capture.stop())


def install_flush(capture: Capture, path: str, signum: int = signal.SIGUSR2) -> None:
    """At ``signum`` (sent at a memory limit, before the kill): stop the capture, write what it
    holds (or its ticket) as JSON to ``path`` and exit at once; the run is over either way."""

    def flush(_signum: int, _frame: object) -> None:
        try:
            figures = finish_here(capture)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(figures, f)
            os.replace(tmp, path)
        finally:
            os._exit(128 + signum)

    signal.signal(signum, flush)
