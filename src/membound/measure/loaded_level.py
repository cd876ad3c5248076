"""What a Python command holds once loaded: an idle interpreter with the command's imports.

``membound run`` ends a command's start-up at the first level it holds (``results/lifespan.py``).
From the samples alone, a program that imports for a second and then works within a level, and
one that loads 300 MB for a second and then holds them for three, look alike: the second read
"flat, after its start-up (the first 1.06 s, to 317.8 MiB)" in three runs of four and "retained"
in the fourth. DESIGN §5.1 names the baseline that tells them apart: an idle interpreter with
the same imports. :func:`loaded_level` runs ``children/import_baseline.py`` in the command's own
interpreter (its imports read from its code, the installed ones imported, nothing of the
command's folder run) after the command ended, only when the command held such a level, and
returns that interpreter's resident size.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from membound.measure import child_code

__all__ = ["LOADED_WAIT_S", "LoadedLevel", "loaded_level", "python_target"]

#: The longest the baseline may take to import what the command imports (a heavy framework
#: imports in a few seconds); past it the command is judged without one.
LOADED_WAIT_S = 20.0

_BASELINE = child_code.path("import_baseline")


@dataclass(frozen=True)
class LoadedLevel:
    """The resident size of an idle interpreter with a command's imports."""

    rss: int
    """Bytes resident after the imports and a collection."""
    imported: tuple[str, ...]
    """The modules imported (those of the command's own folder are read, never run)."""


def python_target(argv: Sequence[str]) -> tuple[str, str] | None:
    """What a ``python …`` command runs, as ``children/import_baseline.py`` takes it:
    ``("script", path)``, ``("code", text)`` or ``("module", name)``; None for any other
    command (another program, options before the script)."""
    if len(argv) < 2 or not os.path.basename(argv[0]).startswith("python"):
        return None
    first = argv[1]
    if first in ("-c", "-m") and len(argv) >= 3:
        return ("code" if first == "-c" else "module", argv[2])
    if first.startswith("-"):
        return None
    return ("script", first) if os.path.isfile(first) else None


def loaded_level(argv: Sequence[str], wait: float = LOADED_WAIT_S) -> LoadedLevel | None:
    """The resident size of an idle interpreter, the command's own (``argv[0]``), once it has
    imported what the command's code imports; None when the command is not Python, or the
    baseline failed or took longer than ``wait`` seconds (it is killed then)."""
    target = python_target(argv)
    if target is None:
        return None
    try:
        proc = subprocess.Popen(
            [argv[0], str(_BASELINE), *target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # what an import starts goes with it
        )
    except OSError:
        return None
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # Whatever an import started goes too (a process holding the pipe would keep it open).
        _kill_group(proc)
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read().decode(errors="replace")
    return _parsed(out) if proc.returncode == 0 else None


def _parsed(out: str) -> LoadedLevel | None:
    """The figure from the baseline's answer (the last JSON line it wrote), or None."""
    at = out.rfind('{"rss"')
    if at < 0:
        return None
    try:
        figures = json.loads(out[at:].splitlines()[0])
        rss = int(figures["rss"])
        imported = tuple(str(name) for name in figures.get("imported", ()))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return LoadedLevel(rss, imported) if rss > 0 else None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the baseline's process group (it and what its imports started), and reap it."""
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
