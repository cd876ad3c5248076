"""Functions that leak, and hard negatives that must not be called leaks."""

from __future__ import annotations

import asyncio
import collections
import functools
import itertools
import logging
import re

_counter = itertools.count()


class Session:
    """A heavy-ish per-request object."""

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.identity_map: dict[int, object] = {}
        self.buffer = [0] * 16


SESSIONS: dict[int, Session] = {}


def session_per_request() -> None:
    """Leaks: every request registers a new Session and nothing removes it."""
    request_id = next(_counter)
    SESSIONS[request_id] = Session(request_id)


KEPT: list[bytes] = []


def slow_leak() -> None:
    """Leaks about 100 bytes per call (a 70-byte bytes object is 103 bytes)."""
    KEPT.append(bytes(70))


HISTORY: list[dict[str, object]] = []


def history_leak() -> None:
    """Leaks: keeps every event."""
    HISTORY.append({"id": next(_counter), "payload": list(range(10))})


NATIVE: list[bytearray] = []


def native_buffer_leak() -> None:
    """Leaks a 4 KiB native buffer per call."""
    NATIVE.append(bytearray(4096))


def clean() -> int:
    """Allocates and frees."""
    return sum([i * i for i in range(200)])


@functools.lru_cache(maxsize=256)
def _cached(key: int) -> list[int]:
    return [key] * 20


def bounded_lru() -> list[int]:
    """Not a leak: a 256-entry cache over 1,000 keys fills, then evicts."""
    return _cached(next(_counter) % 1000)


def re_cache() -> object:
    """Not a leak: the re module's bounded cache of compiled patterns."""
    return re.compile(f"user-{next(_counter) % 3000}-[a-z]+")


_RECENT: collections.deque[list[int]] = collections.deque(maxlen=100)


def bounded_deque() -> None:
    """Not a leak: a bounded deque keeps the last 100 items."""
    _RECENT.append([1, 2, 3])


def sawtooth() -> int:
    """Not a leak: builds and frees a large list each call."""
    block = [0] * 200_000
    return len(block)


class Node:
    """Part of a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def collected_cycles() -> None:
    """Not a leak while the cyclic GC runs: two nodes that point at each other."""
    a, b = Node(), Node()
    a.other, b.other = b, a


_log = logging.getLogger("membound.tests.leaks")


def logging_calls() -> None:
    """Not a leak: logging's caches are bounded."""
    _log.debug("request %s", next(_counter))
    _log.info("done")


async def _yield_once() -> None:
    await asyncio.sleep(0)


def asyncio_runs() -> None:
    """Not a leak: each run reprs its task through ``reprlib``, whose fresh attribute names
    CPython's type attribute cache keeps (a bounded cache)."""
    asyncio.run(_yield_once())


def _libc_malloc():  # type: ignore[no-untyped-def]
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.malloc.restype = ctypes.c_void_p
    libc.memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
    return libc


_LIBC = _libc_malloc()


def native_malloc_leak() -> None:
    """Leaks 100 KB per call through libc malloc: invisible to tracemalloc, visible in RSS."""
    pointer = _LIBC.malloc(100_000)
    _LIBC.memset(pointer, 1, 100_000)  # touch the pages so that they count in RSS


def raises_value_error() -> None:
    """Fails."""
    raise ValueError("broken target")
