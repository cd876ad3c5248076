"""The C library this process already has loaded, for ``malloc_trim`` and ``mallinfo2``.

``ctypes.CDLL(None)`` opens the symbols the process has loaded, the C library's among them, at
no cost; ``ctypes.util.find_library("c")`` instead runs ``ldconfig -p`` (and on some systems a
compiler) in a subprocess, tens of milliseconds that every measured run paid. The search is the
fallback only where the process's own symbols lack the function asked for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["libc_function"]


@functools.cache
def _loaded() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


@functools.cache
def _searched() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def libc_function(name: str) -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """The C library's function ``name`` (``malloc_trim``), or None where it has none."""
    for find in (_loaded, _searched):  # the search only when the loaded symbols lack it
        library = find()
        if library is None:
            continue
        try:
            found: ctypes._CFuncPtr = getattr(library, name)  # type: ignore[name-defined]
        except AttributeError:
            continue
        return found
    return None
