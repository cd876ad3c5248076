"""Fixtures shared by the lint tests."""

from __future__ import annotations

import pytest

from membound.lint import config, engine


@pytest.fixture
def every_rule_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the preview rules as if they were in the default set.

    The engine, CLI, configuration and output tests check mechanics (noqa, columns, discovery,
    exit codes, formats) on short snippets that MB202 and MB301 flag without any context; which
    rules are in the default set is tested in test_adoption.py and tests/lint/realworld.
    """
    monkeypatch.setattr(config, "preview_codes", lambda codes: frozenset())
    monkeypatch.setattr(engine, "DEFAULT_CODES", engine.ALL_CODES)
