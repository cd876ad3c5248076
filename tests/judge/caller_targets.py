"""Leak-hunt targets whose holder is filled from a line other than the caller's own: through a
helper method in another user module, through a recursion, or right in the target."""

from __future__ import annotations

from tests.judge.emitter import EventBus

bus = EventBus()
deep_bus = EventBus()


class Handler:
    """A listener: one new object per call."""

    def __call__(self) -> None:
        pass


def subscribe_and_forget() -> None:
    """Registers a new handler and never unregisters it."""
    handler = Handler()
    bus.on(handler)


hops_bus = EventBus()


def subscribe_through_hops() -> None:
    """The same leak, added by a method that calls itself before it appends."""
    hops_bus.on_after(Handler(), 3)


def _nested(depth: int) -> None:
    if depth:
        _nested(depth - 1)
        return
    deep_bus.on(Handler())


def subscribe_from_deep_down() -> None:
    """The same leak, 30 frames under the target: more frames than a trace keeps."""
    _nested(30)


KEPT: list[object] = []


def _make() -> object:
    made = Handler()
    return made


def keeps_what_a_helper_made() -> None:
    """The target appends itself (no caller to name); the appended object comes from a helper
    called on the same line, so the line executed last before the list grew is the helper's."""
    KEPT.append(_make())
