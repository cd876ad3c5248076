"""pytest plugin (``pytest11`` entry point ``membound``): memory limits, leak and complexity
checks as markers, a ``membound`` fixture, and a ``--membound`` summary of the top tests by peak.

Markers (see :data:`MARKERS`, whose help is generated from the signatures below):

- ``@pytest.mark.limit_memory("24 MB", kind="heap")``: the peak during the test call must stay
  under the limit. ``kind="heap"`` is tracemalloc's peak; ``kind="rss"`` is the kernel's
  ``VmHWM`` after a reset just before the call, so native memory counts too.
- ``@pytest.mark.no_leak(iterations=200, warmup=20, tolerance="64 B")``: the test function is
  called repeatedly with the same fixture values; it fails when the heap keeps growing per call.
- ``@pytest.mark.memory_complexity("O(1)", sizes=(...), arg="n")``: the test is called with each
  size as its ``arg`` parameter, in this process; it fails unless the verdict matches.

The ini option ``membound_limit_memory`` sets a default limit for every test (kind from
``membound_limit_kind``, default ``rss``: a VmHWM reset costs nothing measurable); a marker on a
test or a ``pytest.param`` overrides it.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from membound._errors import ChildFailed, MemboundError
from membound._units import format_size, parse_size
from membound.judge.complexity import normalise_big_o

__all__ = ["MARKERS", "MemboundFixture"]

_PEAK_KEY = "membound_peak"


def limit_memory(limit: str | int, *, kind: str = "heap") -> tuple[int, str]:
    """Fail when the test's peak memory during the call exceeds ``limit``."""
    if kind not in ("heap", "rss"):
        raise MemboundError(f"kind must be 'heap' or 'rss', not {kind!r}")
    size = parse_size(limit)
    if size <= 0:
        raise MemboundError(f"the limit must be positive, not {limit!r}")
    return size, kind


def _whole(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MemboundError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


def no_leak(
    iterations: int = 200, warmup: int = 20, tolerance: str | int = "64 B", rounds: int = 10
) -> dict[str, Any]:
    """Run the test repeatedly with the same fixture values; fail when memory grows per call."""
    opts = {
        "iterations": _whole("iterations", iterations, 1),
        "warmup": _whole("warmup", warmup, 0),
        "tolerance": parse_size(tolerance),
        "rounds": _whole("rounds", rounds, 4),
    }
    if opts["iterations"] < 10 * opts["rounds"]:
        raise MemboundError(
            f"iterations={iterations} is under 10 calls per round for rounds={rounds}: "
            "too few to tell a leak from noise"
        )
    return opts


def memory_complexity(
    expected: str,
    sizes: Sequence[float] = (1_000, 10_000, 100_000),
    arg: str = "n",
    metric: str = "heap",
    repeat: int = 1,
) -> dict[str, Any]:
    """Call the test with each size as ``arg``; fail unless its complexity is ``expected``."""
    if metric not in ("heap", "rss"):
        raise MemboundError(f"metric must be 'heap' or 'rss', not {metric!r}")
    if len({int(s) for s in sizes}) < 3 or any(s != int(s) or s < 1 for s in sizes):
        raise MemboundError(f"sizes must be three or more distinct whole numbers >= 1: {sizes!r}")
    if not isinstance(arg, str) or not arg.isidentifier():
        raise MemboundError(f"arg must name a parameter of the test, not {arg!r}")
    return {
        "expected": normalise_big_o(expected),
        "sizes": tuple(int(s) for s in sizes),
        "arg": arg,
        "metric": metric,
        "repeat": _whole("repeat", repeat, 1),
    }


_PARSERS: dict[str, Callable[..., Any]] = {
    "limit_memory": limit_memory,
    "no_leak": no_leak,
    "memory_complexity": memory_complexity,
}


def _help(name: str, func: Callable[..., Any]) -> str:
    """``name(arg, *, kw=default): first line of the docstring``, from the parser's signature."""
    parts: list[str] = []
    star = False
    for p in inspect.signature(func).parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    doc = (func.__doc__ or "").strip().splitlines()[0]
    return f"{name}({', '.join(parts)}): {doc}"


#: Marker name → help line (generated from the parser signatures above).
MARKERS: dict[str, str] = {name: _help(name, f) for name, f in _PARSERS.items()}


def _parse_marker(where: str, name: str, marker: pytest.Mark) -> Any:
    """The marker's options, or a UsageError that names the test and the marker's signature: a
    typo in a marker must not look like a memory failure."""
    try:
        return _PARSERS[name](*marker.args, **marker.kwargs)
    except (TypeError, ValueError, MemboundError) as exc:
        raise pytest.UsageError(
            f"{where}: bad @pytest.mark.{name}: {exc}\n  usage: {MARKERS[name]}"
        ) from None


def _marker_args(item: pytest.Item, name: str) -> Any:
    marker = item.get_closest_marker(name)
    return None if marker is None else _parse_marker(item.nodeid, name, marker)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Check every membound marker's arguments before any test runs."""
    for item in items:
        for name in _PARSERS:
            opts = _marker_args(item, name)
            if name == "memory_complexity" and opts is not None:
                params = inspect.signature(getattr(item, "obj", lambda: None)).parameters
                if opts["arg"] not in params:
                    raise pytest.UsageError(
                        f"{item.nodeid}: @pytest.mark.memory_complexity(arg={opts['arg']!r}): "
                        f"the test has no parameter named {opts['arg']!r}"
                    )


# -- options and configuration -------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
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
    for text in MARKERS.values():
        config.addinivalue_line("markers", text)
    if config.getoption("membound"):
        config.pluginmanager.register(_Summary(config), "membound-summary")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give a ``memory_complexity`` test its size parameter, so that pytest does not look for a
    fixture of that name; the plugin then calls the test once per size itself."""
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


# -- the test call -------------------------------------------------------------------------------


@dataclass
class _Call:
    item: pytest.Function

    def __call__(self, **overrides: Any) -> Any:
        names = self.item._fixtureinfo.argnames
        kwargs = {name: self.item.funcargs[name] for name in names}
        kwargs.update(overrides)
        return self.item.obj(**kwargs)


@contextlib.contextmanager
def _peak(kind: str) -> Iterator[list[int]]:
    from membound.measure.track import track

    box = [0]
    with track("test", heap=kind == "heap", interval=None) as t:
        yield box
    assert t.result is not None
    box[0] = (t.result.heap_peak or 0) if kind == "heap" else t.result.rss_peak_delta


def _default_limit(config: pytest.Config) -> tuple[int, str] | None:
    raw = config.getini("membound_limit_memory")
    if not raw:
        return None
    kind = str(config.getini("membound_limit_kind") or "rss")
    try:
        return limit_memory(str(raw), kind=kind)
    except MemboundError as exc:
        raise pytest.UsageError(f"membound_limit_memory: {exc}") from None


def _fail(text: str) -> None:
    pytest.fail(text, pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run the test under the checks its markers ask for (``None``: pytest's own call)."""
    config = pyfuncitem.config
    limit = _marker_args(pyfuncitem, "limit_memory") or _default_limit(config)
    leak = _marker_args(pyfuncitem, "no_leak")
    scale = _marker_args(pyfuncitem, "memory_complexity")
    summary = config.getoption("membound")
    if not (limit or leak or scale or summary):
        return None
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        if leak or scale or limit:
            _fail("membound markers do not support async test functions")
        return None
    call = _Call(pyfuncitem)
    if scale:
        _check_complexity(pyfuncitem, call, scale)
        return True
    if leak:
        _check_leak(pyfuncitem, call, leak)
        return True
    kind = limit[1] if limit else "rss"
    with _peak(kind) as box:
        call()
    pyfuncitem.user_properties.append((_PEAK_KEY, (box[0], kind)))
    if limit and box[0] > limit[0]:
        source = "tracemalloc" if kind == "heap" else "VmHWM, reset before the call"
        _fail(
            f"limit_memory: the test's {kind} peak was {format_size(box[0])} ({source}), "
            f"over its limit of {format_size(limit[0])} ({limit[0]:,} bytes)"
        )
    return True


def _check_leak(item: pytest.Function, call: _Call, opts: dict[str, Any]) -> None:
    from membound.judge.leaks import find_leaks

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
        _fail("no_leak: " + _leak_text(report))


def _leak_text(report: Any) -> str:
    lines = [f"{report.label} {report.explanation}"]
    for site in report.sites[:5]:
        lines.append(
            f"  site  {site.file}:{site.line}  {site.bytes_per_call:.0f} B/call  "
            f"{site.count_per_call:.2f} blocks/call"
        )
    for t in report.types[:5]:
        lines.append(f"  type  {t.type_name}  +{t.per_call:.2f} per call")
    if report.chain:
        lines.append("  kept alive by  " + " → ".join(report.chain))
    return "\n".join(lines)


def _check_complexity(item: pytest.Function, call: _Call, opts: dict[str, Any]) -> None:
    from membound.judge.complexity import complexity

    arg = opts["arg"]
    if arg not in item._fixtureinfo.argnames:
        _fail(f"memory_complexity: the test takes no parameter named {arg!r}")
    result = complexity(
        lambda n: call(**{arg: n}),
        sizes=opts["sizes"],
        metric=opts["metric"],
        isolate=False,
        repeat=opts["repeat"],
        label=item.name,
    )
    if result.big_o != opts["expected"]:
        points = ", ".join(f"n={p.n:,}: {format_size(p.value)}" for p in result.points)
        _fail(
            f"memory_complexity: expected {opts['expected']}, measured {result.big_o} — "
            f"{result.explanation}\n  {points}"
        )


# -- summary -------------------------------------------------------------------------------------


class _Summary:
    """Collects each test's peak from its report (so it works under xdist, where peaks are
    measured in the workers and reports travel to the controller) and prints the top ones."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[tuple[str, int, str]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key == _PEAK_KEY and isinstance(value, list | tuple):
                self.results.append((report.nodeid, int(value[0]), str(value[1])))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        results = sorted(self.results, key=lambda r: -r[1])
        top = results[: max(1, int(self.config.getoption("membound_top")))]
        terminalreporter.section("membound: top tests by peak memory")
        if not top:
            terminalreporter.write_line("no test was measured")
            return
        width = max(len(nodeid) for nodeid, _, _ in top)
        for nodeid, peak, kind in top:
            terminalreporter.write_line(f"{nodeid:<{width}}  {format_size(peak):>10}  {kind}")
        terminalreporter.write_line(
            f"{len(results)} tests measured; rss: peak over the RSS just before the call "
            "(VmHWM reset); heap: tracemalloc's peak where a heap limit applied"
        )


# -- fixture -------------------------------------------------------------------------------------


class MemboundFixture:
    """The ``membound`` fixture: measuring and asserting from inside a test."""

    def track(self, label: str | None = None, *, heap: bool = False) -> Any:
        """``membound.track``: measure a block in this process."""
        from membound.measure.track import track

        return track(label, heap=heap)

    def measure(self, target: Any, *args: Any, **kwargs: Any) -> Any:
        """``membound.measure``: one call in a fresh interpreter."""
        from membound.measure.isolate import measure

        return measure(target, *args, **kwargs)

    def complexity(self, target: Any, **kwargs: Any) -> Any:
        """``membound.complexity``."""
        from membound.judge.complexity import complexity

        return complexity(target, **kwargs)

    def find_leaks(self, target: Any, **kwargs: Any) -> Any:
        """``membound.find_leaks``."""
        from membound.judge.leaks import find_leaks

        return find_leaks(target, **kwargs)

    def assert_no_leak(
        self,
        target: Callable[[], Any],
        *,
        iterations: int = 200,
        warmup: int = 20,
        tolerance: str | int = "64 B",
    ) -> Any:
        """Fail the test when ``target()`` leaks; returns the report otherwise."""
        report = self.find_leaks(target, iterations=iterations, warmup=warmup, tolerance=tolerance)
        if report.leaking:
            raise AssertionError("no leak expected: " + _leak_text(report))
        return report

    def assert_complexity(
        self,
        target: Callable[[int], Any],
        expected: str,
        *,
        sizes: Sequence[float] = (1_000, 10_000, 100_000),
        metric: str = "heap",
        isolate: bool = False,
    ) -> Any:
        """Fail the test unless ``target(n)``'s memory complexity is ``expected``."""
        want = normalise_big_o(expected)
        result = self.complexity(target, sizes=sizes, metric=metric, isolate=isolate)
        if result.big_o != want:
            raise AssertionError(f"expected {want}, measured {result.big_o}: {result.explanation}")
        return result

    @contextlib.contextmanager
    def assert_peak_below(self, limit: str | int, kind: str = "heap") -> Iterator[None]:
        """Fail when the block's peak (``heap`` or ``rss``) exceeds ``limit``."""
        max_bytes, kind = limit_memory(limit, kind=kind)
        with _peak(kind) as box:
            yield
        if box[0] > max_bytes:
            raise AssertionError(
                f"{kind} peak {format_size(box[0])} is over the limit of {format_size(max_bytes)}"
            )


@pytest.fixture
def membound() -> MemboundFixture:
    """Measure and assert memory from inside a test (see :class:`MemboundFixture`)."""
    return MemboundFixture()
