"""One more run of a test's call phase, as pytest would run it: what the plugin's checks
repeat (leak hunts, complexity sizes, the lines of a failed limit, baseline repeats)."""

from __future__ import annotations

import contextlib
import inspect
import unittest
from collections.abc import Callable, Iterator

import pytest

__all__ = [
    "FailedAgain",
    "StoredFailure",
    "one_event_loop",
    "one_run",
    "quiet_testcase_run",
    "ran_already",
]


class StoredFailure(Exception):
    """A ``unittest.TestCase`` run failed; unittest stored the error on the item for pytest to
    report, so the repeated runs stop without raising anything of their own."""


def ran_already() -> None:
    """Stands in for a test's usual call after membound's checks ran it."""


@contextlib.contextmanager
def one_event_loop(item: pytest.Item) -> Iterator[None]:
    """Keep one event loop for all runs of an anyio test.

    anyio's plugin starts a test runner (an event loop) per call unless one is already leased;
    holding a lease for the whole check makes every run use the same loop, as one test would.
    pytest-asyncio keeps the test's loop in a fixture, so its tests need nothing here.
    """
    backend = getattr(item, "funcargs", {}).get("anyio_backend")
    if backend is None:
        yield
        return
    from anyio.pytest_plugin import extract_backend_and_options, get_runner

    with get_runner(*extract_backend_and_options(backend)):
        yield


class FailedAgain(Exception):
    """A ``TestCase`` failed when run again quietly (its traceback as text)."""


def quiet_testcase_run(item: pytest.Item) -> Callable[[], None] | None:
    """A run of a ``unittest.TestCase`` item that reports nothing to pytest (None for other
    items): its ``setUp``, method and ``tearDown`` with a result object of its own, so that
    its ``subTest`` outcomes are not reported once more per run; a failure raises
    :class:`FailedAgain`."""
    case = getattr(item, "_testcase", None)
    if not isinstance(case, unittest.TestCase):
        return None

    def run() -> None:
        result = unittest.TestResult()
        case(result=result)
        problems = result.errors + result.failures
        if problems:
            raise FailedAgain(problems[0][1].strip().splitlines()[-1])

    return run


def one_run(item: pytest.Item) -> Callable[[], None]:
    """One run of ``item`` as pytest would run its call phase: a plain test function with its
    fixture values, a ``TestCase``'s ``setUp``, method and ``tearDown``, an async test on its
    own event loop (through its plugin). Fixtures are set up once, not per run.

    A plain synchronous function is called directly, as pytest's own ``pytest_pyfunc_call``
    does; everything else runs through ``item.runtest()``, so that the plugin owning the item
    (unittest, pytest-asyncio, anyio, …) runs it its own way.
    """
    if type(item) is pytest.Function and not inspect.iscoroutinefunction(item.obj):
        function = item

        def call() -> None:
            names = function._fixtureinfo.argnames
            function.obj(**{name: function.funcargs[name] for name in names})

        return call

    def run() -> None:
        item.runtest()
        if item.__dict__.get("_excinfo"):
            raise StoredFailure

    return run
