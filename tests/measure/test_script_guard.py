"""A script that measures its own function at its top level, with no ``if __name__ ==
"__main__":`` guard: the fresh interpreter imports the script to find the function and runs that
top level again. The error says so and what to do, in one line and a hint (issue 27)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GROWS = "def grows(n=0):\n    return len(bytearray(20_000_000))\n\n"
#: Runs the script as ``python job.py ARGS`` would (``runpy`` as ``__main__``), and prints the
#: error membound raised, its hint, or OK.
HARNESS = (
    "import runpy, sys\n"
    "import membound as mb\n"
    "sys.argv = sys.argv[1:]\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except mb.MemboundError as exc:\n"
    "    print('ERROR', type(exc).__name__, exc)\n"
    "    print('HINT', exc.hint)\n"
    "else:\n"
    "    print('OK')\n"
)


def _run(tmp_path: Path, body: str, *args: str) -> str:
    script = tmp_path / "job.py"
    script.write_text(f"import membound as mb\n\n{GROWS}{body}\n")
    proc = subprocess.run(
        [sys.executable, "-c", HARNESS, str(script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert 0 == proc.returncode, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    "call",
    [
        "mb.measure(grows)",
        "mb.find_leaks(grows, iterations=100, isolate=True)",
        "mb.complexity(grows, sizes=(10, 100, 1000), noise_runs=1)",
    ],
    ids=["measure", "find_leaks", "complexity"],
)
def test_no_guard_names_the_guard_and_isolate_false(tmp_path: Path, call: str) -> None:
    out = _run(tmp_path, call)
    error = next(line for line in out.splitlines() if line.startswith("ERROR"))
    assert error.startswith("ERROR TargetError cannot measure "), out
    assert 'job.py has no `if __name__ == "__main__":` guard' in error
    assert "isolate=False" in error
    assert "__mp_main__" not in out
    hint = next(line for line in out.splitlines() if line.startswith("HINT"))
    assert '`if __name__ == "__main__":`' in hint
    assert "isolate=False" in hint


def test_with_the_guard_it_measures(tmp_path: Path) -> None:
    assert "OK" == _run(tmp_path, "if __name__ == '__main__':\n    mb.measure(grows)").strip()


def test_without_the_guard_isolate_false_measures(tmp_path: Path) -> None:
    assert "OK" == _run(tmp_path, "mb.measure(grows, isolate=False)").strip()


def test_a_top_level_that_fails_in_the_child_names_the_guard_in_the_hint(tmp_path: Path) -> None:
    """The top level reads ``sys.argv[1]``, which the child's import does not have: the
    import fails, and the hint says where the script's work belongs."""
    body = "import sys\nN = int(sys.argv[1])\nmb.measure(grows, N)"
    out = _run(tmp_path, body, "7")
    error = next(line for line in out.splitlines() if line.startswith("ERROR"))
    assert error.startswith("ERROR TargetError cannot import "), out
    hint = next(line for line in out.splitlines() if line.startswith("HINT"))
    assert '`if __name__ == "__main__":`' in hint, out


def test_no_guard_names_the_guard_when_the_script_imports_multiprocessing(tmp_path: Path) -> None:
    """Importing ``multiprocessing`` rebinds ``sys.modules["__mp_main__"]`` to the running
    ``__main__``; in membound's child that is not the script being imported, and the words
    must still name the missing guard."""
    out = _run(tmp_path, "import multiprocessing\nmb.measure(grows)")
    error = next(line for line in out.splitlines() if line.startswith("ERROR"))
    assert error.startswith("ERROR TargetError cannot measure "), out
    assert "isolated_call.py" not in out
