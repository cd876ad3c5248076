"""lint: a static checker for memory anti-patterns. Of the rest of membound it imports only the
base every part may use (``_units`` to parse ``max-file-size``, ``_errors``), never the rest.

The command-line interface (``membound lint``) is the product; these names are for the CLI, the
tests and anyone embedding the checker.
"""

from __future__ import annotations

from membound.lint.config import ConfigError, LintConfig, find_config, load_config
from membound.lint.engine import lint_file, lint_paths, lint_source
from membound.lint.model import FileError, Finding, LintResult, Rule
from membound.lint.rules import RULES, RULES_BY_CODE

__all__ = [
    "RULES",
    "RULES_BY_CODE",
    "ConfigError",
    "FileError",
    "Finding",
    "LintConfig",
    "LintResult",
    "Rule",
    "find_config",
    "lint_file",
    "lint_paths",
    "lint_source",
    "load_config",
]
