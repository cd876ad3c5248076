"""What ``run_partitioned`` did: a :class:`RangeReport` per key range and their totals in a
:class:`PartitionReport` (as many entries as ranges, never rows), shown as Markdown, HTML and
pretty text."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from html import escape
from typing import Any

__all__ = ["PartitionReport", "RangeReport"]


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
