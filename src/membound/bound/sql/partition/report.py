"""What ``run_partitioned`` did: a :class:`RangeReport` per key range and their totals in a
:class:`PartitionReport` (as many entries as ranges, never rows), shown as Markdown, HTML and
pretty text."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from html import escape
from typing import Any

__all__ = ["PartitionReport", "RangeReport"]

#: Workers listed by ``str()`` (the rest are counted).
_WORKERS_SHOWN = 8


@dataclass(frozen=True)
class RangeReport:
    """One key range of a partitioned run.

    Attributes:
        start: first key, inclusive (None for the first range).
        stop: the key after the range, exclusive (None for the last).
        rows: rows of the range whose batches finished and committed (of a finished range:
            all of them; of an unfinished one: up to its checkpoint), over every call of the job.
        estimated_rows: the estimate the range was cut with (``key_ranges``).
        retries: times the range was started again, over every call of the job (a worker
            died, ``fn`` raised, or an interrupted run was resumed).
        splits: times an idle worker took over the tail of this range.
        seconds: wall time of the attempt that finished it (in this call or an earlier one);
            None while unfinished.
        peak_rss_delta: peak RSS during that attempt minus RSS at its start, in bytes: the
            kernel's high-water mark where the task had a process of its own (Dask workers, a
            process pool), else the highest RSS read after each batch (a spike freed within
            one batch is missed). None while unfinished.
        done: whether the range finished.
        worker: the worker that finished it (its lease owner: host, pid and a suffix); None
            while unfinished, and for a range finished before workers were recorded.
    """

    start: Any
    stop: Any
    rows: int
    estimated_rows: int
    retries: int
    splits: int
    seconds: float | None
    peak_rss_delta: int | None
    done: bool
    worker: str | None = None


@dataclass(frozen=True)
class PartitionReport:
    """What a partitioned run did, range by range (as many entries as ranges, never rows).

    Attributes:
        name: the job's name.
        ranges: each range, in key order (a split range's tail is a range of its own).
        rows: rows processed in all ranges, over every call of the job (``seconds`` is this
            call's: for a rate, use a job's first and only call, or the ranges' ``seconds``).
        estimated_rows: the rows the ranges were cut for.
        retries: range restarts in all.
        splits: straggler splits in all.
        seconds: wall time of this call.
        runner: what ran the tasks (``dask``, ``ProcessPoolExecutor``, ``in-process``, …).
        already_finished: the job had finished before this call: nothing ran.
        last_error: the last error a range raised in this call, in one line (``range 3:
            ValueError: …``, with "(started again)" when it was retried); None when none did.
    """

    name: str
    ranges: tuple[RangeReport, ...]
    rows: int
    estimated_rows: int
    retries: int
    splits: int
    seconds: float
    runner: str
    already_finished: bool = False
    last_error: str | None = None

    @property
    def done(self) -> int:
        """Ranges finished."""
        return sum(1 for r in self.ranges if r.done)

    @property
    def rate(self) -> float | None:
        """Rows per second of this call's wall time (None when nothing ran in it). A resumed
        job's rows include those of earlier calls: then read the workers' rates instead."""
        if self.already_finished or self.seconds <= 0:
            return None
        return self.rows / self.seconds

    def workers(self) -> list[tuple[str, int, int, float]]:
        """Per worker that finished ranges: (worker, ranges, rows, seconds of those ranges),
        most rows first."""
        totals: dict[str, list[float]] = {}
        for r in self.ranges:
            if r.worker is not None:
                t = totals.setdefault(r.worker, [0, 0, 0.0])
                t[0] += 1
                t[1] += r.rows
                t[2] += r.seconds or 0.0
        ranked = sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))
        return [(w, int(n), int(rows), s) for w, (n, rows, s) in ranked]

    def __str__(self) -> str:
        """A few lines: totals and rate, ranges done, each worker's share, the slowest range,
        the last error."""
        lines = [self._summary()]
        rate = self.rate
        lines.append(
            f"  ranges done: {self.done} of {len(self.ranges)}; rows: {self.rows:,} of "
            f"{self.estimated_rows:,} estimated"
            + (f"; {rate:,.0f} rows/s over this call's {self.seconds:.1f} s" if rate else "")
        )
        for worker, n, rows, seconds in self.workers()[:_WORKERS_SHOWN]:
            per = f", {rows / seconds:,.0f} rows/s" if seconds > 0 else ""
            lines.append(
                f"  worker {worker}: {n} range{'s' if n != 1 else ''}, {rows:,} rows in "
                f"{seconds:.1f} s{per}"
            )
        hidden = len(self.workers()) - _WORKERS_SHOWN
        if hidden > 0:
            lines.append(f"  … and {hidden} more workers")
        timed = [r for r in self.ranges if r.seconds is not None]
        if timed:
            slow = max(timed, key=lambda r: r.seconds or 0.0)
            peak = (
                ""
                if slow.peak_rss_delta is None
                else f", peak Δ RSS {slow.peak_rss_delta / 2**20:.1f} MiB"
            )
            on = f" on {slow.worker}" if slow.worker else ""
            lines.append(
                f"  slowest range: {slow.start!r} to {slow.stop!r}, {slow.rows:,} rows in "
                f"{slow.seconds:.2f} s{on}{peak}"
            )
        if self.last_error:
            lines.append(f"  last error: {self.last_error}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (keys as stored: tuples become lists)."""
        return asdict(self)

    def _summary(self) -> str:
        return (
            f"{self.name} ({self.runner}): {self.rows:,} rows in {len(self.ranges)} ranges, "
            f"{self.retries} retries, {self.splits} splits, {self.seconds:.1f} s"
            + (" (finished before this call)" if self.already_finished else "")
        )

    def _table(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        head = ("start", "stop", "rows", "estimated", "retries", "splits", "seconds")
        rows: list[tuple[str, ...]] = []
        for r in self.ranges:
            seconds = "—" if r.seconds is None else f"{r.seconds:.2f}"
            peak = "—" if r.peak_rss_delta is None else f"{r.peak_rss_delta / 2**20:.1f} MiB"
            rows.append(
                (
                    repr(r.start),
                    repr(r.stop),
                    f"{r.rows:,}",
                    f"{r.estimated_rows:,}",
                    str(r.retries),
                    str(r.splits),
                    seconds,
                    peak,
                    "yes" if r.done else "no",
                )
            )
        return (*head, "peak Δ RSS", "done"), rows

    def to_markdown(self) -> str:
        """A Markdown table, a row per range, after a line of totals."""
        head, rows = self._table()
        lines = [
            f"**{self.name}**" + self._summary()[len(self.name) :],
            "",
            "| " + " | ".join(head) + " |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """Jupyter's display: the totals and a table row per range (built here, with every
        text escaped: ``bound`` stands alone and does not use ``report``)."""
        head, rows = self._table()
        cells = "".join(f"<th>{escape(h)}</th>" for h in head)
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows
        )
        return f"<div><p>{escape(self._summary())}</p><table><tr>{cells}</tr>{body}</table></div>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's text display: the Markdown table."""
        printer.text(self.to_markdown())
