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
BASE = {
    "_units",
    "_errors",
    "_version",
    "_files",
    "_lazy",
    "_libc",
    "_proc",
    "_data_cap",
    "_startup",
}
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


#: A line of docs/layout.md's tree: an entry (a folder ending in ``/`` or a file), indented two
#: spaces per level, then its description after two spaces or more.
TREE_LINE = re.compile(r"^(?P<indent> *)(?P<entry>\S+)(?P<gap> {2,})(?P<words>\S.*)$")


def layout_tree(page: str) -> tuple[set[Path], set[Path], list[str]]:
    """The folders and files that docs/layout.md's tree lists, as paths under ``src``, and what
    is wrong with the tree as written: a line that is not an entry with a description, an entry
    not one level under its folder, a description out of the common column, or one holding an
    aside or an elision."""
    block = page.split("## Layout", 1)[1].split("```", 2)[1].strip("\n")
    lines = block.splitlines()
    root = SRC.parents[1] / lines[0].strip()
    folders: set[Path] = {root}
    files: set[Path] = set()
    wrong: list[str] = []
    stack: list[tuple[int, Path]] = [(0, root)]
    columns: set[int] = set()
    for line in lines[1:]:
        match = TREE_LINE.match(line)
        if match is None:
            wrong.append(f"not an entry and its description: {line!r}")
            continue
        depth = len(match["indent"])
        entry, words = match["entry"], match["words"]
        columns.add(depth + len(entry) + len(match["gap"]))
        if " (" in words or "…" in words or "..." in words:
            wrong.append(f"an aside or an elision: {line.strip()!r}")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if not stack or stack[-1][0] + 2 != depth:
            wrong.append(f"not one level under a folder: {line.strip()!r}")
            continue
        path = stack[-1][1] / entry.rstrip("/")
        if entry.endswith("/"):
            folders.add(path)
            stack.append((depth, path))
        else:
            files.add(path)
    if len(columns) > 1:
        wrong.append(f"descriptions start in {len(columns)} columns: {sorted(columns)}")
    return folders, files, wrong


def test_the_layout_page_is_the_tree() -> None:
    """docs/layout.md's tree lists every folder and every module of the source where it is, each
    with a one-line description in one column, and lists nothing that does not exist."""
    page = (SRC.parents[1] / "docs" / "layout.md").read_text(encoding="utf-8")
    folders, files, wrong = layout_tree(page)
    modules = {p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts}
    assert [] == wrong
    assert set() == {p.parent for p in modules} - folders, "folders missing from docs/layout.md"
    assert set() == {f for f in folders if not f.is_dir()}, "folders that do not exist"
    assert set() == modules - files, "modules missing from docs/layout.md"
    assert set() == {f for f in files if not f.is_file()}, "files that do not exist"


def test_a_wrong_layout_tree_is_caught() -> None:
    page = (
        "## Layout\n\n```\nsrc/membound/\n"
        "  __init__.py      the API\n"
        "  measure/         measuring\n"
        "    probes.py      one reading (of one figure)\n"
        "      deep.py      too deep\n"
        "    sizeof.py       out of the column\n"
        "    track.py\n"
        "```\n"
    )
    folders, files, wrong = layout_tree(page)
    assert {SRC, SRC / "measure"} == folders
    assert {SRC / "__init__.py", SRC / "measure" / "probes.py", SRC / "measure" / "sizeof.py"} == (
        files
    )
    assert [
        "an aside or an elision: 'probes.py      one reading (of one figure)'",
        "not one level under a folder: 'deep.py      too deep'",
        "not an entry and its description: '    track.py'",
        "descriptions start in 2 columns: [19, 20]",
    ] == wrong


# --- cycles and private names ---------------------------------------------------------------


def _is_module(dotted: str) -> bool:
    path = SRC.parent / Path(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _type_checking(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


#: Calls whose strings name modules imported later: a package's map of names imported on first
#: use (``membound/_lazy.py``), and ``importlib.import_module``.
LAZY = {"on_first_use", "import_module"}


def _scope(module: str) -> tuple[dict[str, ast.expr], dict[str, str]]:
    """What ``module`` binds at its top level: names to values (``NAME = value``), and names it
    took from other membound modules (``from membound.x import NAME``) to those modules."""
    path = SRC.parent / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    values: dict[str, ast.expr] = {}
    taken: dict[str, str] = {}
    if not path.exists():
        return values, taken
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            values.update((t.id, node.value) for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and node.value and isinstance(node.target, ast.Name):
            values[node.target.id] = node.value
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("membound"):
            taken.update((a.asname or a.name, node.module or "") for a in node.names)
    return values, taken


def _named_modules(node: ast.AST, module: str, seen: set[tuple[str, str]]) -> set[str]:
    """The ``membound.…`` strings in ``node`` of ``module`` (``module`` or ``module:name``), and
    in the values of the top-level names it uses, in ``module`` or the module it took them from
    (the root's map is built from ``membound._lazy.DEFERRED``)."""
    found: set[str] = set()
    values, taken = _scope(module)
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            if child.value.startswith("membound."):
                found.add(child.value.rstrip(".:"))  # an f-string's start names a package
        elif isinstance(child, ast.Name) and (module, child.id) not in seen:
            seen.add((module, child.id))
            home = module if child.id in values else taken.get(child.id, module)
            value = values.get(child.id) if home == module else _scope(home)[0].get(child.id)
            if value is not None:
                found |= _named_modules(value, home, seen)
    return found


def module_imports(path: Path) -> list[tuple[int, str, str | None, str | None]]:
    """``(line, module, name, enclosing function)`` for each membound import in ``path`` that runs
    (``TYPE_CHECKING`` blocks are left out): ``name`` is what a ``from`` import takes from
    ``module`` when it is not a module itself, else None. The modules a lazy map or
    ``importlib.import_module`` names are imports too, where the call is."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = module_name(path)
    found: list[tuple[int, str, str | None, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child):
                for orelse in getattr(child, "orelse", []):
                    visit(orelse, function)
                continue
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module == "membound" or child.module.startswith("membound."):
                    for alias in child.names:
                        whole = f"{child.module}.{alias.name}"
                        if _is_module(whole):
                            found.append((child.lineno, whole, None, inner))
                        else:
                            found.append((child.lineno, child.module, alias.name, inner))
            elif isinstance(child, ast.Import):
                found.extend(
                    (child.lineno, a.name, None, inner)
                    for a in child.names
                    if a.name.startswith("membound.")
                )
            elif isinstance(child, ast.Call) and _called(child) in LAZY:
                arguments = ast.Tuple([*child.args, *(k.value for k in child.keywords)])
                for home in sorted(_named_modules(arguments, module, set())):
                    imported, _, name = home.partition(":")
                    if _is_module(imported):
                        found.append((child.lineno, imported, name or None, inner))
            visit(child, inner)

    visit(tree, None)
    return found


def _called(call: ast.Call) -> str:
    """The name of the function a call calls (``f(…)``, ``a.f(…)``)."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def import_graph() -> dict[str, set[str]]:
    """Module → the membound modules it imports when it runs (lazy imports too: inside functions,
    and the parts a package's ``__getattr__`` imports on first use; the results' report
    delegates left out, as the layers allow them)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        edges = graph.setdefault(module, set())
        for _, imported, _, function in module_imports(path):
            if part_of(module) == "results" and function in DELEGATES:
                continue
            if imported != module:
                edges.add(imported)
            # Importing a.b.c runs the packages a.b first: those the importer is not inside of
            # are imported by it too.
            parts = imported.split(".")
            for depth in range(2, len(parts)):
                package = ".".join(parts[:depth])
                if not (module == package or module.startswith(package + ".")):
                    edges.add(package)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        # Iterative: a deep chain must not hit the recursion limit.
        work = [(node, iter(sorted(graph.get(node, ()))))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[current])
            if low[current] == index[current]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == current:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(groups)


#: The stdlib-only child code: run by path (``measure/child_code.py`` loads it), never imported.
RUN_BY_PATH = "membound.measure.children"


def private_imports() -> list[str]:
    """Imports of another module's ``_name``, of a ``_module`` from outside the package that
    holds it (``membound._errors`` is the whole package's; ``membound.measure._x`` is
    measure's), and of the child code that only ever runs by path."""
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        module = module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for line, imported, name, _ in module_imports(path):
            where = f"{path.relative_to(SRC.parent)}:{line}"
            if imported.startswith(RUN_BY_PATH):
                bad.append(f"{where}: {module} imports {imported} (run by path only)")
                continue
            if name is not None and name.startswith("_") and not name.startswith("__"):
                bad.append(f"{where}: {module} imports {imported}.{name}")
            parts = imported.split(".")
            for depth, part in enumerate(parts):
                holder = ".".join(parts[:depth])
                if part.startswith("_") and not part.startswith("__"):
                    if not (package == holder or package.startswith(holder + ".")):
                        bad.append(f"{where}: {module} imports {imported}")
                    break
    return bad


def test_no_import_cycles() -> None:
    assert [] == cycles(import_graph())


def test_no_module_imports_another_modules_private_names() -> None:
    assert [] == private_imports()


def test_a_planted_cycle_and_private_import_are_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plant both in a small copy: each is reported, and a TYPE_CHECKING import is not."""
    copy = tmp_path / "membound"
    (copy / "guard").mkdir(parents=True)
    (copy / "measure").mkdir()
    for package in (copy, copy / "guard", copy / "measure"):
        (package / "__init__.py").write_text("")
    (copy / "guard" / "a.py").write_text("from membound.guard.b import thing\n")
    (copy / "guard" / "b.py").write_text(
        "thing = 1\ndef later():\n    from membound.guard import c\n"
    )
    (copy / "guard" / "c.py").write_text("import membound.guard.a\n")
    (copy / "guard" / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from membound.guard.e import E\n"
    )
    (copy / "guard" / "e.py").write_text("from membound.guard.d import x\n")
    (copy / "measure" / "_child.py").write_text("")
    (copy / "measure" / "m.py").write_text("from membound.measure import _child\n")
    (copy / "guard" / "f.py").write_text(
        "from membound.guard.b import _hidden\nfrom membound.measure._child import run\n"
        "import membound.measure.children.sampler_process\n"
    )
    monkeypatch.setitem(globals(), "SRC", copy)
    assert [["membound.guard.a", "membound.guard.b", "membound.guard.c"]] == cycles(import_graph())
    assert [
        "membound/guard/f.py:1: membound.guard.f imports membound.guard.b._hidden",
        "membound/guard/f.py:2: membound.guard.f imports membound.measure._child",
        "membound/guard/f.py:3: membound.guard.f imports "
        "membound.measure.children.sampler_process (run by path only)",
    ] == private_imports()


def test_a_cycle_through_a_lazy_map_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a package's ``__getattr__`` imports on first use is its import (as are the root's
    deferred names and ``importlib.import_module``): a cycle through it is reported, and its
    ``TYPE_CHECKING`` import is not one."""
    copy = tmp_path / "membound"
    (copy / "measure" / "pkg").mkdir(parents=True)
    for package in (copy / "measure", copy / "measure" / "pkg"):
        (package / "__init__.py").write_text("")
    (copy / "_lazy.py").write_text(
        '_HEAVY = ("membound.measure.heavy", "dependency")\nDEFERRED = {"x": _HEAVY}\n'
    )
    (copy / "__init__.py").write_text(
        "from membound._lazy import DEFERRED, on_first_use\n"
        "homes = {n: f'{m}:{n}' for n, (m, _) in DEFERRED.items()}\n"
        "__getattr__, __dir__ = on_first_use(__name__, homes)\n"
    )
    (copy / "measure" / "pkg" / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\nfrom membound._lazy import on_first_use\n"
        "if TYPE_CHECKING:\n    from membound.measure.pkg.part import thing\n"
        "__getattr__, __dir__ = on_first_use(\n"
        "    __name__, {'thing': 'membound.measure.pkg.part:thing'}\n)\n"
    )
    (copy / "measure" / "pkg" / "part.py").write_text("from membound.measure.track import x\n")
    (copy / "measure" / "pkg" / "words.py").write_text("")
    (copy / "measure" / "track.py").write_text("from membound.measure.pkg.words import y\n")
    (copy / "measure" / "heavy.py").write_text("")
    (copy / "measure" / "later.py").write_text(
        "import importlib\ndef f():\n    return importlib.import_module('membound.measure.heavy')\n"
    )
    monkeypatch.setitem(globals(), "SRC", copy)
    graph = import_graph()
    assert "membound.measure.heavy" in graph["membound"]
    assert {"membound.measure.heavy"} == graph["membound.measure.later"]
    assert {"membound._lazy", "membound.measure.pkg.part"} == graph["membound.measure.pkg"]
    assert [["membound.measure.pkg", "membound.measure.pkg.part", "membound.measure.track"]] == (
        cycles(graph)
    )


def families_lying_flat(root: Path) -> list[str]:
    """Folders holding three or more modules whose names share a first word (``watch_*.py``):
    such a family is a package."""
    found = []
    for folder in sorted({p.parent for p in root.rglob("*.py") if "__pycache__" not in p.parts}):
        words: dict[str, list[str]] = {}
        for module in sorted(folder.glob("*.py")):
            if module.stem.startswith("__"):
                continue
            word = module.stem.lstrip("_").split("_")[0]
            words.setdefault(word, []).append(module.name)
        found.extend(
            f"{folder.relative_to(root.parent)}: {', '.join(names)}"
            for names in words.values()
            if len(names) >= 3
        )
    return found


def test_no_family_of_modules_lies_flat() -> None:
    assert [] == families_lying_flat(SRC)


def test_a_flat_family_is_caught(tmp_path: Path) -> None:
    (tmp_path / "membound" / "cli").mkdir(parents=True)
    for name in ("watch.py", "watch_view.py", "_watch_tree.py", "scale.py", "__init__.py"):
        (tmp_path / "membound" / "cli" / name).write_text("")
    assert ["membound/cli: _watch_tree.py, watch.py, watch_view.py"] == families_lying_flat(
        tmp_path / "membound"
    )


#: Files of a process in ``/proc`` that only ``membound/_proc.py`` reads, by the end of their
#: path (``/stat`` is ``/proc/stat`` too: the boot time of a start time). The child code, which
#: runs by path in interpreters that hold no membound, has no reader of its own: it runs
#: ``_proc.py`` by its path (``measure/children/siblings.py``), so no file is exempt.
PROC_FILES = ("/statm", "/clear_refs", "/status", "/stat", "/cmdline")
#: ``/proc/PID`` itself: whether a pid is there (``_proc.pid_exists``).
PID_ENTRY = "/proc/{}"
#: Kernel files that one module reads (path under ``membound/``), named anywhere else in any
#: form (a constant picked by a condition too): the OOM kills of a cgroup.
ONE_READER = {"memory.oom_control": "measure/cgroup/memory.py"}
#: Calls that take a path: ``open``, ``os.open``, ``Path(…)`` (then ``.read_text()``…),
#: ``os.path.exists``, ``read_text(path)`` of ``measure/cgroup/memory.py``, a reader's ``read``…
PATH_CALLS = {
    "open",
    "Path",
    "PurePath",
    "read_text",
    "read_bytes",
    "read",
    "exists",
    "lexists",
    "isfile",
    "isdir",
    "access",
    "stat",
    "listdir",
    "scandir",
}


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def rendered_path(node: ast.AST) -> str:
    """A path expression as text, ``{}`` for what is computed: ``f"/proc/{pid}/stat"``,
    ``Path("/proc") / str(pid) / "stat"`` and ``os.path.join("/proc", str(pid), "stat")`` are
    all ``/proc/{}/stat``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            rendered_path(v) if isinstance(v, ast.Constant) else "{}" for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return f"{rendered_path(node.left)}/{rendered_path(node.right)}"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return rendered_path(node.left) + rendered_path(node.right)
    if isinstance(node, ast.Call) and node.args and _call_name(node) in ("join", "Path"):
        return "/".join(rendered_path(a) for a in node.args)
    return "{}"


def _proc_file_read(node: ast.Call) -> bool:
    """Whether ``node`` takes the path of one of ``PROC_FILES`` or of ``PID_ENTRY``."""
    if _call_name(node) not in PATH_CALLS:
        return False
    if node.args:
        target: ast.AST = node.args[0]
    elif isinstance(node.func, ast.Attribute):  # ``(Path("/proc") / pid / "stat").read_text()``
        target = node.func.value
    else:
        return False
    path = rendered_path(target)
    return path.startswith("/proc/") and (path == PID_ENTRY or path.endswith(PROC_FILES))


def kernel_file_readers(root: Path) -> list[str]:
    """Reads of a file of ``PROC_FILES`` (``open``, ``os.open``, ``Path(…).read_text()``,
    ``read_text(…)``, ``os.path.exists("/proc/…")``, any of ``PATH_CALLS``) outside
    ``_proc.py``, and names of a file of ``ONE_READER`` outside the module that reads it; one
    entry a line (``Path(…).read_text()`` is two calls)."""
    found: dict[str, None] = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and relative != "_proc.py" and _proc_file_read(node):
                found[f"{path.relative_to(root.parent)}:{node.lineno}"] = None
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                for name, reader in ONE_READER.items():
                    if relative != reader and (text == name or text.endswith("/" + name)):
                        found[f"{path.relative_to(root.parent)}:{node.lineno}"] = None
    return list(found)


def test_one_reader_of_each_kernel_file() -> None:
    assert [] == kernel_file_readers(SRC)


@pytest.mark.parametrize(
    "read",
    [
        'open(f"/proc/{pid}/statm").read()',
        'os.open(f"/proc/{pid}/cmdline", os.O_RDONLY)',
        'Path(f"/proc/{pid}/stat").read_text()',
        '(Path("/proc") / str(pid) / "stat").read_text()',
        'open(os.path.join("/proc", str(pid), "status"))',
        'read_text(f"/proc/{pid}/status")',
        'os.path.exists(f"/proc/{pid}")',
        'g.file("memory.events" if g.version == 2 else "memory.oom_control")',
    ],
)
def test_a_second_reader_is_caught(tmp_path: Path, read: str) -> None:
    """Each form of a read, planted in a module of its own."""
    (tmp_path / "membound").mkdir()
    (tmp_path / "membound" / "x.py").write_text(
        f"import os\nfrom pathlib import Path\ndef f(pid, g):\n    return {read}\n"
    )
    assert ["membound/x.py:4"] == kernel_file_readers(tmp_path / "membound")


def test_the_one_readers_and_words_about_the_files_are_not_caught(tmp_path: Path) -> None:
    """``_proc.py`` and the owner of a cgroup file read them; a message or a label that names
    a file reads nothing."""
    (tmp_path / "membound" / "measure" / "cgroup").mkdir(parents=True)
    (tmp_path / "membound" / "_proc.py").write_text(
        'import os\ndef f(pid):\n    return os.path.exists(f"/proc/{pid}"), open("/proc/stat")\n'
    )
    (tmp_path / "membound" / "measure" / "cgroup" / "memory.py").write_text(
        'NAME = "memory.oom_control"\n'
    )
    (tmp_path / "membound" / "x.py").write_text(
        'def f(pid):\n    """Reads ``memory.oom_control``."""\n'
        '    raise OSError(f"cannot read /proc/{pid}/status")\n'
        'def g(pid):\n    return dict(source=f"/proc/{pid}/status")\n'
    )
    assert [] == kernel_file_readers(tmp_path / "membound")


# --- packages name their parts ---------------------------------------------------------------


def unnamed_parts(root: Path) -> list[str]:
    """Each public module or subpackage that its package's ``__init__`` docstring does not
    name (``name`` or ``name.py``, as a word), and each empty ``__all__``; the package root is
    left to docs/layout.md."""
    found = []
    for init in sorted(root.rglob("__init__.py")):
        package = init.parent
        if package == root or "__pycache__" in package.parts:
            continue
        dotted = ".".join(package.relative_to(root.parent).parts)
        tree = ast.parse(init.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree) or ""
        parts = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
        parts |= {d.name for d in package.iterdir() if (d / "__init__.py").exists()}
        for part in sorted(p for p in parts if not p.startswith("_")):
            if not re.search(rf"(?<![\w.]){re.escape(part)}(\.py)?(?!\w)", doc):
                found.append(f"{dotted}: {part}")
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                value = node.value
                if isinstance(value, ast.List | ast.Tuple) and not value.elts:
                    found.append(
                        f"{dotted}: an empty __all__ (a package that exports nothing has none)"
                    )
    return found


def test_every_package_names_its_parts() -> None:
    assert [] == unnamed_parts(SRC)


def test_an_unnamed_part_and_an_empty_all_are_caught(tmp_path: Path) -> None:
    package = tmp_path / "membound" / "tool"
    (package / "inner").mkdir(parents=True)
    (tmp_path / "membound" / "__init__.py").write_text("")
    (package / "__init__.py").write_text('"""The tool: ``engine``."""\n__all__ = []\n')
    (package / "inner" / "__init__.py").write_text('"""Inner parts: none."""\n')
    for name in ("engine.py", "engines_extra.py", "_private.py"):
        (package / name).write_text("")
    assert [
        "membound.tool: engines_extra",
        "membound.tool: inner",
        "membound.tool: an empty __all__ (a package that exports nothing has none)",
    ] == unnamed_parts(tmp_path / "membound")
