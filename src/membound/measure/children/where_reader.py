"""Reads a closed memray capture (``_where.MemrayCapture.close``) into the figures and sites,
in a process of its own: ``python where_reader.py TICKET`` prints them as JSON.

Reading happens outside the measured process on purpose: resolving native symbols takes
hundreds of MiB for a large library, which would count in the measured RSS and hold up a stop at
a memory limit. ``--serve MAX_RSS`` reads tickets one per line on stdin, for a process that
reads many (a test suite under ``--membound-where``): one interpreter and one import of memray
for all of them instead of one each (0.14 s a capture); ``ServedReader`` in
``where_capture.py`` says how it starts and ends. Standard library only besides memray;
``where_capture.py`` (grouping, user frames) is loaded by its path, as the isolated child and
the command runner load it.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["read_capture"]

# ``siblings.py`` beside this file, run by its path: it loads the other files this one needs.
_SIBLINGS = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "siblings.py"))
_WHERE = vars(_SIBLINGS["load"]("where_capture"))

#: Native frames that only hand memory out (the allocator itself, memray's hooks): the first
#: frame past them is the code that asked for the memory.
_ALLOCATOR_SYMBOLS = frozenset(
    {
        "malloc",
        "calloc",
        "realloc",
        "free",
        "mmap",
        "mmap64",
        "posix_memalign",
        "aligned_alloc",
        "memalign",
        "valloc",
        "pvalloc",
        "operator new",
        "<unknown>",
        "",
    }
)
#: Where the interpreter's own native frames come from (its sources, when it has debug info).
_CPYTHON_SOURCE_DIRS = ("Objects/", "Python/", "Include/", "./Include/", "Parser/", "Modules/")
#: The C API's namespaces (``PyList_Append``, ``PyObject_Malloc``): a frame without a source file
#: named ``Py<namespace>_…`` is the interpreter's. Extensions name their own API the same way
#: (numpy's ``PyArray_NewFromDescr``, ``PyDataMem_UserNEW``), so the prefix alone is not enough.
_CPYTHON_NAMESPACES = frozenset(
    [
        "Object",
        "Mem",
        "List",
        "Dict",
        "Tuple",
        "Unicode",
        "Bytes",
        "ByteArray",
        "Long",
        "Float",
        "Complex",
        "Bool",
        "Set",
        "FrozenSet",
        "Type",
        "Module",
        "Function",
        "CFunction",
        "Method",
        "InstanceMethod",
        "Code",
        "Frame",
        "Eval",
        "Run",
        "Import",
        "Err",
        "Exception",
        "Thread",
        "ThreadState",
        "Interpreter",
        "InterpreterState",
        "GC",
        "Iter",
        "SeqIter",
        "CallIter",
        "Gen",
        "Coro",
        "AsyncGen",
        "Number",
        "Sequence",
        "Mapping",
        "Buffer",
        "MemoryView",
        "Slice",
        "Arg",
        "Sys",
        "OS",
        "Marshal",
        "Codec",
        "Weakref",
        "Context",
        "Capsule",
        "Cell",
        "Descr",
        "StructSequence",
        "Vectorcall",
        "Stack",
        "Unstable",
        "Config",
        "PreConfig",
        "Status",
        "WideStringList",
        "Tokenizer",
        "Parser",
        "AST",
        "Compile",
        "Call",
        "Traceback",
        "File",
        "Range",
        "Enum",
        "Property",
        "Super",
        "ClassMethod",
        "StaticMethod",
        "DictProxy",
        "Ellipsis",
        "Time",
        "Hash",
        "Token",
        "Mutex",
    ]
)
_API_NAME = re.compile(r"^Py([A-Za-z]+)_")

#: A library's allocation wrapper (``sqlite3Malloc``, ``default_malloc``, ``PyDataMem_UserNEW``,
#: ``PyDataMem_UserNEW_ZEROED``):
#: the frame past it says what the memory is for.
_WRAPPER = re.compile(r"(?i)(m|c|re)?alloc|[a-z_]new(_zeroed)?$|^operator new")


def _is_cpython_frame(symbol: str, file: str) -> bool:
    """True for the interpreter's own code: by its source file where the frame has one, else by
    its name (``_Py…``, ``Py_…`` or a C API namespace)."""
    if file and file != "<unknown>":
        return file.startswith(_CPYTHON_SOURCE_DIRS)
    if symbol.startswith(("_Py", "Py_")):
        return True
    named = _API_NAME.match(symbol)
    return named is not None and named.group(1) in _CPYTHON_NAMESPACES


def _native_kind(native: Sequence[tuple[str, str, int]]) -> tuple[str, str | None]:
    """``("native", symbol)`` when the innermost frame past the allocator is not the
    interpreter's own code, else ``("python", None)``; ``native`` are the native frames between
    the allocation and the innermost Python frame, innermost first."""
    wrapper = None
    for symbol, file, _line in native:
        if symbol in _ALLOCATOR_SYMBOLS or symbol.startswith("memray::"):
            continue
        if _is_cpython_frame(symbol, file):
            return ("native", wrapper) if wrapper else ("python", None)
        if _WRAPPER.search(symbol):
            # a library's own malloc (sqlite3Malloc), or a wrapper of it (numpy's
            # default_malloc under PyDataMem_UserNEW): name what called them
            wrapper = wrapper or symbol
            continue
        return "native", symbol
    return ("native", wrapper) if wrapper else ("python", None)


def read_capture(ticket: dict[str, Any]) -> dict[str, Any]:
    """Read a closed capture (in this process) and remove its folder. Returns the heap held at
    the end and at the peak (``heap_current``, ``heap_peak``, bytes over the start) and, with
    sites, ``peak_sites``, ``end_sites`` and ``where_source``."""
    _SIBLINGS["borrow_memray"]()  # the memray that wrote it, lent by membound where it was
    import memray

    try:
        reader = memray.FileReader(os.path.join(ticket["folder"], "heap.bin"))
        try:
            return _figures(ticket, reader)
        finally:
            reader.close()
    finally:
        shutil.rmtree(ticket["folder"], ignore_errors=True)


def _figures(ticket: dict[str, Any], reader: Any) -> dict[str, Any]:
    """What :func:`read_capture` returns, from an open reader."""
    peak = int(reader.metadata.peak_memory)
    sites = bool(ticket["sites"])
    outer = tuple(ticket["outer"]) if ticket.get("outer") else None
    native = bool(ticket["native"])
    starts = _thread_starts(ticket["folder"]) if sites else {}

    def at_end() -> dict[str, Any]:
        # Per thread only when the sites are wanted: the figures need the totals alone.
        end = list(reader.get_leaked_allocation_records(merge_threads=not sites))
        part: dict[str, Any] = {
            "heap_current": sum(r.size for r in end),
            "live": sum(int(r.n_allocations) for r in end),
        }
        if sites:
            part["end_sites"] = _WHERE["group_sites"](
                _stacks(end, native, outer, starts), part["heap_current"]
            )
        return part

    def at_peak() -> dict[str, Any]:
        high = list(reader.get_high_watermark_allocation_records(merge_threads=not sites))
        part: dict[str, Any] = {"live": sum(int(r.n_allocations) for r in high)}
        if sites:  # one entry per distinct stack: bounded by the code, not the run
            part["stacks"] = list(_stacks(high, native, outer, starts))
            if not ticket.get("python_allocators"):
                part["arenas"] = sum(arena_bytes(r) for r in high)
        return part

    # A streamed capture is read record by record, once for the end and once up to the peak
    # (about a second per million allocations each): the two readings run side by side. Not
    # with native stacks: each process would resolve the libraries' symbols itself (2.3 GB for
    # pandas' and numpy's), twice the memory for a small part of the time.
    if ticket.get("streamed") and not native:
        end, high = _side_by_side(at_end, at_peak)
    else:
        end, high = at_end(), at_peak()
    out: dict[str, Any] = {"heap_current": end["heap_current"], "heap_peak": peak}
    cost, said = _tracer_cost(ticket, high["live"], end["live"], reader)
    if cost is not None:
        out["tracer_overhead"] = cost
    if sites:
        forked = _forked(ticket, native, outer, starts) if ticket.get("streamed") else None
        stacks = high["stacks"] + (forked.stacks if forked else [])
        out["peak_sites"] = _WHERE["group_sites"](stacks, peak + (forked.peak if forked else 0))
        out["end_sites"] = end["end_sites"]
        arenas = int(high.get("arenas", 0))
        out["where_source"] = (
            f"{ticket['source']}: {_mib(peak)} traced at the peak, "
            f"{_mib(out['heap_current'])} at the end (bytes allocated; RSS counts the pages "
            f"touched); {said}"
        )
        if forked is not None and (forked.read or forked.unread):
            out["where_source"] += f"; {forked.words()}"
        in_arenas = arena_words(arenas, peak)
        if in_arenas:  # the lines are the arenas' openers: an isolated call is run again
            out["arena_bytes"] = arenas
        for said in filter(None, [_bound_words(ticket), in_arenas]):
            note = str(out.get("where_note") or "")
            out["where_note"] = f"{note}; {said}" if note else said
    return out


#: Python's small-object allocator (pymalloc) takes memory from the system in arenas of this
#: size (3.10 and later on 64-bit builds; 256 KiB before).
ARENA_SIZES = (1 << 20, 1 << 18)
#: memray's allocator codes of the records an arena can be under at the high-water mark:
#: ``mmap`` (how pymalloc maps an arena), and ``realloc`` (memray 1.20 reports most of a run's
#: arenas there at the peak, about 1 MiB each, though its raw records show them as mmaps).
_ARENA_ALLOCATORS = frozenset({7, 14})
#: Where arenas hold at least this share of the traced peak (and ``_LEAST_ARENA_BYTES``), the
#: lines are said to be the arenas' openers (``arena_words``).
ARENA_SHARE = 0.25
_LEAST_ARENA_BYTES = 4 << 20


def arena_bytes(record: Any) -> int:
    """The bytes of a high-water record that are Python's object arenas: memory pymalloc
    mapped for many small objects, under the line that opened the arena, which is not always
    the line whose objects fill it (a generator's temporary strings open arenas that a list
    built on another line then fills). Records of the arena allocators whose allocations
    average within a few percent of an arena's size."""
    count = int(record.n_allocations)
    if count <= 0 or int(record.allocator) not in _ARENA_ALLOCATORS:
        return 0
    each = int(record.size) / count
    return int(record.size) if any(0.9 * a <= each <= 1.02 * a for a in ARENA_SIZES) else 0


def arena_words(arenas: int, peak: int) -> str:
    """What the lines of a capture that did not trace Python's allocators are worth when
    arenas held much of its peak; empty when they did not."""
    if peak <= 0 or arenas < max(_LEAST_ARENA_BYTES, ARENA_SHARE * peak):
        return ""
    return (
        f"{_mib(arenas)} of the {_mib(peak)} traced at the peak ({100 * arenas / peak:.0f} %) "
        "is Python's object arenas, each under the line that opened it, which is not always "
        'the line whose objects fill it: heap="memray" (--heap=memray) traces each object'
    )


def _bound_words(ticket: dict[str, Any]) -> str:
    """What a streamed capture that reached its bound on disk covers, in words; empty when it
    did not reach it."""
    bound = int(ticket.get("bound") or 0)
    stops = []  # seconds from the start, per process that stopped tracing at the bound
    for name in os.listdir(ticket["folder"]) if bound else ():
        if name.startswith("stopped."):
            with open(os.path.join(ticket["folder"], name), encoding="utf-8") as said:
                stops.append(float(said.read() or 0))
    if not stops:
        return ""
    where = f" in {len(stops)} processes" if len(stops) > 1 else ""
    return (
        f"the capture stopped after {min(stops):.1f} s{where} when its files reached "
        f"{_mib(bound)} (its bound on disk, MEMBOUND_CAPTURE_BOUND): the lines are those of the "
        "run until then"
    )


#: Captures of forked processes read at most, the largest first.
MAX_FORKED = 32


class _Forked:
    """What the processes the run forked held, each at its own peak (memray's ``follow_fork``
    writes ``heap.bin.<pid>`` beside the capture for each)."""

    def __init__(self) -> None:
        self.stacks: list[tuple[Any, ...]] = []
        self.peak = 0
        self.read = 0
        self.unread = 0

    def words(self) -> str:
        """The sites' note: how many were read, and that their peaks are summed."""
        said = (
            f"{self.read} forked process(es) traced, each counted at its own peak "
            f"({_mib(self.peak)} in all: more than was resident at one moment if their peaks "
            "did not meet)"
        )
        if self.unread:
            said += f"; {self.unread} more forked process(es) not read"
        return said


def _forked(
    ticket: dict[str, Any],
    native: bool,
    outer: tuple[str, str, int] | None,
    starts: dict[str, list[tuple[str, str, int]]],
) -> _Forked:
    """Read the captures of the processes the run forked (at most :data:`MAX_FORKED`); one
    that cannot be read (a child that exec'd another program, or was killed before its first
    records) is counted as not read."""
    import memray

    folder = ticket["folder"]
    prefix = "heap.bin."
    names = [n for n in os.listdir(folder) if n.startswith(prefix) and n[len(prefix) :].isdigit()]
    names.sort(key=lambda n: -_file_size(os.path.join(folder, n)))
    found = _Forked()
    found.unread = max(0, len(names) - MAX_FORKED)
    for name in names[:MAX_FORKED]:
        pid = name[len(prefix) :]
        try:
            reader = memray.FileReader(os.path.join(folder, name))
        except (OSError, ValueError, RuntimeError):
            found.unread += 1
            continue
        try:
            high = reader.get_high_watermark_allocation_records(merge_threads=False)
            stacks = [(*entry, pid) for entry in _stacks(high, native, outer, starts)]
            peak = int(reader.metadata.peak_memory)
        except (OSError, ValueError, RuntimeError):
            found.unread += 1
            continue
        finally:
            reader.close()
        if peak <= 0:  # forked to start another program (exec): it traced nothing
            continue
        found.stacks.extend(stacks)
        found.peak += peak
        found.read += 1
    return found


def _side_by_side(
    first: Callable[[], dict[str, Any]], second: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``first()`` in a forked child and ``second()`` here, at the same time (memray's reader
    holds the GIL while it reads: threads would take turns); one after the other where this
    process cannot fork. The child's result comes back as JSON through a pipe.

    Raises:
        RuntimeError: the child failed (its error in the message).
    """
    try:
        readable, writable = os.pipe()
        pid = os.fork()
    except (OSError, AttributeError):
        return first(), second()
    if pid == 0:  # the child: never returns
        os.close(readable)
        try:
            data = json.dumps({"ok": first()})
        except BaseException as exc:  # any failure is said in the parent
            data = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        try:
            with os.fdopen(writable, "w", encoding="utf-8") as pipe:
                pipe.write(data)
        finally:
            os._exit(0)
    os.close(writable)
    try:
        here = second()
    finally:
        with os.fdopen(readable, encoding="utf-8") as pipe:
            text = pipe.read()
        os.waitpid(pid, 0)
    there: dict[str, Any] = json.loads(text) if text else {}
    if "ok" not in there:
        raise RuntimeError(there.get("error", "the reading child ended without a word"))
    done: dict[str, Any] = there["ok"]
    return done, here


def _mib(size: float) -> str:
    return f"{size / 2**20:,.1f} MiB"


#: Bytes of memray's aggregated table per live allocation (memray 1.20, 64-bit Linux: 2.8 M live
#: mallocs of a parse freed 278.8 MiB as the tracker stopped, 22.5 MiB of it the hash table's
#: buckets, which stay at their largest): used where too few allocations were live at the end to
#: measure it from the capture itself.
TABLE_BYTES_PER_LIVE = 96
#: Live allocations at the end from which the table's own size per allocation is taken.
_LEAST_LIVE_TO_MEASURE = 10_000


def _tracer_cost(
    ticket: dict[str, Any], live_peak: int, live_end: int, reader: Any
) -> tuple[int | None, str]:
    """memray's own memory in the measured process, bytes at the peak (None when it was not
    measured), and the words that say it.

    A streamed capture keeps no table there. An aggregated one keeps a table entry per live
    allocation; its size at the end was measured as the capture closed (``tables_at_end``),
    and at the peak it held an entry for each allocation live then (counted here): the end's
    size, plus the entries the peak had more, at the end's bytes per entry where enough were
    live to measure it, else :data:`TABLE_BYTES_PER_LIVE`."""
    if ticket.get("streamed"):
        size = _file_size(os.path.join(ticket["folder"], "heap.bin"))
        count = int(getattr(reader.metadata, "total_allocations", 0) or 0)
        started = ticket.get("start_cost")
        loaded = (
            f"; membound's runner with memray, loaded and started, took {_mib(started)} of the "
            "RSS before the program began, inside the figures"
            if started
            else ""
        )
        return None, (
            f"memray wrote its {count:,} allocations to a file ({_mib(size)}) and kept no table "
            f"of them in the measured process{loaded}"
        )
    at_end = ticket.get("tables_at_end")
    if at_end is None:
        return None, (
            "memray's table of live allocations is inside the RSS figures (its size could not "
            "be measured here: no mallinfo2)"
        )
    per = at_end / live_end if live_end >= _LEAST_LIVE_TO_MEASURE else TABLE_BYTES_PER_LIVE
    cost = int(at_end + per * max(0, live_peak - live_end))
    return cost, (
        f"memray's table of the {live_peak:,} allocations live at the peak took about "
        f"{_mib(cost)} of the process's memory then, inside the RSS figures, not the "
        f"workload's ({_mib(at_end)} for {live_end:,} at the end, measured as the capture "
        "closed)"
    )


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _thread_starts(folder: str) -> dict[str, list[tuple[str, str, int]]]:
    """The frames that started each thread, by name (``where_capture.ThreadOrigins``)."""
    try:
        with open(os.path.join(folder, "threads.json"), encoding="utf-8") as found:
            data = json.load(found)
    except (OSError, ValueError):
        return {}
    return {str(k): [(str(f), str(p), int(n)) for f, p, n in v] for k, v in data.items()}


#: membound's own threads in a traced process (``where_capture.py``'s capture bound and
#: poller, ``inside.py``'s tracemalloc poller): what they hold at a peak is the tracer's, never
#: a line of the user's (a disk-use poll's buffer once showed as a 0.4 % site).
_OWN_THREADS = frozenset({"membound-capture-bound", "membound-where", "membound-tracemalloc"})


def _stacks(
    records: Iterable[Any],
    native: bool,
    outer: tuple[str, str, int] | None,
    starts: dict[str, list[tuple[str, str, int]]] | None = None,
) -> Iterable[tuple[list[tuple[str, str, int]], int, str, str | None, str | None]]:
    """Per record: its frames (a thread's followed by the frames that started it), bytes,
    kind, native symbol and thread name (None for the main thread or merged threads)."""
    for record in records:
        thread = getattr(record, "thread_name", "") or None
        if thread in _OWN_THREADS:
            continue
        frames = [(f, file, int(line)) for f, file, line in record.stack_trace()]
        kind, symbol = "python", None
        if native:
            kind, symbol = _native_kind(_native_prefix(record, frames))
        if thread == "MainThread":
            thread = None
        if thread is not None and starts:
            frames.extend(starts.get(thread, ()))
        if outer is not None:
            frames.append(outer)
        yield frames, int(record.size), kind, symbol, thread


def _native_prefix(record: Any, python: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The native frames between an allocation and its innermost Python frame."""
    try:
        hybrid = record.hybrid_stack_trace()
    except (NotImplementedError, ValueError, RuntimeError):
        return []
    first = python[0] if python else None
    out: list[tuple[str, str, int]] = []
    for symbol, file, line in hybrid:
        if first is not None and (symbol, file, int(line)) == first:
            break
        out.append((str(symbol), str(file), int(line)))
    return out


def serve(lines: Iterable[str], write: Callable[[str], object], max_rss: int = 0) -> None:
    """Read one ticket per line until the end of ``lines``, and write one line of JSON for
    each: ``{"read": figures}``, or ``{"error": "Type: message"}`` when that capture could not
    be read (the next is read all the same). Nothing is kept from one ticket to the next; after
    a read that left this process holding more than ``max_rss`` bytes (when set) it ends, and
    the next capture starts a reader anew."""
    for line in lines:
        if not line.strip():
            continue
        try:
            answer: dict[str, Any] = {"read": read_capture(json.loads(line))}
        except Exception as exc:  # one capture that cannot be read ends no other's reading
            answer = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if max_rss and _WHERE["resident"]() > max_rss:
            return


def _detached_serve(max_rss: int) -> None:
    """Serve as a process that is no child of the one that started it: this one forks the
    reader and ends at once (the reader writes its pid first). Ctrl-C at a terminal reaches
    the whole process group; the reader ends at the end of its input instead."""
    if os.fork() != 0:
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stdout.write(f"{os.getpid()}\n")
    sys.stdout.flush()
    serve(sys.stdin, sys.stdout.write, max_rss)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"] and len(sys.argv) == 3 and sys.argv[2].isdigit():
        _detached_serve(int(sys.argv[2]))
    elif len(sys.argv) != 2:
        sys.exit("usage: where_reader.py TICKET | --serve MAX_RSS_BYTES")
    else:
        print(json.dumps(read_capture(json.loads(sys.argv[1]))))
