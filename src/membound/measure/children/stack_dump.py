"""The Python stack of a process at its memory limit, read from outside it with py-spy.

At a limit stop the process may be inside one long C call (``bytearray(10**9)``, a NumPy or pandas
allocation): it runs no Python code, so it cannot answer a request to write what it captured, and
its own tracer has nothing to say yet. py-spy reads the interpreter's frames from the process's
memory without its help; the process is frozen first (SIGSTOP), so its memory stops growing while
it is read and the stack read is the one that crossed the limit. Reading a stack from another
process's memory is py-spy's whole job (interpreter layouts for every CPython version): it is run,
not rewritten.

The caller kills the process afterwards, or resumes it (SIGCONT) to let it write its capture.

Standard library only, run by path from ``sampler_process.py`` (``-E -s -S``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import Any

__all__ = ["MAX_FRAMES", "MAX_THREADS", "READ_TIMEOUT_S", "freeze_and_read"]

#: Threads kept (the one holding the GIL first), and frames kept per thread (innermost first):
#: what a reader can use, and a bound on what the sampler holds.
MAX_THREADS = 8
MAX_FRAMES = 48
#: py-spy gets this long; a stack not read by then is reported as not read.
READ_TIMEOUT_S = 3.0


def freeze_and_read(pid: int, tool: str) -> dict[str, Any]:
    """Stop ``pid`` (SIGSTOP) and read its Python threads with ``tool`` (py-spy's path).

    Returns ``{"pid", "threads": [{"name", "gil", "main", "frames": [[file, line, function],
    ...]}]}`` or
    ``{"pid", "error": "..."}``; the process is left stopped either way (when it still exists).
    """
    try:
        os.kill(pid, signal.SIGSTOP)
    except OSError as exc:
        return {"pid": pid, "error": f"the process is gone ({exc.strerror})"}
    try:
        done = subprocess.run(
            [tool, "dump", "--pid", str(pid), "--json", "--nonblocking"],
            capture_output=True,
            timeout=READ_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"pid": pid, "error": f"py-spy did not answer within {READ_TIMEOUT_S:.0f} s"}
    except OSError as exc:
        return {"pid": pid, "error": f"py-spy could not run: {exc.strerror}"}
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        first = said[0].removeprefix("Error: ") if said else f"exited {done.returncode}"
        return {"pid": pid, "error": f"py-spy: {first}"}
    try:
        return {"pid": pid, "threads": _threads(json.loads(done.stdout), pid)}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {"pid": pid, "error": "py-spy's answer could not be read"}


def _threads(dump: Any, pid: int) -> list[dict[str, Any]]:
    """py-spy's JSON dump, cut to what is kept: the thread holding the GIL first (it was
    running Python, or C code that holds it, such as an allocation), then the main thread.
    py-spy's ``active`` says nothing here: every thread of a frozen process is stopped."""
    ordered = sorted(dump, key=lambda t: (not t.get("owns_gil"), not _is_main(t, pid, dump)))
    return [
        {
            "name": str(t.get("thread_name") or t.get("thread_id")),
            "gil": bool(t.get("owns_gil")),
            "main": _is_main(t, pid, dump),
            "frames": [
                [str(f["filename"]), int(f["line"]), str(f["name"])]
                for f in t["frames"][:MAX_FRAMES]
            ],
        }
        for t in ordered[:MAX_THREADS]
    ]


def _is_main(thread: Any, pid: int, dump: Any) -> bool:
    """Whether ``thread`` is the process's main thread. py-spy reads no native thread ids from
    a Python 3.10 process it does not hold with ptrace: there, a thread that ``threading``
    started (its outermost frame is ``threading``'s ``_bootstrap``) is not the main one, and
    one it did not start is taken for it."""
    if len(dump) == 1:
        return True
    native = thread.get("os_thread_id")
    if native is not None:
        return bool(native == pid)
    frames = thread.get("frames") or []
    outermost = frames[-1] if frames else {}
    started = str(outermost.get("filename", "")).endswith("threading.py") and str(
        outermost.get("name", "")
    ).endswith("_bootstrap")
    return not started
