"""Public names ``membound`` imports on first use, and the preload that keeps that import out
of a measurement; :func:`on_first_use`, how a package names parts it imports only when asked.

``import membound`` binds its exceptions, size helpers and version, and nothing else until a
name is asked for (PEP 562 ``__getattr__``): importing every part took 0.11 s of CPU, paid by
each process that imports any module of membound (a gunicorn worker's recycler, the pytest
plugin, each ``membound`` command, a measured child whose target imports membound) whether it
uses the part or not. ``membound.bound.sql`` needs SQLAlchemy besides (0.15 s and several MiB).

A measured call that reaches a deferred name first would pay for its import inside its own
figures, so every measurement calls :func:`preload` before its baseline: it imports membound's
own deferred parts, and the ones with a heavy dependency only when the process already loaded
it (a process using ``find_each`` has SQLAlchemy loaded for its engine). A call reaches a
deferred name only through a package that defers (``membound.find_each`` after ``import
membound``), so a fresh interpreter whose modules hold no such package skips it
(:func:`held_outside`): importing every part costs 0.2 s of CPU, which each isolated run of a
target that imports one part of membound (``from membound.bound.sql import find_each``) paid.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["DEFERRED", "LAZY_PACKAGES", "held_outside", "on_first_use", "preload"]


def _homes(
    module: str, *names: str, dependency: str | None = None
) -> dict[str, tuple[str, str | None]]:
    """``name -> ("module:name", dependency)`` for names ``module`` defines."""
    return {name: (f"{module}:{name}", dependency) for name in names}


#: Public name -> (where it is, ``"module"`` or ``"module:attribute"``; the third-party module
#: whose presence makes it worth importing before a measurement, None for membound's own).
DEFERRED: dict[str, tuple[str, str | None]] = {
    "guard": ("membound.guard", None),
    "report": ("membound.report", None),
    **_homes("membound.bound.budget", "memory_budget"),
    **_homes(
        "membound.bound.iterables",
        "Pipeline",
        "StageStats",
        "batched",
        "pipeline",
        "read_chunks",
        "read_lines",
    ),
    **_homes("membound.bound.kv", "lmdb_batches"),
    **_homes("membound.bound.pool", "BoundedPool", "PoolStats"),
    **_homes("membound.bound.release", "Released", "release_memory"),
    **_homes("membound.guard", "Limit", "Watchdog", "health", "memory_limit"),
    **_homes("membound.judge.compare", "compare"),
    **_homes("membound.judge.complexity", "complexity"),
    **_homes("membound.judge.leaks", "find_leaks"),
    **_homes("membound.measure.isolate.command", "measure_command"),
    **_homes("membound.measure.isolate.function", "measure"),
    **_homes("membound.measure.scenarios", "scenario"),
    **_homes("membound.measure.sizeof", "deep_sizeof", "instance_size"),
    **_homes("membound.measure.track", "track"),
    **_homes(
        "membound.results",
        "Comparison",
        "Complexity",
        "ComplexityPoint",
        "Growth",
        "Holder",
        "LeakReport",
        "LeakRound",
        "Measurement",
        "PeakSite",
        "ScenarioStats",
        "Site",
        "Spread",
        "Timeline",
        "TypeGrowth",
        "classify",
    ),
    **_homes(
        "membound.bound.sql",
        "Batch",
        "BatchWriter",
        "Checkpoint",
        "KeyRange",
        "LeasedRange",
        "PartitionReport",
        "RangeReport",
        "claim_ranges",
        "find_each",
        "in_batches",
        "key_ranges",
        "run_partitioned",
        dependency="sqlalchemy",
    ),
}


#: The packages whose names import on first use (their ``__getattr__`` is :func:`on_first_use`'s).
LAZY_PACKAGES = ("membound", "membound.guard")


def held_outside() -> bool:
    """Whether a module outside membound holds a package of :data:`LAZY_PACKAGES` as a global
    (``import membound``, ``import membound.bound.sql``, ``from membound import guard``): only
    through one can a call reach a name that is imported on first use. A call that imports
    membound itself pays for that import, as for any import it makes."""
    lazy = {id(sys.modules[name]) for name in LAZY_PACKAGES if name in sys.modules}
    if not lazy:
        return False
    for name, module in list(sys.modules.items()):
        if name == "membound" or name.startswith("membound.") or module is None:
            continue
        try:  # sys.modules may hold any object (a lazy proxy, an instance): read it plainly
            namespace = object.__getattribute__(module, "__dict__")
            values = list(namespace.values()) if isinstance(namespace, dict) else []
        except Exception:
            continue
        if any(id(v) in lazy for v in values):
            return True
    return False


def preload() -> None:
    """Import the deferred modules not imported yet: membound's own, and those whose
    dependency is already imported (cheap once done)."""
    for home, dependency in DEFERRED.values():
        module = home.partition(":")[0]
        if module not in sys.modules and (dependency is None or dependency in sys.modules):
            importlib.import_module(module)


def on_first_use(
    package: str, homes: dict[str, str], *, subpackages: bool = False
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__`` for names imported when first asked.

    ``homes`` maps a name to ``"module"`` (the module itself) or ``"module:attribute"``. Used
    only where importing the parts eagerly would cost every user of the package the import of
    one part's dependencies, never to hide a cycle: ``tests/test_layers.py`` counts what
    ``homes`` names as the package's imports. ``subpackages``: any other public name that is
    a module of the package is imported as asked (``membound.results.growth`` after a bare
    ``import membound``, as when the package imported its parts eagerly).
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        part = f"{package}.{name}"
        public = subpackages and name.isidentifier() and not name.startswith("_")
        if home is None and public and importlib.util.find_spec(part) is not None:
            home = part
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module_name, _, attribute = home.partition(":")
        module = importlib.import_module(module_name)
        value = getattr(module, attribute) if attribute else module
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(homes))

    return __getattr__, __dir__
