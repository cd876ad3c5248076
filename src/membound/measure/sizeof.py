"""Sizes of objects: deep size of one object graph, and bytes per instance of a factory.

``deep_sizeof`` walks ``gc.get_referents`` from the object, counting each object once with
``sys.getsizeof``. It stops at objects shared by the whole program (modules, classes, functions,
code) so that a record's size does not include its class. Chosen over Pympler's ``asizeof``
because it needs no extra dependency and agrees with what the interpreter itself reports for
containers and instances; Pympler additionally estimates alignment and some C-level extras.

``instance_size`` is the honest number for "how much does one more of these cost": it builds ``n``
instances under tracemalloc and divides the heap they hold by ``n``, so allocator rounding, the
instance ``__dict__`` and everything the constructor allocates are included.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
import types
from collections.abc import Callable
from typing import Any

from membound._errors import TargetError

__all__ = ["deep_sizeof", "instance_size"]

_SHARED = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
    types.FrameType,
)


def deep_sizeof(obj: Any) -> int:
    """Bytes held by ``obj`` and everything it references that is not shared program state.

    Each object is counted once even when reached several ways; modules, classes, functions and
    code objects are not counted (nor followed).
    """
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        current = stack.pop()
        # type(), not isinstance(): isinstance reads __class__, which evaluates a lazy proxy.
        if id(current) in seen or issubclass(type(current), _SHARED):
            continue
        seen.add(id(current))
        total += sys.getsizeof(current)
        stack.extend(gc.get_referents(current))
    return total


def instance_size(factory: Callable[[], Any], n: int = 10_000) -> float:
    """Average bytes of Python heap one instance made by ``factory()`` holds.

    Args:
        factory: called ``n`` times with no arguments.
        n: how many instances to build (more gives a steadier average).

    Raises:
        TargetError: ``n`` is less than 1.
    """
    if n < 1:
        raise TargetError("instance_size needs n >= 1")
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)
    try:
        gc.collect()
        holder: list[Any] = [None] * n  # sized up front: the list's own size is not counted
        base = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            holder[i] = factory()
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
        del holder
    finally:
        if started:
            tracemalloc.stop()
    return used / n
