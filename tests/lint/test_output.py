"""Output formats: JSON with ruff's field names, SARIF valid against the official schema,
GitHub annotations, text and statistics."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from membound.lint import RULES, lint_paths
from membound.lint.findings import LintResult
from membound.lint.output import (
    render_github,
    render_json,
    render_sarif,
    render_statistics,
    render_text,
)

pytestmark = pytest.mark.usefixtures("every_rule_by_default")

SCHEMA = json.loads((Path(__file__).parent / "sarif-2.1.0-rtm.5.json").read_text())
SOURCE = (
    "import functools\n@functools.cache\ndef f(n):\n    return list(range(n)), list(range(n))\n"
)


def _result(tmp_path: Path, *, bad: bool = False) -> LintResult:
    (tmp_path / "job.py").write_text(SOURCE)
    if bad:
        (tmp_path / "broken.py").write_text("def (:\n")
    return lint_paths([str(tmp_path)])


def test_json_uses_ruff_field_names(tmp_path: Path) -> None:
    data = json.loads(render_json(_result(tmp_path)))
    assert [d["code"] for d in data] == ["MB301", "MB202", "MB202"]
    first = data[0]
    assert {
        "code": "MB301",
        "name": "unbounded-cache",
        "filename": str(tmp_path / "job.py"),
        "location": {"row": 2, "column": 2},
        "end_location": {"row": 2, "column": 17},
        "noqa_row": 2,
        "fix": None,
        "url": "docs/rules/MB301.md",
        "kind": "finding",
    } == {k: v for k, v in first.items() if k != "message"}
    assert "lru_cache(maxsize=N)" in first["message"]


def test_sarif_is_valid_against_the_official_schema(tmp_path: Path) -> None:
    log = json.loads(render_sarif(_result(tmp_path, bad=True), version="0.1.0"))
    jsonschema.validate(log, SCHEMA)
    run = log["runs"][0]
    assert [r.code for r in RULES] == [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert [r["ruleId"] for r in run["results"]] == ["MB301", "MB202", "MB202"]
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 2, "endLine": 2, "endColumn": 17}
    for res in run["results"]:
        assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert note["message"]["text"].startswith("MB000 file could not be parsed")


def test_sarif_schema_check_can_fail() -> None:
    """The schema really constrains: a log without ``runs`` is rejected."""
    try:
        jsonschema.validate({"version": "2.1.0"}, SCHEMA)
    except jsonschema.ValidationError:
        return
    raise AssertionError("an invalid SARIF log passed validation")


def test_sarif_uri_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("xs = list(range(n))\n")
    for given in ("pkg", str(tmp_path / "pkg"), "./pkg"):
        log = json.loads(render_sarif(lint_paths([given])))
        loc = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": "pkg/m.py", "uriBaseId": "%SRCROOT%"}


def test_github_annotations(tmp_path: Path) -> None:
    lines = render_github(_result(tmp_path, bad=True)).splitlines()
    path = str(tmp_path / "job.py")
    assert lines[0].startswith(
        f"::warning file={path},line=2,col=2,endLine=2,endColumn=17,title=MB301::MB301 "
    )
    assert lines[-1].startswith(f"::error file={tmp_path / 'broken.py'},line=1,col=5,title=MB000::")
    assert len(lines) == 4


def test_github_escapes_workflow_command_characters() -> None:
    from membound.lint.findings import Finding

    finding = Finding("a,b:c.py", 1, 1, "MB202", "50% done\nnext", 1, 2)
    result = LintResult((finding,), (), 1, 1)
    assert render_github(result) == (
        "::warning file=a%2Cb%3Ac.py,line=1,col=1,endLine=1,endColumn=2,title=MB202::"
        "MB202 50%25 done%0Anext\n"
    )


def test_text_and_statistics(tmp_path: Path) -> None:
    result = _result(tmp_path)
    text = render_text(result).splitlines()
    assert text[0].startswith(f"{tmp_path / 'job.py'}:2:2: MB301 ")
    assert text[-1] == "Found 3 findings in 1 file."
    assert (
        render_statistics(result)
    ) == "    2\tMB202\tmaterialized-range\n    1\tMB301\tunbounded-cache\n"


def test_text_when_clean(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    assert render_text(lint_paths([str(tmp_path)])) == "All checks passed!\n"


def test_sarif_file_outside_the_working_directory_is_an_absolute_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "here").mkdir()
    target = tmp_path / "elsewhere" / "m.py"
    target.write_text("xs = list(range(n))\n")
    monkeypatch.chdir(tmp_path / "here")
    log = json.loads(render_sarif(lint_paths([str(target)])))
    jsonschema.validate(log, SCHEMA)
    loc = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": target.as_uri()}
