"""Streaming sources: the calls, methods and generators that hand out rows or lines one batch at
a time (MB201 asks whether a loop walks one), and which of them read a database."""

from __future__ import annotations

import ast

from membound.lint.context import DBAPI_ROOTS, ModuleContext
from membound.lint.rules._queries import configured

__all__ = ["database_source", "streaming_source", "user_streaming"]


#: Methods whose result is consumed piece by piece (a streaming source for MB201).
_STREAM_METHODS = frozenset(
    {
        "iterator",
        "yield_per",
        "partitions",
        "find_each",
        "in_batches",
        "read_chunks",
        "read_lines",
        "lmdb_batches",
        "iter_lines",
        "iter_content",
        "iter_bytes",
        "iter_text",
    }
)


#: Functions, by qualified name, that return a streaming iterator.
_STREAM_FUNCS = frozenset(
    {
        "itertools.batched",
        "more_itertools.chunked",
        "more_itertools.ichunked",
        "csv.reader",
        "csv.DictReader",
        "io.open",
        "gzip.open",
        "bz2.open",
        "lzma.open",
        "codecs.open",
        "fileinput.input",
        "sys.stdin",
    }
)


#: Bare function names (imported from anywhere, membound included) that stream.
_STREAM_NAMES = frozenset(
    {"find_each", "in_batches", "batched", "read_chunks", "read_lines", "lmdb_batches", "chunked"}
)


_CHUNKED_READS = frozenset({"fetchmany", "readline", "recv", "iter_content", "iter_lines"})


_DATABASE_SOURCES = (
    "iterator",
    "yield_per",
    "partitions",
    "find_each",
    "in_batches",
    "lmdb_batches",
    "stream_results",
    "database cursor",
)


def database_source(ctx: ModuleContext, source: str) -> bool:
    """Whether a ``streaming_source`` description names rows of a database: a queryset
    iterator, ``yield_per``, a cursor, key batches, a generator that streams one of these, or a
    helper the user listed in ``extend-streaming-calls``."""
    if any(name in source for name in _DATABASE_SOURCES):
        return True
    if source.startswith("the generator `"):
        name = source[len("the generator `") :].split("(", 1)[0]
        return name in _streaming_generators(ctx).get("database", set())
    return user_streaming(ctx, source)


def user_streaming(ctx: ModuleContext, source: str) -> bool:
    """Whether a ``streaming_source`` description names a helper the user listed in
    ``extend-streaming-calls``: the user says it streams, because what it streams is big."""
    return any(
        source in (f"`{tail}()`", f"`{name}`")
        for name in ctx.streaming_calls
        for tail in (name.rsplit(".", 1)[-1],)
    )


def _streaming_generators(ctx: ModuleContext) -> dict[str, set[str]]:
    """Generator functions of this module that themselves stream from somewhere, by kind:
    ``"all"`` of them, and those that stream rows of a ``"database"``.

    A generator over data already in memory (walking a list, parsing a string) streams nothing;
    one that loops over a file, a cursor or ``.iterator()``, or reads in chunks, does.
    """
    cached = ctx.memo.get("streaming_generators")
    if isinstance(cached, dict):
        return cached
    found: dict[str, set[str]] = {"all": set(), "database": set()}
    for func in ctx.functions():
        if func.name not in ctx.generator_functions:
            continue
        for node in ast.walk(func):
            if isinstance(node, (ast.For, ast.AsyncFor)):
                inner = streaming_source(ctx, node.iter, generators=False)
                if inner:
                    found["all"].add(func.name)
                    if database_source(ctx, inner):
                        found["database"].add(func.name)
                    break
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and (
                    node.func.attr in _CHUNKED_READS
                    or (node.func.attr == "read" and bool(node.args))
                )
            ):
                found["all"].add(func.name)
                if node.func.attr == "fetchmany":
                    found["database"].add(func.name)
                break
    ctx.memo["streaming_generators"] = found
    return found


def streaming_source(ctx: ModuleContext, expr: ast.AST, *, generators: bool = True) -> str | None:
    """Describe ``expr`` if iterating it streams (one item at a time), else None.

    Streaming sources: ``.iterator()``, ``yield_per``, ``partitions``, ``find_each``,
    ``in_batches``, ``batched``, ``read_chunks``, an open file, ``csv.reader``, a DB cursor, a
    generator, ``execution_options(stream_results=True | yield_per=N)`` and any name listed in
    the ``extend-streaming-calls`` setting. A generator function counts when it streams from
    one of these itself (``generators=False`` leaves generators out, to decide that). A generator
    *expression* is not one: it almost always walks data that is already in memory.
    """
    for link in ctx.expand(expr):
        if configured(ctx, link):
            return f"`{link.name}()`"
        if link.kind == "method":
            if link.name in _STREAM_METHODS:
                return f"`.{link.name}()`"
            if (
                link.name == "execution_options"
                and isinstance(link.node, ast.Call)
                and any(kw.arg in ("yield_per", "stream_results") for kw in link.node.keywords)
            ):
                return "`execution_options(stream_results)`"
            if link.name == "cursor" and ctx.imports_any(DBAPI_ROOTS):
                return "a database cursor"
        if link.kind in ("func", "name", "attr", "method") and isinstance(
            link.node, (ast.Call, ast.Name, ast.Attribute)
        ):
            target = link.node.func if isinstance(link.node, ast.Call) else link.node
            qualified = ctx.qualify(target)
            if qualified in _STREAM_FUNCS:
                return f"`{qualified}`"
            if link.kind == "func":
                if ctx.is_builtin(target, "open"):
                    return "an open file"
                if link.name in _STREAM_NAMES and link.name in ctx.aliases:
                    return f"`{link.name}()`"
                if generators and link.name in _streaming_generators(ctx)["all"]:
                    return f"the generator `{link.name}()`"
            if link.kind == "method" and link.name in _STREAM_NAMES and qualified is not None:
                return f"`{link.name}()`"
    return None
