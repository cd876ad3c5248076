"""pytest plugin (``pytest11`` entry point ``membound``): memory limits, leak and complexity
checks as markers, a ``membound`` fixture, and a ``--membound`` summary of the top tests by peak.

Module-level hooks add the options and register the plugin's objects, as pytest-memray does: one
:class:`MemoryChecks` that runs every test under the checks its markers ask for, and the
``--membound`` :class:`~membound.guard.pytest.summary.Summary`. Markers are parsed in
``marks.py``, failure text is written by ``failures.py``, the fixture lives in ``fixture.py``.

The ini option ``membound_limit_memory`` sets a default limit for every test (kind from
``membound_limit_kind``, default ``rss``: a VmHWM reset costs nothing measurable); a marker on a
test or a ``pytest.param`` overrides it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest

from membound._errors import ChildFailed, MemboundError
from membound.guard.pytest.failures import complexity_text, fail, leak_text, limit_text
from membound.guard.pytest.fixture import MemboundFixture, membound
from membound.guard.pytest.marks import (
    MARKERS,
    default_limit,
    marker_options,
    memory_complexity,
)
from membound.guard.pytest.summary import PEAK_KEY, Summary
from membound.judge.complexity import complexity
from membound.judge.leaks import find_leaks
from membound.measure.inprocess import block_peak

# ``membound`` is a fixture: pytest finds fixtures among a plugin module's names.
__all__ = ["MARKERS", "MemboundFixture", "MemoryChecks", "membound"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--membound`` options and the ini defaults."""
    group = parser.getgroup("membound", "memory limits, leaks and complexity (membound)")
    group.addoption(
        "--membound",
        action="store_true",
        default=False,
        help="Measure every test's peak RSS and print the top tests at the end.",
    )
    group.addoption(
        "--membound-top",
        type=int,
        default=10,
        help="How many tests the --membound summary lists (default 10).",
    )
    parser.addini("membound_limit_memory", "Default memory limit for every test, e.g. 512MB.")
    parser.addini(
        "membound_limit_kind", "Kind of the default limit: rss (default) or heap.", default="rss"
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers' help and the plugin's objects."""
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)
    config.pluginmanager.register(MemoryChecks(config), "membound-checks")
    if config.getoption("membound"):
        config.pluginmanager.register(Summary(config), "membound-summary")


@dataclass
class FixtureCall:
    """Calls a collected test function with its fixture values (some may be overridden)."""

    item: pytest.Function
    """The test."""

    def __call__(self, **overrides: Any) -> Any:
        names = self.item._fixtureinfo.argnames
        kwargs = {name: self.item.funcargs[name] for name in names}
        kwargs.update(overrides)
        return self.item.obj(**kwargs)


class MemoryChecks:
    """Runs each test under the checks its markers (or the ini default limit) ask for."""

    def __init__(self, config: pytest.Config) -> None:
        self.default_limit = default_limit(config)
        self.summary = bool(config.getoption("membound"))

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Check every membound marker's arguments before any test runs."""
        for item in items:
            for name in MARKERS:
                opts = marker_options(item, name)
                if name == "memory_complexity" and opts is not None:
                    params = inspect.signature(getattr(item, "obj", lambda: None)).parameters
                    if opts["arg"] not in params:
                        raise pytest.UsageError(
                            f"{item.nodeid}: @pytest.mark.memory_complexity(arg={opts['arg']!r})"
                            f": the test has no parameter named {opts['arg']!r}"
                        )

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Give a ``memory_complexity`` test its size parameter, so that pytest does not look for
        a fixture of that name; the plugin then calls the test once per size itself."""
        marker = metafunc.definition.get_closest_marker("memory_complexity")
        if marker is None:
            return
        try:
            opts = memory_complexity(*marker.args, **marker.kwargs)
        except (TypeError, ValueError, MemboundError):
            return  # reported with the test's name by pytest_collection_modifyitems
        if opts["arg"] not in metafunc.fixturenames:
            return
        metafunc.parametrize(opts["arg"], [int(opts["sizes"][0])], ids=["complexity"])

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run the test under the checks its markers ask for (``None``: pytest's own call)."""
        limit = marker_options(pyfuncitem, "limit_memory") or self.default_limit
        leak = marker_options(pyfuncitem, "no_leak")
        scale = marker_options(pyfuncitem, "memory_complexity")
        if not (limit or leak or scale or self.summary):
            return None
        if inspect.iscoroutinefunction(pyfuncitem.obj):
            if leak or scale or limit:
                fail("membound markers do not support async test functions")
            return None
        call = FixtureCall(pyfuncitem)
        if scale:
            self._check_complexity(pyfuncitem, call, scale)
        elif leak:
            self._check_leak(pyfuncitem, call, leak)
        else:
            self._check_peak(pyfuncitem, call, limit)
        return True

    @staticmethod
    def _check_peak(
        item: pytest.Function, call: FixtureCall, limit: tuple[int, str] | None
    ) -> None:
        with block_peak("heap" if limit and limit[1] == "heap" else "rss") as peak:
            call()
        item.user_properties.append((PEAK_KEY, (peak.bytes, peak.kind)))
        if limit and peak.bytes > limit[0]:
            fail(limit_text(peak, limit[0]))

    @staticmethod
    def _check_leak(item: pytest.Function, call: FixtureCall, opts: dict[str, Any]) -> None:
        try:
            report = find_leaks(
                call,
                iterations=opts["iterations"],
                warmup=opts["warmup"],
                rounds=opts["rounds"],
                tolerance=opts["tolerance"],
                label=item.name,
            )
        except ChildFailed as exc:
            if exc.__cause__ is not None:
                raise exc.__cause__ from None  # the test's own failure, as pytest would show it
            raise
        if report.leaking:
            fail("no_leak: " + leak_text(report))

    @staticmethod
    def _check_complexity(item: pytest.Function, call: FixtureCall, opts: dict[str, Any]) -> None:
        arg = opts["arg"]
        if arg not in item._fixtureinfo.argnames:
            fail(f"memory_complexity: the test takes no parameter named {arg!r}")
        result = complexity(
            lambda n: call(**{arg: n}),
            sizes=opts["sizes"],
            metric=opts["metric"],
            isolate=False,
            repeat=opts["repeat"],
            label=item.name,
        )
        if result.big_o != opts["expected"]:
            fail(complexity_text(opts["expected"], result))
