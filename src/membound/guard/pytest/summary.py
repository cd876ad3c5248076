"""``--membound``: the tests with the highest peaks, printed at the end of the run.

Peaks travel in each test's report (``user_properties``), so the summary also works under
xdist, where tests are measured in the workers and reports reach the controller. Only the top
``--membound-top`` entries are kept (a heap of that size, DESIGN §5.4), whatever the suite's size.

With ``--membound-where`` each test names the line that held its peak, unless the peak is under
``WHERE_FROM`` (1 MiB): the top line of an empty test is pytest's or the tracer's own. The table
keeps within the terminal's width: when the line would not fit, it goes under its test's row,
and test ids too long for the screen are cut in the middle (an ellipsis marks the cut).
"""

from __future__ import annotations

import heapq
from typing import Any

import pytest

from membound._units import format_size
from membound.report.sections import Table
from membound.report.terminal import plain_lines

__all__ = ["PEAK_KEY", "WHERE_FROM", "Summary", "fit"]

#: The ``user_properties`` key under which a measured test reports ``(peak bytes, kind)``.
PEAK_KEY = "membound_peak"
#: The smallest peak for which ``--membound-where`` names the line that held it.
WHERE_FROM = 2**20
#: Where the line that held a test's peak starts when it goes under the test's row.
_UNDER = "    "


def fit(text: str, width: int) -> str:
    """``text`` cut in the middle to at most ``width`` characters (``…`` marks the cut)."""
    if len(text) <= width:
        return text
    if width < 2:
        return text[: max(width, 0)]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


class Summary:
    """Collects each test's peak from its report and prints the top ones."""

    def __init__(self, config: pytest.Config) -> None:
        top = int(config.getoption("membound_top"))
        if top < 1:  # listed one test whatever was asked
            raise pytest.UsageError(f"--membound-top must be 1 or more, not {top}")
        self.top = top
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
        width = terminalreporter.config.get_terminal_writer().fullwidth
        for line in _table_lines(ranked, width):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"{self.measured} tests measured; rss: peak over the RSS just before the call "
            "(VmHWM reset); heap: tracemalloc's peak where a heap limit applied"
        )


def _table_lines(ranked: list[tuple[int, str, str, str]], width: int) -> list[str]:
    """The top tests as a table within ``width`` columns: the line that held each peak in a
    column of its own when it fits, else under the test's row."""
    if any(top for *_, top in ranked):
        wide = Table(
            ("test", "peak", "kind", "held at the peak"),
            tuple((n, format_size(p), k, top or "-") for p, n, k, top in ranked),
        )
        lines = plain_lines(wide)
        if max(len(line) for line in lines) <= width:
            return lines
    figures = [(format_size(p), k) for p, _n, k, _top in ranked]
    peak_width = max(len("peak"), *(len(f) for f, _ in figures))
    kind_width = max(len("kind"), *(len(k) for _, k in figures))
    room = max(width - peak_width - kind_width - 4, len("test"))  # two gaps of two spaces
    table = Table(
        ("test", "peak", "kind"),
        tuple(
            (fit(n, room), f, k) for (_p, n, _k, _t), (f, k) in zip(ranked, figures, strict=True)
        ),
    )
    head, *rows = plain_lines(table)
    lines = [head]
    for row, (*_, top) in zip(rows, ranked, strict=True):
        lines.append(row)
        if top:
            lines.append(_UNDER + fit(top, width - len(_UNDER)))
    return lines
