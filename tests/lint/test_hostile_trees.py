"""``membound lint`` on hostile trees and hostile settings (issue 15, items 3 and 10).

Every odd input costs one ``MB000`` line for that file, never the other files' findings, never a
traceback and never a hang: FIFOs, devices, symlink loops, files over ``max-file-size``,
unreadable files and folders, undecodable bytes, deep nesting. Bad settings (an empty or unknown
rule selector, a selection that leaves no rule, a bad ``max-file-size``) are one-line errors with
exit 2.

The CLI runs as a real subprocess wherever the old behaviour was a hang or a runaway read, with a
timeout (a hang fails the test instead of the suite) and an address-space limit (a runaway read
fails fast with MemoryError instead of starving the machine).
"""

from __future__ import annotations

import ast
import os
import resource
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from membound.cli.main import main
from membound.lint import LintConfig, lint_paths, load_config
from membound.lint.config import find_config
from membound.lint.engine import ALL_CODES

pytestmark = pytest.mark.usefixtures("every_rule_by_default")

BAD = "import functools\n@functools.cache\ndef f(n):\n    return 1\n"
BAD_LINE = "bad.py:2:2: MB301 "
#: Address space given to each linting subprocess: ample for linting, small enough that reading
#: ``/dev/zero`` into memory stops at MemoryError within a second.
MEMORY_LIMIT = 2 * 1024**3


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def lint(
    cwd: Path, *args: str, timeout: float = 60, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``python -m membound lint ARGS`` in ``cwd``, with a timeout and a memory limit."""
    return subprocess.run(
        # --preview: the snippets here are flagged by MB202/MB301, preview rules (conftest.py).
        [*prefix, sys.executable, "-m", "membound", "lint", "--preview", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        preexec_fn=_limit_memory,
        check=False,
    )


def mb000(err: str, name: str) -> str:
    """The reason in the ``MB000`` line of ``name`` in ``err`` (exactly one such line)."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{name}:")]
    assert len(lines) == 1, err
    _, _, reason = lines[0].partition(": MB000 file could not be parsed: ")
    assert reason, lines[0]
    return reason


def one_line_error(err: str) -> str:
    """The message of a one-line error: ``membound: error: ...`` and at most a hint line."""
    assert "Traceback" not in err
    assert "Usage:" not in err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2, err
    assert lines[0].startswith("membound: error: "), err
    assert len(lines) == 1 or lines[1].startswith("hint: "), err
    return lines[0]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with one file that has a finding; tests add hostile entries next to it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_text(BAD)
    return tmp_path


# --- item 3: only regular files are read, and only up to max-file-size ---------------------------


def test_fifo_in_the_tree_is_mb000_not_a_hang(tree: Path) -> None:
    os.mkfifo(tree / "pipe.py")
    proc = lint(tree, ".", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"./{BAD_LINE}")
    assert mb000(proc.stderr, "./pipe.py") == "not a regular file (a FIFO)"


def test_symlink_to_dev_zero_in_the_tree_is_mb000_not_a_runaway_read(tree: Path) -> None:
    (tree / "zero.py").symlink_to("/dev/zero")
    proc = lint(tree, ".", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"./{BAD_LINE}")
    assert mb000(proc.stderr, "./zero.py") == "not a regular file (a character device)"


@pytest.mark.parametrize("special", ["pipe.py", "/dev/zero"])
def test_special_file_given_on_the_command_line(tree: Path, special: str) -> None:
    os.mkfifo(tree / "pipe.py")
    proc = lint(tree, special, "bad.py", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(BAD_LINE)
    assert mb000(proc.stderr, special).startswith("not a regular file (a ")
    # Alone, nothing could be checked at all: exit 2, still one line and no traceback.
    alone = lint(tree, special, timeout=30)
    assert alone.returncode == 2, alone.stderr
    assert alone.stdout == ""
    assert mb000(alone.stderr, special).startswith("not a regular file (a ")


def test_file_over_the_default_max_file_size_is_skipped(tree: Path) -> None:
    # Comments only, so that the old code (no cap) parses it quickly and the test fails fast.
    line = b"# " + b"x" * 97 + b"\n"
    (tree / "huge.py").write_bytes(line * 100_000 + b"#")  # 10,000,001 bytes
    proc = lint(tree, ".", timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"./{BAD_LINE}")
    assert mb000(proc.stderr, "./huge.py") == (
        "file too large (10,000,001 bytes; max-file-size is 10,000,000 bytes)"
    )
    (tree / "huge.py").write_bytes(line * 100_000)  # exactly 10,000,000 bytes: checked
    proc = lint(tree, ".", timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "MB000" not in proc.stderr


@pytest.mark.parametrize(
    ("setting", "checked"),
    [
        ('max-file-size = "1kB"', False),
        ("max-file-size = 1000", False),
        ('max-file-size = "1 KiB"', True),  # 1,024 bytes: the file fits
        ("max-file-size = 1_024", True),
        ("max-file-size = 1.5e3", True),
        ('max-file-size = "10MB"', True),
    ],
)
def test_max_file_size_from_pyproject(tree: Path, setting: str, checked: bool) -> None:
    (tree / "pyproject.toml").write_text(f"[tool.membound.lint]\n{setting}\n")
    (tree / "big.py").write_text(BAD + "#" * (1020 - len(BAD)) + "\n")  # 1,021 bytes
    result = lint_paths(["big.py"], _config_of(tree))
    if checked:
        assert (result.files_checked, result.errors) == (1, ())
    else:
        assert result.files_checked == 0
        assert result.errors[0].reason == (
            "file too large (1,021 bytes; max-file-size is 1,000 bytes)"
        )


def _config_of(tree: Path) -> LintConfig:
    found = find_config([str(tree)])
    assert found is not None
    return load_config(found, ALL_CODES)


def test_max_file_size_on_the_command_line_wins_over_pyproject(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tree / "pyproject.toml").write_text('[tool.membound.lint]\nmax-file-size = "10"\n')
    assert main(["lint", "bad.py"]) == 2
    assert "max-file-size is 10 bytes" in capsys.readouterr().err
    assert main(["lint", "bad.py", "--max-file-size", "1MB"]) == 1
    assert main(["lint", "bad.py", "--max-file-size", "1000"]) == 1
    assert main(["lint", "bad.py", "--isolated", "--max-file-size", "50"]) == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"lots"', "not a size: 'lots'"),
        ('"10 XB"', "not a size: '10 XB'"),
        ("-1", "a size cannot be negative: -1"),
        ("0", "must be at least 1 byte"),
        ("true", "not a size: True"),
        ("[1]", "not a size: [1]"),
        ('"1e30 TB"', "size too large"),
    ],
)
def test_bad_max_file_size_in_pyproject_is_one_line(
    tree: Path, capsys: pytest.CaptureFixture[str], value: str, expected: str
) -> None:
    (tree / "pyproject.toml").write_text(f"[tool.membound.lint]\nmax-file-size = {value}\n")
    assert main(["lint", "bad.py"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line_error(err)
    assert "pyproject.toml [tool.membound.lint] max-file-size: " in line
    assert expected in line


@pytest.mark.parametrize(
    ("value", "expected"),
    [("lots", "not a size: 'lots'"), ("0", "must be at least 1 byte"), ("", "not a size: ''")],
)
def test_bad_max_file_size_on_the_command_line_is_one_line(
    tree: Path, capsys: pytest.CaptureFixture[str], value: str, expected: str
) -> None:
    assert main(["lint", "bad.py", "--max-file-size", value]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line_error(err)
    assert "--max-file-size: " in line
    assert expected in line


# --- other hostile entries on the same path -------------------------------------------------------


def test_symlink_loop_in_the_tree_and_on_the_command_line(tree: Path) -> None:
    (tree / "loop.py").symlink_to("loop.py")
    for args, name in (((".",), "./loop.py"), (("loop.py", "bad.py"), "loop.py")):
        proc = lint(tree, *args, timeout=30)
        assert proc.returncode == 1, proc.stderr
        assert BAD_LINE in proc.stdout
        assert mb000(proc.stderr, name) == "Too many levels of symbolic links"


def test_directory_named_like_a_python_file_is_searched(tree: Path) -> None:
    (tree / "pkg.py").mkdir()
    (tree / "pkg.py" / "inner.py").write_text(BAD)
    proc = lint(tree, ".", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    assert "./pkg.py/inner.py:2:2: MB301 " in proc.stdout
    assert lint(tree, "pkg.py", timeout=30).stdout.startswith("pkg.py/inner.py:2:2: MB301 ")


def test_deeply_nested_folders_are_walked_without_recursion(tree: Path) -> None:
    # Python 3.11's os.walk recursed once per level: 1,100 levels stopped the whole run.
    levels = [tree / "d"]
    for _ in range(1099):
        levels.append(levels[-1] / "d")
    try:
        for level in levels:
            level.mkdir()
        (levels[-1] / "bottom.py").write_text(BAD)
        proc = lint(tree, ".", timeout=60)
    finally:
        # Removed here, bottom up: shutil.rmtree (pytest's clean-up) also recurses per level
        # before Python 3.12, and would fail on this tree in a later session.
        (levels[-1] / "bottom.py").unlink(missing_ok=True)
        for level in reversed(levels):
            if level.is_dir():
                level.rmdir()
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.splitlines()[-1] == "Found 2 findings in 2 files."


def _without_root_powers() -> tuple[str, ...]:
    """A command prefix under which permission bits apply (root reads every file otherwise).

    As root, drop the two capabilities that bypass them; the files stay owned by root, so mode
    000 denies access to them as it would to their owner.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permission bits cannot be made to apply")
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--")


def test_unreadable_file_and_folder_are_mb000(tree: Path) -> None:
    prefix = _without_root_powers()
    (tree / "secret.py").write_text(BAD)
    (tree / "closed").mkdir()
    (tree / "closed" / "hidden.py").write_text(BAD)
    (tree / "secret.py").chmod(0)
    (tree / "closed").chmod(0)
    try:
        proc = lint(tree, ".", timeout=30, prefix=prefix)
        alone = lint(tree, "closed", timeout=30, prefix=prefix)
    finally:
        (tree / "closed").chmod(0o755)
        (tree / "secret.py").chmod(0o644)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"./{BAD_LINE}")
    assert mb000(proc.stderr, "./secret.py") == "Permission denied"
    assert mb000(proc.stderr, "./closed") == "cannot list folder: Permission denied"
    # The folder was the only input: nothing could be checked, which is not "no files found".
    assert alone.returncode == 2, alone.stderr
    assert mb000(alone.stderr, "closed") == "cannot list folder: Permission denied"


def test_undecodable_files_are_mb000(tree: Path) -> None:
    files = {
        "latin.py": (b"x = 'caf\xe9'\n", "not valid UTF-8 text: "),
        "nul.py": (b"x = 1\0\n", "binary file (contains NUL bytes)"),
        "bogus.py": (b"# -*- coding: bogus -*-\nx = 1\n", "bad encoding declaration: "),
        "hex.py": (b"# -*- coding: hex -*-\nx = 1\n", "not valid hex text: "),
        "undefined.py": (b"# coding: undefined\nx = 1\n", "not valid undefined text: "),
    }
    for name, (data, _) in files.items():
        (tree / name).write_bytes(data)
    proc = lint(tree, ".", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"./{BAD_LINE}")
    for name, (_, reason) in files.items():
        assert mb000(proc.stderr, f"./{name}").startswith(reason)


def test_punycode_cookie_is_refused_not_decoded_for_minutes(tree: Path) -> None:
    # The punycode decoder takes quadratic time: 400 KB took 17 s, this 1.2 MB about 150 s.
    (tree / "slow.py").write_bytes(
        b"# coding: punycode\n" + b"ab" * 200_000 + b"-" + b"a" * 800_000
    )
    proc = lint(tree, ".", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert mb000(proc.stderr, "./slow.py") == (
        "unsupported encoding declaration: punycode (its decoder takes quadratic time)"
    )


def test_blank_lines_near_the_word_membound_take_linear_time(tree: Path) -> None:
    # The file-level noqa pattern once let each line's leading whitespace run on across the
    # following blank lines: 320 KB took 45 s. This 1 MB file took about 15 minutes.
    (tree / "blank.py").write_text("# membound\n" + "\n" * 1_000_000)
    (tree / "quiet.py").write_text("  # membound: noqa\n" + BAD)
    proc = lint(tree, ".", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        f"./{BAD_LINE}"
        "`functools.cache` never evicts: one entry per distinct argument, forever. "
        "Use `functools.lru_cache(maxsize=N)`",
        "Found 1 finding in 1 file.",
    ]


def test_deeply_nested_expressions_are_mb000_with_a_reason(tree: Path) -> None:
    deep_add = "x = 1" + "+1" * 100_000 + "\n"  # RecursionError from 3.11's parser
    (tree / "deep_add.py").write_text(deep_add)
    (tree / "deep_neg.py").write_text("x = " + "-" * 200_000 + "1\n")  # MemoryError, no message
    proc = lint(tree, ".", timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith(f"./{BAD_LINE}")
    too_deep = ["./deep_neg.py"]
    try:  # versions differ: 3.10's parser takes the long sum, and then it is simply checked
        ast.parse(deep_add)
    except (RecursionError, MemoryError):
        too_deep.append("./deep_add.py")
    else:
        assert "deep_add.py" not in proc.stderr, proc.stderr
    for name in too_deep:
        reason = mb000(proc.stderr, name)
        assert reason.startswith("too deeply nested to check ("), reason
        assert not reason.endswith(": )"), reason  # the parser's MemoryError has no message


def test_missing_path_is_mb000_and_the_rest_is_checked(tree: Path) -> None:
    proc = lint(tree, "missing.py", "bad.py", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert mb000(proc.stderr, "missing.py") == "No such file or directory"


def test_undecodable_file_name_in_an_output_file(tree: Path) -> None:
    try:
        (tree / os.fsdecode(b"\xff.py")).write_text(BAD)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses file names that are not UTF-8")
    proc = lint(tree, ".", "-o", "report.txt", "--json", "report.json", timeout=30)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    assert b"./\xff.py:2:2: MB301 " in (tree / "report.txt").read_bytes()
    assert "./\\udcff.py" in (tree / "report.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", ["conf.toml", "/dev/zero"])
def test_config_file_that_is_not_a_regular_file_is_one_line(tree: Path, path: str) -> None:
    if path == "conf.toml":
        os.mkfifo(tree / path)
    proc = lint(tree, "bad.py", "--config", path, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    line = one_line_error(proc.stderr)
    assert f"{path}: cannot read: not a regular file (a " in line


# --- item 10: a selection that selects nothing is a usage error ---------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--select", ""], "--select: empty rule selector ''"),
        (["--select", "  "], "--select: empty rule selector '  '"),
        (["--select", ","], "--select: empty rule selector ''"),
        (["--select", "MB1,"], "--select: empty rule selector ''"),
        (["--ignore", ""], "--ignore: empty rule selector ''"),
        (["--select", "MB9999"], "--select: unknown rule selector 'MB9999'"),
        (["--ignore", "MB9999"], "--ignore: unknown rule selector 'MB9999'"),
        (["--ignore", "MB201,E501"], "--ignore: unknown rule selector 'E501'"),
        (["--select", "MB0"], "--select: unknown rule selector 'MB0'"),
        (["--select", "MB2", "--ignore", "MB2"], "no rule selected: select [MB2], ignore [MB2]"),
        (["--ignore", "ALL"], "no rule selected: select [MB], ignore [MB]"),
    ],
)
def test_bad_selection_on_the_command_line_is_one_line(
    tree: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert main(["lint", "bad.py", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert expected in one_line_error(err)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('select = [""]', "select: empty rule selector ''"),
        ('select = ["MB1", " "]', "select: empty rule selector ' '"),
        ('ignore = [""]', "ignore: empty rule selector ''"),
        ('ignore = ["MB9999"]', "ignore: unknown rule selector 'MB9999'"),
        ("select = []", "no rule selected: select [], ignore []"),
        ('ignore = ["MB"]', "no rule selected: select [MB], ignore [MB]"),
        (
            '[tool.membound.lint.per-file-ignores]\n"tests/*" = [""]',
            "per-file-ignores.tests/*: empty rule selector ''",
        ),
        (
            '[tool.membound.lint.per-file-ignores]\n"tests/*" = ["MB9999"]',
            "per-file-ignores.tests/*: unknown rule selector 'MB9999'",
        ),
    ],
)
def test_bad_selection_in_pyproject_is_one_line(
    tree: Path, capsys: pytest.CaptureFixture[str], section: str, expected: str
) -> None:
    (tree / "pyproject.toml").write_text(f"[tool.membound.lint]\n{section}\n")
    assert main(["lint", "bad.py"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = one_line_error(err)
    assert "pyproject.toml" in line
    assert expected in line


def test_command_line_selection_can_rescue_a_pyproject_that_selects_nothing(tree: Path) -> None:
    # The check is on what finally runs: --select replaces the file's select.
    (tree / "pyproject.toml").write_text("[tool.membound.lint]\nselect = []\n")
    assert main(["lint", "bad.py", "--select", "MB3"]) == 1


# --- the reader itself: races a tree walk cannot show ------------------------------------------


class _FakeOs:
    """``os`` with some functions replaced, for the reader (:mod:`membound._files`) only."""

    def __init__(self, **replaced: object) -> None:
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)


def test_fifo_swapped_in_after_the_check_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from membound import _files
    from membound.lint import reading

    regular = tmp_path / "regular.py"
    regular.write_text("x = 1\n")
    pipe = tmp_path / "pipe.py"
    os.mkfifo(pipe)
    # The path passes the stat check as a regular file, then opens as the FIFO it now is.
    monkeypatch.setattr(_files, "os", _FakeOs(stat=lambda path: os.stat(regular)))
    outcome: list[BaseException | bytes] = []

    def read() -> None:
        try:
            outcome.append(reading.read_limited(str(pipe), 1000))
        except reading.Unreadable as exc:
            outcome.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): a writer releases it, then the test fails
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("opening the FIFO blocked")
    assert [str(o) for o in outcome] == ["not a regular file (a FIFO)"]


def test_file_that_grows_past_the_cap_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from membound import _files
    from membound.lint import reading

    path = tmp_path / "growing.py"
    path.write_bytes(b"#" * 5000)
    small = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, 10, 0, 0, 0))
    # stat and fstat saw 10 bytes; by the time of the read there are 5,000.
    fake = _FakeOs(stat=lambda p: small, fstat=lambda fd: small)
    monkeypatch.setattr(_files, "os", fake)
    with pytest.raises(reading.Unreadable) as info:
        reading.read_limited(str(path), 1000)
    assert str(info.value) == "file too large (grew while read; max-file-size is 1,000 bytes)"
    assert reading.read_limited(str(path), 5000) == b"#" * 5000  # read past fstat's size
