"""Memory baselines: figures recorded per test, command or scenario in a plain file that is
committed beside the code, and the outcome of checking a later run against them.

The file is JSON written for review: a header, then one line per entry, sorted by name, so a
change of one test's figures is a one-line diff::

    {
      "membound_baseline": 1,
      "python": "3.11",
      "entries": {
        "tests/test_io.py::test_read": {"heap_peak": 1048576, "heap_spread": 512, "runs": 3},
        "tests/test_io.py::test_scale": {"complexity": "O(1)"}
      }
    }

Each figure is the median over the recording run's repeats with its spread (largest less
smallest): the spread is the noise a later change is judged against. Figures are bytes. No
timestamps or machine names are written, so re-recording an unchanged suite changes nothing.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from membound._errors import MemboundError
from membound._files import Unreadable, read_regular, write_atomic

__all__ = [
    "FORMAT",
    "Baseline",
    "BaselineCheck",
    "BaselineEntry",
    "BaselineReport",
    "Figure",
    "PeakChange",
    "VerdictChange",
    "python_version",
]

#: The file format's version (the header key ``membound_baseline``).
FORMAT = 1
#: Largest baseline file read (a suite of 100,000 tests takes about 10 MB).
_READ_LIMIT = 64 * 2**20
#: The figures an entry may hold, and the verdicts.
PEAKS = ("heap_peak", "rss_peak")
VERDICTS = ("complexity", "leak")


def python_version() -> str:
    """``major.minor`` of this interpreter: heap figures differ between versions."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class Figure:
    """One figure over repeated runs."""

    median: int
    """Median over the runs, bytes."""
    spread: int
    """Largest less smallest value over the runs, bytes (0 for one run)."""

    @classmethod
    def of(cls, values: Iterable[int]) -> Figure:
        """The median and spread of ``values`` (which must not be empty)."""
        vals = sorted(int(v) for v in values)
        if not vals:
            raise ValueError("a figure needs at least one value")
        return cls(int(statistics.median(vals)), vals[-1] - vals[0])


@dataclass(frozen=True)
class BaselineEntry:
    """What was recorded for one test, command or scenario."""

    heap_peak: Figure | None = None
    """Python heap peak over the heap at the start of a run (tracemalloc)."""
    rss_peak: Figure | None = None
    """Peak RSS (over the RSS at the start, where the run had one)."""
    runs: int = 0
    """How many runs the figures summarise (0 when there are none)."""
    complexity: str | None = None
    """The complexity verdict, for a test marked ``memory_complexity``."""
    leak: str | None = None
    """The leak verdict, for a test marked ``no_leak``."""

    def peak(self, metric: str) -> Figure | None:
        """The figure named ``metric`` (``heap_peak`` or ``rss_peak``)."""
        value: Figure | None = getattr(self, metric)
        return value

    def to_dict(self) -> dict[str, Any]:
        """Plain data with only the figures that were recorded."""
        out: dict[str, Any] = {}
        for metric in PEAKS:
            fig = self.peak(metric)
            if fig is not None:
                out[metric] = fig.median
                out[metric.replace("_peak", "_spread")] = fig.spread
        if self.runs:
            out["runs"] = self.runs
        if self.complexity is not None:
            out["complexity"] = self.complexity
        if self.leak is not None:
            out["leak"] = self.leak
        return out

    @classmethod
    def from_dict(cls, data: object) -> BaselineEntry:
        """The entry ``data`` describes; ``ValueError`` names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"an entry must be an object, not {type(data).__name__}")
        known = {*PEAKS, *(p.replace("_peak", "_spread") for p in PEAKS), "runs", *VERDICTS}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r}")
        figures: dict[str, Figure | None] = {}
        for metric in PEAKS:
            spread_key = metric.replace("_peak", "_spread")
            if metric in data:
                figures[metric] = Figure(
                    _bytes(data[metric], metric), _bytes(data.get(spread_key, 0), spread_key)
                )
            elif spread_key in data:
                raise ValueError(f"{spread_key!r} without {metric!r}")
        verdicts: dict[str, str | None] = {}
        for key in VERDICTS:
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key!r} must be a string, not {value!r}")
            verdicts[key] = value
        return cls(
            heap_peak=figures.get("heap_peak"),
            rss_peak=figures.get("rss_peak"),
            runs=_bytes(data.get("runs", 0), "runs"),
            complexity=verdicts["complexity"],
            leak=verdicts["leak"],
        )


def _bytes(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key!r} must be a whole number >= 0, not {value!r}")
    return value


@dataclass(frozen=True)
class Baseline:
    """Recorded entries by name, and the Python they were recorded on."""

    entries: Mapping[str, BaselineEntry]
    """Entry per test node id, command or scenario name."""
    python: str = field(default_factory=python_version)
    """``major.minor`` of the interpreter that recorded them."""

    def dumps(self) -> str:
        """The file's text: the header, then one line per entry, sorted by name."""
        lines = [
            "{",
            f'  "membound_baseline": {FORMAT},',
            f'  "python": {json.dumps(self.python)},',
        ]
        names = sorted(self.entries)
        if not names:
            lines.append('  "entries": {}')
        else:
            lines.append('  "entries": {')
            for i, name in enumerate(names):
                entry = json.dumps(self.entries[name].to_dict(), sort_keys=True)
                comma = "," if i < len(names) - 1 else ""
                lines.append(f"    {json.dumps(name)}: {entry}{comma}")
            lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    @classmethod
    def loads(cls, text: str, source: str = "baseline") -> Baseline:
        """The baseline in ``text``; :class:`MemboundError` names ``source`` and the fault."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MemboundError(f"{source}: not a membound baseline (bad JSON: {exc})") from None
        if not isinstance(data, dict) or data.get("membound_baseline") is None:
            raise MemboundError(
                f"{source}: not a membound baseline (no 'membound_baseline' key); "
                "record one with --membound-baseline or --write-baseline"
            )
        if data["membound_baseline"] != FORMAT:
            raise MemboundError(
                f"{source}: baseline format {data['membound_baseline']!r} is not {FORMAT}, "
                "the one this membound reads; record it again"
            )
        raw = data.get("entries")
        python = data.get("python", "")
        if not isinstance(raw, dict) or not isinstance(python, str):
            raise MemboundError(f"{source}: 'entries' must be an object and 'python' a string")
        entries: dict[str, BaselineEntry] = {}
        for name, value in raw.items():
            try:
                entries[name] = BaselineEntry.from_dict(value)
            except ValueError as exc:
                raise MemboundError(f"{source}: entry {name!r}: {exc}") from None
        return cls(entries, python)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Baseline:
        """The baseline in file ``path``; a missing or unreadable file is a MemboundError."""
        try:
            data = read_regular(path, _READ_LIMIT, what="baseline")
        except (OSError, Unreadable) as exc:
            raise MemboundError(f"cannot read the baseline {os.fspath(path)}: {exc}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MemboundError(f"{os.fspath(path)}: not a membound baseline (not UTF-8)") from None
        return cls.loads(text, os.fspath(path))

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the file whole or not at all."""
        try:
            write_atomic(path, self.dumps().encode("utf-8"))
        except OSError as exc:
            raise MemboundError(f"cannot write the baseline {os.fspath(path)}: {exc}") from None


@dataclass(frozen=True)
class PeakChange:
    """One figure now against its baseline."""

    metric: str
    """``heap_peak`` or ``rss_peak``."""
    before: Figure
    """The recorded figure."""
    now: Figure
    """This run's figure."""
    allowed: int
    """How far the median may rise (or fall) before it counts as a change, bytes."""
    noise: int
    """The larger spread of the two runs, bytes (part of ``allowed``)."""

    @property
    def change(self) -> int:
        """Median now less median before, bytes."""
        return self.now.median - self.before.median

    @property
    def direction(self) -> Literal["rose", "fell", "same"]:
        """Whether the change is beyond ``allowed``, and which way."""
        if self.change > self.allowed:
            return "rose"
        if -self.change > self.allowed:
            return "fell"
        return "same"


@dataclass(frozen=True)
class VerdictChange:
    """A verdict now against its baseline."""

    kind: str
    """``complexity`` or ``leak``."""
    before: str
    """The recorded verdict."""
    now: str
    """This run's verdict."""
    worse: bool
    """True when ``now`` ranks worse than ``before`` (O(1) → O(n), no leak → leak)."""


@dataclass(frozen=True)
class BaselineCheck:
    """A test, command or scenario checked against its baseline entry."""

    name: str
    """Test node id, command or scenario name."""
    status: Literal["regressed", "improved", "same", "new"]
    """``new`` when the baseline has no entry of that name."""
    peaks: tuple[PeakChange, ...]
    """Each figure present in both the baseline and this run."""
    verdicts: tuple[VerdictChange, ...]
    """Each verdict present in both."""
    explanation: str
    """One line per change, in words, with the figures behind it."""

    @property
    def regressed(self) -> bool:
        """True when a figure rose beyond its noise or a verdict got worse."""
        return self.status == "regressed"


@dataclass(frozen=True)
class BaselineReport:
    """A whole run checked against (or recorded to) a baseline file: counts, and the checks
    worth reading. Only regressions are kept whole (each is a failure to read); improvements
    are kept up to a few, with their count; every name that could not run again is kept."""

    compared_with: str | None
    """The baseline file this run was checked against (None when it was only recorded)."""
    recorded_to: str | None
    """The file this run's figures were written to (None when not recorded, or not written)."""
    recorded: int
    """Entries measured in this run."""
    regressed: tuple[BaselineCheck, ...]
    """Every check whose figure rose beyond its noise or whose verdict got worse."""
    improved: tuple[BaselineCheck, ...]
    """The largest improvements (a few)."""
    improved_count: int
    """How many improved."""
    same: int
    """How many stayed within their noise."""
    new: int
    """Names measured now that the baseline does not have."""
    not_run: int
    """Baseline entries with no run this time (removed, renamed or deselected): ignored."""
    not_recorded: tuple[str, ...]
    """Every name that raised when run again, with why: recorded from one run, or not."""
    not_recorded_count: int
    """How many raised when run again."""
    notes: tuple[str, ...] = ()
    """What the reader must know about the figures (another Python, an interrupted run)."""
    gate_failed: str | None = None
    """Why a compare gated too few of the tests it measured (their ids are not in the
    baseline): the run fails though no test did."""
