"""Seed experiments about objects: cycles, per-request sessions, fan-out copies, record sizes.

Module-level functions so that each can run in a fresh interpreter (``membound.compare``) or be
called repeatedly in this one (``membound.find_leaks``).
"""

from __future__ import annotations

import copy
import gc
import itertools
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = [
    "RECORD_FACTORIES",
    "cycles_gc_disabled",
    "cycles_gc_enabled",
    "fanout_deepcopy",
    "fanout_shared",
    "handle_request_leaky",
    "handle_request_shared",
    "sessions_per_request",
    "shared_session",
]


class _Node:
    def __init__(self, payload: int) -> None:
        self.payload = [payload] * 8
        self.partner: _Node | None = None


def _make_cycles(n: int) -> None:
    for i in range(n):
        a, b = _Node(i), _Node(-i)
        a.partner, b.partner = b, a  # each pair keeps the other alive: refcounting cannot free it


def cycles_gc_enabled(n: int) -> None:
    """Create ``n`` two-object reference cycles with the cyclic GC running: they get freed."""
    _make_cycles(n)


def cycles_gc_disabled(n: int) -> None:
    """The same with ``gc.disable()``: nothing frees the cycles, memory grows with ``n``."""
    gc.disable()
    try:
        _make_cycles(n)
    finally:
        gc.enable()


class Session:
    """A stand-in for an ORM session: an identity map and some buffers per instance."""

    def __init__(self) -> None:
        self.identity_map: dict[int, dict[str, int]] = {i: {"id": i} for i in range(20)}
        self.pending: list[int] = []


_REGISTRY: dict[int, Session] = {}
_request_ids = itertools.count()
_SHARED = Session()


def handle_request_leaky() -> int:
    """One request with a new session kept in a registry that nothing prunes (the leak)."""
    request_id = next(_request_ids)
    session = Session()
    _REGISTRY[request_id] = session
    return len(session.identity_map)


def handle_request_shared() -> int:
    """One request using the one shared session."""
    _SHARED.pending.clear()
    return len(_SHARED.identity_map)


def sessions_per_request(n: int) -> None:
    """Serve ``n`` requests, each with its own registered session."""
    for _ in range(n):
        handle_request_leaky()


def shared_session(n: int) -> None:
    """Serve ``n`` requests with one shared session."""
    for _ in range(n):
        handle_request_shared()


def _payload() -> dict[str, Any]:
    return {"rows": [{"id": i, "name": f"item {i}", "tags": ["a", "b"]} for i in range(2000)]}


def fanout_deepcopy(subscribers: int) -> int:
    """Send one event to every subscriber, deep-copying the payload for each (a clone each)."""
    payload = _payload()
    inboxes = [copy.deepcopy(payload) for _ in range(subscribers)]  # noqa: MB402 - the point
    return len(inboxes)


def fanout_shared(subscribers: int) -> int:
    """Send one read-only view of the same payload to every subscriber."""
    payload = MappingProxyType(_payload())
    inboxes = [payload for _ in range(subscribers)]
    return len(inboxes)


class _PlainRecord:
    def __init__(self, id: int, name: str, email: str) -> None:
        self.id, self.name, self.email = id, name, email


class _SlotsRecord:
    __slots__ = ("email", "id", "name")

    def __init__(self, id: int, name: str, email: str) -> None:
        self.id, self.name, self.email = id, name, email


@dataclass(slots=True)
class _DataRecord:
    id: int
    name: str
    email: str


_TupleRecord = namedtuple("_TupleRecord", "id name email")


def _record_factories() -> dict[str, Callable[[], Any]]:
    name, email = "Ada Lovelace", "ada@example.com"
    factories: dict[str, Callable[[], Any]] = {
        "dict": lambda: {"id": 1, "name": name, "email": email},
        "class": lambda: _PlainRecord(1, name, email),
        "__slots__ class": lambda: _SlotsRecord(1, name, email),
        "dataclass(slots=True)": lambda: _DataRecord(1, name, email),
        "namedtuple": lambda: _TupleRecord(1, name, email),
    }
    try:
        import pydantic
    except ImportError:
        return factories

    record = pydantic.create_model(
        "PydanticRecord", id=(int, ...), name=(str, ...), email=(str, ...)
    )
    factories["pydantic model"] = lambda: record(id=1, name=name, email=email)
    return factories


#: The same three-field record, built six ways (pydantic only when it is installed).
RECORD_FACTORIES = _record_factories()
