"""The leak trend of a long-running process: does its floor keep rising, and when does it reach
the limit?

A service's memory moves all the time: requests allocate and free, caches fill, the collector runs.
What a leak changes is the *floor*, the level memory falls back to after collections. So the trend
keeps, over a sliding window, the minimum of every slice of the window (``slices`` of them; a slice
spans ``window / slices`` seconds): the floor, whatever the sawtooth above it does. Storage is
``slices`` pairs, whatever the run's length or the sampling rate (DESIGN §5.4).

The verdict is :func:`membound.classify` (the same judge as every growth verdict) run on that
series of floors, with a tolerance drawn from the floors' own noise: four robust standard
deviations of their residuals around the Theil–Sen line, and at least ``min_growth``. So

* a steady leak is ``leak``: over a full window, the floor still rises in the last quarter of
  the window *and* in each third of it (by its floors at the third's ends, so a leak that
  grows in steps counts when every third holds one), and the last third by at least half as
  much as the first;
* a sawtooth is ``flat`` or ``sawtooth`` (its floors stay level);
* a rise over part of the window only (a cache filling to its bound) is ``ramp``;

and nothing is judged before the window is three quarters full (no leak before it is full).
A floor is the lowest reading of the last sixth of the window (so teeth longer than a slice do
not read as noise), and a ``leak`` becomes an alarm only after it has held for ``confirm_s`` (a
quarter of the window by default): a cache that fills for a while and then holds never raises
one, unless it fills for about as long as the window (choose a window longer than that). The
time to the limit is the headroom left divided by the floor's robust slope, given for a
``leak`` only.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from membound.results import Timeline, classify
from membound.results.growth import theil_sen

__all__ = ["LeakTrend", "TrendVerdict"]

#: Robust standard deviations of the floors' noise that a rise must exceed to count.
_NOISE_SIGMAS = 4.0
#: The window must be this full before anything is judged.
_FULL_ENOUGH = 0.75
#: The last third of the window must rise at least this fraction as fast as the first.
_STEADY_RATIO = 0.5
#: Each floor is the lowest of the last ``slices / _SPAN_PARTS`` slices.
_SPAN_PARTS = 6


@dataclass(frozen=True)
class TrendVerdict:
    """How the floor of memory moves over the window.

    Attributes:
        pattern: ``flat``, ``sawtooth``, ``ramp``, ``leak`` or ``spike`` (:func:`membound.classify`
            of the floors), or ``unknown`` while the window is not yet three quarters full.
        slope_bytes_per_s: the floors' robust (Theil–Sen) slope over the window.
        time_to_limit_s: seconds until the limit at that slope, from the last reading; None
            unless the pattern is ``leak`` (a flat or settling floor has no time to the limit).
        explanation: one line a person can read, quoting the figures above.
        floors: slices the verdict was drawn from.
        tolerance_bytes: rises within this many bytes counted as noise.
        confirmed: the floor has been judged ``leak`` for ``confirm_s`` seconds in a row (a
            cache that fills for a while and then holds is not reported).
    """

    pattern: str
    slope_bytes_per_s: float
    time_to_limit_s: float | None
    explanation: str
    floors: int
    tolerance_bytes: float
    confirmed: bool = False

    @property
    def leaking(self) -> bool:
        """True when the floor has kept rising for the confirmation time: an alarm."""
        return self.confirmed

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (``pattern``, ``slope_bytes_per_s``, ``time_to_limit_s``, …)."""
        return {
            "pattern": self.pattern,
            "slope_bytes_per_s": self.slope_bytes_per_s,
            "time_to_limit_s": self.time_to_limit_s,
            "explanation": self.explanation,
            "floors": self.floors,
            "tolerance_bytes": self.tolerance_bytes,
            "confirmed": self.confirmed,
        }


class LeakTrend:
    """Floors of memory over a sliding window, and the leak verdict on them.

    Args:
        window_s: the window's length in seconds (the Watchdog's ``leak_window``).
        slices: how many floors the window keeps (at least 8).
        min_growth: the smallest rise over the window that can count as growth, bytes.
        confirm_s: how long the floor must keep being judged ``leak`` before it is an alarm
            (default: a quarter of the window).
    """

    def __init__(
        self,
        window_s: float,
        slices: int = 60,
        min_growth: int = 1 << 20,
        confirm_s: float | None = None,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        if slices < 8:
            raise ValueError(f"slices must be at least 8, got {slices}")
        self.window_s = float(window_s)
        self.slices = slices
        self.min_growth = min_growth
        self._slice_s = self.window_s / slices
        self._floors: deque[tuple[float, float]] = deque(maxlen=slices)
        self._open_start: float | None = None
        self._open_min = 0.0
        self._last = 0.0
        self._last_t = 0.0
        self.confirm_s = self.window_s / 4 if confirm_s is None else float(confirm_s)
        self._leak_since: float | None = None
        self._last_leak_t = 0.0

    def add(self, t: float, value: float) -> bool:
        """Add one reading taken at ``t`` (seconds, any clock); True when it closed a slice (a
        new verdict may be drawn)."""
        self._last, self._last_t = value, t
        if self._open_start is None:
            self._open_start, self._open_min = t, value
            return False
        if t - self._open_start < self._slice_s:
            self._open_min = min(self._open_min, value)
            return False
        self._floors.append((self._open_start, self._open_min))
        # A gap longer than a slice (a suspended process) starts the next slice at this reading.
        self._open_start, self._open_min = t, value
        return True

    def reset(self) -> None:
        """Forget every floor (after a recycle, or when the workload changed on purpose)."""
        self._floors.clear()
        self._open_start = None
        self._leak_since = None

    def verdict(self, limit_bytes: float | None = None) -> TrendVerdict:
        """The verdict on the floors kept now; the time to ``limit_bytes`` when given."""
        n = len(self._floors)
        if n < max(8, int(self.slices * _FULL_ENOUGH)):
            first = self._floors[0][0] if self._floors else self._open_start
            covered = 0.0 if first is None else self._last_t - first
            needed = self.window_s * _FULL_ENOUGH
            return TrendVerdict(
                "unknown",
                0.0,
                None,
                f"unknown: {covered:.0f} s seen; the trend is judged after {needed:.0f} s "
                f"(three quarters of the {self.window_s:.0f} s window)",
                n,
                float(self.min_growth),
            )
        # The floor at each slice is the lowest reading of the last ``span`` slices: a sawtooth
        # whose teeth are longer than one slice still shows its troughs' level in every floor.
        span = max(1, self.slices // _SPAN_PARTS)
        kept = list(self._floors)
        times = [t for t, _ in kept[span - 1 :]]
        values = [min(v for _, v in kept[i - span + 1 : i + 1]) for i in range(span - 1, n)]
        slope = theil_sen(times, values)
        t0 = times[0]
        residuals = [v - (values[0] + slope * (t - t0)) for t, v in zip(times, values, strict=True)]
        centre = statistics.median(residuals)
        mad = statistics.median(abs(r - centre) for r in residuals)
        tolerance = max(float(self.min_growth), _NOISE_SIGMAS * 1.4826 * mad)
        floors = Timeline(
            times=tuple(t - t0 for t in times),
            lows=tuple(values),
            highs=tuple(values),
            interval=self._slice_s,
            samples=len(values),
            source=f"floors of {n} slices of {self._slice_s:g} s",
        )
        growth = classify(floors, tolerance=tolerance)
        # A leak needs the whole window: judged over three quarters of it, a cache that filled
        # for most of the time since the start looks steady.
        steady = n >= self.slices and _rises_throughout(times, values, tolerance)
        pattern = growth.pattern
        if pattern in ("leak", "ramp", "retained") and steady:
            pattern = "leak"
        elif pattern in ("leak", "retained"):
            # Rising over part of the window only: not yet a leak. A service's floor that rose
            # and held is a cache filling to its bound, not a one-shot block's "retained".
            pattern = "ramp"
        to_limit: float | None = None
        if limit_bytes is not None and slope > 0 and pattern == "leak":
            to_limit = max(0.0, (limit_bytes - self._last) / slope)
        if pattern == "leak":
            self._last_leak_t = self._last_t
            if self._leak_since is None:
                self._leak_since = self._last_t
        elif self._leak_since is not None and self._last_t - self._last_leak_t > self.confirm_s / 2:
            # A leak that grows in steps reads "ramp" for a moment between steps: only a pause
            # longer than half the confirmation time ends the episode.
            self._leak_since = None
        held = 0.0 if self._leak_since is None else self._last_t - self._leak_since
        confirmed = pattern == "leak" and held >= self.confirm_s
        words = _words(pattern, slope, to_limit, self.window_s, tolerance)
        if pattern == "leak" and not confirmed:
            words += f"; an alarm once it has held for {self.confirm_s:.0f} s ({held:.0f} s so far)"
        return TrendVerdict(pattern, slope, to_limit, words, n, tolerance, confirmed)


def _rises_throughout(times: list[float], values: list[float], tolerance: float) -> bool:
    """Whether the floors rise in every third of the window by more than a third of the
    tolerance each, and the last third by at least half as much as the first: a steady rise,
    not a step (a cache filling for part of the window) nor a rise that is settling
    (fragmentation, a cache slowing down as it fills). A third's rise is its floor at the end
    less its floor at the start (medians of three), so a leak that grows in steps counts as long
    as each third of the window holds a step."""
    n = len(values)
    third = n // 3
    if third < 4:
        return False
    rises = []
    for k in range(3):
        lo, hi = k * third, (k + 1) * third if k < 2 else n
        part = values[lo:hi]
        rise = statistics.median(part[-3:]) - statistics.median(part[:3])
        if rise <= tolerance / 3:
            return False
        rises.append(rise)
    return rises[2] >= _STEADY_RATIO * rises[0]


def _words(pattern: str, slope: float, to_limit: float | None, window: float, tol: float) -> str:
    from membound._units import format_size

    rate = f"{format_size(slope * 60, signed=True)}/min"
    base = f"the floor after collections moved {rate} over the last {window:.0f} s"
    tail = f" (noise tolerance {format_size(tol)})"
    if pattern == "leak":
        eta = "" if to_limit is None else f"; the limit is {to_limit:.0f} s away at that rate"
        return f"leak: {base}, still rising at the end{eta}{tail}"
    if pattern == "ramp":
        return (
            f"ramp: {base}, over part of the window only (a cache filling to its bound, or a"
            f" rise that has not lasted the window){tail}"
        )
    if pattern == "sawtooth":
        return f"sawtooth: {base}; its floors stay level{tail}"
    return f"{pattern}: {base}{tail}"
