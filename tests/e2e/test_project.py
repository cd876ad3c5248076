"""The project's own promises: the README's commands exist, and the demo runs end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from membound.demo.runner import demo_needs

ROOT = Path(__file__).resolve().parents[2]


def test_readme_says_what_it_is_how_to_install_and_the_two_commands_in_that_order() -> None:
    """README: what it is, install, the two commands, the examples, the links (the examples
    themselves are run by ``tests/test_docs_snippets.py``)."""
    readme = ROOT.joinpath("README.md").read_text()
    sections = re.findall(r"^## (.+)$", readme, re.M)
    assert ["Install", "Two commands", "One example per capability", "Documentation"] == sections
    two = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert "make demo" in two
    assert "make test" in two
    makefile = ROOT.joinpath("Makefile").read_text()
    for target in ("demo", "test", "bench", "lint"):
        assert re.search(rf"^{target}:", makefile, re.M), target


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~80 s on an idle machine; the suite's 300 s is for every other test
def test_demo_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "membound",
            "demo",
            "--rows",
            "20000",
            "--repeat",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=540,  # ended (and the demo killed) before the test's own timeout
    )
    assert 0 == proc.returncode, proc.stderr
    for stem in ("sql", "range", "file", "rag", "cycles", "sessions", "fanout"):
        assert (out / f"{stem}.json").exists()
        assert (out / f"{stem}.md").exists()
        assert (out / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    # the memory check before the demo covers every scenario's peak
    _, needs = demo_needs(20000)
    for stem in ("sql", "range", "file", "rag", "cycles", "sessions", "fanout"):
        for row in json.loads((out / f"{stem}.json").read_text())["result"]["rows"]:
            assert row["rss_peak"]["high"] <= needs, (stem, row["name"], row["rss_peak"])
    sql = json.loads((out / "sql.json").read_text())["result"]["rows"]
    load_all, keyset = sql[0], sql[2]
    assert load_all["rss_peak_delta"]["median"] > keyset["rss_peak_delta"]["median"]
    assert "less, for the same rows" in proc.stdout
    demo = json.loads((out / "demo.json").read_text())
    scaled = demo["groups"]["range"]["complexity"]
    assert "O(n)" == scaled["list(range(n))"]["big_o"]
    assert "O(1)" == scaled["range(n)"]["big_o"]
    assert "O(n)" == demo["groups"]["cycles"]["complexity"]["gc.disable()"]["big_o"]
    sessions = " ".join(demo["groups"]["sessions"]["findings"])
    assert "leaks" in sessions
    assert "objects.py:" in sessions  # the allocating line is named
    assert "Session" in sessions
    assert "freed only by the cyclic GC" in " ".join(demo["groups"]["cycles"]["findings"])
    sizes = demo["record_sizes"]
    assert sizes["__slots__ class"] < sizes["class"] < sizes["dict"]
    # pydantic is in the dev extra: the record table has all six rows, pydantic's the largest
    assert 6 == len(sizes), sizes
    assert max(sizes, key=sizes.__getitem__) == "pydantic model"


@pytest.mark.parametrize("name", ["track_block.py", "measure_function.py"])
def test_examples_run(name: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert 0 == proc.returncode, proc.stderr
    assert "peak" in proc.stdout.lower()


def test_scenarios_example_compares(tmp_path: Path) -> None:
    out = tmp_path / "cmp.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "membound",
            "compare",
            str(ROOT / "examples" / "scenarios.py"),
            "--repeat",
            "1",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert 0 == proc.returncode, proc.stderr
    rows = json.loads(out.read_text())["result"]["rows"]
    assert rows[0]["rss_peak_delta"]["median"] > 10 * rows[1]["rss_peak_delta"]["median"]


def test_membound_lints_itself_clean() -> None:
    """The tool obeys its own rule: deliberate anti-patterns in demos carry a noqa with a reason."""
    proc = subprocess.run(
        [sys.executable, "-m", "membound", "lint", "src", "benchmarks", "examples"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert 0 == proc.returncode, proc.stdout + proc.stderr


def test_the_docs_numbers_come_from_the_benchmark_results() -> None:
    """Every benchmark section of the docs is exactly what the committed results render."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import readme_numbers
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    sections = readme_numbers.sections()
    assert len(sections) == 7
    for page, begin, end, render in sections:
        text = ROOT.joinpath("docs", page).read_text()
        assert begin in text, page
        assert end in text, page
        assert render() in text, page


def test_every_fast_module_exists_and_ci_runs_them_on_the_other_pythons() -> None:
    from tests.conftest import FAST_MODULES

    missing = sorted(m for m in FAST_MODULES if not (ROOT / m).is_file())
    assert [] == missing, "FAST_MODULES names modules that are gone"
    assert "make test-matrix-fast" in (ROOT / ".ci" / "run").read_text()
    promised = re.search(r'requires-python = ">=3\.(\d+)"', (ROOT / "pyproject.toml").read_text())
    assert promised is not None
    matrix = (ROOT / ".ci" / "matrix").read_text()
    # `make test` runs on the default python3 (the Makefile's PYTHON), the matrix on the others.
    found = subprocess.run(
        ["python3", "-c", "import sys; print(sys.version_info[1])"],
        capture_output=True,
        text=True,
        check=True,
    )
    default = f"3.{found.stdout.strip()}"
    for minor in range(int(promised[1]), 14):
        version = f"3.{minor}"
        assert version == default or version in matrix, f"Python {version} is not in the matrix"
