"""A request handler that keeps something per call: ``membound leaks`` names the dict and line."""

from __future__ import annotations

import itertools

_SESSIONS: dict[int, bytes] = {}
_IDS = itertools.count()


def handle_request() -> int:
    """Serve one request, and (the leak) remember its session forever."""
    session = next(_IDS)
    _SESSIONS[session] = b"x" * 256
    return session
