"""batched, read_chunks, read_lines and pipeline on real files."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from membound import batched, pipeline, read_chunks, read_lines
from membound.bound.iterables import _batched


@pytest.mark.parametrize("impl", [batched, lambda it, n: _batched(iter(it), n)])
def test_batched(impl: object) -> None:
    fn = impl  # the stdlib's (3.12+) or ours, same results
    assert [(0, 1, 2), (3, 4, 5), (6,)] == list(fn(range(7), 3))  # type: ignore[operator]
    assert [] == list(fn([], 3))  # type: ignore[operator]


def test_batched_rejects_zero() -> None:
    with pytest.raises(ValueError, match="at least one"):
        batched([1], 0)


def open_fds(path: Path) -> int:
    """Descriptors of this process open on ``path`` (other tests' descriptors do not count)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed while listing
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return count


def test_read_chunks_path(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    data = os.urandom(200_000)
    path.write_bytes(data)
    chunks = list(read_chunks(path, size="64 KiB"))
    assert [65536, 65536, 65536, 3392] == [len(c) for c in chunks]
    assert data == b"".join(chunks)
    assert [b"ab", b"c"] == list(read_chunks(_write(tmp_path, b"abc"), size=2))


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "small.bin"
    path.write_bytes(content)
    return path


def test_read_chunks_closes_on_early_exit_and_error(tmp_path: Path) -> None:
    path = _write(tmp_path, b"x" * 10_000)
    before = open_fds(path)
    with read_chunks(path, size=100) as chunks:
        next(chunks)
        assert before + 1 == open_fds(path)
    assert before == open_fds(path)

    def fail_inside() -> None:
        with read_chunks(path, size=100) as chunks:
            for _ in chunks:
                raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        fail_inside()
    assert before == open_fds(path)
    for _ in read_chunks(path, size=100):
        break  # no `with`: the abandoned iterator closes its file when collected
    gc.collect()
    assert before == open_fds(path)


def test_read_chunks_leaves_a_passed_file_open(tmp_path: Path) -> None:
    path = _write(tmp_path, b"hello world")
    with open(path, "rb") as f:
        assert [b"hello", b" worl", b"d"] == list(read_chunks(f, size=5))
        assert not f.closed


def test_read_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("a\nb\n\nc", encoding="utf-8")
    assert ["a", "b", "", "c"] == list(read_lines(path))
    assert ["a\n", "b\n", "\n", "c"] == list(read_lines(path, keepends=True))
    before = open_fds(path)
    lines = read_lines(path)
    next(lines)
    lines.close()
    assert before == open_fds(path)


def clean(items: Iterator[str]) -> Iterator[str]:
    for item in items:
        if item.strip():
            yield item.strip().lower()


def chunk(items: Iterator[str]) -> Iterator[str]:
    for item in items:
        yield from item.split()


def embed(items: Iterator[str]) -> Iterator[tuple[str, int]]:
    for item in items:
        yield item, len(item)


def test_pipeline_counts_and_results(tmp_path: Path) -> None:
    path = tmp_path / "docs.txt"
    path.write_text("Hello World\n\n  Foo bar baz \n", encoding="utf-8")
    p = pipeline(read_lines(path), clean, chunk, embed)
    out: list[tuple[str, int]] = []
    stats = p.run(out.append)
    assert [("hello", 5), ("world", 5), ("foo", 3), ("bar", 3), ("baz", 3)] == out
    assert [("source", 3), ("clean", 2), ("chunk", 5), ("embed", 5)] == [
        (s.name, s.items) for s in stats
    ]
    assert all(s.seconds >= 0 for s in stats)


def test_pipeline_is_lazy() -> None:
    pulled = []

    def source() -> Iterator[int]:
        for i in range(10**9):
            pulled.append(i)
            yield i

    p = pipeline(source(), lambda it: (x * 2 for x in it))
    assert [0, 2, 4] == [next(iter(p)) for _ in range(3)]
    assert 3 == len(pulled)
