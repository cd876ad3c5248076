"""A bounded object pool: reuse expensive objects without letting the pool itself grow without end.

Written here rather than taken from a library because the needed surface is tiny (acquire as a
context manager, an optional reset, counters) and the common pools either have no size bound on
idle objects or come with a connection-pool's worth of machinery.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BoundedPool", "PoolStats", "live_pools"]

#: Every pool alive now, held weakly: the production guard clears them under memory pressure
#: (``membound.guard``) without keeping a pool alive that its owner dropped.
_LIVE: weakref.WeakSet[BoundedPool[object]] = weakref.WeakSet()
_NUMBERS = itertools.count(1)


def live_pools() -> list[BoundedPool[object]]:
    """The pools alive now (a snapshot; pools dropped by their owners are not in it)."""
    return list(_LIVE)


T = TypeVar("T")


@dataclass(frozen=True)
class PoolStats:
    """Counters of a :class:`BoundedPool`."""

    created: int
    """Objects made by the factory."""
    reused: int
    """Acquisitions served by an idle object."""
    idle: int
    """Objects waiting in the pool now (never more than ``max_size``)."""
    in_use: int
    """Objects acquired and not yet released."""
    discarded: int
    """Objects dropped on release: the pool was full, or ``reset`` raised."""


class BoundedPool(Generic[T]):
    """Keep at most ``max_size`` idle objects for reuse; thread-safe.

    Args:
        factory: makes a new object when no idle one is available.
        max_size: the most idle objects kept; more are dropped on release (>= 0).
        reset: called on each object when it is released, to clear per-use state (so one user's
            data never leaks to the next); if it raises, the object is discarded.
        name: how health reports and metrics name the pool (default: the factory's name and a
            number). Every pool registers itself, weakly, so that the production guard can
            report it and clear it under memory pressure.

    Example:
        >>> pool = BoundedPool(dict, max_size=2, reset=dict.clear)
        >>> with pool.acquire() as d:
        ...     d["x"] = 1
        >>> with pool.acquire() as d:
        ...     d
        {}
        >>> pool.stats().reused
        1
    """

    def __init__(
        self,
        factory: Callable[[], T],
        max_size: int = 1000,
        reset: Callable[[T], object] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        if max_size < 0:
            raise ValueError(f"max_size must be >= 0, got {max_size}")
        label = getattr(factory, "__qualname__", None) or type(factory).__name__
        self.number = next(_NUMBERS)
        """The pool's serial number in this process (names a pool when two share a name)."""
        self.name = name if name is not None else f"{label}-{self.number}"
        self._factory = factory
        self._max_size = max_size
        self._reset = reset
        self._idle: list[T] = []
        self._lock = threading.Lock()
        self._created = self._reused = self._discarded = self._in_use = 0
        _LIVE.add(self)  # type: ignore[arg-type]

    @contextmanager
    def acquire(self) -> Iterator[T]:
        """Lend an object for the ``with`` block; it returns to the pool (or is dropped) after."""
        with self._lock:
            obj = self._idle.pop() if self._idle else None
            if obj is not None:
                self._reused += 1
            self._in_use += 1
        if obj is None:
            try:
                obj = self._factory()
            except BaseException:
                with self._lock:
                    self._in_use -= 1
                raise
            with self._lock:
                self._created += 1
        try:
            yield obj
        finally:
            self._release(obj)

    def _release(self, obj: T) -> None:
        keep = True
        if self._reset is not None:
            try:
                self._reset(obj)
            except Exception:  # a half-reset object must never be handed out again
                keep = False
        with self._lock:
            self._in_use -= 1
            if keep and len(self._idle) < self._max_size:
                self._idle.append(obj)
            else:
                self._discarded += 1

    def stats(self) -> PoolStats:
        """Current counters."""
        with self._lock:
            return PoolStats(
                created=self._created,
                reused=self._reused,
                idle=len(self._idle),
                in_use=self._in_use,
                discarded=self._discarded,
            )

    def __membound_bound__(self) -> tuple[int, int]:
        """``(idle objects, max_size)``: leak hunting sees a pool filling toward its bound as
        bounded, not as a leak."""
        with self._lock:
            return len(self._idle), self._max_size

    def clear(self) -> int:
        """Drop every idle object; returns how many were dropped."""
        with self._lock:
            n = len(self._idle)
            self._idle.clear()
            return n
