"""The line that was running when a run crossed its memory limit (DESIGN §5 rule 9, "including
at a limit kill").

A limit stop already asks the process for its capture of the lines that held the memory
(``where=``); a process inside one long C call cannot answer, and a run without ``where`` has
no capture. So, where py-spy is installed (the ``stack`` extra), the sampler freezes the process
at the limit and py-spy reads its Python stack from outside (``stack_dump.py``): this module
finds py-spy, turns what it read into frames, and says it in words. It is the line that was
*running* at the limit, not a measure of what each line held: for one large allocation the two
are the same line; for a slow climb it is the last step of it.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from membound.measure import child_code
from membound.results.sites import short_path_line

if TYPE_CHECKING:
    from membound.measure.children.where_capture import is_user_file
else:
    is_user_file = child_code.load("where_capture").is_user_file

__all__ = ["running_words", "stack_fields", "stack_tool"]

#: ``src/membound``: this file is in ``measure/where/``.
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Where libraries live: installed packages first (they sit inside the standard library's
#: folder in a plain install), then the standard library.
_LIBRARY_FOLDERS = tuple(
    dict.fromkeys(
        p
        for key in ("purelib", "platlib", "stdlib", "platstdlib")
        if (p := sysconfig.get_paths().get(key))
    )
)


def stack_tool() -> str | None:
    """py-spy's path: beside this interpreter (a venv's scripts, used without activating it),
    else on PATH; None where it is not installed."""
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        found = shutil.which("py-spy", path=folder) if folder else None
        if found:
            return found
    return shutil.which("py-spy")


def _location(frame: Sequence[Any]) -> str:
    file, line, function = frame
    return f"{file}:{line} in {function}"


def stack_fields(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``Measurement`` fields of what the sampler read at the limit: ``limit_stack`` (the
    thread that held the GIL, innermost frame first, membound's own frames left out) and
    ``limit_stack_note`` (which process it is, when the run had several; or why there is
    none). Empty when nothing was read (no limit stop, or py-spy not installed)."""
    if not raw:
        return {}
    processes = int(raw.get("processes") or 1)
    largest = f"in the largest of its {processes} processes" if processes > 1 else ""
    if "error" in raw:
        where = f" ({largest})" if largest else ""
        return {"limit_stack_note": f"its stack could not be read{where}: {raw['error']}"}
    threads = raw.get("threads") or []
    kept = _frames(threads[0]) if threads else ()
    if not kept:
        return {"limit_stack_note": "no Python code was running in it"}
    notes = [largest] if largest else []
    if threads[0].get("main") is False:
        # Another thread held the GIL (a worker allocating): say so, and where the main thread
        # was, which is where the user's own call into the pool usually is.
        main = next((t for t in threads if t.get("main") is True), None)
        user = [s for s in (_frames(main) if main else ()) if _is_user(_split(s)[0])]
        at = f"; the main thread at {short_path_line(_split(user[0])[1])}" if user else ""
        notes.append(f"in thread {threads[0].get('name')}{at}")
    return {"limit_stack": kept, "limit_stack_note": ", ".join(notes)}


def _frames(thread: Mapping[str, Any]) -> tuple[str, ...]:
    """A thread's frames as ``file:line in function``, membound's own left out."""
    frames = thread.get("frames") or []
    return tuple(_location(f) for f in frames if not str(f[0]).startswith(_OWN_DIR + os.sep))


def _split(location: str) -> tuple[str, str, str]:
    """``file:line in function`` into its file, ``file:line`` and function."""
    file_line, _, function = location.rpartition(" in ")
    return file_line.rpartition(":")[0], file_line, function


def _is_user(file: str) -> bool:
    """The user's code: not this interpreter's libraries nor another one's installed packages
    (``is_user_file``: the command may run in a venv of its own)."""
    return bool(is_user_file(file))


def _library_path(file_line: str) -> str:
    """A library's ``file:line`` from its package down (``numpy/_core/numeric.py:233``): the
    folder it is installed in says nothing the reader needs."""
    for folder in _LIBRARY_FOLDERS:
        if file_line.startswith(folder + os.sep):
            return file_line[len(folder) + 1 :]
    # Another interpreter's packages (the command's own venv): the same cut, by name.
    _, packages, tail = file_line.rpartition(f"{os.sep}site-packages{os.sep}")
    return tail if packages else short_path_line(file_line)


def running_words(stack: Sequence[str], note: str = "") -> str:
    """``running job.py:12 in load ← job.py:30`` for a stack from :func:`stack_fields`: the
    innermost of the user's frames and its caller, and the library function it called, if the
    stack goes on into one (``running job.py:12 in load, inside pandas/io/parsers.py:620 in
    read_csv``), then the
    ``note`` in brackets (which process). Empty for no stack."""
    if not stack:
        return ""
    user = [s for s in stack if _is_user(_split(s)[0])]
    top = user[0] if user else stack[0]
    _, file_line, function = _split(top)
    shown = short_path_line(file_line) if user else _library_path(file_line)
    words = f"running {shown} in {function}"
    if len(user) > 1:
        words += f" ← {short_path_line(_split(user[1])[1])}"
    if user and stack[0] != top:
        # The library call the user's line made (pandas' read_csv, numpy's ones), not the
        # library's innermost frame (a lock's wait deep inside it).
        _, inner, inner_function = _split(stack[stack.index(top) - 1])
        words += f", inside {_library_path(inner)} in {inner_function}"
    return f"{words} ({note})" if note else words
