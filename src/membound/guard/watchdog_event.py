"""What a :class:`~membound.guard.watchdog.Watchdog` tells its callbacks (a
:class:`WatchdogEvent`), and how its ``soft``/``hard`` settings become bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from membound._errors import SizeError
from membound._units import format_size, parse_size
from membound.guard.trend import TrendVerdict

__all__ = ["State", "WatchdogEvent", "threshold_of"]

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
            ``membound.guard.backstop``).
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


def threshold_of(value: int | str, limit: int, name: str) -> int:
    """``"80%"`` of ``limit``, or a size; a usage error names ``name`` when it is neither."""
    if isinstance(value, str) and value.strip().endswith("%"):
        text = value.strip()[:-1].strip()
        try:
            pct = float(text)
        except ValueError:
            pct = float("nan")
        if not 0 < pct <= 100:
            raise SizeError(
                f"{name}={value!r} is no percentage of the limit: expected 0 < p <= 100"
            )
        return int(limit * pct / 100)
    if isinstance(value, float) and not isinstance(value, bool):
        raise SizeError(
            f"{name}={value!r}: give bytes as a whole number, a size ('1.5 GB') or a percentage "
            "of the limit ('80%')"
        )
    n = parse_size(value)
    if n <= 0:
        raise SizeError(f"{name}={value!r} must be more than 0 bytes")
    return n
