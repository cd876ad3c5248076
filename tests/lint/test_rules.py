"""Every rule on its positive snippets (findings exactly on the ``# HIT`` lines) and negatives.

The snippets are linted as a module of a management command, where the loading rules report by
default (test_adoption.py checks which contexts the default set covers). Positives run with every
preview variant on: they test what each rule can see. Negatives run with the default variants:
they test the bounds the default set accepts.
"""

from __future__ import annotations

import pytest

from membound.lint import RULES, lint_source
from membound.lint.engine import ALL_CODES
from tests.lint._cases import NEGATIVE, POSITIVE

BATCH_MODULE = "app/management/commands/snippet.py"


def _hit_rows(source: str) -> set[int]:
    return {i for i, line in enumerate(source.splitlines(), 1) if "# HIT" in line}


def _rows(source: str, code: str, *, preview: bool) -> set[int]:
    found = lint_source(
        source, BATCH_MODULE, select=ALL_CODES, preview=ALL_CODES if preview else ()
    )
    return {f.row for f in found if f.code == code}


POS = [(code, i, src) for code, cases in POSITIVE.items() for i, src in enumerate(cases)]
NEG = [(code, i, src) for code, cases in NEGATIVE.items() for i, src in enumerate(cases)]


@pytest.mark.parametrize(("code", "index", "source"), POS, ids=[f"{c}-{i}" for c, i, _ in POS])
def test_positive(code: str, index: int, source: str) -> None:
    assert _hit_rows(source) == _rows(source, code, preview=True)


@pytest.mark.parametrize(("code", "index", "source"), NEG, ids=[f"{c}-{i}" for c, i, _ in NEG])
def test_negative(code: str, index: int, source: str) -> None:
    assert set() == _rows(source, code, preview=False)


def test_every_rule_has_three_positives_and_three_negatives() -> None:
    for rule in RULES:
        assert len(POSITIVE[rule.code]) >= 3, rule.code
        assert len(NEGATIVE[rule.code]) >= 3, rule.code


def test_recall_on_the_labelled_cases() -> None:
    # Issue 14: recall on the project's labelled cases of at least 95 %. Every variant: every
    # marked line. Default variants, in a batch job (where the loading rules report by default):
    # all but the accumulators over files, a preview variant of MB201.
    marked = every = default = 0
    for code, source in [(c, s) for c, cases in POSITIVE.items() for s in cases]:
        rows = _hit_rows(source)
        marked += len(rows)
        every += len(rows & _rows(source, code, preview=True))
        default += len(rows & _rows(source, code, preview=False))
    assert marked >= 60
    assert every == marked
    assert default / marked >= 0.95, (default, marked)
