"""Valid Python for a newer interpreter than the one running membound is linted by the newest
CPython on the machine (issue 25); only what that one refuses too is MB000, and a run with an
MB000 never says "All checks passed!"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from membound.lint.newer_python import newer_pythons

#: PEP 695 (Python 3.12): a ``type`` alias and a generic class, with an unbounded cache inside.
PEP695 = """\
import functools

type Rows = list[dict]

class Repo[T]:
    @functools.cache
    def load(self, n):
        return list(range(n))
"""


def _lint(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``membound lint ARGS`` in ``tmp_path`` (or the program ``code`` given ``ARGS``)."""
    program = ["-c", code] if code else ["-m", "membound", "lint"]
    return subprocess.run(
        [sys.executable, *program, *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


#: PEP 696 (Python 3.13): type parameter defaults, the same lines otherwise.
PEP696 = PEP695.replace("type Rows = list[dict]", "type Rows[T = dict] = list[T]").replace(
    "class Repo[T]", "class Repo[T = int]"
)

#: A file in the grammar of the next CPython, for each one that has a newer one on this machine.
NEXT_GRAMMAR = {(3, 10): PEP695, (3, 11): PEP695, (3, 12): PEP696}


def test_a_file_for_a_newer_python_is_linted(tmp_path: Path) -> None:
    # On 3.10 and 3.11 a 3.12 file, on 3.12 a 3.13 file: parsed by the newer CPython found here.
    # On the newest (3.13) there is none newer: the 3.13 file is parsed by the interpreter itself.
    here = sys.version_info[:2]
    if here in NEXT_GRAMMAR:
        assert newer_pythons(), "this machine has newer CPythons (pyenv): they must be found"
    (tmp_path / "repo.py").write_text(NEXT_GRAMMAR.get(here, PEP696))
    done = _lint(tmp_path, "--select", "MB301", "repo.py")
    assert 1 == done.returncode, done.stderr
    assert done.stdout.startswith("repo.py:6:6: MB301 `functools.cache` never evicts"), done.stdout
    assert "MB000" not in done.stderr


def test_an_invalid_file_names_both_pythons_and_nothing_passes(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    done = _lint(tmp_path, ".")
    assert 1 == done.returncode, done.stderr
    assert "All checks passed!" not in done.stdout
    assert "1 file could not be checked (MB000, listed on stderr)." in done.stdout
    line = done.stderr.strip()
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert line.startswith("./broken.py:1:5: MB000 file could not be parsed: syntax error: ")
    newest = newer_pythons()
    if newest:
        assert line.endswith(f"(Python {here} and 3.{newest[0][0][1]})"), line
    else:
        assert line.endswith(f"(Python {here}; no newer Python found here to try)"), line


def test_without_a_newer_python_the_error_says_so(tmp_path: Path) -> None:
    (tmp_path / "repo.py").write_text(PEP695 if sys.version_info < (3, 12) else "def (:\n")
    env = {**os.environ, "PYENV_ROOT": str(tmp_path / "none"), "PATH": str(tmp_path / "none")}
    done = _lint(tmp_path, "repo.py", env=env, code=_NO_SYSTEM_PYTHONS)
    assert 2 == done.returncode, done.stderr  # the only file could not be checked
    assert done.stderr.strip().endswith("no newer Python found here to try)"), done.stderr


#: membound lint searching no system folder (the machine's own python3.N there may be newer
#: than the one running the test); pyenv's and PATH are emptied by the environment.
_NO_SYSTEM_PYTHONS = """\
import sys
from membound.lint import newer_python
newer_python.SYSTEM_BIN_DIRS = ()
from membound.cli.main import main
sys.exit(main(["lint", *sys.argv[1:]]))
"""
