"""Which server this process serves in, who restarts it, and how to stop it gracefully.

The guard's exits (the ASGI recycler, ``actions.exit_gracefully``, a refusal that does not
recover) must stop a server the way its own shutdown does — stop accepting, let the requests in
flight finish, exit — and never by raising in the event loop: ``SystemExit`` raised there under
uvicorn turned the requests in flight into 500s. Each server has its own way:

* **uvicorn** (``uvicorn app``, ``uvicorn --workers N``, gunicorn's ``UvicornWorker``): its
  ``Server`` stops when ``should_exit`` is set. On its next tick (0.1 s) it closes its listening
  sockets, asks every connection to close after the response in hand, waits for them up to
  ``timeout_graceful_shutdown``, cancels what is left, and runs the lifespan shutdown (uvicorn's
  own ``limit_max_requests`` recycles a worker the same way). The guard stops accepting a
  moment before, so that a connection accepted just then is served, not reset unanswered.
  While it serves, the ``Server`` is the owner of the SIGINT/SIGTERM handler it installed
  (``Server.capture_signals``, in the main thread): that is how it is found here — the object
  SIGTERM itself would reach.
* **anything else with its own SIGTERM handler** (gunicorn's sync and gthread workers set
  ``alive = False``: the request in hand is answered, then the worker exits; hypercorn, aiohttp):
  SIGTERM to this process, the server's documented graceful stop.
* otherwise there is no server to stop, and callers fall back (``exit_gracefully`` then raises
  ``SystemExit`` in the main thread, as in a plain script).

The supervisor is the process that starts a fresh worker when one exits: gunicorn's arbiter, or
uvicorn's ``Multiprocess`` parent (``--workers N`` > 1; ``--reload`` restarts only on file
changes, so it does not count). A single ``uvicorn app`` has none here: a liveness probe on
``/health`` (503 while refusing) or the container runtime restarts it.

Written here: no library finds the server a process runs in; both servers expose only these hooks.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from membound._proc import cmdline
from membound.measure.probes import children

__all__ = ["Supervisor", "stop_serving", "supervisor", "uvicorn_server"]

#: Set on a uvicorn ``Server`` being stopped by the guard (a second request changes nothing).
_STOPPING = "_membound_stopping"
#: Seconds between closing uvicorn's listening sockets and its shutdown.
_SETTLE_S = 0.1
#: This process has sent itself SIGTERM already (a second one may mean "now" to a server).
_signalled: list[int] = []


def uvicorn_server() -> Any | None:
    """The uvicorn ``Server`` serving in this process, if any (found as the owner of the SIGTERM
    handler it installs while it serves; None when uvicorn is not imported or serves outside
    the main thread)."""
    module = sys.modules.get("uvicorn.server")
    if module is None:
        return None
    try:
        owner = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    except (ValueError, OSError):  # pragma: no cover - no SIGTERM on this platform
        return None
    return owner if isinstance(owner, module.Server) else None


def _has_own_sigterm_handler() -> bool:
    handler = signal.getsignal(signal.SIGTERM)
    return callable(handler) and handler is not signal.default_int_handler


@dataclass(frozen=True)
class Supervisor:
    """The process that starts a fresh worker when this one exits."""

    kind: Literal["gunicorn", "uvicorn"]
    """Which server's supervisor it is."""
    pid: int
    """Its process id (recycling slots are named after it)."""
    workers: int
    """How many workers it keeps (uvicorn's ``--workers``; for gunicorn, the workers alive)."""


def _gunicorn_workers(ppid: int) -> int:
    """Siblings started like this worker (gunicorn forks its workers without ``exec``: they
    share the arbiter's command line, or all say "gunicorn: worker" under setproctitle)."""
    mine = cmdline("self")
    same = [pid for pid in children(ppid) if cmdline(pid) == mine]
    return max(1, len(same))


def supervisor() -> Supervisor | None:
    """Who restarts this process when it exits: a gunicorn arbiter, uvicorn's ``--workers``
    parent, or None (a single process; its restart is up to a liveness probe)."""
    ppid = os.getppid()
    server = uvicorn_server()
    if server is not None and _spawned_by_multiprocessing():
        config = server.config
        if int(getattr(config, "workers", 1) or 1) > 1 and not getattr(config, "reload", False):
            return Supervisor("uvicorn", ppid, int(config.workers))
    if "gunicorn" in sys.modules and b"gunicorn" in cmdline(ppid):
        return Supervisor("gunicorn", ppid, _gunicorn_workers(ppid))
    return None


def _spawned_by_multiprocessing() -> bool:
    """Whether a ``multiprocessing`` parent started this process. Not imported here: a child it
    spawned has imported it already, and importing it rebinds ``sys.modules["__mp_main__"]``
    (a script membound's child is importing to find a function would lose its name)."""
    module = sys.modules.get("multiprocessing")
    return module is not None and module.parent_process() is not None


def _exit_now(status: int) -> None:
    """End the process at once, ``atexit`` handlers run first (they flush logs, and the app's
    own). Under ``uvicorn --workers`` the parent pings each child and waits 5 s
    (``timeout_worker_healthcheck``) for an answer that a child in interpreter shutdown never
    gives: a worker that ended the usual way after its shutdown left the parent unable to see
    any dead worker for those 5 s, and twice in three recycles every worker was gone by then."""
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)
    if run_exit_functions is not None:
        with contextlib.suppress(Exception):
            run_exit_functions()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _stop_uvicorn(
    server: Any, grace: float, status: int | None, stopped: Callable[[], None] | None
) -> None:
    # uvicorn's --workers children are spawned by multiprocessing; gunicorn's are forked
    prompt = _spawned_by_multiprocessing()
    config = server.config
    timeout = getattr(config, "timeout_graceful_shutdown", None)
    if timeout is None or timeout > grace:
        # uvicorn waits for open connections without end unless told (gunicorn's UvicornWorker
        # never passes gunicorn's graceful_timeout on): the grace is the most they get.
        config.timeout_graceful_shutdown = grace
    shutdown = server.shutdown

    async def shutdown_then_exit(*args: Any, **kwargs: Any) -> None:
        await shutdown(*args, **kwargs)
        # Every connection is closed and the lifespan has shut down: the server no longer
        # serves, and only now may the status be raised (it leaves through uvicorn's serve,
        # like its own sys.exit).
        if stopped is not None:
            stopped()
        if prompt:
            _exit_now(status or 0)
        if status:
            raise SystemExit(status)

    server.shutdown = shutdown_then_exit
    listeners = list(getattr(server, "servers", None) or [])
    if not listeners:  # not serving yet: it stops before it starts
        server.should_exit = True
        return
    loop = listeners[0].get_loop()

    def stop_accepting_then_exit() -> None:
        # Stop accepting first, and only later let uvicorn close its listeners and connections.
        # asyncio drops a connection it accepted in the same tick as Server.close() (the
        # transport is made after the close, fails to attach to the closed server, and the
        # socket is reset unanswered: 3 requests lost in 14 runs of 400), and uvicorn's
        # shutdown closes every connection whose request it has not read yet. So the listening
        # sockets only stop being watched here; connections accepted meanwhile are served, and
        # requests already on their way get _SETTLE_S to arrive. The socket stays open in the
        # other workers, which accept what comes next.
        for listener in listeners:
            for sock in listener.sockets or ():
                if not loop.remove_reader(sock.fileno()):
                    listener.close()  # a loop that does not accept through a reader (uvloop)
                    break
        loop.call_later(_SETTLE_S, setattr, server, "should_exit", True)

    loop.call_soon_threadsafe(stop_accepting_then_exit)


def stop_serving(
    grace: float, status: int | None = None, stopped: Callable[[], None] | None = None
) -> str | None:
    """Stop the server this process serves in, gracefully: no new connections, requests in
    flight finish (up to ``grace`` seconds under uvicorn), then the process exits.

    Args:
        grace: the longest the requests in flight may take (uvicorn's
            ``timeout_graceful_shutdown``, lowered to it when it is longer or unset).
        status: the exit status under uvicorn once it has shut down (None or 0: uvicorn's own,
            0); a server stopped by SIGTERM exits as it does for SIGTERM.
        stopped: called under uvicorn once its shutdown is over (no connection left), before
            the process exits.

    Returns:
        ``"uvicorn"``, ``"signal"`` (SIGTERM sent to this process, whose own handler stops
        it), ``"stopping"`` (asked before), or None: no server found, nothing done.
    """
    server = uvicorn_server()
    if server is not None:
        if getattr(server, _STOPPING, False):
            return "stopping"
        setattr(server, _STOPPING, True)
        _stop_uvicorn(server, grace, status, stopped)
        return "uvicorn"
    if _has_own_sigterm_handler():
        if os.getpid() in _signalled:
            return "stopping"
        _signalled.append(os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)
        return "signal"
    return None
