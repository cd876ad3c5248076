"""The house has one-way layers (DESIGN §2): every import in ``src/membound`` points down or
sideways within its part. Imports inside functions and under ``TYPE_CHECKING`` count too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "membound"

#: Rank of each layered part: a part may import parts of a lower rank.
RANK = {
    "results": 1,
    "measure": 2,
    "judge": 3,
    "report": 4,
    "demo": 5,
    "guard": 5,
    "cli": 6,
    "notebook": 6,
}
#: Importable by every part.
BASE = {"_units", "_errors", "_version", "_files", "_lazy"}
#: Parts that stand alone, and who may import them.
STANDALONE = {"bound": {"demo", "guard", "cli"}, "lint": {"cli"}}
#: Modules exempt from the rule: the package's public face and its entry point.
EXEMPT = {"__init__", "__main__"}
#: The documented delegates up into ``report``: functions of these names on result types.
DELEGATES = {"to_markdown", "_repr_html_"}


def part_of(module: str) -> str:
    """``membound.measure.track`` → ``measure``; ``membound`` → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def allowed(importer: str, imported: str) -> bool:
    """Whether part ``importer`` may import part ``imported``."""
    if imported in BASE or imported == importer:
        return True
    if importer in BASE:
        return False  # the base imports only itself
    if imported in STANDALONE:
        return importer in STANDALONE[imported]
    if importer in STANDALONE:
        return False  # bound and lint import only the base and themselves
    if imported not in RANK:  # the package root (everything) is for nobody inside it
        return False
    return RANK[imported] < RANK[importer]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, imported module, enclosing function)`` for each membound import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
                if child.module == "membound":  # from membound import x: x may be a part
                    names = [f"membound.{a.name}" for a in child.names]
                found.extend((child.lineno, n, inner) for n in names if n.startswith("membound"))
            elif isinstance(child, ast.ImportFrom) and child.level > 0:
                found.append((child.lineno, "<relative>", inner))
            elif isinstance(child, ast.Import):
                found.extend(
                    (child.lineno, a.name, inner)
                    for a in child.names
                    if a.name == "membound" or a.name.startswith("membound.")
                )
            visit(child, inner)

    visit(tree, None)
    return found


def back_arrows() -> list[str]:
    """Every import in the source tree that runs against the layers."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        importer = part_of(module)
        if importer in EXEMPT:
            continue
        for line, imported, function in imports(path):
            where = f"{path.relative_to(SRC.parent)}:{line}"
            if imported == "<relative>":
                bad.append(f"{where}: relative import (write membound.… in full)")
                continue
            target = part_of(imported)
            if importer == "results" and target == "report" and function in DELEGATES:
                continue
            if not allowed(importer, target):
                bad.append(f"{where}: {importer} imports {imported}")
    return bad


def test_every_import_points_down_the_layers() -> None:
    assert [] == back_arrows()


def test_every_module_belongs_to_a_known_part() -> None:
    parts = {part_of(module_name(p)) for p in SRC.rglob("*.py")}
    assert parts <= set(RANK) | BASE | set(STANDALONE) | EXEMPT


@pytest.mark.parametrize(
    ("importer", "imported", "expected"),
    [
        ("judge", "measure", True),
        ("measure", "judge", False),
        ("results", "measure", False),
        ("report", "judge", True),
        ("judge", "report", False),
        ("bound", "measure", False),
        ("bound", "_errors", True),
        ("measure", "bound", False),
        ("lint", "report", False),
        ("cli", "lint", True),
        ("_errors", "results", False),
        ("guard", "cli", False),
        ("cli", "__init__", False),
    ],
)
def test_the_rule_itself(importer: str, imported: str, expected: bool) -> None:
    assert expected == allowed(importer, imported)


def test_a_back_import_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deliberate back-arrow in a copy of one module is reported with its line."""
    copy = tmp_path / "membound"
    (copy / "measure").mkdir(parents=True)
    (copy / "measure" / "probe_back.py").write_text(
        "def f():\n    from membound.judge.leaks import find_leaks\n    return find_leaks\n"
    )
    (copy / "results").mkdir()
    (copy / "results" / "ok.py").write_text(
        "class R:\n    def to_markdown(self):\n        from membound.report.markdown import x\n"
    )
    monkeypatch.setitem(globals(), "SRC", copy)
    assert ["membound/measure/probe_back.py:2: measure imports membound.judge.leaks"] == (
        back_arrows()
    )


def test_readme_layout_matches_the_tree() -> None:
    """The docs' Layout section names every part, and every module it names exists."""
    readme = (SRC.parents[1] / "docs" / "layout.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    parts = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert set() == {part for part in parts if f"`{part}/" not in layout}
    named = set(re.findall(r"`(\w+\.py)`", layout)) - {"test_layers.py"}
    existing = {p.name for p in SRC.rglob("*.py")}
    assert set() == named - existing
    for package in re.findall(r"`(\w+/\w+)/`", layout):
        if package.split("/")[0] in parts:
            assert (SRC / package / "__init__.py").exists(), package
