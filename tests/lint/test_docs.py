"""Each rule has a page in docs/rules; its first example triggers the rule on the lines it marks,
its fix does not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from membound.lint import RULES, lint_source
from membound.lint.findings import Rule

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


@pytest.mark.parametrize("rule", RULES, ids=[r.code for r in RULES])
def test_rule_page(rule: Rule) -> None:
    page = (ROOT / rule.url).read_text(encoding="utf-8")
    assert page.splitlines()[0] == f"# {rule.code} {rule.name}"
    bad, good = BLOCK.findall(page)[:2]

    # Every variant of the rule (the page shows what it can find; "Default set" says where).
    def codes(source: str) -> set[str]:
        found = lint_source(source, "page.py", select=[rule.code], preview=[rule.code])
        return {f.code for f in found}

    assert rule.code in codes(bad)
    # The example marks the lines the rule reports (`# MB101`): those, and no others.
    found = lint_source(bad, "page.py", select=[rule.code], preview=[rule.code])
    marked = [k for k, line in enumerate(bad.splitlines(), 1) if f"# {rule.code}" in line]
    assert marked == sorted({f.row for f in found})
    # The fix is shown without repeating the imports; lint it with them.
    imports = "".join(
        line + "\n" for line in bad.splitlines() if line.startswith(("import", "from"))
    )
    assert rule.code not in codes(imports + good)
    if rule.preview:
        assert "preview" in page.lower(), rule.code


def test_pre_commit_hook_runs_the_cli() -> None:
    text = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "id: membound-lint" in text
    assert "entry: membound lint" in text
    assert "types: [python]" in text
