"""A worker's *lasting* memory: what it holds across other requests' temporaries.

A worker that serves one request at a time (gunicorn's sync worker) is read after each
response with nothing else running: its memory then is what it keeps. A worker that serves
several at once (an ASGI app under uvicorn, gunicorn's gthread) is read after one response
while others may still hold their temporaries — a 150 MiB buffer held 0.2 s by a neighbour
request is not memory a recycle gives back for long, and recycling on it replaces healthy
workers over and over (52 decisions at 110–206 MiB for a 93 MiB point, in a service that
leaked 100 KiB a request).

So a reading taken while other requests are in flight is judged by :class:`LastingFloor`:
the lowest reading over the last ``span`` seconds (2 s by default, ten times the temporaries a
web request typically holds), kept in a few fixed time buckets — the structure never grows
with requests or time (membound's own rule). Memory a request keeps stays in every reading
and raises the floor; a temporary is in the readings only while it is held, and the floor
skips it. A reading taken with no other request in flight is lasting as it is.

Until the readings cover the whole span (a worker just started, or after an idle stretch) a
busy reading is not judged: the worker keeps serving, and the next quiet reading, or the
span filled, decides. The watchdog's ``hard`` action stays the guard against a fast rise.
"""

from __future__ import annotations

__all__ = ["SPAN_S", "LastingFloor"]

#: Seconds a reading taken among other requests must be matched by every reading to count.
SPAN_S = 2.0


class LastingFloor:
    """The lowest memory reading over the last ``span`` seconds, in ``buckets`` fixed slots.

    Args:
        span: seconds the floor covers.
        buckets: time slots (``span / buckets`` seconds each); the floor is known once the
            readings reach back to the oldest of them.
    """

    def __init__(self, span: float = SPAN_S, buckets: int = 4) -> None:
        if not span > 0 or buckets < 2:
            raise ValueError(f"span must be > 0 s and buckets >= 2, got {span!r}, {buckets!r}")
        self._width = span / buckets
        # Slot k holds (bucket number, lowest reading in it) for the bucket numbers ≡ k.
        self._slots: list[tuple[int, int] | None] = [None] * buckets

    def add(self, now: float, reading: int) -> None:
        """Note ``reading`` (bytes) taken at ``now`` (``time.monotonic()``)."""
        number = int(now // self._width)
        slot = number % len(self._slots)
        held = self._slots[slot]
        if held is None or held[0] != number or reading < held[1]:
            self._slots[slot] = (number, reading)

    def floor(self, now: float) -> int | None:
        """The lowest reading of the last ``span`` seconds, or None while the readings do not
        reach back over the whole span (too few to say what lasts)."""
        number = int(now // self._width)
        recent = [
            held
            for held in self._slots
            if held is not None and number - len(self._slots) < held[0] <= number
        ]
        if not recent or number - min(n for n, _ in recent) < len(self._slots) - 1:
            return None
        return min(reading for _, reading in recent)
