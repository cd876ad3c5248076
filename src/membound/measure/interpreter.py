"""Which interpreter a ``python …`` command really runs, and whether it can load memray there.

``membound run --where -- python3 job.py`` traces ``job.py`` inside the command's own
interpreter. The first word is often not an interpreter: pyenv's ``python3`` is a shell script
that runs ``pyenv exec``, which finds the version and only then starts the binary (21 processes
before the job's first line, each counted in the measured tree and in its start-up), and a
project's wrapper script may set variables or options first. And that interpreter may lack
memray although membound's own has it: the capture then fell back to tracemalloc (45.6 s
against 4.4 s on a numpy job) saying only "memray is not installed".

So, for a traced command, the first word is asked once what it runs (:func:`probe`: a few lines
of Python run through it, which print the interpreter's path, the options it was given, what
the wrapper set in the environment, its ABI and whether memray imports there); the command then
starts that interpreter directly, with those options and variables, and only the job is
measured. Where memray is missing there but membound's own interpreter has it for the same ABI
(the same implementation, version and ``SOABI``: its compiled module loads there), membound
lends it (:func:`lend_memray`: the heap runner loads that one package by its path, nothing else
of membound's environment); else :meth:`Interpreter.lacks_memray` says which interpreter lacks
it and how to install it there.

Written here: no library resolves an interpreter behind a shim; pyenv's own ``pyenv which``
knows only pyenv.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from membound._errors import TargetError
from membound.measure import child_code

if TYPE_CHECKING:
    from importlib import metadata

    from membound.measure.children.siblings import LEND_MEMRAY as _LEND_MEMRAY
    from membound.measure.children.siblings import LEND_NAMES as _LEND_NAMES
else:
    _LEND_MEMRAY = child_code.load("siblings").LEND_MEMRAY
    _LEND_NAMES = child_code.load("siblings").LEND_NAMES

__all__ = ["Interpreter", "lend_memray", "probe"]

#: Run through the command's first word: what it is, as JSON on one line.
_PROBE = """
import importlib.util, json, os, sys, sysconfig
argv = getattr(sys, "orig_argv", [sys.executable])
print(json.dumps({
    "executable": sys.executable,
    "options": argv[1:argv.index("-c")] if "-c" in argv else [],
    "implementation": sys.implementation.name,
    "version": list(sys.version_info[:3]),
    "soabi": sysconfig.get_config_var("SOABI") or "",
    "memray": importlib.util.find_spec("memray") is not None,
    "environ": dict(os.environ),
}))
"""
#: Seconds the probe may take (a shim on a busy machine takes about a second).
_PROBE_TIMEOUT_S = 30.0
#: Variables the probe's own run sets that are not the wrapper's doing.
_NOT_THE_WRAPPERS = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})


@dataclass(frozen=True)
class Interpreter:
    """The Python a command's first word runs."""

    executable: str
    """The interpreter's path, as it names itself (``sys.executable``)."""
    options: tuple[str, ...] = ()
    """Interpreter options the first word passes (a wrapper's ``-X dev``)."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """Variables the first word set or changed on its way to the interpreter."""
    implementation: str = ""
    """``cpython``, ``pypy``…"""
    version: tuple[int, ...] = ()
    """``(3, 11, 7)``."""
    soabi: str = ""
    """The ABI tag of its compiled modules (``cpython-311-x86_64-linux-gnu``)."""
    has_memray: bool = False
    """Whether ``import memray`` works there."""
    first_word: str = ""
    """What the command named (``python3``)."""

    @property
    def indirect(self) -> bool:
        """Whether the first word is not the interpreter itself (a shim or a wrapper)."""
        return os.path.realpath(shutil.which(self.first_word) or self.first_word) != (
            os.path.realpath(self.executable)
        )

    def lacks_memray(self) -> str:
        """The one line saying that memray is missing there, and how to get it."""
        named = f"{self.first_word} runs {self.executable}" if self.indirect else self.executable
        return (
            f"memray is not installed for the command's interpreter ({named}, Python "
            f"{'.'.join(map(str, self.version))}); install it there: "
            f"{self.executable} -m pip install memray"
        )


def _is_script(path: str) -> bool:
    """Whether ``path`` is a script (``#!``), not a binary: a shim or a wrapper."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def probe(first_word: str, environ: Mapping[str, str] | None = None) -> Interpreter:
    """Ask ``first_word`` which interpreter it runs.

    Raises:
        TargetError: it is not a Python interpreter, or did not answer.
    """
    env = dict(os.environ if environ is None else environ)
    # The probe runs in an empty folder: a relative first word is found from here first.
    program = (
        os.path.abspath(first_word) if os.sep in first_word else shutil.which(first_word)
    ) or first_word
    try:
        # In an empty folder: ``-c`` puts the current folder first on sys.path, and a job's
        # folder with its own ``json.py`` or ``types.py`` broke the probe's imports.
        with tempfile.TemporaryDirectory(prefix="membound-probe-") as empty:
            done = subprocess.run(
                [program, "-c", _PROBE],
                capture_output=True,
                text=True,
                timeout=_PROBE_TIMEOUT_S,
                env=env,
                stdin=subprocess.DEVNULL,
                cwd=empty,
                check=False,
            )
        found = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        found = None
    if not isinstance(found, dict) or not found.get("executable"):
        raise TargetError(
            f"{first_word} did not answer as a Python interpreter (asked which interpreter it "
            "runs, to trace the program in it)",
            hint="name the interpreter itself: membound run --where -- /path/to/python job.py",
        )
    seen = found.get("environ") or {}
    changed = {
        key: value
        for key, value in seen.items()
        if key not in _NOT_THE_WRAPPERS and env.get(key) != value
    }
    return Interpreter(
        executable=str(found["executable"]),
        options=tuple(str(o) for o in found.get("options") or ()),
        environ=changed,
        implementation=str(found.get("implementation", "")),
        version=tuple(int(v) for v in found.get("version") or ()),
        soabi=str(found.get("soabi", "")),
        has_memray=bool(found.get("memray")),
        first_word=first_word,
    )


def needs_probe(first_word: str) -> bool:
    """Whether ``first_word`` may not be the interpreter itself (a script: a shim, a wrapper)."""
    return _is_script(shutil.which(first_word) or first_word)


@functools.cache
def _lendable() -> tuple[str, tuple[str, ...]] | None:
    """membound's own memray: the folder it is installed in and the import names of it and of
    every package it needs (its requirements' closure, extras left out); None without one."""
    # Imported here, not with the module: only a foreign interpreter needs it, and every
    # `membound run` would otherwise pay its 17 ms (email parsing) at start-up.
    from importlib import metadata

    try:
        root = metadata.distribution("memray")
    except metadata.PackageNotFoundError:
        return None
    folder = str(Path(str(root.locate_file(""))).resolve())
    names: set[str] = set()
    seen: set[str] = set()
    todo = ["memray"]
    while todo:
        wanted = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if wanted in seen:
            continue
        seen.add(wanted)
        try:
            dist = metadata.distribution(wanted)
        except metadata.PackageNotFoundError:
            continue
        names |= _import_names(dist)
        for requirement in dist.requires or ():
            head, _, marker = requirement.partition(";")
            if "extra" not in marker:
                todo.append(re.split(r"[\s\[<>=!~(]", head.strip(), maxsplit=1)[0])
    return folder, tuple(sorted(names))


def _import_names(dist: metadata.Distribution) -> set[str]:
    """The top-level names a distribution installs (``rich``, ``markdown_it``, ``_cffi``)."""
    names: set[str] = set()
    for file in dist.files or ():
        first = file.parts[0] if file.parts else ""
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".pth")):
            continue
        name = first.split(".")[0]
        if name.isidentifier():
            names.add(name)
    return names


def lend_memray(interpreter: Interpreter) -> dict[str, str]:
    """The variables that lend membound's own memray to ``interpreter`` (the heap runner and
    the capture reader read them), when it lacks its own and can load this one: the same
    implementation, version and ABI tag as this interpreter. Empty otherwise."""
    if interpreter.has_memray:
        return {}
    lendable = _lendable()
    same = (
        interpreter.implementation == sys.implementation.name
        and interpreter.version[:2] == tuple(sys.version_info[:2])
        and interpreter.soabi == (sysconfig.get_config_var("SOABI") or "")
    )
    if lendable is None or not same:
        return {}
    folder, names = lendable
    return {_LEND_MEMRAY: folder, _LEND_NAMES: ",".join(names)}
