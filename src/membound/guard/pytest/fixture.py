"""The ``membound`` fixture: measuring and asserting memory from inside a test."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from membound._units import format_size
from membound.guard.pytest.failures import leak_text
from membound.guard.pytest.marks import limit_memory
from membound.judge.complexity import complexity
from membound.judge.curves import normalise_big_o
from membound.judge.leaks import find_leaks
from membound.measure.inprocess import block_peak
from membound.measure.isolate.function import measure
from membound.measure.track import track
from membound.results import Complexity, LeakReport, Measurement

__all__ = ["MemboundFixture", "membound"]


class MemboundFixture:
    """The ``membound`` fixture: measuring and asserting from inside a test."""

    def track(self, label: str | None = None, *, heap: bool = False) -> track:
        """``membound.track``: measure a block in this process."""
        return track(label, heap=heap)

    def measure(self, target: Any, *args: Any, **kwargs: Any) -> Measurement:
        """``membound.measure``: one call in a fresh interpreter."""
        return measure(target, *args, **kwargs)

    def complexity(self, target: Any, **kwargs: Any) -> Complexity:
        """``membound.complexity``."""
        return complexity(target, **kwargs)

    def find_leaks(self, target: Any, **kwargs: Any) -> LeakReport:
        """``membound.find_leaks``."""
        return find_leaks(target, **kwargs)

    def assert_no_leak(
        self,
        target: Callable[[], Any],
        *,
        iterations: int = 200,
        warmup: int = 20,
        tolerance: str | int | None = None,
    ) -> LeakReport:
        """Fail the test when ``target()`` leaks, or when the run is too short to decide
        (the message says how many iterations would); returns the report otherwise."""
        report = self.find_leaks(target, iterations=iterations, warmup=warmup, tolerance=tolerance)
        if report.verdict != "no leak":
            raise AssertionError("no leak expected: " + leak_text(report))
        return report

    def assert_complexity(
        self,
        target: Callable[[int], Any],
        expected: str,
        *,
        sizes: Sequence[float] = (1_000, 10_000, 100_000),
        metric: str = "heap",
        isolate: bool = False,
    ) -> Complexity:
        """Fail the test unless ``target(n)``'s memory complexity is ``expected``."""
        want = normalise_big_o(expected)
        result = self.complexity(target, sizes=sizes, metric=metric, isolate=isolate)
        if result.big_o != want:
            raise AssertionError(f"expected {want}, measured {result.big_o}: {result.explanation}")
        return result

    @contextlib.contextmanager
    def assert_peak_below(self, limit: str | int, kind: str = "heap") -> Iterator[None]:
        """Fail when the block's peak (``heap`` or ``rss``) exceeds ``limit``."""
        max_bytes, checked_kind = limit_memory(limit, kind=kind)
        with block_peak("heap" if checked_kind == "heap" else "rss") as peak:
            yield
        if peak.bytes > max_bytes:
            raise AssertionError(
                f"{checked_kind} peak {format_size(peak.bytes)} is over the limit of "
                f"{format_size(max_bytes)}"
            )


@pytest.fixture
def membound() -> MemboundFixture:
    """Measure and assert memory from inside a test (see :class:`MemboundFixture`)."""
    return MemboundFixture()
