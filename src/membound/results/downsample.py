"""``Downsampler``: a bounded timeline of min–max buckets, whatever the length of the run.

Standard library only and importing nothing of membound: the sampler child (run by path with
``-E -s -S``) loads this file by its path, and ``Timeline.from_values`` imports it as usual.
Written here rather than taken from a library because it is a handful of lines (merge neighbouring
buckets pairwise, keeping each bucket's min and max) that must run in that stdlib-only child.
"""

from __future__ import annotations

from array import array

__all__ = ["MAX_POINTS_DEFAULT", "Downsampler"]

MAX_POINTS_DEFAULT = 10_000


class Downsampler:
    """A timeline of at most ``max_points`` buckets, each holding its start time, min and max.

    When full, neighbouring buckets merge pairwise and each bucket then spans twice as many
    samples, so memory stays bounded however long the run and no extreme is ever lost.
    """

    def __init__(self, max_points: int = MAX_POINTS_DEFAULT) -> None:
        if max_points < 2 or max_points % 2:
            raise ValueError("max_points must be an even number >= 2")
        self.max_points = max_points
        self.times = array("d")
        self.lows = array("d")
        self.highs = array("d")
        self.stride = 1
        self.samples = 0
        self._in_last = 0

    def add(self, t: float, value: float) -> None:
        """Add one sample taken at time ``t``."""
        self.samples += 1
        if self.times and self._in_last < self.stride:
            self._in_last += 1
            self.lows[-1] = min(self.lows[-1], value)
            self.highs[-1] = max(self.highs[-1], value)
            return
        if len(self.times) == self.max_points:
            self._halve()
        self.times.append(t)
        self.lows.append(value)
        self.highs.append(value)
        self._in_last = 1

    def _halve(self) -> None:
        times, lows, highs = array("d"), array("d"), array("d")
        for i in range(0, len(self.times) - 1, 2):
            times.append(self.times[i])
            lows.append(min(self.lows[i], self.lows[i + 1]))
            highs.append(max(self.highs[i], self.highs[i + 1]))
        self.times, self.lows, self.highs = times, lows, highs
        self.stride *= 2
        # The last bucket is complete after a merge; the next sample opens a new one.
        self._in_last = self.stride
