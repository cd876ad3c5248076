"""Public names ``membound`` imports on first use, and the preload that keeps that import out
of a measurement; :func:`on_first_use`, how a package names parts it imports only when asked.

``membound.bound.sql`` needs SQLAlchemy, about 0.15 s to import and several MiB, which a process
that measures, guards or lints never uses: ``import membound`` defers it (PEP 562
``__getattr__``). A measured call that reaches ``membound.find_each`` first would then pay for
the import inside its own figures, so every measurement calls :func:`preload` before its
baseline: it imports the deferred modules whose heavy dependency the process already loaded (a
process using ``find_each`` has SQLAlchemy loaded for its engine), and nothing otherwise.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["DEFERRED", "on_first_use", "preload"]

#: Module that defines a deferred name, and the dependency whose presence makes it worth
#: importing before a measurement.
_SQL = ("membound.bound.sql", "sqlalchemy")

#: Public name -> (module, dependency).
_SQL_NAMES = (
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
)
DEFERRED: dict[str, tuple[str, str]] = dict.fromkeys(_SQL_NAMES, _SQL)


def preload() -> None:
    """Import the deferred modules whose dependency is already imported (cheap once done)."""
    for module, dependency in set(DEFERRED.values()):
        if dependency in sys.modules and module not in sys.modules:
            importlib.import_module(module)


def on_first_use(
    package: str, homes: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__`` for names imported when first asked.

    ``homes`` maps a name to ``"module"`` (the module itself) or ``"module:attribute"``. Used
    only where importing the parts eagerly would cost every user of the package the import of
    one part's dependencies, never to hide a cycle: ``tests/test_layers.py`` counts what
    ``homes`` names as the package's imports.
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
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
