"""Constant-memory iteration over iterables and files, and generator pipelines with stage stats.

``batched`` is the standard library's where it exists (Python 3.12+). ``read_chunks`` and
``read_lines`` own the file they open: it is closed on exhaustion, on error, on an early
``break`` (generator close) and at the end of a ``with`` block. ``pipeline`` is written here
because no small library composes generator stages *and* reports per-stage counts and time, which
is what shows where a streaming job spends its time without materialising anything.
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Generic, TypeVar

from membound._units import parse_size

__all__ = [
    "Pipeline",
    "ReadChunks",
    "StageStats",
    "batched",
    "pipeline",
    "read_chunks",
    "read_lines",
]

T = TypeVar("T")
ChunkT = TypeVar("ChunkT", str, bytes)


def batched(iterable: Iterable[T], n: int) -> Iterator[tuple[T, ...]]:
    """Tuples of ``n`` consecutive items (the last may be shorter); holds one tuple at a time.

    Args:
        iterable: any iterable, consumed lazily.
        n: items per tuple (>= 1).

    Raises:
        ValueError: ``n < 1``.
    """
    if n < 1:
        raise ValueError("n must be at least one")
    if sys.version_info >= (3, 12):
        return itertools.batched(iterable, n)
    return _batched(iter(iterable), n)


def _batched(it: Iterator[T], n: int) -> Iterator[tuple[T, ...]]:
    while chunk := tuple(itertools.islice(it, n)):
        yield chunk


class ReadChunks(Generic[ChunkT]):
    """Iterator over fixed-size chunks of a file; also a context manager that closes it."""

    def __init__(self, file: IO[ChunkT], size: int, *, owned: bool) -> None:
        self._file: IO[ChunkT] = file
        self._size = size
        self._owned = owned
        self._closed = False

    def __iter__(self) -> Iterator[ChunkT]:
        return self

    def __next__(self) -> ChunkT:
        if self._closed:
            raise StopIteration
        try:
            chunk: ChunkT = self._file.read(self._size)
        except BaseException:
            self.close()
            raise
        if not chunk:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Close the file if this object opened it (a file you passed in stays open)."""
        if not self._closed:
            self._closed = True
            if self._owned:
                self._file.close()

    def __enter__(self) -> ReadChunks[ChunkT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # An abandoned iterator (early break without `with`) must not keep the descriptor open.
        self.close()


def read_chunks(
    path_or_file: str | os.PathLike[str] | IO[Any], size: int | str = "64 KB"
) -> ReadChunks[Any]:
    """Read a file in chunks of ``size`` bytes (text files: characters); O(size) memory.

    Args:
        path_or_file: a path (opened in binary mode and owned: closed on exhaustion, error, early
            exit or at the end of a ``with`` block) or an open file object (read, never closed).
        size: chunk size, bytes or a size string such as ``"64 KB"``.

    Returns:
        An iterator of chunks that is also a context manager.
    """
    nbytes = parse_size(size) if isinstance(size, str) else int(size)
    if nbytes < 1:
        raise ValueError(f"chunk size must be at least 1 byte, got {size!r}")
    if isinstance(path_or_file, (str, os.PathLike)):
        return ReadChunks(open(path_or_file, "rb"), nbytes, owned=True)
    return ReadChunks(path_or_file, nbytes, owned=False)


def read_lines(
    path: str | os.PathLike[str], *, encoding: str = "utf-8", keepends: bool = False
) -> Iterator[str]:
    """Yield the lines of a text file one at a time; the file closes when the loop ends or stops.

    Args:
        path: the file to read.
        encoding: text encoding.
        keepends: keep the trailing newline of each line.
    """
    with open(path, encoding=encoding, newline=None) as f:
        for line in f:
            yield line if keepends else line.rstrip("\n")


@dataclass(frozen=True)
class StageStats:
    """Counters of one pipeline stage."""

    name: str
    """The stage's function name (``source`` for the source)."""
    items: int
    """Items this stage produced so far."""
    seconds: float
    """Time spent inside this stage alone (upstream stages' time subtracted)."""


class _Counted(Generic[T]):
    """Wraps one stage's output iterator, counting items and the time spent producing them."""

    def __init__(self, name: str, it: Iterator[T], upstream: _Counted[Any] | None) -> None:
        self.name = name
        self.it = it
        self.upstream = upstream
        self.items = 0
        self.total = 0.0  # this stage plus everything upstream

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        t0 = time.perf_counter()
        try:
            item = next(self.it)
        finally:
            self.total += time.perf_counter() - t0
        self.items += 1
        return item

    def own_seconds(self) -> float:
        return self.total - (self.upstream.total if self.upstream is not None else 0.0)


class Pipeline(Generic[T]):
    """Generator stages composed lazily; iterate it, or ``run(sink)`` it to the end.

    Only one item per stage is in flight at a time (plus whatever a stage buffers itself), so a
    read → clean → chunk → embed job runs in constant memory whatever the input size.
    """

    def __init__(self, source: Iterable[Any], stages: tuple[Callable[[Iterator[Any]], Any], ...]):
        head: _Counted[Any] = _Counted("source", iter(source), None)
        self._stages: list[_Counted[Any]] = [head]
        for stage in stages:
            name = getattr(stage, "__name__", type(stage).__name__)
            out = iter(stage(self._stages[-1]))
            self._stages.append(_Counted(name, out, self._stages[-1]))

    def __iter__(self) -> Iterator[T]:
        return self._stages[-1]

    @property
    def stats(self) -> tuple[StageStats, ...]:
        """Per-stage item counts and own time, source first."""
        return tuple(StageStats(s.name, s.items, s.own_seconds()) for s in self._stages)

    def run(self, sink: Callable[[T], object] | None = None) -> tuple[StageStats, ...]:
        """Drive the pipeline to the end, passing each output item to ``sink`` (if given).

        Returns:
            The per-stage stats after the run.
        """
        for item in self:
            if sink is not None:
                sink(item)
        return self.stats


def pipeline(source: Iterable[Any], *stages: Callable[[Iterator[Any]], Any]) -> Pipeline[Any]:
    """Compose ``source`` with generator ``stages``: each takes an iterator, returns an iterable.

    Example:
        >>> def clean(lines):
        ...     for line in lines:
        ...         if line.strip():
        ...             yield line.strip()
        >>> p = pipeline(["a", " ", "b "], clean)
        >>> list(p), [(s.name, s.items) for s in p.stats]
        (['a', 'b'], [('source', 3), ('clean', 2)])
    """
    return Pipeline(source, stages)
