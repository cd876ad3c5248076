"""The code of ``measure/children/``: standard library only, run by path, never imported.

The files there run in processes that hold nothing of membound — the isolated-run child, the
heap runner of commands, the sampler process, the memray capture reader — and load each other
by path. This process needs a few of them too (reading ``/proc``, the heap capture, cgroups):
:func:`load` runs such a file by its path once per process and keeps the module, so each file
has one module object here, as in the children, and never a second one through ``import``
(the folder has no ``__init__.py``; ``tests/test_layers.py`` fails on an import of it).

Modules that use a loaded file name its functions under ``TYPE_CHECKING`` as imports, so that
mypy checks the calls; at run time they take them from :func:`load`.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType

__all__ = ["FOLDER", "load", "path"]

#: ``measure/children/``.
FOLDER = Path(__file__).resolve().with_name("children")

_lock = threading.Lock()


def path(name: str) -> Path:
    """The file of ``name`` (``"sampler_process"``) in ``measure/children/``."""
    file = FOLDER / f"{name}.py"
    if not file.is_file():
        raise FileNotFoundError(f"membound's child code has no {file.name}")
    return file


def _siblings() -> ModuleType:
    """``children/siblings.py``, the one loader of the folder's files (run by its path once)."""
    dotted = "membound.measure.children.siblings"
    module = sys.modules.get(dotted)
    if module is None:
        spec = importlib.util.spec_from_file_location(dotted, path("siblings"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[dotted] = module
    return module


def load(name: str) -> ModuleType:
    """The module of ``measure/children/<name>.py``, run by its path at the first call.

    It is kept in ``sys.modules`` under ``membound.measure.children.<name>``, by the loader the
    children use themselves (``siblings.py``): its classes then pickle and resolve their
    annotations as any module's do. (That cache holds one entry per file of the folder: it
    does not grow with what is measured.)
    """
    path(name)  # a clear error for a file that is not there
    with _lock:
        loaded: ModuleType = _siblings().load(name)
        return loaded
