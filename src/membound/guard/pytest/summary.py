"""``--membound``: the tests with the highest peaks, printed at the end of the run.

Peaks travel in each test's report (``user_properties``), so the summary also works under
xdist, where tests are measured in the workers and reports reach the controller. Only the top
``--membound-top`` entries are kept (a heap of that size, DESIGN §5.4), whatever the suite's size.
"""

from __future__ import annotations

import heapq
from typing import Any

import pytest

from membound._units import format_size
from membound.report.sections import Table
from membound.report.terminal import plain_lines

__all__ = ["PEAK_KEY", "Summary"]

#: The ``user_properties`` key under which a measured test reports ``(peak bytes, kind)``.
PEAK_KEY = "membound_peak"


class Summary:
    """Collects each test's peak from its report and prints the top ones."""

    def __init__(self, config: pytest.Config) -> None:
        self.top = max(1, int(config.getoption("membound_top")))
        self.measured = 0
        # A min-heap of (peak, nodeid, kind, the line that held it or "").
        self._peaks: list[tuple[int, str, str, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the test's peak if it is among the highest so far."""
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == PEAK_KEY and isinstance(value, list | tuple):
                self.measured += 1
                top = str(value[2]) if len(value) > 2 else ""
                entry = (int(value[0]), report.nodeid, str(value[1]), top)
                if len(self._peaks) < self.top:
                    heapq.heappush(self._peaks, entry)
                else:
                    heapq.heappushpop(self._peaks, entry)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the top tests by peak, highest first."""
        terminalreporter.section("membound: top tests by peak memory")
        if not self._peaks:
            terminalreporter.write_line("no test was measured")
            return
        ranked = sorted(self._peaks, key=lambda e: -e[0])
        if any(top for *_, top in ranked):
            table = Table(
                ("test", "peak", "kind", "held at the peak"),
                tuple((n, format_size(p), k, top or "-") for p, n, k, top in ranked),
            )
        else:
            table = Table(
                ("test", "peak", "kind"),
                tuple((n, format_size(p), k) for p, n, k, _top in ranked),
            )
        for line in plain_lines(table):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"{self.measured} tests measured; rss: peak over the RSS just before the call "
            "(VmHWM reset); heap: tracemalloc's peak where a heap limit applied"
        )
