"""What the guard may clear under memory pressure and reports in ``health()``: pools and caches.

Every :class:`~membound.BoundedPool` registers itself (weakly) when it is made; anything else
with ``clear()`` and ``stats()`` — or a ``functools.lru_cache`` function, with ``cache_clear()``
and ``cache_info()`` — is added by :func:`register`. Entries are held weakly where the object
allows it, so registering never keeps an object alive; the few that cannot be weakly referenced
(a plain ``dict`` subclass instance without ``__weakref__``) are held until :func:`unregister`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from membound.bound.pool import live_pools

__all__ = ["clear_all", "pool_stats", "register", "unregister"]

_log = logging.getLogger("membound.guard")
_lock = threading.Lock()
_entries: dict[str, Callable[[], object | None]] = {}


def _method(obj: object, *names: str) -> Callable[[], Any] | None:
    for name in names:
        found = getattr(obj, name, None)
        if callable(found):
            return found  # type: ignore[no-any-return]
    return None


def register(obj: object, name: str) -> None:
    """Let the guard report ``obj`` in ``health()`` and clear it under memory pressure.

    Args:
        obj: anything with ``clear()`` and ``stats()`` (or ``cache_clear()`` and
            ``cache_info()``, as ``functools.lru_cache`` functions have).
        name: its name in health reports and metrics; registering a name again replaces it.

    Raises:
        TypeError: ``obj`` has no way to be cleared or no way to report itself.
    """
    if _method(obj, "clear", "cache_clear") is None or _method(obj, "stats", "cache_info") is None:
        raise TypeError(
            f"cannot register {type(obj).__name__!r}: it needs clear() and stats() "
            "(or cache_clear() and cache_info())"
        )
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"a registered object needs a non-empty name, got {name!r}")
    try:
        # A bound method (``obj.cached_method``) is made anew at each access: hold it through a
        # WeakMethod, or it would be gone at once.
        ref: Callable[[], object | None] = (
            weakref.WeakMethod(obj) if inspect.ismethod(obj) else weakref.ref(obj)
        )
    except TypeError:
        ref = lambda: obj  # noqa: E731 - held strongly: the object cannot be weakly referenced
    with _lock:
        _entries[name] = ref


def unregister(name: str) -> None:
    """Forget the object registered under ``name`` (nothing happens if there is none)."""
    with _lock:
        _entries.pop(name, None)


def _live() -> list[tuple[str, object]]:
    with _lock:
        named = [(name, ref()) for name, ref in _entries.items()]
        for name in [n for n, obj in named if obj is None]:
            _entries.pop(name, None)  # its object is gone
    found = [(n, o) for n, o in named if o is not None]
    taken = {n for n, _ in found}
    for pool in sorted(live_pools(), key=lambda p: p.number):
        name = pool.name
        if name in taken:  # two pools of one name are both reported, the later one numbered
            name = f"{pool.name}#{pool.number}"
        taken.add(name)
        found.append((name, pool))
    return found


def _as_dict(stats: object) -> dict[str, object]:
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return dataclasses.asdict(stats)
    as_dict = getattr(stats, "_asdict", None)  # namedtuples: lru_cache's CacheInfo
    if callable(as_dict):
        return dict(as_dict())
    if isinstance(stats, dict):
        return dict(stats)
    return {"value": repr(stats)}


def pool_stats() -> dict[str, dict[str, object]]:
    """Name → stats of every registered object and live ``BoundedPool``. An object whose
    ``stats()`` raises is reported as ``{"error": "…"}``."""
    report: dict[str, dict[str, object]] = {}
    for name, obj in _live():
        method = _method(obj, "stats", "cache_info")
        try:
            report[name] = _as_dict(method()) if method is not None else {}
        except Exception as exc:  # a broken stats() must not break health()
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return report


def clear_all() -> dict[str, object]:
    """Clear every registered object and live pool; name → what ``clear()`` returned, or the
    error it raised (logged; the others are still cleared)."""
    done: dict[str, object] = {}
    for name, obj in _live():
        method = _method(obj, "clear", "cache_clear")
        try:
            done[name] = method() if method is not None else None
        except Exception as exc:
            _log.exception("membound guard: clearing %s failed", name)
            done[name] = f"{type(exc).__name__}: {exc}"
    return done
