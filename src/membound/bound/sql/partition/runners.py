"""Where ``run_partitioned`` runs its range tasks: a Dask ``distributed.Client``, a
``concurrent.futures`` executor, or the calling thread. One small interface over the three, so
the coordinator loop is written once; no scheduler of membound's own (DESIGN §6c).
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import os
import pickle
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from membound._errors import BatchSourceError

__all__ = ["Runner", "runner_for"]


class Runner(Protocol):
    """Submits tasks and waits for them."""

    #: Whether tasks run in processes of their own (their peak RSS can be reset and read).
    own_processes: bool
    #: Whether tasks are pickled to other processes (an Engine cannot go).
    sends_tasks: bool
    #: What runs the tasks, in words (for the report).
    kind: str

    def submit(self, fn: Callable[[Any], Any], task: Any, label: str) -> Any:
        """Start ``fn(task)``; returns a future."""
        ...

    def wait(self, futures: Iterable[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        """Wait up to ``timeout`` s for at least one of ``futures``: (done, not done)."""
        ...

    def slots(self) -> int:
        """How many tasks can run at once."""
        ...

    def cancel(self, futures: Iterable[Any]) -> None:
        """Cancel the tasks: those not started never start; on Dask running ones too."""
        ...

    def cancel_pending(self, futures: Iterable[Any]) -> None:
        """Cancel the tasks not started yet, leaving running ones to finish."""
        ...

    def check_picklable(self, task: Any) -> None:
        """Raise a one-line error when ``task`` cannot be sent to a worker."""
        ...

    def workers(self) -> int | None:
        """How many workers can run tasks now; None where that cannot run out (a pool that
        lost a process breaks its futures instead)."""
        ...


class InProcess:
    """Runs the tasks in the calling thread, one per ``wait`` (``client=None``): a task
    cancelled before its turn (after another failed) never runs."""

    own_processes = False
    sends_tasks = False
    kind = "in-process"

    def __init__(self) -> None:
        # Tasks submitted and not run yet: at most one per range of the job.
        self._queue: deque[tuple[cf.Future[Any], Callable[[Any], Any], Any]] = deque()

    def submit(self, fn: Callable[[Any], Any], task: Any, label: str) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        self._queue.append((future, fn, task))
        return future

    def wait(self, futures: Iterable[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        while self._queue:
            future, fn, task = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(task))
            except Exception as exc:
                future.set_exception(exc)
            break
        futures = list(futures)
        return {f for f in futures if f.done()}, {f for f in futures if not f.done()}

    def slots(self) -> int:
        return 1

    def cancel(self, futures: Iterable[Any]) -> None:
        for future in futures:
            future.cancel()

    cancel_pending = cancel

    def check_picklable(self, task: Any) -> None:
        return None

    def workers(self) -> int | None:
        return None


class ExecutorRunner:
    """A ``concurrent.futures`` executor: a process pool (tasks pickled) or a thread pool."""

    def __init__(self, executor: cf.Executor) -> None:
        self.executor = executor
        self.own_processes = isinstance(executor, cf.ProcessPoolExecutor)
        self.sends_tasks = self.own_processes
        self.kind = type(executor).__name__

    def submit(self, fn: Callable[[Any], Any], task: Any, label: str) -> cf.Future[Any]:
        return self.executor.submit(fn, task)

    def wait(self, futures: Iterable[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        done, pending = cf.wait(list(futures), timeout, cf.FIRST_COMPLETED)
        return set(done), set(pending)

    def slots(self) -> int:
        # The stdlib pools keep their size here; another executor counts as one slot.
        return int(getattr(self.executor, "_max_workers", 1) or 1)

    def cancel(self, futures: Iterable[Any]) -> None:
        for future in futures:
            future.cancel()  # a running one cannot be: it finishes

    cancel_pending = cancel

    def check_picklable(self, task: Any) -> None:
        if not self.own_processes:
            return
        try:
            pickle.dumps(task)
        except Exception as exc:
            raise BatchSourceError(
                f"the task cannot be sent to the process pool: {str(exc).splitlines()[0]}",
                hint="define fn at module level and pass a database URL or a module-level "
                "engine factory; or run on Dask, which pickles closures (cloudpickle)",
            ) from None

    def workers(self) -> int | None:
        return None


class DaskRunner:
    """A ``dask.distributed.Client``: a task per range, shown on Dask's dashboard under
    ``membound-range``; the scheduler re-runs a task whose worker died."""

    kind = "dask"
    sends_tasks = True

    def __init__(self, client: Any) -> None:
        self.client = client
        pids = client.run(os.getpid)
        # A task's peak is read from its process's high-water mark, reset when it starts:
        # only right when the process runs one task at a time in a process of its own (not
        # LocalCluster(processes=False), not several threads per worker).
        self.own_processes = (
            bool(pids)
            and os.getpid() not in set(pids.values())
            and all(n == 1 for n in client.nthreads().values())
        )

    def submit(self, fn: Callable[[Any], Any], task: Any, label: str) -> Any:
        return self.client.submit(fn, task, key=f"membound-range-{uuid.uuid4().hex}", pure=False)

    def wait(self, futures: Iterable[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        from distributed import wait

        futures = list(futures)
        try:
            wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")  # type: ignore[no-untyped-call]
        except TimeoutError:
            pass
        except Exception:  # cancelled futures (a restarted scheduler): sorted out below
            pass
        return {f for f in futures if f.done()}, {f for f in futures if not f.done()}

    def slots(self) -> int:
        return max(1, int(sum(self.client.nthreads().values())))

    def workers(self) -> int | None:
        # The scheduler's view (one short RPC): a worker that died leaves it within its
        # heartbeat timeout; tasks wait in its queue meanwhile, with nobody to run them.
        try:
            return len(self.client.nthreads())
        except Exception:  # the scheduler itself is gone: no worker can be reached either
            return 0

    def cancel(self, futures: Iterable[Any]) -> None:
        # Cancels running tasks too (their results are dropped; a task mid-range stops at its
        # next commit, whose fence fails once the coordinator gave its ranges up).
        self.client.cancel(list(futures))

    def cancel_pending(self, futures: Iterable[Any]) -> None:
        # Dask cannot cancel only the queued ones; queued tasks find the job stopping when they
        # start and return at once (``run``), running ones finish their range.
        return None

    def check_picklable(self, task: Any) -> None:
        try:
            importlib.import_module("cloudpickle").dumps(task)
        except Exception as exc:
            raise BatchSourceError(
                f"the task cannot be sent to the Dask workers: {str(exc).splitlines()[0]}"
            ) from None


def runner_for(client: Any) -> Runner:
    """The runner for ``client``: None, an executor, or a ``distributed.Client``.

    Raises:
        BatchSourceError: anything else.
    """
    if client is None:
        return InProcess()
    if isinstance(client, cf.Executor):
        return ExecutorRunner(client)
    if type(client).__module__.startswith("distributed") and hasattr(client, "submit"):
        return DaskRunner(client)
    raise BatchSourceError(
        f"client must be a dask.distributed.Client, a concurrent.futures executor or None, "
        f"got {type(client).__name__}"
    )
