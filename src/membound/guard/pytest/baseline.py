"""Memory baselines across commits: ``--membound-baseline FILE`` records every test's figures,
``--membound-compare FILE`` fails a test whose peak rose beyond its noise or whose verdict got
worse, ``--membound-summary-md PATH`` writes the outcome as Markdown for a CI job summary.

What is measured, per passing test: after the test's own call (which pytest reports, and which
is not measured), the call is run ``--membound-repeat`` more times (default 3) with the same
fixture values; each run's heap peak is tracemalloc's peak over the heap at that run's start,
and the entry keeps the median, the spread (largest less smallest) and how many runs.
``--membound-rss`` adds the RSS peak (``VmHWM`` reset before each run; noisier), in runs of
its own so that tracemalloc's tables do not count. Tests marked ``memory_complexity`` or
``no_leak`` already run many times: their verdict is recorded and compared instead.

Order effects are kept out, so that the figures do not depend on which tests ran before in the
same process (under xdist every worker runs another sequence each time): the unmeasured first
call pays what a first call costs whoever pays it (imports, caches filled, lazy set-up); what
lived before the measured runs is frozen (``gc.freeze``, where the process froze nothing
itself), so the garbage of earlier tests cannot be freed in the middle of one, and every run
starts after a collection of what the runs before it made; and tracemalloc counts only what
the run itself allocates. The price: a cost paid only on the first call is not in the figures.

Under xdist the tests are measured and compared in the workers (each reads the baseline file),
and their entries travel to the controller in the reports' ``user_properties``, where the
file and the summary are written. A test that raises when run again (a directory it creates
exists, a row it inserts is there) gets no entry and is named in the summary. A
``TestCase`` is run again with a result object of its own, so its ``subTest`` outcomes are
reported once, not once per run. The cost: each test runs under tracemalloc ``repeat`` more
times, or until its measured runs took ``REPEAT_BUDGET_S``. The baseline file holds
exactly the tests measured in the recording run: record it from the whole suite. It is not
written when the run was interrupted (the old file stays).

A gate must not pass because it compared nothing: a compare in which fewer than half of the
tests measured in this run are found in the baseline (``MIN_MATCHED``: their ids differ, from
another rootdir or a renamed module) fails the run, exit 1, with one line saying why. A part of
the suite is fine: tests in the baseline that did not run are ignored. And pytest picks its
rootdir before any plugin's options are known, so a path option written ``--membound-compare
FILE`` (not ``=FILE``) is read as a test path too: when that moved the rootdir (a file outside
the project), the run stops before any test with a usage error (exit 4) that says to write
``--membound-compare=FILE``.
"""

from __future__ import annotations

import gc
import heapq
import inspect
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from membound._errors import MemboundError
from membound.guard.pytest.runs import one_event_loop, one_run, quiet_testcase_run
from membound.judge.baseline import Tolerance, check_against
from membound.measure.heap import frozen_heap
from membound.measure.inprocess import block_peak
from membound.report.baseline import baseline_markdown, baseline_text_lines
from membound.results.baseline import (
    Baseline,
    BaselineCheck,
    BaselineEntry,
    BaselineReport,
    Figure,
    python_version,
)

__all__ = [
    "ENTRY_KEY",
    "MIN_MATCHED",
    "PATH_OPTIONS",
    "BaselineChecks",
    "BaselineSummary",
    "add_options",
    "check_rootdir",
    "wanted",
]

#: The ``user_properties`` key under which a test reports its entry (or why it has none).
ENTRY_KEY = "membound_baseline"
#: The key of a test's report that says why it has no entry.
_NOT_MEASURED = "not_measured"
#: Repeats stop once the measured runs of a test took this long (at least one runs): a heap
#: peak is steady, and tracemalloc makes allocation-heavy code 2 to 15 times slower.
REPEAT_BUDGET_S = 10.0
#: Improvements listed in the summary (their count is always given).
_LISTED = 10
#: The share of the tests measured in a compare that must be found in the baseline: below it,
#: the run fails (the ids differ: nothing was gated).
MIN_MATCHED = 0.5
#: The options whose value is a path, which pytest reads as a test path in the space form.
PATH_OPTIONS = ("--membound-baseline", "--membound-compare", "--membound-summary-md")


def add_options(group: Any) -> None:
    """The baseline options of the ``membound`` option group."""
    group.addoption(
        "--membound-baseline",
        metavar="FILE",
        default=None,
        help="Record every test's heap peak (median and spread over --membound-repeat runs) "
        "and its complexity/leak verdict where marked into FILE (plain, sorted JSON to commit).",
    )
    group.addoption(
        "--membound-compare",
        metavar="FILE",
        default=None,
        help="Fail a test whose peak rose beyond its noise since FILE was recorded (more than "
        "the largest of --membound-tolerance, 3× the spread and --membound-min-increase), or "
        "whose verdict got worse. Tests FILE lacks are new; tests not run are ignored.",
    )
    group.addoption(
        "--membound-repeat",
        type=int,
        default=3,
        help="Measured runs per test after its own call, for --membound-baseline/-compare "
        "(default 3).",
    )
    group.addoption(
        "--membound-rss",
        action="store_true",
        default=False,
        help="Also record and compare each test's RSS peak (noisier than the heap's).",
    )
    group.addoption(
        "--membound-tolerance",
        default="10%",
        help="A peak may rise this share of its baseline before it counts (default 10%%).",
    )
    group.addoption(
        "--membound-min-increase",
        default="1MiB",
        help="No rise smaller than this counts (default 1MiB).",
    )
    group.addoption(
        "--membound-summary-md",
        metavar="PATH",
        default=None,
        help="Write the baseline outcome as Markdown to PATH (e.g. $GITHUB_STEP_SUMMARY).",
    )


def wanted(config: pytest.Config) -> bool:
    """Whether any baseline option was given."""
    return bool(
        config.getoption("membound_baseline")
        or config.getoption("membound_compare")
        or config.getoption("membound_summary_md")
    )


def _settings(config: pytest.Config) -> tuple[int, Tolerance, Baseline | None]:
    """The repeat count, the tolerance and the baseline compared against; a UsageError
    (one line) names a bad option or an unreadable file."""
    repeat = config.getoption("membound_repeat")
    if repeat < 1:
        raise pytest.UsageError(f"--membound-repeat must be 1 or more, not {repeat}")
    if config.getoption("membound_summary_md") and not (
        config.getoption("membound_baseline") or config.getoption("membound_compare")
    ):
        raise pytest.UsageError(
            "--membound-summary-md needs --membound-compare FILE or --membound-baseline FILE"
        )
    for option, path in (
        ("--membound-baseline", config.getoption("membound_baseline")),
        ("--membound-summary-md", config.getoption("membound_summary_md")),
    ):
        _check_writable(option, path)
    try:
        tolerance = Tolerance.parse(
            config.getoption("membound_tolerance"), config.getoption("membound_min_increase")
        )
        source = config.getoption("membound_compare")
        before = Baseline.read(source) if source else None
    except MemboundError as exc:
        raise pytest.UsageError(str(exc)) from None
    return repeat, tolerance, before


def _check_writable(option: str, path: str | None) -> None:
    """A UsageError (one line) before any test runs when ``path`` cannot be written: found
    only at the end, the whole suite ran for nothing and the run still passed."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise pytest.UsageError(f"{option}={path}: is a directory; give a file")
    if not os.path.isdir(folder):
        raise pytest.UsageError(f"{option}={path}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise pytest.UsageError(f"{option}={path}: not writable")


def _rootdir_without(config: pytest.Config) -> Any:
    """The rootdir pytest would have chosen had it known membound's options, or None when this
    pytest's ``determine_setup`` cannot be called as expected."""
    try:
        from _pytest.config.findpaths import determine_setup

        ns = config.known_args_namespace
        given = {
            "inifile": ns.inifilename,
            "override_ini": getattr(ns, "override_ini", None),
            "args": ns.file_or_dir,
            "rootdir_cmd_arg": ns.rootdir or None,
            "invocation_dir": config.invocation_params.dir,
        }
        wants = inspect.signature(determine_setup).parameters
        return determine_setup(**{k: v for k, v in given.items() if k in wants})[0]
    except Exception:  # another pytest: the compare's own check still stops a silent pass
        return None


def check_rootdir(config: pytest.Config, args: Sequence[str]) -> None:
    """A UsageError (one line) when a path option written in the space form made pytest choose
    another rootdir: it reads the options before plugins add theirs, so ``--membound-compare
    FILE`` was also a test path to it, and every test id would differ from the baseline's."""
    spaced = [(a, args[i + 1]) for i, a in enumerate(args[:-1]) if a in PATH_OPTIONS]
    if not spaced:
        return
    rootdir = _rootdir_without(config)
    if rootdir is None or rootdir == config.rootpath:
        return
    option, value = spaced[0]
    raise pytest.UsageError(
        f"{option} {value}: pytest took {value} for a test path when it chose its rootdir "
        f"({config.rootpath} instead of {rootdir}), so every test id would change; write "
        f"{option}={value}"
    )


class BaselineChecks:
    """In the process that runs a test: its repeated runs, its entry, and its check."""

    def __init__(self, config: pytest.Config) -> None:
        self.repeat, self.tolerance, self.before = _settings(config)
        self.rss = bool(config.getoption("membound_rss"))
        self.source = config.getoption("membound_compare")

    def _repeats(self, item: pytest.Item) -> Iterator[tuple[str, int]]:
        run = quiet_testcase_run(item) or one_run(item)
        spent = 0.0
        # What lived before the repeats is frozen (``frozen_heap``): the collection before
        # each run walks only what the runs made, not the whole test process (a full one took
        # ~18 ms in a bare process and more beside a framework, three times a test: most of
        # what recording cost a suite of small tests), and no garbage of earlier tests can be
        # freed in the middle of a run.
        with one_event_loop(item), frozen_heap():
            for _ in range(self.repeat):
                if spent > REPEAT_BUDGET_S:
                    return  # the heap peak is steady: more runs would only cost time
                for kind in ("heap", "rss") if self.rss else ("heap",):
                    gc.collect()
                    with block_peak("heap" if kind == "heap" else "rss") as peak:
                        run()
                    spent += peak.seconds
                    yield kind, peak.bytes

    def after_call(self, item: pytest.Item) -> str | None:
        """The test's own call passed: measure it again and report its entry; the failure text
        when it regressed against the baseline."""
        values: dict[str, list[int]] = {"heap": [], "rss": []}
        try:
            for kind, value in self._repeats(item):
                values[kind].append(value)
        except Exception as exc:  # a test that cannot run again is named in the summary
            why = f"{type(exc).__name__} on a repeat: {exc}"[:200]
            item.user_properties.append((ENTRY_KEY, {_NOT_MEASURED: why}))
            return None
        entry = BaselineEntry(
            heap_peak=Figure.of(values["heap"]),
            rss_peak=Figure.of(values["rss"]) if values["rss"] else None,
            runs=len(values["heap"]),
        )
        check = self._report(item, entry)
        return None if check is None or not check.regressed else self._failure(check)

    def after_verdict(self, item: pytest.Item, kind: str, verdict: str) -> str | None:
        """A marked test's verdict: report it; the failure text when it got worse."""
        if kind == "complexity":
            entry = BaselineEntry(complexity=verdict)
        else:
            entry = BaselineEntry(leak=verdict)
        check = self._report(item, entry)
        return None if check is None or not check.regressed else self._failure(check)

    def _report(self, item: pytest.Item, entry: BaselineEntry) -> BaselineCheck | None:
        item.user_properties.append((ENTRY_KEY, entry.to_dict()))
        if self.before is None:
            return None
        return check_against(
            item.nodeid, self.before.entries.get(item.nodeid), entry, self.tolerance
        )

    def _failure(self, check: BaselineCheck) -> str:
        return (
            f"membound baseline: {check.explanation}\n  (baseline {self.source}; when the rise "
            f"is intended, record it again with --membound-baseline={self.source})"
        )


class BaselineSummary:
    """In the controller: collects the entries from the reports, writes the baseline file and
    the Markdown summary, and prints the outcome."""

    def __init__(self, config: pytest.Config) -> None:
        _, self.tolerance, self.before = _settings(config)
        self.compared_with = config.getoption("membound_compare")
        self.record_to = config.getoption("membound_baseline")
        self.markdown_to = config.getoption("membound_summary_md")
        # One entry per test measured: the file to write holds them all (it grows with the
        # suite, which is the input here, not with how long any test runs).
        self.entries: dict[str, BaselineEntry] = {}
        self.regressed: list[BaselineCheck] = []
        self._improved: list[tuple[int, str, BaselineCheck]] = []
        self.improved_count = self.same = self.new = 0
        # Every test that could not run again, with why: each is a test the gate leaves
        # unguarded, so each is named (one line per test, like the entries above).
        self.not_recorded: list[str] = []
        self.not_recorded_count = 0
        self.written: str | None = None
        self.notes: list[str] = []
        self.gate_failed: str | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep the entry a test reported, and its check against the baseline."""
        if report.when != "call":
            return
        for key, value in report.user_properties:
            if key != ENTRY_KEY or not isinstance(value, dict):
                continue
            if _NOT_MEASURED in value:
                self.not_recorded_count += 1
                self.not_recorded.append(f"{report.nodeid}: {value[_NOT_MEASURED]}")
                continue
            entry = BaselineEntry.from_dict(value)
            self.entries[report.nodeid] = entry
            if self.before is not None:
                before = self.before.entries.get(report.nodeid)
                self._count(check_against(report.nodeid, before, entry, self.tolerance))

    def _count(self, check: BaselineCheck) -> None:
        if check.status == "regressed":
            self.regressed.append(check)
        elif check.status == "improved":
            self.improved_count += 1
            gain = -min(p.change for p in check.peaks)
            entry = (gain, check.name, check)
            if len(self._improved) < _LISTED:
                heapq.heappush(self._improved, entry)
            else:
                heapq.heappushpop(self._improved, entry)
        elif check.status == "new":
            self.new += 1
        else:
            self.same += 1

    def _too_few_matched(self) -> str | None:
        """Why the compare gated nothing: fewer than ``MIN_MATCHED`` of the tests measured in
        this run are in the baseline (None when enough were)."""
        if self.before is None or not self.entries:
            return None
        matched = sum(1 for name in self.entries if name in self.before.entries)
        if matched >= MIN_MATCHED * len(self.entries):
            return None
        return (
            f"membound: the gate failed: {matched} of the {len(self.entries)} tests measured in "
            f"this run are in {self.compared_with} (fewer than {MIN_MATCHED:.0%}), so their "
            "memory was not compared; the test ids differ from the baseline's (another rootdir, "
            "renamed tests?): run from where it was recorded, or record it again"
        )

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Fail a compare that gated too few tests; write the baseline (unless the run was
        interrupted) and the Markdown summary."""
        if exitstatus != pytest.ExitCode.INTERRUPTED:
            self.gate_failed = self._too_few_matched()
            if self.gate_failed and exitstatus == pytest.ExitCode.OK:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.before is not None and self.before.python != python_version():
            self.notes.append(
                f"the baseline was recorded on Python {self.before.python}, this run is "
                f"{python_version()}: heap sizes differ between versions"
            )
        if self.record_to:
            if exitstatus == pytest.ExitCode.INTERRUPTED:
                self.notes.append(
                    f"the run was interrupted: {self.record_to} was not written (the old file "
                    "stays)"
                )
            else:
                try:
                    Baseline(self.entries).write(self.record_to)
                    self.written = self.record_to
                except MemboundError as exc:
                    self.notes.append(str(exc))
        if self.markdown_to:
            try:
                with open(self.markdown_to, "a", encoding="utf-8") as out:
                    out.write(baseline_markdown(self.result()))
            except OSError as exc:
                self.notes.append(f"cannot write the summary {self.markdown_to}: {exc}")

    def result(self) -> BaselineReport:
        """The run's outcome so far."""
        not_run = 0
        if self.before is not None:
            not_run = sum(1 for name in self.before.entries if name not in self.entries)
        improved = tuple(c for _, _, c in sorted(self._improved, key=lambda e: -e[0]))
        return BaselineReport(
            compared_with=self.compared_with,
            recorded_to=self.written,
            recorded=len(self.entries),
            regressed=tuple(self.regressed),
            improved=improved,
            improved_count=self.improved_count,
            same=self.same,
            new=self.new,
            not_run=not_run,
            not_recorded=tuple(self.not_recorded),
            not_recorded_count=self.not_recorded_count,
            notes=tuple(self.notes),
            gate_failed=self.gate_failed,
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the outcome."""
        terminalreporter.section("membound: memory baseline")
        for line in baseline_text_lines(self.result()):
            terminalreporter.write_line(line, red=line == self.gate_failed)
