"""What an idle interpreter holds once it has imported what a Python command imports.

Run by path in the command's own interpreter (standard library only, any Python 3)::

    python import_baseline.py script PATH   |   python import_baseline.py code CODE
    python import_baseline.py module NAME

It reads the ``import`` statements of the command's code (anywhere in it, functions included:
a job that imports pandas inside ``main()`` loads it all the same) and of the modules of the
command's own folder that code imports, followed by their source without running any of it;
then imports every module that resolves outside that folder (the standard library and what is
installed), and prints one JSON line: its resident set size (``VmRSS``) after a collection, the
modules imported, and those that failed. Code of the command's folder never runs here (it may
do anything at import); what it imports does, as it would at the start of the command.

``membound run`` judges a command's growth between its start-up and its exit
(``results/lifespan.py``); this figure is the start-up a loaded program holds (DESIGN §5.1: the
baseline is an idle interpreter with the same imports), so that a level far above it is the
job's work (300 MB loaded then held for seconds), not its start-up.
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.machinery
import io
import json
import os
import runpy
import sys

#: Files of the command's folder read for their imports, at most (a bound: a project's tree
#: is read only as far as its code imports it).
MAX_LOCAL_FILES = 400


def _imports(source: str, package: str) -> list[str]:
    """The modules ``source`` imports (absolute names; relative ones against ``package``)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join([*parts, base] if base else parts)
            if base:
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _find(name: str, roots: list[str]) -> tuple[str | None, bool]:
    """Where module ``name`` lives, found without importing anything (a package's
    ``__init__`` may do anything): its file (None when not found, or not a file) and whether it
    is a package."""
    parts = name.split(".")
    path = roots
    spec = None
    for i in range(len(parts)):
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: i + 1]), path)
        if spec is None:
            return None, False
        if i < len(parts) - 1:
            path = list(spec.submodule_search_locations or [])
            if not path:
                return None, False
    if spec is None:
        return None, False
    origin = spec.origin if spec.has_location else None
    return origin, spec.submodule_search_locations is not None


def _local(origin: str | None, folders: list[str]) -> bool:
    """Whether ``origin`` is a file of the command's own folders (not installed)."""
    if not origin:
        return False
    real = os.path.realpath(origin)
    return any(real.startswith(folder + os.sep) for folder in folders)


def collect(first_source: str, folders: list[str]) -> list[str]:
    """The installed modules the command's code imports, directly or through modules of its
    own folders (read, never run)."""
    installed: list[str] = []
    seen: set[str] = set()
    pending = [(first_source, "")]
    read = 0
    roots = [f for f in folders if f] + [p for p in sys.path if p and p not in folders]
    while pending and read < MAX_LOCAL_FILES:
        source, package = pending.pop()
        read += 1
        for name in _imports(source, package):
            if name in seen or name == "__main__":
                continue
            seen.add(name)
            origin, is_package = _find(name, roots)
            if origin is None and name in sys.builtin_module_names:
                installed.append(name)
            elif _local(origin, folders):
                if origin and origin.endswith(".py"):
                    try:
                        with open(origin, encoding="utf-8") as f:
                            text = f.read()
                    except (OSError, UnicodeDecodeError):
                        continue
                    own = name if is_package else name.rpartition(".")[0]
                    pending.append((text, own))
            elif origin is not None or is_package:
                installed.append(name)
    return installed


def resident() -> int | None:
    """This process's resident set size in bytes (``proc_tree.py`` beside this file, loaded
    by ``siblings.py``: the one reader of ``/proc``), None where it cannot be read."""
    here = os.path.dirname(os.path.abspath(__file__))
    siblings = runpy.run_path(os.path.join(here, "siblings.py"))
    rss: int | None = siblings["load"]("proc_tree").read_rss(os.getpid())
    return rss


def main(argv: list[str]) -> int:
    """Read the command's imports, import the installed ones, print the JSON line."""
    kind, target = argv[1], argv[2]
    folders = [os.path.realpath(os.getcwd())]
    if kind == "script":
        folders.insert(0, os.path.dirname(os.path.realpath(target)))
        with open(target, encoding="utf-8", errors="replace") as f:
            source = f.read()
    elif kind == "module":
        origin, _ = _find(target, folders + sys.path)
        if origin is None or not origin.endswith(".py"):
            source = f"import {target}"
        else:
            with open(origin, encoding="utf-8", errors="replace") as f:
                source = f.read()
    else:
        source = target
    wanted = collect(source, folders)
    out = sys.stdout
    done, failed = [], []
    # What an import prints is not this process's answer: it goes nowhere.
    sys.stdout = sys.stderr = io.StringIO()
    try:
        for name in wanted:
            try:
                importlib.import_module(name)
                done.append(name)
            except BaseException:  # an import that fails or exits is the command's to meet
                failed.append(name)
    finally:
        sys.stdout, sys.stderr = out, sys.__stderr__
    gc.collect()
    out.write(json.dumps({"rss": resident(), "imported": done, "failed": failed}) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
