"""The plain data the linter produces: rules, findings, per-file errors and a run's result."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from membound.lint.context import ModuleContext

__all__ = ["DOCS_BASE", "Edit", "FileError", "Finding", "Fix", "LintResult", "Rule"]

#: Where the rule pages live, relative to the root of the membound repository.
#: It is relative on purpose: the project has no published documentation host yet, and a made-up
#: absolute address would send users to a page that does not exist.
DOCS_BASE = "docs/rules/"


@dataclass(frozen=True, order=True)
class Edit:
    """Replace the text between two positions (1-based rows, 1-based character columns)."""

    row: int
    """Line of the first character replaced."""
    column: int
    """Column of the first character replaced."""
    end_row: int
    """Line of the end of the replaced text."""
    end_column: int
    """Column just past the last character replaced."""
    content: str
    """The new text ("" deletes)."""


@dataclass(frozen=True)
class Fix:
    """A rewrite that removes a finding, and whether it keeps the program's behaviour.

    ``safe`` fixes are mechanical and behaviour-preserving (``--fix`` applies them); ``unsafe`` ones
    may change behaviour in corner cases the linter cannot see (``--unsafe-fixes``), as in ruff.
    """

    message: str
    """What the fix does, in a few words."""
    edits: tuple[Edit, ...]
    """Non-overlapping edits, in source order."""
    applicability: str = "safe"
    """``"safe"`` or ``"unsafe"``."""


@dataclass(frozen=True, order=True)
class Finding:
    """One anti-pattern found at one place in one file.

    Ordered by file, then position, then code, so output is stable across runs.
    """

    filename: str
    """The path as given on the command line (or found under a given directory)."""
    row: int
    """1-based line of the start of the flagged expression."""
    column: int
    """1-based column (in characters) of the start of the flagged expression."""
    code: str
    """The rule code, e.g. ``"MB101"``."""
    message: str
    """What is wrong and what to do instead."""
    end_row: int
    """1-based line of the end of the flagged expression."""
    end_column: int
    """1-based column just past the end of the flagged expression."""
    fix: Fix | None = field(default=None, compare=False)
    """A rewrite that removes the finding, when one is known to be valid for this code."""
    kind: str = field(default="finding", compare=False)
    """``"finding"``, or ``"hint"``: a load of a whole table that nothing shows to be big (no
    size for its table, no ``large-models`` entry, nothing in the code): listed apart, never
    counted as a finding and never failing the run (``--hints`` shows them)."""

    @property
    def url(self) -> str:
        """The rule's documentation page (relative to the repository root)."""
        return f"{DOCS_BASE}{self.code}.md"

    @property
    def hint(self) -> bool:
        """Whether this is a hint, not a finding."""
        return self.kind == "hint"


@dataclass(frozen=True)
class FileError:
    """A file the linter could not check (``MB000``): unreadable, binary, not UTF-8, unparsable."""

    filename: str
    """The path as given or found."""
    reason: str
    """Why it could not be checked, in one line."""
    row: int = 1
    """Line the problem was found on, when known (syntax errors); 1 otherwise."""
    column: int = 1
    """1-based column of the problem, when known; 1 otherwise."""

    code: ClassVar[str] = "MB000"
    """The code every file error is reported under (not a rule: it cannot be selected)."""

    @property
    def description(self) -> str:
        """What went wrong without the code, like a finding's ``message``."""
        return f"file could not be parsed: {self.reason}"

    @property
    def message(self) -> str:
        """The one-line ``MB000`` message shown to users."""
        return f"{self.code} {self.description}"


@dataclass(frozen=True)
class Rule:
    """A lint rule: its contract (code and name), its documentation and its check."""

    code: str
    """Stable code, ``MB`` + three digits; the first digit is the family."""
    name: str
    """Stable kebab-case name, e.g. ``"unbounded-queryset"``."""
    summary: str
    """One sentence: what the rule finds."""
    why: str
    """Why it makes memory grow with the size of the data."""
    fix: str
    """What to do instead."""
    check: Callable[[ModuleContext], Iterable[Finding]] = field(repr=False, compare=False)
    """Yields the findings of this rule in one module."""
    preview: bool = False
    """A preview rule is not in the default set: it runs only when selected by its full code or
    with ``preview = true`` (its precision on real code is below the default set's target)."""

    @property
    def url(self) -> str:
        """The rule's documentation page (relative to the repository root)."""
        return f"{DOCS_BASE}{self.code}.md"


@dataclass(frozen=True)
class LintResult:
    """The outcome of linting a set of paths."""

    findings: tuple[Finding, ...]
    """Every finding left after ``noqa`` and ignores, sorted."""
    errors: tuple[FileError, ...]
    """Files that could not be checked (``MB000``)."""
    files_checked: int
    """Files that were parsed and checked."""
    lines_checked: int
    """Lines in the files that were checked (for throughput figures)."""
    hints: tuple[Finding, ...] = ()
    """Whole-table loads not judged (no evidence that their tables are big), sorted: never
    findings, never in the exit code; empty when they are not to be shown (``--hints``)."""
    hints_not_shown: int = 0
    """Hints counted but left out of :attr:`hints` (the summary line still counts them)."""
    notes: tuple[str, ...] = ()
    """Warnings about the run's settings, one line each (a sizes file's names that match
    nothing in the code linted)."""

    @property
    def hint_count(self) -> int:
        """Every hint of the run, shown or not."""
        return len(self.hints) + self.hints_not_shown

    @property
    def all_failed(self) -> bool:
        """True when there was input and not a single file could be checked."""
        return self.files_checked == 0 and len(self.errors) > 0
