"""``batch_size="auto"``: a page size tuned from measured time per page, capped by memory.

Percona's pt-archiver and pt-online-schema-change adapt their chunk size to a time target (a
moving average of rows per second times ``--chunk-time``); nothing adapts to memory as well.
This tuner does both, and is written here because no library offers a page-size controller:

* **time** — a page's time is measured from the start of its query to the moment the caller
  asks for the next page (the read plus your code for that batch), and modelled as a fixed
  cost per page plus a cost per row: the fixed cost is the intercept of a least-squares line
  through the last 8 pages when their sizes differ enough and the line fits them (R² ≥ 0.9),
  the cost per row is smoothed (an
  exponential average, 0.3 of the newest page; 0.8 when two pages in a row are off by more than
  a fifth the same way). A page more than 2× off the average either way
  is held as a possible hiccup (the machine is shared) and changes nothing; when the next page
  is off the same way, the load has changed (wider rows, a slower disk, a heavier loop body)
  and the two replace the average instead of blending into it, so the size re-settles on the
  page after. The next size is ``(target_s - fixed) / per_row``, growing at most 4× a page (a
  first page that was fast by chance must not make a huge second one). When the fixed cost is
  half the target or more (a bulk call per batch), no size meets the target usefully: pages are
  then sized so their rows take as long as the fixed cost, never shrunk to nothing.
* **memory** — bytes per row are the larger of two measurements: the page's Δ RSS while it was
  read (when RSS grew by more than noise; kept, fading by 5 % a page, since the allocator reuses
  a previous page's memory and a same-sized page often shows none) and a sample of rows' own
  sizes (``sys.getsizeof`` of a few rows and their values, containers a few levels deep). The
  size is capped at ``max_bytes / bytes_per_row``.

Sizes change only when they move by more than a tenth, and are rounded to two significant
digits, so the page statements built for a size are rebuilt rarely.
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import deque
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
#: Pages the fixed cost per page is fitted over.
_FIT_PAGES = 8
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
        self.fixed_s = 0.0
        self.bytes_per_row: float = 0.0
        self._rss_per_row = 0.0
        self._outlier: float | None = None
        self._observed = 0
        self._side = 0
        self._pages: deque[tuple[int, float]] = deque(maxlen=_FIT_PAGES)
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
        seconds = max(seconds, 1e-9)
        self._observed += 1
        self._pages.append((rows, seconds))
        fixed_before = self.fixed_s
        self._fit_fixed_cost()
        per_row = max(seconds - self.fixed_s, 0.01 * seconds) / rows
        old = self.seconds_per_row
        if (
            old is None
            or self._observed <= 2
            or abs(self.fixed_s - fixed_before) > (0.1 * self.target_s)
        ):
            # The first page pays for connecting and compiling; a new fixed-cost estimate
            # changes what a row costs: either way, start the average again.
            self.seconds_per_row = per_row
            self._outlier = None
        elif 0.5 <= per_row / old <= 2.0:
            # A second page in a row off by a fifth the same way is a drift (a moderate change
            # of load): follow it fast instead of over many pages.
            side = 0 if 0.8 <= per_row / old <= 1.25 else (1 if per_row > old else -1)
            weight = 0.8 if side and side == self._side else 0.3
            self._side = side
            self.seconds_per_row = (1 - weight) * old + weight * per_row
            self._outlier = None
        elif self._outlier is not None and (per_row > old) == (self._outlier > old):
            # Two pages in a row off by more than 2x the same way: the load changed.
            self.seconds_per_row = 0.5 * (self._outlier + per_row)
            self._outlier = None
            self._pages.clear()
            self._pages.append((rows, seconds))
        else:
            self._outlier = per_row  # one page off: a hiccup until the next page confirms it
            self._pages.pop()  # and not a point to fit the fixed cost on
        # Memory: RSS grows only past its earlier peak (the allocator reuses freed pages), so a
        # measured Δ is kept, fading slowly, rather than forgotten on the next quiet page.
        measured = rss_delta / rows if rss_delta > _RSS_NOISE else 0.0
        self._rss_per_row = max(measured, 0.95 * self._rss_per_row)
        self.bytes_per_row = max(self._rss_per_row, row_bytes)
        self._resize(self._wanted())
        return self.size

    def _wanted(self) -> float:
        """Rows for the next page: ``(target - fixed) / per_row``; when the fixed cost alone
        takes half the target or more (a bulk call per batch, a heavy plan), meeting the target
        would leave little time for rows, and pages are sized so their rows take as long as the
        fixed cost (half the time useful)."""
        per_row = self.seconds_per_row or 1e-9
        if self.fixed_s >= 0.5 * self.target_s:
            wanted = self.fixed_s / per_row
        else:
            wanted = (self.target_s - self.fixed_s) / per_row
        wanted = min(wanted, self.size * _MAX_GROWTH)
        if self.bytes_per_row > 0:
            wanted = min(wanted, self.max_bytes / self.bytes_per_row)
        return wanted

    def _resize(self, wanted: float) -> None:
        new = _round2(max(1, min(MAX_PAGE, int(wanted))))
        if abs(new - self.size) > 0.1 * self.size:
            self.size = new
            self.changes += 1

    def _fit_fixed_cost(self) -> None:
        """Seconds a page costs whatever its rows (query set-up, a call per batch): the
        intercept of a least-squares line through the last pages, when their sizes differ
        enough to tell it from the cost per row (else the last estimate stands)."""
        sizes = [n for n, _ in self._pages]
        if len(sizes) < 3 or max(sizes) < 1.3 * min(sizes):
            return
        mean_n = sum(sizes) / len(sizes)
        mean_t = sum(t for _, t in self._pages) / len(sizes)
        var = sum((n - mean_n) ** 2 for n in sizes)
        slope = sum((n - mean_n) * (t - mean_t) for n, t in self._pages) / var
        if slope <= 0:
            return
        # Only a line that explains the pages' times (R² >= 0.9): noisy pages of a few sizes
        # would give an intercept that is noise, and sizes that chase it.
        total = sum((t - mean_t) ** 2 for _, t in self._pages)
        if total > 0 and slope * slope * var / total < 0.9:
            return
        fastest = min(t for _, t in self._pages)
        self.fixed_s = min(max(mean_t - slope * mean_n, 0.0), fastest)


def _round2(n: int) -> int:
    """``n`` rounded to two significant digits (fewer distinct sizes, fewer rebuilt queries)."""
    if n < 100:
        return n
    digits = int(math.log10(n)) - 1
    return int(round(n, -digits))


def sampled_bytes_per_row(rows: Sequence[Any]) -> float:
    """The mean size of a few rows with their values (tuples, Row objects, ORM objects);
    values that are containers (a JSON column's dicts and lists) are sized with what they hold,
    a few levels deep."""
    count = min(len(rows), _SAMPLED_ROWS)
    if count == 0:
        return 0.0
    total = 0
    step = max(1, len(rows) // count)
    for row in rows[::step][:count]:
        values: Any
        if isinstance(row, tuple) or hasattr(row, "_tuple"):
            values = tuple(row)
        else:
            values = getattr(row, "__dict__", {}).values()
        total += sys.getsizeof(row) + sum(_value_size(v, 3) for v in values)
    return total / count


def _value_size(value: Any, depth: int) -> int:
    """``sys.getsizeof`` of a value plus, for dicts, lists, tuples and sets, of what they hold
    (``depth`` levels, the first 1,000 items of each: an estimate, not a deep walk)."""
    size = sys.getsizeof(value)
    if depth <= 0 or isinstance(value, (str, bytes, bytearray)):
        return size
    items: Any
    if isinstance(value, dict):
        items = itertools.chain.from_iterable(itertools.islice(value.items(), 1000))
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = itertools.islice(value, 1000)
    else:
        return size
    return size + sum(_value_size(v, depth - 1) for v in items)
