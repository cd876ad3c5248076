"""Cases for leak verdicts: each function is one shape of memory use a user would bring.

Written for the verdicts' tests (not tuned to membound's internals): periodic flushes, bounded and
unbounded caches, listeners, kept exceptions, small steady leaks, native memory, cycles with
finalizers.
"""

from __future__ import annotations

import collections
import ctypes
import functools
import itertools
from typing import Any

_ticket = itertools.count(10_000)

# --- periodic flushes: a sawtooth is not a leak ------------------------------------------

_OUTBOX: list[bytes] = []


def flush_every_250() -> None:
    """Queues a 200-byte message per call, sends (drops) them all every 250 calls."""
    _OUTBOX.append(bytes(200))
    if len(_OUTBOX) == 250:
        _OUTBOX.clear()


_AUDIT: dict[int, str] = {}


def flush_every_350() -> None:
    """Buffers an audit line per call, writes the batch out every 350 calls."""
    n = next(_ticket)
    _AUDIT[n] = f"audit record {n:08d} user=alice action=read"
    if len(_AUDIT) >= 350:
        _AUDIT.clear()


# --- caches ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=6000)
def _render(template_id: int) -> str:
    return f"<div id='t{template_id}'>" + "x" * 40 + "</div>"


def lru_bound_above_calls() -> str:
    """A 6,000-entry cache that a run of a few thousand calls never fills."""
    return _render(next(_ticket))


@functools.lru_cache(maxsize=64)
def _parse_header(raw: int) -> tuple[int, str]:
    return raw, f"h{raw}"


def lru_bound_below_calls() -> tuple[int, str]:
    """A 64-entry cache over a stream of new keys: full early, then evicting."""
    return _parse_header(next(_ticket))


class PriceBook:
    """Memoises lookups on a method: every new argument is kept for good."""

    @functools.cache  # noqa: B019 - the leak under test
    def quote(self, sku: int) -> dict[str, float]:
        return {"sku": float(sku), "price": sku * 0.01}


_BOOK = PriceBook()


def cache_on_method() -> dict[str, float]:
    """``functools.cache`` on a method, with a new argument on every call: unbounded."""
    return _BOOK.quote(next(_ticket))


class RingBuffer:
    """A bounded buffer that reports its own bound to membound."""

    def __init__(self, capacity: int) -> None:
        self._items: list[bytes] = []
        self._capacity = capacity

    def push(self, item: bytes) -> None:
        if len(self._items) >= self._capacity:
            self._items.pop(0)
        self._items.append(item)

    def __membound_bound__(self) -> tuple[int, int]:
        return len(self._items), self._capacity


_RING = RingBuffer(50_000)


def ring_buffer_filling() -> None:
    """A 50,000-slot buffer that a short run only fills part of."""
    _RING.push(b"sample" * 10)


_HISTORY = collections.deque(maxlen=20_000)


def deque_filling() -> None:
    """A deque(maxlen=20,000) that a short run only fills part of."""
    _HISTORY.append({"event": next(_ticket)})


# --- leaks -----------------------------------------------------------------------------------


class EventHub:
    """Listeners are added and never removed."""

    def __init__(self) -> None:
        self._handlers: list[Any] = []

    def on(self, handler: Any) -> None:
        self._handlers.append(handler)


hub = EventHub()


class Widget:
    """Registers a bound method on the hub when created."""

    def __init__(self) -> None:
        self.state = [0] * 4
        hub.on(self.refresh)

    def refresh(self) -> None:
        self.state[0] += 1


def listener_never_removed() -> None:
    """A short-lived widget whose bound method stays registered (and keeps the widget)."""
    Widget()


FAILURES: list[Exception] = []


def exceptions_kept() -> None:
    """Every handled error is kept, with its traceback and the frames it holds."""
    try:
        {}["missing-" + str(next(_ticket))]
    except KeyError as exc:
        FAILURES.append(exc)


SESSION_IDS: set[str] = set()


def ids_kept_in_a_set() -> None:
    """About 60 bytes per call: a short id string added to a set."""
    SESSION_IDS.add(f"s{next(_ticket):09d}")


LATENCIES: dict[int, float] = {}


def floats_kept_in_a_dict() -> None:
    """About 55 bytes per call: an int → float entry added to a module dict."""
    n = next(_ticket)
    LATENCIES[n] = n / 7


# --- not leaks ------------------------------------------------------------------------------


class _Peer:
    def __init__(self) -> None:
        self.partner: _Peer | None = None

    def __del__(self) -> None:
        self.partner = None


def cycles_with_finalizers() -> None:
    """Two objects with ``__del__`` in a cycle: the cyclic GC frees them (PEP 442)."""
    a, b = _Peer(), _Peer()
    a.partner, b.partner = b, a


def memo_filling(limit: int) -> Any:
    """A function with a plain dict memo over ``limit`` keys: it grows by one entry per call
    until the key space is covered, then stops (unbounded in type, bounded by its data)."""
    memo: dict[int, str] = {}
    calls = itertools.count()

    def lookup() -> str:
        key = next(calls) % limit
        if key not in memo:
            memo[key] = f"value {key:08d}"
        return memo[key]

    return lookup


#: Calls at which ``bursts_at`` keeps a batch so that a 1,000-call run, and each of its
#: lengthenings up to 16,000 calls, ends with a burst in its late half.
BURSTS_PAST_EVERY_LENGTHENING = (700, 1500, 3000, 6000, 12000)


def bursts_at(*at: int) -> Any:
    """A function that, on its calls number ``at`` (from 1), keeps a batch of 2,000 new
    objects for good and does nothing else: growth in bursts, far apart."""
    kept: list[list[str]] = []
    calls = itertools.count(1)

    def step() -> None:
        if next(calls) in at:
            kept.append([f"row {i}" for i in range(2000)])

    return step


def fills_then_trickles(fill: int, every: int) -> Any:
    """A function whose dict grows by one entry per call for ``fill`` calls, then by one entry
    every ``every`` calls: a leak that slows down but never stops."""
    kept: dict[int, str] = {}
    calls = itertools.count(1)

    def step() -> None:
        n = next(calls)
        if n <= fill or n % every == 0:
            kept[n] = f"entry {n:08d}"

    return step


# --- native memory --------------------------------------------------------------------------


class NativeLib:
    """A tiny C library built by the tests: ``keep(n)`` mallocs and keeps, ``scratch(n)``
    mallocs and frees."""

    def __init__(self, path: str) -> None:
        self.lib = ctypes.CDLL(path)
        self.lib.keep.restype = ctypes.c_void_p
        self.lib.keep.argtypes = (ctypes.c_size_t,)
        self.lib.scratch.argtypes = (ctypes.c_size_t,)

    def keeps_4k(self) -> None:
        """Leaks a 4 KiB malloc per call."""
        self.lib.keep(4096)

    def scratch_4k(self) -> None:
        """Mallocs 4 KiB and frees it per call."""
        self.lib.scratch(4096)


NATIVE_SOURCE = r"""
#include <stdlib.h>
#include <string.h>
void *keep(size_t n) { void *p = malloc(n); memset(p, 7, n); return p; }
void scratch(size_t n) { void *p = malloc(n); memset(p, 7, n); free(p); }
"""
