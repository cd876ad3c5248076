"""Every command and snippet of the documentation runs as written, from a copy of ``examples/``
beside the project's ``.venv`` (what a new user has after ``make demo``), and prints the lines
the page shows.

The pages are ``README.md`` and every page under ``docs/``. A page's snippets run in order, in
a folder of its own (what one snippet writes, the next may read); a fenced block is, by its
info string:

- ``console``: commands (``$ …``), run in order in one shell, each followed by lines of its
  output. Each shown line must appear, in order, within a line of what the command printed,
  numbers aside (a figure varies from run to run; the words beside it may not); ``…`` marks
  text left out, a line of its own lines left out. A command exits 0 unless it says
  ``# exits N``.
- ``python``: a script, run as ``python script.py`` runs it (one interpreter per page runs the
  page's scripts in turn, each as ``__main__``); the ``text title="output"`` block right after
  it is what it prints, compared the same way.
- ``ipython``: a cell, run in one IPython session per page (the magics of the notebook page),
  followed by its output in the same way.
- ``python title="NAME"`` (or ``toml``): the file NAME, as a reader saves it; written into the
  page's folder when the page gets there, for later snippets to run or import. A Python file
  that no snippet of the page runs or imports (a server's configuration, an app a server
  loads) is imported at the end of the page, as its server would import it.
- ``title="illustration: WHY"``: not run on its own (it needs a deployment: a server, a
  cluster, an install), and says why. Its Python must compile, and its commands' options exist.
- ``text`` or no language: a figure (a tree, a table of text), which holds no command.

Every Python block, run or not, takes from membound only names that exist, and only from the
public modules (``membound``, ``membound.guard`` and its ``actions`` and ``prometheus``,
``membound.report``). The rule pages (``docs/rules/``) show what ``membound lint`` flags:
``tests/lint/test_docs.py`` lints their examples.
"""

from __future__ import annotations

import ast
import importlib
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import membound
from tests.own_tools import OWN_TOOL_PLUGINS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")),
]
NUMBER = re.compile(r"[-+]?\d[\d,]*(\.\d+)?")
FENCE = re.compile(r"^(?P<indent> *)```(?P<info>.*)$")
TITLE = re.compile(r'title="([^"]*)"')
PUBLIC_MODULES = (
    "membound",
    "membound.guard",
    "membound.guard.actions",
    "membound.guard.prometheus",
    "membound.report",
)
#: The start of a line that is a command, in a block that should not hold one.
COMMAND = re.compile(r"^\s*(\$ |\.venv/|membound |python|pip |pytest |make |gunicorn |uvicorn )")
#: Printed after each snippet's output: where it ends, and its status.
MARK = "@@membound-docs-snippet-ended"
#: Seconds a page may take in all (pytest-timeout's 300 s stops a test that hangs).
PAGE_TIMEOUT = 280


@dataclass
class Command:
    """One command, the lines it should print and its exit status."""

    text: str
    expected: list[str] = field(default_factory=list)
    exit_code: int = 0


@dataclass
class Block:
    """One fenced block of a page."""

    page: str
    line: int
    kind: str  # console, python, ipython, file, illustration, output, figure, lint
    lang: str
    title: str
    body: str
    commands: list[Command] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)  # a script's or a cell's output

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def kind_of(page: str, lang: str, title: str) -> str:
    if title.startswith("illustration"):
        return "illustration"
    if page.startswith("docs/rules/") and lang == "python":
        return "lint"
    if lang == "text" and title == "output":
        return "output"
    if lang in ("", "text"):
        return "figure"
    if lang in ("python", "toml") and title:
        return "file"
    if lang in ("console", "python", "ipython"):
        return lang
    return f"unknown ({lang!r} {title!r})"


def commands(body: list[str]) -> list[Command]:
    found: list[Command] = []
    for text in body:
        if text.startswith("$ "):
            code = re.search(r"#\s*exits (\d+)\s*$", text)
            found.append(Command(text[2:], [], int(code.group(1)) if code else 0))
        elif found:
            found[-1].expected.append(text)
    return found


def blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page``, in order; an output block joins the snippet before it."""
    lines = (ROOT / page).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, info = fence.group("indent"), fence.group("info").strip()
        end = next(k for k in range(i + 1, len(lines)) if lines[k] == f"{indent}```")
        body = [line[len(indent) :] for line in lines[i + 1 : end]]
        lang = "" if info.startswith(("{", "title=")) else info.split(" ", 1)[0]
        title_match = TITLE.search(info)
        title = title_match.group(1) if title_match else ""
        block = Block(page, i + 1, kind_of(page, lang, title), lang, title, "\n".join(body))
        if block.kind in ("console", "illustration") and lang == "console":
            block.commands = commands(body)
        if block.kind == "output" and found and found[-1].kind in ("python", "ipython"):
            found[-1].expected = body
        found.append(block)
        i = end + 1
    return found


ALL = [b for page in PAGES for b in blocks(page)]
RUN = ("console", "python", "ipython", "file")
RUN_PAGES = [page for page in PAGES if any(b.kind in RUN for b in blocks(page))]


def test_the_pages_have_snippets_with_output() -> None:
    ran = [c for b in ALL if b.kind == "console" for c in b.commands]
    ran += [Command(b.body, b.expected) for b in ALL if b.kind in ("python", "ipython")]
    assert len(ran) >= 50
    assert sum(bool(c.expected) for c in ran) == len(ran)


@pytest.mark.parametrize("block", ALL, ids=[b.where for b in ALL])
def test_every_block_is_a_snippet_that_runs_or_says_why_not(block: Block) -> None:
    assert not block.kind.startswith("unknown"), f"{block.where}: a block of unknown kind"
    if block.kind == "illustration":
        assert block.title.startswith("illustration: "), f"{block.where}: say why it cannot run"
    if block.kind == "figure":
        assert not [line for line in block.body.splitlines() if COMMAND.match(line)], (
            f"{block.where}: commands belong in a console block (run), or an illustration"
        )
    if block.kind == "output":
        k = ALL.index(block)
        assert ALL[k - 1].kind in ("python", "ipython"), f"{block.where}: the output of what?"
    if block.kind in ("python", "ipython"):
        assert block.expected, f"{block.where}: show what it prints (a text output block)"
    if block.kind == "console":
        for command in block.commands:
            assert command.expected, f"{block.where}: show what `{command.text}` prints"


def _python_source(block: Block) -> str:
    if block.kind == "ipython":
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(block.body)
    return block.body


def _dotted(node: ast.expr) -> list[str]:
    names: list[str] = []
    while isinstance(node, ast.Attribute):
        names.insert(0, node.attr)
        node = node.value
    return [node.id, *names] if isinstance(node, ast.Name) else []


def missing_membound_names(source: str) -> list[str]:
    """What ``source`` takes from membound that does not exist, or not at a public path."""
    tree = ast.parse(source)
    aliases: dict[str, object] = {}
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "membound":
                    continue
                if alias.name not in PUBLIC_MODULES:
                    problems.append(f"import {alias.name}: not a public module")
                    continue
                module = importlib.import_module(alias.name)
                aliases[alias.asname or "membound"] = module if alias.asname else membound
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "membound":
            if node.module not in PUBLIC_MODULES:
                problems.append(f"from {node.module}: not a public module")
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if alias.name not in module.__all__:
                    problems.append(f"from {node.module} import {alias.name}: not public")
                else:
                    aliases[alias.asname or alias.name] = getattr(module, alias.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            chain = _dotted(node)
            if not chain or chain[0] not in aliases:
                continue
            value = aliases[chain[0]]
            for name in chain[1:]:
                if not hasattr(value, name):
                    problems.append(f"{'.'.join(chain)}: no {name!r}")
                    break
                value = getattr(value, name)
    return problems


PYTHON = [b for b in ALL if b.kind in ("python", "ipython", "illustration", "file")]
PYTHON = [b for b in PYTHON if b.lang in ("python", "ipython")]


@pytest.mark.parametrize("block", PYTHON, ids=[b.where for b in PYTHON])
def test_python_takes_only_public_names_that_exist(block: Block) -> None:
    source = _python_source(block)
    compile(source, block.where, "exec")
    assert [] == missing_membound_names(source), block.where


def _options(command: str) -> tuple[list[str], list[str]]:
    """The options ``command`` gives to a membound subcommand, and those the subcommand has."""
    import click

    from membound.cli.main import cli

    words = shlex.split(command, comments=True)
    program = next((k for k, w in enumerate(words) if w.endswith("membound")), None)
    if program is None or program + 1 >= len(words):
        return [], []
    sub = cli.get_command(click.Context(cli), words[program + 1])
    assert sub is not None, f"{command}: no such membound command"
    given = []
    for word in words[program + 2 :]:
        if word == "--":
            break
        if word.startswith("-"):
            given.append(word.split("=", 1)[0])
    known = [opt for param in sub.params for opt in param.opts + param.secondary_opts]
    return given, [*known, "-h", "--help"]


ILLUSTRATED = [b for b in ALL if b.kind == "illustration" and b.lang == "console"]


@pytest.mark.parametrize("block", ILLUSTRATED, ids=[b.where for b in ILLUSTRATED])
def test_illustrated_commands_take_options_membound_has(block: Block) -> None:
    assert block.commands, f"{block.where}: commands as `$ …` lines"
    for command in block.commands:
        given, known = _options(command.text)
        assert [] == [option for option in given if option not in known], command.text


def normalised(text: str) -> str:
    return NUMBER.sub("N", text).strip()


def _holds(line: str, pieces: list[str]) -> bool:
    at = 0
    for piece in pieces:
        found = line.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def missing_lines(expected: list[str], printed: str) -> list[str]:
    """The shown lines not found, in order, in what was printed."""
    actual = [normalised(line) for line in printed.splitlines()]
    at = 0
    missing = []
    for line in expected:
        pieces = [p for p in (normalised(part) for part in line.split("…")) if p]
        if not pieces:
            continue
        hit = next((k for k in range(at, len(actual)) if _holds(actual[k], pieces)), None)
        if hit is None:
            missing.append(line)
        else:
            at = hit + 1
    return missing


def test_missing_lines_reads_an_ellipsis_as_text_left_out() -> None:
    printed = "Limit(bytes=1,024, source='/sys/fs/cgroup', kind='cgroup-v1')\nok 3.2 MiB"
    assert [] == missing_lines(["Limit(bytes=…, kind=…)", "…", "ok 1 MiB"], printed)
    assert ["kind=… bytes=…"] == missing_lines(["kind=… bytes=…"], printed)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A folder as a new user's checkout looks after ``make demo``: examples and ``.venv``."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    venv = Path(sys.prefix)
    if not (venv / "bin" / "membound").exists():
        venv = ROOT / ".venv"
    (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


def environment(checkout: Path) -> dict[str, str]:
    """The snippets import ``examples`` and the membound under test (this checkout's ``src``
    when that is where it came from, as under ``PYTHONPATH=src``)."""
    paths = [str(checkout)]
    source = Path(membound.__file__).resolve().parents[1]
    if source == ROOT / "src":
        paths.append(str(source))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "COLUMNS": "200"}
    env.pop("PYTEST_XDIST_WORKER", None)
    env["PYTEST_ADDOPTS"] = OWN_TOOL_PLUGINS  # a user's environment has not the suite's tools
    return env


#: Runs a page's scripts and cells in turn in one interpreter: reads "KIND PATH" lines, runs
#: PATH as ``__main__`` (or as an IPython cell), then prints the mark and its status.
RUNNER = """
import runpy, sys, traceback
mark, shell = sys.argv[1], None
for line in sys.stdin:
    kind, path = line.rstrip("\\n").split(" ", 1)
    status = 0
    try:
        if kind == "python":
            sys.argv = [path]
            runpy.run_path(path, run_name="__main__")
        elif kind == "module":
            runpy.run_path(path, run_name=path.rsplit("/", 1)[-1][: -len(".py")])
        else:
            if shell is None:
                from IPython.core.interactiveshell import InteractiveShell
                shell = InteractiveShell.instance(colors="NoColor")
            with open(path, encoding="utf-8") as cell:
                status = 0 if shell.run_cell(cell.read(), store_history=True).success else 1
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    print("\\n" + mark, status, flush=True)
"""


class Runner:
    """The interpreter that runs a page's Python, started when the page first needs it."""

    def __init__(self, checkout: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [str(checkout / ".venv" / "bin" / "python"), "-c", RUNNER, MARK],
            cwd=checkout,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, kind: str, path: Path, deadline: float) -> tuple[str, int]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{kind} {path}\n")
        self.process.stdin.flush()
        printed: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                return "".join(printed) + f"\n(still running after {PAGE_TIMEOUT} s)", -1
            if line is None:
                return "".join(printed), -1
            if line.startswith(MARK):
                return "".join(printed), int(line.split()[1])
            printed.append(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_console(block: Block, checkout: Path, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """Each command's output and exit status, run in order in one shell."""
    script = "exec 2>&1\n" + "".join(f"{c.text}\necho {MARK} $?\n" for c in block.commands)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT,
        check=False,
    )
    parts = done.stdout.split(MARK)
    for k in range(len(block.commands)):
        # parts[k] is " STATUS-OF-THE-ONE-BEFORE\n" and then command k's output
        printed = parts[k] if k == 0 else parts[k].split("\n", 1)[-1]
        status = parts[k + 1].split("\n", 1)[0].strip() if k + 1 < len(parts) else "-1"
        yield printed, int(status)


@pytest.mark.parametrize("page", RUN_PAGES)
def test_the_page_runs_and_prints_what_it_shows(page: str, checkout: Path) -> None:
    env = environment(checkout)
    deadline = time.monotonic() + PAGE_TIMEOUT
    runner: Runner | None = None
    ran = "\n".join(b.body for b in blocks(page) if b.kind in ("console", "python", "ipython"))
    try:
        for block in blocks(page):
            if block.kind == "file":
                (checkout / block.title).write_text(block.body + "\n", encoding="utf-8")
            elif block.kind == "console":
                outputs = run_console(block, checkout, env)
                for command, (printed, status) in zip(block.commands, outputs, strict=True):
                    shown = f"{block.where}: $ {command.text}\n{printed[-3000:]}"
                    assert command.exit_code == status, shown
                    assert [] == missing_lines(command.expected, printed), shown
            elif block.kind in ("python", "ipython"):
                runner = runner or Runner(checkout, env)
                script = checkout / ".snippets" / f"line{block.line}.{block.kind[:2]}.py"
                script.parent.mkdir(exist_ok=True)
                script.write_text(block.body + "\n", encoding="utf-8")
                printed, status = runner.run(block.kind, script, deadline)
                shown = f"{block.where}\n{printed[-3000:]}"
                assert 0 == status, shown
                assert [] == missing_lines(block.expected, printed), shown
        for block in blocks(page):
            name = Path(block.title)
            if block.kind == "file" and name.suffix == ".py" and name.stem not in ran:
                runner = runner or Runner(checkout, env)
                printed, status = runner.run("module", checkout / name, deadline)
                assert 0 == status, f"{block.where}: importing {name}\n{printed[-3000:]}"
    finally:
        if runner is not None:
            runner.close()
