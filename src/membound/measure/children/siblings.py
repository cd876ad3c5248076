"""How the child code loads the files it needs: by path, compiled once, one module per file.

The files here run in interpreters that hold nothing of membound (``-E -s -S``, or the measured
program's own), so they cannot import the package; they load each other, and the two
standard-library-only files they share with it (``membound/_proc.py``,
``membound/results/downsample.py``), by path. ``runpy.run_path`` compiled each file from its
source at every start (26 ms of the sampler's 68 ms, and as much again in each measured
child); :func:`load` takes the bytecode an import would, cached in ``__pycache__``, and keeps
each module in ``sys.modules`` under its package name, so a process has one module per file —
the same one the parent's ``child_code.load`` gives, and the one ``import membound._proc``
finds where the measured program imports membound itself.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

__all__ = ["LEND_MEMRAY", "LEND_NAMES", "borrow_memray", "load"]

#: The variable that names the folder of membound's own memray, lent to an interpreter that
#: lacks it and can load it (``measure/interpreter.py`` decides).
LEND_MEMRAY = "MEMBOUND_MEMRAY_FROM"
#: The variable that names, comma-separated, the packages that may be lent from there.
LEND_NAMES = "MEMBOUND_MEMRAY_NAMES"
#: ``measure/children/``, and ``membound/`` above it.
HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = os.path.dirname(os.path.dirname(HERE))


def load(name: str) -> ModuleType:
    """The module of ``name``: a file of this folder (``"proc_tree"``), or one of the package
    given by its dotted name (``"membound._proc"``, ``"membound.results.downsample"``)."""
    if name.startswith("membound."):
        dotted = name
        path = os.path.join(PACKAGE, *name.split(".")[1:]) + ".py"
    else:
        dotted = f"membound.measure.children.{name}"
        path = os.path.join(HERE, f"{name}.py")
    module = sys.modules.get(dotted)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(dotted, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[dotted] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[dotted]
        raise
    return module


class _Lent:
    """A finder of last resort for the packages membound lends (memray and what it imports):
    each is found in the lent folder only when this interpreter has none of its own."""

    def __init__(self, folder: str, names: frozenset[str]) -> None:
        self.folder, self.names = folder, names

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        if path is not None or name not in self.names:
            return None
        return importlib.machinery.PathFinder.find_spec(name, [self.folder])


def borrow_memray() -> bool:
    """Whether ``import memray`` works here now: memray of this interpreter's own, or the one
    membound lends (:data:`LEND_MEMRAY` names its folder, :data:`LEND_NAMES` the packages it
    may lend: memray and those it needs), found there only when this interpreter has none of
    its own — nothing else of membound's environment becomes importable."""
    if "memray" in sys.modules or importlib.util.find_spec("memray") is not None:
        return True
    folder = os.environ.get(LEND_MEMRAY, "")
    names = frozenset(n for n in os.environ.get(LEND_NAMES, "").split(",") if n)
    if not folder or "memray" not in names:
        return False
    sys.meta_path.append(_Lent(folder, names))  # type: ignore[arg-type]
    try:
        import memray  # noqa: F401
    except Exception:
        return False
    return True
