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
from collections.abc import Generator
from typing import Any

import pytest

from membound._errors import ChildFailed, MemboundError
from membound.guard.pytest import baseline
from membound.guard.pytest.failures import (
    complexity_text,
    fail,
    leak_text,
    limit_text,
    regression_text,
)
from membound.guard.pytest.fixture import MemboundFixture, membound
from membound.guard.pytest.marks import (
    MARKERS,
    default_limit,
    marker_options,
    memory_complexity,
)
from membound.guard.pytest.memray_plugin import Coexistence, coexist
from membound.guard.pytest.runs import StoredFailure, one_event_loop, one_run, ran_already
from membound.guard.pytest.summary import PEAK_KEY, WHERE_FROM, Summary
from membound.judge.complexity import complexity
from membound.judge.leaks import find_leaks
from membound.measure.inprocess import BlockPeak, PeakKind, block_peak, padded
from membound.measure.where.engine import memray_available
from membound.results.sites import held_by

# ``membound`` is a fixture: pytest finds fixtures among a plugin module's names.
__all__ = ["MARKERS", "MemboundFixture", "MemoryChecks", "membound", "one_run"]


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
    group.addoption(
        "--membound-where",
        action="store_true",
        default=False,
        help="Name the lines that held each test's peak: in a failed limit_memory's text, and "
        "with --membound beside each listed test (memray where installed, else tracemalloc; "
        "without this option a failed limit runs its test once more to name them).",
    )
    baseline.add_options(group)
    parser.addini("membound_limit_memory", "Default memory limit for every test, e.g. 512MB.")
    parser.addini(
        "membound_limit_kind", "Kind of the default limit: rss (default) or heap.", default="rss"
    )


def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Stop a run whose rootdir pytest chose from the value of a membound path option."""
    baseline.check_rootdir(early_config, args)


@pytest.hookimpl(trylast=True)  # after pytest-memray's: see memray_plugin.py
def pytest_configure(config: pytest.Config) -> None:
    """Register the markers' help and the plugin's objects."""
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)
    checks = MemoryChecks(config, coexist(config))
    config.pluginmanager.register(checks, "membound-checks")
    controller = not hasattr(config, "workerinput")  # not an xdist worker
    if config.getoption("membound") and controller:
        config.pluginmanager.register(Summary(config), "membound-summary")
    if checks.baseline is not None and controller:
        config.pluginmanager.register(baseline.BaselineSummary(config), "membound-baseline")


class MemoryChecks:
    """Runs each test under the checks its markers (or the ini default limit) ask for."""

    def __init__(self, config: pytest.Config, memray: Coexistence | None = None) -> None:
        self.default_limit = default_limit(config)
        self.summary = bool(config.getoption("membound"))
        self.where = bool(config.getoption("membound_where"))
        self.memray = memray or Coexistence(installed=False, memray_on=False)
        # Markers this plugin reads: a bare limit_memory is pytest-memray's under --memray.
        self.markers = [n for n in MARKERS if n != "limit_memory" or self.memray.bare_limit_is_ours]
        self.baseline = baseline.BaselineChecks(config) if baseline.wanted(config) else None
        self.marker_note: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Note the first test with a bare ``limit_memory`` when pytest-memray is installed too
        (the reports reach the xdist controller, which prints the note)."""
        if self.memray.installed and self.marker_note is None and "limit_memory" in report.keywords:
            self.marker_note = self.memray.note(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the note on ``limit_memory``'s owner, if any."""
        if self.marker_note is not None:
            terminalreporter.write_line(f"membound note: {self.marker_note}", yellow=True)

    def _limit(self, item: pytest.Item) -> tuple[int, str] | None:
        """The test's limit: its membound marker, or the ini default."""
        limit = marker_options(item, "membound_limit_memory")
        if limit is None and self.memray.bare_limit_is_ours:
            limit = marker_options(item, "limit_memory")
        return limit or self.default_limit

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Check every membound marker's arguments before any test runs."""
        for item in items:
            for name in self.markers:
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

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Run the test's call phase under the checks its markers ask for.

        Every test style pytest runs goes through here: functions, methods, ``TestCase``
        methods, async tests under pytest-asyncio or anyio. ``no_leak`` and
        ``memory_complexity`` run the test repeatedly in place of the usual call.
        """
        limit = self._limit(item)
        leak = marker_options(item, "no_leak")
        scale = marker_options(item, "memory_complexity")
        if not (scale or leak):
            if limit or self.summary:
                result = yield from self._check_peak(item, limit)
            else:
                result = yield
            if self.baseline is not None:  # the call passed: measure it again
                worse = self.baseline.after_call(item)
                if worse:
                    fail(self._regression_text(item, worse))
            return result
        with one_event_loop(item):
            if scale:
                kind, verdict, failure = "complexity", *self._check_complexity(item, scale)
            else:
                kind, verdict, failure = "leak", *self._check_leak(item, leak)
        if self.baseline is not None and verdict is not None:
            worse = self.baseline.after_verdict(item, kind, verdict)
            failure = "\n".join(t for t in (failure, worse) if t) or None
        if failure:
            fail(failure)
        # The test has run many times already, and a failure of its own is stored on the item
        # (unittest) or was raised: the usual call would only run it once more.
        item.runtest = ran_already  # type: ignore[method-assign]
        try:
            return (yield)
        finally:
            del item.runtest

    def _check_peak(
        self, item: pytest.Item, limit: tuple[int, str] | None
    ) -> Generator[None, object, object]:
        kind: PeakKind = "heap" if limit and limit[1] == "heap" else "rss"
        # The lines are shown from WHERE_FROM up, and named in a limit's failure: a test that
        # rose less than both is not worth reading its capture (most of --membound-where's
        # cost on a suite of small tests).
        sites_from = min(WHERE_FROM, limit[0]) if limit else WHERE_FROM
        with block_peak(kind, where=self.where, sites_from=sites_from) as peak:
            result = yield
        top = held_by(peak.sites) if self.where and peak.bytes >= WHERE_FROM else ""
        item.user_properties.append((PEAK_KEY, (peak.bytes, peak.kind, top)))
        if limit and peak.bytes > limit[0]:
            again = None
            # Not under --memray: pytest-memray's tracker is running, and memray allows one.
            if not self.where and memray_available() and not self.memray.memray_on:
                # Tracing costs nothing until a limit fails: then one more run names the lines.
                again = self._run_for_sites(item, kind)
            fail(limit_text(peak, limit[0], again))
        return result

    def _regression_text(self, item: pytest.Item, text: str) -> str:
        """A baseline failure with the lines that held the test's heap peak: one more run,
        traced, with ``--membound-where`` or where memray is installed (and not already
        tracing under ``--memray``), as for a failed limit."""
        again = None
        traced = self.where or (memray_available() and not self.memray.memray_on)
        if traced:
            again = self._run_for_sites(item, "heap")
        return regression_text(text, again, traced=traced)

    @staticmethod
    def _run_for_sites(item: pytest.Item, kind: PeakKind) -> BlockPeak | None:
        """One more run of a test whose limit failed, with ``where`` on (None when it raised:
        its lines would describe another run)."""
        run = one_run(item)
        try:
            with one_event_loop(item), block_peak(kind, where=True) as again:
                padded(run)  # memray's stacks: see ``padded``
        except Exception:
            return None
        return again

    @staticmethod
    def _check_leak(item: pytest.Item, opts: dict[str, Any]) -> tuple[str | None, str | None]:
        """The leak verdict and the failure text (None when it passed)."""
        try:
            report = find_leaks(
                one_run(item),
                iterations=opts["iterations"],
                warmup=opts["warmup"],
                rounds=opts["rounds"],
                tolerance=opts["tolerance"],
                timeout=opts["timeout"],
                label=item.name,
            )
        except ChildFailed as exc:
            if isinstance(exc.__cause__, StoredFailure):
                return None, None  # unittest stored the failure on the item; pytest reports it
            if exc.__cause__ is not None:
                raise exc.__cause__ from None  # the test's own failure, as pytest would show it
            raise
        failure = None if report.verdict == "no leak" else "no_leak: " + leak_text(report)
        return report.verdict, failure

    @staticmethod
    def _check_complexity(item: pytest.Item, opts: dict[str, Any]) -> tuple[str | None, str | None]:
        """The complexity verdict and the failure text (None when it passed)."""
        arg = opts["arg"]
        funcargs = getattr(item, "funcargs", None)
        if not isinstance(funcargs, dict) or arg not in funcargs:
            return None, f"memory_complexity: the test takes no parameter named {arg!r}"
        run = one_run(item)

        def at_size(n: int) -> None:
            funcargs[arg] = n
            run()

        first = funcargs[arg]
        try:
            result = complexity(
                at_size,
                sizes=opts["sizes"],
                metric=opts["metric"],
                isolate=False,
                repeat=opts["repeat"],
                label=item.name,
            )
        finally:
            funcargs[arg] = first
        failure = None
        if result.big_o != opts["expected"]:
            failure = complexity_text(opts["expected"], result)
        return result.big_o, failure
