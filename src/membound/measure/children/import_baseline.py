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
do anything at import): the folder (the script's and the working one) leaves ``sys.path``, save
what is installed inside it (a project's ``.venv``); what that code imports does run, as it
would at the start of the command. An import's own output goes to ``/dev/null``, and the
process ends with ``os._exit`` once it has answered: no thread or ``atexit`` hook an import left
behind holds it up (``measure/loaded_level.py`` kills its process group after).

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


def _imports(source: bytes | str, package: str) -> list[str]:
    """The modules ``source`` imports (absolute names; relative ones against ``package``)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
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


def installed_roots() -> list[str]:
    """The folders of what is installed: the interpreter's prefixes, its standard library and
    site-packages (a project's ``.venv`` or a pyenv tree may sit inside the command's folder:
    what it holds is installed, not the command's own code)."""
    import site
    import sysconfig

    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    try:
        roots.update(site.getsitepackages())
        roots.add(site.getusersitepackages())
    except AttributeError:  # a virtualenv's old site module
        pass
    return sorted({os.path.realpath(r) for r in roots if r})


def _under(path: str, folders: list[str]) -> bool:
    """Whether ``path`` (real) is one of ``folders`` or inside one."""
    return any(path == folder or path.startswith(folder + os.sep) for folder in folders)


def _local(origin: str | None, folders: list[str], installed: list[str]) -> bool:
    """Whether ``origin`` is a file of the command's own folders (not installed)."""
    if not origin:
        return False
    real = os.path.realpath(origin)
    return _under(real, folders) and not _under(real, installed)


def _read(path: str) -> bytes | None:
    """A source file's bytes (``ast`` reads its encoding cookie and BOM), None if unreadable."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def collect(
    first_source: bytes | str, first_package: str, folders: list[str], roots: list[str]
) -> list[str]:
    """The installed modules the command's code imports, directly or through modules of its
    own folders (read, never run); ``roots`` is where modules are looked for."""
    installed_at = installed_roots()
    installed: list[str] = []
    seen: set[str] = set()
    pending = [(first_source, first_package)]
    read = 0
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
            elif _local(origin, folders, installed_at):
                text = _read(origin) if origin and origin.endswith(".py") else None
                if text is not None:
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


def _first_source(kind: str, target: str, roots: list[str]) -> tuple[bytes | str, str]:
    """The command's own code and the package it runs in: a script's file, ``-c``'s text, or
    ``-m``'s module (a package's ``__main__.py``)."""
    if kind == "script":
        return _read(target) or b"", ""
    if kind == "module":
        origin, is_package = _find(target, roots)
        if is_package and origin:
            origin = os.path.join(os.path.dirname(origin), "__main__.py")
        source = _read(origin) if origin and origin.endswith(".py") else None
        if source is None:
            return f"import {target}", ""
        return source, target if is_package else target.rpartition(".")[0]
    return target, ""


def main(argv: list[str]) -> None:
    """Read the command's imports, import the installed ones, write the JSON line, and end
    at once (``os._exit``: no thread or ``atexit`` hook an import left behind runs on)."""
    kind, target = argv[1], argv[2]
    folders = [os.path.realpath(os.getcwd())]
    if kind == "script":
        folders.insert(0, os.path.dirname(os.path.realpath(target)))
    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    installed_at = installed_roots()
    # Looked for everywhere the command looks; imported only from what is installed: this
    # folder of membound's own child code, and the command's folders (on ``sys.path`` through
    # ``PYTHONPATH=.`` or a project installed in place) are no place to import from.
    searched = [p for p in sys.path if p and os.path.realpath(p) != here]
    roots = folders + [p for p in searched if os.path.realpath(p) not in folders]
    sys.path[:] = [
        p
        for p in searched
        if not _under(os.path.realpath(p), folders) or _under(os.path.realpath(p), installed_at)
    ]
    source, package = _first_source(kind, target, roots)
    wanted = collect(source, package, folders, roots)
    # What an import prints is not this process's answer: its output goes nowhere, and the
    # answer to a descriptor of its own.
    answer = os.dup(1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    sys.stdout = sys.stderr = io.StringIO()
    done, failed = [], []
    for name in wanted:
        try:
            importlib.import_module(name)
            done.append(name)
        except BaseException:  # an import that fails or exits is the command's to meet
            failed.append(name)
    gc.collect()
    line = json.dumps({"rss": resident(), "imported": done, "failed": failed}) + "\n"
    os.write(answer, line.encode())
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)
