"""Memory held by this process's allocators, read without tracing: what leak hunting watches
between rounds, at the cost of plain calls.

Two allocators hold nearly everything a Python process allocates:

- **pymalloc** (CPython's allocator for objects of up to 512 bytes): its bytes in allocated
  blocks. No public API reports them; ``sys._debugmallocstats()`` prints them (with the arenas'
  other figures) to the C-level standard error, so they are read by pointing file descriptor 2 at
  a temporary file for the call (about 0.5 ms with 300,000 live objects). Another thread writing
  to standard error in that moment writes into the file instead; text before the report's first
  line is written back to standard error. (While tracemalloc traces, the report leaves out
  pymalloc's part and holds only the free lists of a few types: nothing to read, nothing to
  write back.)
- **malloc** (larger objects, buffers of ``bytes``/``list``/``dict`` storage, and every C
  extension): bytes in use from glibc's ``mallinfo2()`` (through ctypes; psutil and the standard
  library do not expose it).

Both are hand-written because no maintained library reads either figure. Where one is missing
(another C library, another interpreter) :func:`held` says so and leak hunting falls back to
tracing (slower, blind to native memory).
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
from dataclasses import dataclass

from membound._libc import libc_function

__all__ = [
    "PYMALLOC_ON",
    "SMALL_REQUEST_LIMIT",
    "Held",
    "held",
    "malloc_in_use",
    "untraced_available",
]

_PYMALLOC_LINE = re.compile(rb"# bytes in allocated blocks\s*=\s*([\d,]+)")
#: A line of the report's free lists ("   4 free PyDictObjects * 48 bytes each = 192").
_FREE_LIST_LINE = re.compile(rb"^ *\d+ free \S.* bytes each", re.MULTILINE)


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


def _load_mallinfo2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    func = libc_function("mallinfo2")
    if func is None:  # not glibc, or glibc older than 2.33
        return None
    func.restype = _MallInfo2
    func.argtypes = ()
    return func


_MALLINFO2 = _load_mallinfo2()


def _flush_c_streams() -> None:
    """The C library's stream buffers out to their descriptors (stderr may be buffered when it
    is not a terminal: the report must reach the file before the descriptor is put back)."""
    flush = libc_function("fflush")
    if flush is not None:
        flush(None)


def malloc_in_use() -> int:
    """Bytes malloc has handed out and not had back (heap chunks and mmapped chunks); readable
    while tracemalloc traces, unlike pymalloc's figure (its report is silent then)."""
    assert _MALLINFO2 is not None
    info = _MALLINFO2()
    return int(info.uordblks + info.hblkhd)


def _pymalloc_in_use() -> int | None:
    """Bytes in pymalloc's allocated blocks (None when the report cannot be read)."""
    report = getattr(sys, "_debugmallocstats", None)
    if report is None:
        return None
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            _flush_c_streams()
            os.dup2(sink.fileno(), 2)
            report()
            _flush_c_streams()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        text = sink.read()
    start = text.find(b"Small block threshold")
    if start < 0:  # no pymalloc part (tracemalloc on, or pymalloc off): the free lists first
        free_lists = _FREE_LIST_LINE.search(text)
        start = free_lists.start() if free_lists else len(text)
    if start > 0:  # someone else's output, written meanwhile
        os.write(2, text[:start])
    found = _PYMALLOC_LINE.search(text)
    if found is None:
        return None
    return int(found.group(1).replace(b",", b""))


#: Whether pymalloc serves Python's small allocations here (its report could be read).
PYMALLOC_ON = _pymalloc_in_use() is not None
#: The largest request pymalloc serves; larger ones go to malloc.
SMALL_REQUEST_LIMIT = 512 if PYMALLOC_ON else 0
_PYMALLOC_READABLE = PYMALLOC_ON or os.environ.get("PYTHONMALLOC", "") in ("malloc", "malloc_debug")


def untraced_available() -> bool:
    """True when :func:`held` can see both allocators here (glibc's ``mallinfo2`` and
    pymalloc's report, or pymalloc switched off so that malloc holds everything)."""
    return _MALLINFO2 is not None and _PYMALLOC_READABLE


@dataclass(frozen=True)
class Held:
    """Bytes held by the allocators at one moment."""

    pymalloc: int
    """Bytes in pymalloc's allocated blocks (0 when pymalloc is off)."""
    malloc: int
    """Bytes in use from malloc: larger Python objects and all native allocations."""

    @property
    def total(self) -> int:
        """Both together."""
        return self.pymalloc + self.malloc


def held() -> Held:
    """What the allocators hold now. Call :func:`untraced_available` first."""
    if _MALLINFO2 is None:
        raise RuntimeError("malloc statistics are not available on this platform")
    return Held(_pymalloc_in_use() or 0, malloc_in_use())
