"""Every lint rule by family: MB1 ``loading``, MB2 ``accumulation``, MB3 ``caching``, MB4
``per_call``, MB5 ``columns``; the private modules hold what several families share (which
model, owner, query, size, statement text or streaming source a chain reads, and whether a
whole-table load is a finding, a hint or nothing: ``_loads``).

Codes and names are a contract: a rule may be removed only with a major release, never renumbered.
"""

from __future__ import annotations

from membound.lint.findings import Rule
from membound.lint.rules import accumulation, caching, columns, loading, per_call

__all__ = ["RULES", "RULES_BY_CODE"]

RULES: tuple[Rule, ...] = (
    *loading.RULES,
    *accumulation.RULES,
    *caching.RULES,
    *per_call.RULES,
    *columns.RULES,
)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}
