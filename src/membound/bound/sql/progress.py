"""The progress bar of ``find_each``/``in_batches(progress=True)``, on stderr."""

from __future__ import annotations

import time

from membound._units import format_size
from membound.bound._rss import current_rss

__all__ = ["ProgressBar"]


class ProgressBar:
    """A rich progress bar: rows, rows/s, ETA from the count at start, and current RSS."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        # stderr: the loop's own output on stdout stays clean when piped.
        self._progress = Progress(
            TextColumn("[bold]batches"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} rows/s"),
            TimeRemainingColumn(),
            TextColumn("RSS {task.fields[rss]}"),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("rows", total=total, rate="-", rss="-")
        self._started = time.perf_counter()
        self._done = 0
        self._progress.start()

    def advance(self, n: int) -> None:
        """``n`` more rows are done."""
        self._done += n
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        self._progress.update(
            self._task,
            advance=n,
            rate=f"{self._done / elapsed:,.0f}",
            rss=format_size(current_rss()),
        )

    def close(self) -> None:
        """Take the bar off the terminal."""
        self._progress.stop()
