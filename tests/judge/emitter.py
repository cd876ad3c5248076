"""An event emitter in a user module of its own: ``on`` appends a listener and nothing removes
it. The leak's holder is its list, the adding line is inside ``on``, and the line the user must
fix is the one that called ``on``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class EventBus:
    """Listeners are added and never removed."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], Any]] = []

    def on(self, fn: Callable[[], Any]) -> None:
        self._listeners.append(fn)

    def on_after(self, fn: Callable[[], Any], hops: int) -> None:
        """Registers ``fn`` after ``hops`` calls of itself (a dispatcher walking a chain)."""
        if hops:
            self.on_after(fn, hops - 1)
            return
        self._listeners.append(fn)

    def emit(self) -> None:
        for fn in self._listeners:
            fn()
