"""``Timeline``: memory over time, bounded in size whatever the length of the run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from membound.results.downsample import MAX_POINTS_DEFAULT, Downsampler

__all__ = ["STARTED_AFTER", "Timeline"]

#: ``Timeline.extra`` key: seconds from the start of the measured block to the first sample
#: (set when the sampler process took longer to start than the block waits for it, 5 s);
#: charts count time from the block's start.
STARTED_AFTER = "started_after_s"


@dataclass(frozen=True)
class Timeline:
    """Memory samples over time, downsampled into at most ``MAX_POINTS_DEFAULT`` buckets.

    Each bucket keeps the time of its first sample and the min and max of its samples, so a
    downsampled timeline never hides a peak or a trough.
    """

    times: tuple[float, ...]
    """Seconds since the start of sampling, one per bucket (bucket start)."""
    lows: tuple[float, ...]
    """Smallest value (bytes) seen in each bucket."""
    highs: tuple[float, ...]
    """Largest value (bytes) seen in each bucket."""
    interval: float = 0.01
    """Sampling interval in seconds."""
    samples: int = 0
    """Number of raw samples folded into the buckets."""
    stride: int = 1
    """Raw samples per bucket (1 until the timeline first had to be downsampled)."""
    metric: str = "rss"
    """What the values are: ``"rss"`` (resident set size) or ``"heap"`` (tracemalloc)."""
    source: str = "sampler process reading /proc/PID/statm"
    """Where the samples came from."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Sampler diagnostics (late ticks, processes seen) and :data:`STARTED_AFTER`."""

    def __post_init__(self) -> None:
        if not len(self.times) == len(self.lows) == len(self.highs):
            raise ValueError("times, lows and highs must have the same length")

    def __len__(self) -> int:
        return len(self.times)

    def __repr__(self) -> str:
        """One line: how many samples over how long, never the samples themselves (a week's
        timeline printed whole was thousands of numbers)."""
        return (
            f"Timeline({self.samples} {self.metric} samples every {self.interval:g} s over "
            f"{self.duration_s:.2f} s, {len(self)} buckets)"
        )

    @property
    def duration_s(self) -> float:
        """Time from the first to the last bucket, in seconds."""
        return self.times[-1] - self.times[0] if self.times else 0.0

    @property
    def values(self) -> tuple[float, ...]:
        """One value per bucket: the midpoint of its min and max."""
        return tuple((lo + hi) / 2 for lo, hi in zip(self.lows, self.highs, strict=True))

    @property
    def peak(self) -> float:
        """The largest sampled value (0 for an empty timeline)."""
        return max(self.highs, default=0.0)

    @classmethod
    def from_values(
        cls,
        values: Sequence[float],
        interval: float = 0.01,
        *,
        metric: str = "rss",
        max_points: int = MAX_POINTS_DEFAULT,
        source: str = "given values",
    ) -> Timeline:
        """Build a timeline from equally spaced samples (downsampled like the sampler's)."""
        down = Downsampler(max_points)
        for i, v in enumerate(values):
            down.add(i * interval, float(v))
        return cls(
            times=tuple(down.times),
            lows=tuple(down.lows),
            highs=tuple(down.highs),
            interval=interval,
            samples=down.samples,
            stride=down.stride,
            metric=metric,
            source=source,
        )

    def window(self, start: float, end: float) -> Timeline:
        """The buckets that start within ``[start, end]``, with times shifted to begin at 0."""
        idx = [i for i, t in enumerate(self.times) if start <= t <= end]
        if not idx:
            return Timeline((), (), (), self.interval, 0, self.stride, self.metric, self.source)
        return Timeline(
            times=tuple(self.times[i] - start for i in idx),
            lows=tuple(self.lows[i] for i in idx),
            highs=tuple(self.highs[i] for i in idx),
            interval=self.interval,
            samples=len(idx) * self.stride,
            stride=self.stride,
            metric=self.metric,
            source=self.source,
            extra=self.extra,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (see ``report/json.py`` for the schema)."""
        return {
            "times": list(self.times),
            "lows": list(self.lows),
            "highs": list(self.highs),
            "interval": self.interval,
            "samples": self.samples,
            "stride": self.stride,
            "metric": self.metric,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timeline:
        """Inverse of :meth:`to_dict`."""
        return cls(
            times=tuple(float(x) for x in data["times"]),
            lows=tuple(float(x) for x in data["lows"]),
            highs=tuple(float(x) for x in data["highs"]),
            interval=float(data.get("interval", 0.01)),
            samples=int(data.get("samples", len(data["times"]))),
            stride=int(data.get("stride", 1)),
            metric=str(data.get("metric", "rss")),
            source=str(data.get("source", "")),
        )
