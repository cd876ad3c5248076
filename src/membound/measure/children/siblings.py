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

import importlib.util
import os
import sys
from types import ModuleType

__all__ = ["load"]

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
