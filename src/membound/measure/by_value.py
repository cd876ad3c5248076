"""Objects of an interactive ``__main__`` (a notebook's, a REPL's) pickled by value for a fresh
interpreter, which cannot import them by name.

cloudpickle does the pickling (functions and classes of ``__main__`` by value, with the globals
they use; importable things by reference). Two gaps are closed here, because they fail only in
the fresh interpreter, far from their cause:

* ``functools.lru_cache`` wrappers defined in ``__main__`` pickle by name; they are rebuilt from
  the function they wrap, with the same ``maxsize`` and ``typed`` (an empty cache).
* anything else that still refers to ``__main__`` by name is found before anything runs, by
  reading the pickle back here with the lookups of ``__main__`` refused, and named in one line.
"""

from __future__ import annotations

import functools
import io
import pickle
from typing import Any

from membound._errors import TargetError

__all__ = ["dumps_by_value"]


class _MainReference(Exception):
    """A pickle names an object of ``__main__`` instead of carrying it."""


class _Checker(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in ("__main__", "__mp_main__"):
            raise _MainReference(name)
        return super().find_class(module, name)


def _pickler(buffer: io.BytesIO) -> Any:
    import cloudpickle

    class Pickler(cloudpickle.Pickler):  # type: ignore[misc]
        def reducer_override(self, obj: Any) -> Any:
            lru = getattr(functools, "_lru_cache_wrapper", None)
            if lru is not None and isinstance(obj, lru) and obj.__module__ == "__main__":
                params = obj.cache_parameters()
                return lru, (obj.__wrapped__, params["maxsize"], params["typed"], _cache_info())
            return super().reducer_override(obj)

    return Pickler(buffer, protocol=pickle.DEFAULT_PROTOCOL)


def _cache_info() -> Any:
    return functools._CacheInfo


def dumps_by_value(obj: Any, what: str, hint: str, *, check: bool = True) -> bytes:
    """``obj`` pickled so that a fresh interpreter can load it without this ``__main__``.

    Args:
        obj: the callable or value to ship.
        what: how to name it in an error (``"build"``, ``"'rows'"``).
        hint: what to do instead, for the error's hint.
        check: read the pickle back to find references to ``__main__`` (False where each part
            was checked already).

    Raises:
        TargetError: cloudpickle is missing, ``obj`` cannot be pickled, or it refers to an
            object of ``__main__`` that cannot travel by value (named in the message).
    """
    try:
        import cloudpickle  # noqa: F401
    except ImportError:
        raise TargetError(
            f"{what} lives in an interactive __main__ (a notebook?) that a fresh interpreter "
            "cannot import, and cloudpickle, which would ship it by value, is not installed",
            hint="pip install 'membound[notebook]'; or " + hint,
        ) from None
    buffer = io.BytesIO()
    try:
        _pickler(buffer).dump(obj)
    except Exception as exc:
        raise TargetError(
            f"{what} cannot be shipped to a fresh interpreter: {type(exc).__name__}: {exc}",
            hint=hint,
        ) from None
    data = buffer.getvalue()
    if not check:
        return data
    try:
        _Checker(io.BytesIO(data)).load()
    except _MainReference as ref:
        raise TargetError(
            f"{what} uses {ref.args[0]!r} of the notebook's __main__, which pickles by name, "
            "so a fresh interpreter could not find it",
            hint=hint,
        ) from None
    except Exception:
        pass
    return data
