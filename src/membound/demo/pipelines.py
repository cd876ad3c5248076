"""The read → clean → chunk → embed scenarios for ``membound demo``: a full list per step against
generator stages in ``pipeline()``, over a generated text corpus.

Apart from :mod:`membound.demo.batching` because they touch no database: a run of one of them
imports no SQL library (each run is a fresh interpreter, which imports the scenario's module
before its baseline). They follow the shape of :mod:`membound.demo.scenarios`: plain arguments,
an int result, and an ``*_n(folder, n)`` twin on the size-``n`` corpus.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from membound.bound.iterables import pipeline, read_lines
from membound.demo.scenarios import sized_path

__all__ = [
    "create_corpus",
    "rag_naive_lists",
    "rag_naive_lists_n",
    "rag_pipeline",
    "rag_pipeline_n",
]


def create_corpus(path: str, documents: int = 200_000) -> dict[str, int]:
    """Write a text corpus: one document per line, with some blank and noisy lines."""
    words = ["memory", "bounded", "stream", "batch", "vector", "token", "chunk", "index"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(documents):
            if i % 10 == 0:
                f.write("   \n")
                continue
            body = " ".join(words[(i * 7 + j) % len(words)] for j in range(40))
            f.write(f"  Document {i}: {body.upper() if i % 3 == 0 else body}  \n")
    return {"documents": documents, "file_size": os.path.getsize(path)}


def _embed(text: str) -> list[float]:
    # A stand-in for a model: deterministic, cheap, and as big per chunk as a small embedding.
    digest = hashlib.blake2b(text.encode(), digest_size=32).digest()
    return [b / 255.0 for b in digest]


def _chunks(text: str, words: int = 12) -> list[str]:
    parts = text.split()
    return [" ".join(parts[i : i + words]) for i in range(0, len(parts), words)]


def rag_naive_lists(path: str) -> int:
    """read → clean → chunk → embed, each step building a full list (O(n) memory).

    Returns:
        The number of vectors made.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    cleaned = [line.strip().lower() for line in lines if line.strip()]
    chunks = [c for doc in cleaned for c in _chunks(doc)]
    vectors = [_embed(c) for c in chunks]
    return len(vectors)


def rag_naive_lists_n(folder: str, n: int) -> int:
    """:func:`rag_naive_lists` on the ``n``-document corpus in ``folder``."""
    return rag_naive_lists(sized_path(folder, "corpus", n))


def _clean(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if line.strip():
            yield line.strip().lower()


def _chunk(docs: Iterator[str]) -> Iterator[str]:
    for doc in docs:
        yield from _chunks(doc)


def _embed_all(chunks: Iterator[str]) -> Iterator[list[float]]:
    for chunk in chunks:
        yield _embed(chunk)


def rag_pipeline(path: str) -> int:
    """The same read → clean → chunk → embed as generator stages in ``pipeline()`` (O(1)).

    Returns:
        The number of vectors made.
    """
    stats = pipeline(read_lines(path), _clean, _chunk, _embed_all).run()
    return stats[-1].items


def rag_pipeline_n(folder: str, n: int) -> int:
    """:func:`rag_pipeline` on the ``n``-document corpus in ``folder``."""
    return rag_pipeline(sized_path(folder, "corpus", n))
