"""The plugin names the lines that held a test's peak: in a failed ``limit_memory`` (one more
run, traced, costs nothing until a limit fails) and with ``--membound-where``."""

from __future__ import annotations

import pytest

TESTS = """
import unittest
import pytest

def build(n):
    return [bytearray(1000) for _ in range(n)]

@pytest.mark.limit_memory("20 MB", kind="rss")
def test_over():
    data = build(60_000)
    assert data

class TestCase(unittest.TestCase):
    @pytest.mark.limit_memory("20 MB", kind="rss")
    def test_over_in_a_testcase(self):
        self.data = build(150_000)

def test_fine():
    assert build(100)
"""


def _line(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def test_a_failed_limit_names_the_lines_of_one_more_traced_run(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile(test_big=TESTS)
    source = path.read_text()
    helper, call = _line(source, "return [bytearray"), _line(source, "data = build(60_000)")
    in_case = _line(source, "self.data = build(150_000)")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*held at the peak of one more run of the test, with the lines traced*",
            f"*test_big.py:{helper} in build  ← test_big.py:{call}",
        ]
    )
    result.stdout.fnmatch_lines([f"*test_big.py:{helper} in build  ← test_big.py:{in_case}"])


def test_membound_where_traces_every_run_and_lists_the_top_line(
    pytester: pytest.Pytester,
) -> None:
    path = pytester.makepyfile(test_big=TESTS)
    helper = _line(path.read_text(), "return [bytearray")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--membound", "--membound-where"
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*held at the peak (traced allocations):*"])
    assert "one more run" not in result.stdout.str()
    # The line goes under its test's row when the table would not fit the terminal (80 here).
    result.stdout.fnmatch_lines(
        ["test_big.py::test_over *", f"* held by test_big.py:{helper} in build ← test_big.py:*"]
    )
