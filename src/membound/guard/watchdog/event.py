"""What a :class:`~membound.guard.watchdog.core.Watchdog` tells its callbacks: a
:class:`WatchdogEvent`, and the states it speaks of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from membound._units import format_size
from membound.guard.watchdog.trend import TrendVerdict

__all__ = ["State", "WatchdogEvent"]

State = Literal["ok", "soft", "hard"]


@dataclass(frozen=True)
class WatchdogEvent:
    """What a callback is told.

    Attributes:
        kind: ``soft``, ``hard``, ``recover`` or ``leak``.
        state: the state now.
        previous: the state before.
        usage_bytes: the judged usage that caused it (see :class:`Watchdog`).
        limit_bytes: the limit it is judged against.
        threshold_bytes: the threshold that was crossed (for ``leak``: the limit).
        at: when, in seconds since the epoch.
        trend: the leak trend at that moment (None until the window has been judged).
        cause: ``threshold`` (a reading crossed it) or ``backstop`` (for ``hard``: the kernel
            refused an allocation that would have taken memory past ``hard``, see
            ``membound.guard.watchdog.backstop``).
        group: the cgroup whose memory was judged, or None (this process's own).
    """

    kind: Literal["soft", "hard", "recover", "leak"]
    state: State
    previous: State
    usage_bytes: int
    limit_bytes: int
    threshold_bytes: int
    at: float
    trend: TrendVerdict | None = None
    cause: Literal["threshold", "backstop"] = "threshold"
    group: str | None = None
    """The cgroup whose memory was judged (its directory; the same for every process in it),
    or None when it was this process's own."""

    def describe(self) -> str:
        """One line: ``hard: 271.0 MiB of 300.0 MiB (hard since crossing 270.0 MiB)``."""
        if self.kind == "leak" and self.trend is not None:
            return self.trend.explanation  # it starts with "leak: "
        if self.cause == "backstop":
            return (
                f"{self.kind}: the backstop refused an allocation that would have taken memory "
                f"past {format_size(self.threshold_bytes)} (last reading "
                f"{format_size(self.usage_bytes)} of {format_size(self.limit_bytes)}; memory "
                "written while the watchdog reads counts as taken); MemoryError was raised in "
                "the thread that asked"
            )
        return (
            f"{self.kind}: {format_size(self.usage_bytes)} of {format_size(self.limit_bytes)} "
            f"({self.state} since crossing {format_size(self.threshold_bytes)})"
        )
