"""``batch_size="auto"``: a page size tuned from measured time per page, capped by memory.

Percona's pt-archiver and pt-online-schema-change adapt their chunk size to a time target (a
moving average of rows per second times ``--chunk-time``); nothing adapts to memory as well.
This tuner does both, and is written here because no library offers a page-size controller:

* **time** — a page's time is measured from the start of its query to the moment the caller
  asks for the next page (the read plus your code for that batch). Seconds per row are smoothed
  (an exponential average, 0.3 of the newest page). A page more than 2× off the average either
  way is held as a possible hiccup (the machine is shared) and changes nothing; when the next
  page is off the same way, the load has changed (wider rows, a slower disk, a heavier loop
  body) and the two replace the average instead of blending into it, so the size re-settles on
  the page after. The next size is ``target_s / seconds_per_row``, growing at most 4× a page
  (a first page that was fast by chance must not make a huge second one).
* **memory** — bytes per row are the larger of two measurements: the page's Δ RSS while it was
  read (when RSS grew by more than noise: the allocator reuses a previous page's memory, so a
  same-sized page often shows none) and a sample of rows' own sizes (``sys.getsizeof`` of a
  few rows and their values). The size is capped at ``max_bytes / bytes_per_row``.

Sizes change only when they move by more than a tenth, and are rounded to two significant
digits, so the page statements built for a size are rebuilt rarely.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from membound._errors import BatchSourceError
from membound._units import parse_size

__all__ = ["AUTO", "PageSizer", "check_batch_size", "sampled_bytes_per_row"]

AUTO = "auto"
#: The first page's size in auto mode.
FIRST_PAGE = 1000
#: Never more rows per page than this, whatever the measurements say.
MAX_PAGE = 1_000_000
#: Most growth from one page to the next.
_MAX_GROWTH = 4.0
#: Rows whose own size is sampled per page.
_SAMPLED_ROWS = 3
#: Δ RSS below this is allocator noise, not the page.
_RSS_NOISE = 1 << 20


def check_batch_size(batch_size: Any) -> None:
    """Raise :class:`BatchSourceError` unless ``batch_size`` is an integer >= 1 or ``"auto"``."""
    if batch_size == AUTO and isinstance(batch_size, str):
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BatchSourceError(f"batch_size must be an integer >= 1 or 'auto', got {batch_size!r}")


class PageSizer:
    """Chooses each page's size from the pages before it.

    Args:
        target_s: the time a page should take (read plus the caller's work on it), in seconds.
        max_bytes: the memory a page may take (a size string such as ``"64 MB"`` or bytes).
        first: the first page's size.

    Raises:
        BatchSourceError: a target that is not a positive number, or a memory cap below 1 KiB.
    """

    def __init__(
        self, target_s: float = 0.5, max_bytes: int | str = "64 MB", *, first: int = FIRST_PAGE
    ) -> None:
        if (
            isinstance(target_s, bool)
            or not isinstance(target_s, (int, float))
            or not (0 < target_s < math.inf)
        ):
            raise BatchSourceError(f"target_batch_s must be a positive number, got {target_s!r}")
        cap = parse_size(max_bytes) if isinstance(max_bytes, str) else max_bytes
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1024:
            raise BatchSourceError(f"max_batch_memory must be at least 1 KB, got {max_bytes!r}")
        self.target_s = float(target_s)
        self.max_bytes = cap
        self.size = first
        self.seconds_per_row: float | None = None
        self.bytes_per_row: float = 0.0
        self._outlier: float | None = None
        self.changes = 0

    def observe(self, rows: int, seconds: float, rss_delta: int, row_bytes: float) -> int:
        """Record one page and return the next page's size.

        Args:
            rows: rows the page held.
            seconds: its time, from the start of its query to the request for the next page.
            rss_delta: RSS after the page was read minus RSS before its query.
            row_bytes: the sampled size of one of its rows (:func:`sampled_bytes_per_row`).
        """
        if rows <= 0:
            return self.size
        per_row = max(seconds, 1e-9) / rows
        old = self.seconds_per_row
        if old is None:
            self.seconds_per_row = per_row
        elif 0.5 <= per_row / old <= 2.0:
            self.seconds_per_row = 0.7 * old + 0.3 * per_row
            self._outlier = None
        elif self._outlier is not None and (per_row > old) == (self._outlier > old):
            # Two pages in a row off by more than 2x the same way: the load changed.
            self.seconds_per_row = 0.5 * (self._outlier + per_row)
            self._outlier = None
        else:
            self._outlier = per_row  # one page off: a hiccup until the next page confirms it
        measured = rss_delta / rows if rss_delta > _RSS_NOISE else 0.0
        self.bytes_per_row = max(measured, row_bytes)
        wanted = self.target_s / (self.seconds_per_row or per_row)
        wanted = min(wanted, self.size * _MAX_GROWTH)
        if self.bytes_per_row > 0:
            wanted = min(wanted, self.max_bytes / self.bytes_per_row)
        new = _round2(max(1, min(MAX_PAGE, int(wanted))))
        if abs(new - self.size) > 0.1 * self.size:
            self.size = new
            self.changes += 1
        return self.size


def _round2(n: int) -> int:
    """``n`` rounded to two significant digits (fewer distinct sizes, fewer rebuilt queries)."""
    if n < 100:
        return n
    digits = int(math.log10(n)) - 1
    return int(round(n, -digits))


def sampled_bytes_per_row(rows: Sequence[Any]) -> float:
    """The mean shallow size of a few rows plus their values (tuples, Row objects, ORM objects)."""
    count = min(len(rows), _SAMPLED_ROWS)
    if count == 0:
        return 0.0
    total = 0
    step = max(1, len(rows) // count)
    for row in rows[::step][:count]:
        total += sys.getsizeof(row)
        values: Any
        if isinstance(row, tuple) or hasattr(row, "_tuple"):
            values = tuple(row)
        else:
            values = getattr(row, "__dict__", {}).values()
        total += sum(sys.getsizeof(v) for v in values)
    return total / count
