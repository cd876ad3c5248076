"""Public names ``membound`` imports on first use, and the preload that keeps that import out
of a measurement.

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

__all__ = ["DEFERRED", "preload"]

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
