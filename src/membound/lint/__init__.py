"""lint: a static checker for memory anti-patterns. Of the rest of membound it imports only the
base every part may use (``_units`` to parse ``max-file-size``, ``_errors``), never the rest.

Modules: ``engine`` (runs the rules over files), ``reading`` (reads a file safely), ``context``
(what the rules know about one module), ``expression_chains`` (an expression as its links) and
``syntax_walk`` (a node's children, for the walks of every file),
``rules`` (every rule, by family), ``findings`` (rules, findings, a run's result), ``config``
(``[tool.membound.lint]``), ``output`` (text, JSON, SARIF, GitHub), ``fixing`` and ``rewrite``
(``--fix``, ``--diff``, ``--add-noqa``); table sizes as evidence: ``sizes`` (where they come
from), ``db_sizes`` (a database's statistics), ``tables`` (which table a query reads),
``model_shape`` (what a model's definition bounds), ``installed_models`` (models of installed
distributions the code imports) and ``evidence`` (small, big or unknown);
``call_graph`` (the functions that run as batch jobs, through calls); ``newer_python`` lints
files written for a newer Python in that Python (its child is ``_newer_child``).

The command-line interface (``membound lint``) is the product; these names are for the CLI, the
tests and anyone embedding the checker.
"""

from __future__ import annotations

from membound.lint.config import ConfigError, LintConfig, find_config, load_config
from membound.lint.engine import lint_file, lint_paths, lint_source
from membound.lint.findings import FileError, Finding, LintResult, Rule
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
