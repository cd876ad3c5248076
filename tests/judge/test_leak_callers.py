"""A leak's holder names the user's line that led to it: when the line that adds to the
container is inside a helper method or a library (an emitter's ``listeners.append(fn)``), the
holder also carries the stack that led there and the nearest user frame outside the adding
function (the ``bus.on(handler)`` that never unregisters); reports and explanations show it."""

from __future__ import annotations

import importlib
import inspect
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from rich.console import Console

import membound as mb
from membound.measure.heap import OWN_DIRS
from membound.measure.holders import MAX_TRACE
from membound.report.terminal import renderable, result_text
from tests.judge import caller_targets as ct
from tests.judge.emitter import EventBus


def _line_of(func: Callable[..., Any], text: str) -> str:
    """``file:line`` of the one line of ``func`` that contains ``text``."""
    lines, first = inspect.getsourcelines(func)
    hits = [first + i for i, line in enumerate(lines) if text in line]
    assert 1 == len(hits), hits
    return f"{func.__code__.co_filename}:{hits[0]}"


def _shown(where: str) -> str:
    """``file:line`` as an explanation shows it (relative to the working directory)."""
    file, _, line = where.rpartition(":")
    rel = os.path.relpath(file)
    return f"{file if rel.startswith('..') else rel}:{line}"


@pytest.fixture(scope="module")
def bus_report() -> mb.LeakReport:
    return mb.find_leaks(ct.subscribe_and_forget)


def test_an_append_in_a_user_helper_names_the_line_that_called_the_helper(
    bus_report: mb.LeakReport,
) -> None:
    assert bus_report.leaking, bus_report.explanation
    top = bus_report.holders[0]
    assert top.path.endswith("._listeners"), top.path
    adding = _line_of(EventBus.on, "self._listeners.append(fn)")
    caller = _line_of(ct.subscribe_and_forget, "bus.on(handler)")
    assert adding == f"{top.file}:{top.line}"
    assert "on" == top.function
    assert caller == top.caller
    assert (adding, caller) == top.trace[:2]
    assert not [t for t in top.trace if t.startswith(OWN_DIRS)]  # membound's frames are cut
    assert f"added at {_shown(adding)} in on, called from {_shown(caller)}" in (
        bus_report.explanation
    )


LIBRARY = """\
class EventBus:
    def __init__(self):
        self._listeners = []

    def on(self, fn):
        self._subscribe(fn)

    def _subscribe(self, fn):
        self._listeners.append(fn)


default = EventBus()
"""


@pytest.fixture
def tinybus(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """An emitter installed in a directory named site-packages: a library, not the user's."""
    lib = tmp_path / "site-packages"
    lib.mkdir()
    (lib / "tinybus.py").write_text(LIBRARY)
    monkeypatch.syspath_prepend(str(lib))
    module = importlib.import_module("tinybus")
    yield module
    sys.modules.pop("tinybus", None)


def test_an_append_in_a_library_names_the_user_line_past_every_library_frame(
    tinybus: ModuleType,
) -> None:
    def subscribe() -> None:
        tinybus.default.on(ct.Handler())

    report = mb.find_leaks(subscribe)
    assert report.leaking, report.explanation
    top = report.holders[0]
    library_file = tinybus.__file__
    assert library_file is not None
    lines = LIBRARY.splitlines()
    adding = f"{library_file}:{lines.index('        self._listeners.append(fn)') + 1}"
    through = f"{library_file}:{lines.index('        self._subscribe(fn)') + 1}"
    caller = _line_of(subscribe, "tinybus.default.on(")
    assert adding == f"{top.file}:{top.line}"
    assert "_subscribe" == top.function
    assert caller == top.caller
    assert (adding, through, caller) == top.trace[:3]
    assert f"called from {_shown(caller)}" in report.explanation


def test_a_deep_stack_keeps_a_bounded_trace_and_the_nearest_caller() -> None:
    report = mb.find_leaks(ct.subscribe_from_deep_down)
    assert report.leaking, report.explanation
    top = report.holders[0]
    adding = _line_of(EventBus.on, "self._listeners.append(fn)")
    caller = _line_of(ct._nested, "deep_bus.on(Handler())")
    assert adding == f"{top.file}:{top.line}"
    assert caller == top.caller
    assert MAX_TRACE == len(top.trace)
    assert (adding, caller) == top.trace[:2]


def test_the_caller_is_outside_the_adding_function_when_it_calls_itself() -> None:
    report = mb.find_leaks(ct.subscribe_through_hops)
    assert report.leaking, report.explanation
    top = report.holders[0]
    assert _line_of(EventBus.on_after, "self._listeners.append(fn)") == f"{top.file}:{top.line}"
    assert "on_after" == top.function
    # Not the recursive ``self.on_after(fn, hops - 1)``: the user's line that started it.
    assert _line_of(ct.subscribe_through_hops, "hops_bus.on_after(") == top.caller
    recursion = _line_of(EventBus.on_after, "self.on_after(fn, hops - 1)")
    assert [recursion] * 3 == list(top.trace[1:4])


def test_an_append_in_the_target_itself_has_no_caller_and_is_the_appending_line() -> None:
    report = mb.find_leaks(ct.keeps_what_a_helper_made)
    assert report.leaking, report.explanation
    top = report.holders[0]
    assert top.path.endswith(".KEPT"), top.path
    # Not the helper's last line, run just before the list grew: the line that appends.
    adding = _line_of(ct.keeps_what_a_helper_made, "KEPT.append(_make())")
    assert adding == f"{top.file}:{top.line}"
    assert "keeps_what_a_helper_made" == top.function
    assert top.caller is None
    assert (adding,) == top.trace
    assert "called from" not in report.explanation
    assert "←" not in report.to_markdown()


def test_the_caller_comes_back_from_a_fresh_interpreter() -> None:
    report = mb.find_leaks("tests.judge.caller_targets:subscribe_and_forget", isolate=True)
    assert report.leaking, report.explanation
    top = report.holders[0]
    assert _line_of(EventBus.on, "self._listeners.append(fn)") == f"{top.file}:{top.line}"
    assert _line_of(ct.subscribe_and_forget, "bus.on(handler)") == top.caller
    assert isinstance(top.trace, tuple)


def test_to_dict_round_trips_the_caller_and_reads_dicts_written_without_it(
    bus_report: mb.LeakReport,
) -> None:
    data = json.loads(json.dumps(bus_report.to_dict()))
    assert bus_report == mb.LeakReport.from_dict(data)
    for holder in data["holders"]:
        for key in ("function", "trace", "caller"):
            del holder[key]
    old = mb.LeakReport.from_dict(data).holders[0]
    assert ((), None, None) == (old.trace, old.caller, old.function)
    assert bus_report.holders[0].line == old.line


def test_reports_show_the_adding_line_and_its_caller(bus_report: mb.LeakReport) -> None:
    top = bus_report.holders[0]
    shown = f"{top.file}:{top.line} in on ← called from {top.caller}"
    assert shown in bus_report.to_markdown()
    assert shown in result_text(bus_report)
    console = Console(file=io.StringIO(), width=1000, record=True)
    console.print(renderable(bus_report))
    assert shown in console.export_text()
