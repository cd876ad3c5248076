"""membound's pytest plugin installed beside pytest-memray (a dev dependency, so both are loaded
in every run here): a bare ``limit_memory`` is membound's unless ``--memray`` is given, then
pytest-memray's; ``membound_limit_memory`` is always membound's; one warning says which."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_memray")

TESTS = """
import pytest

def _hold(mib):
    block = bytearray(mib * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # resident, not just reserved
    return block

@pytest.mark.limit_memory("1 MB")
def test_bare():
    _hold(20)

@pytest.mark.limit_memory("1 MB")
def test_bare_again():
    _hold(20)

@pytest.mark.membound_limit_memory("1 MB", kind="heap")
def test_namespaced():
    _hold(20)

def test_unmarked():
    _hold(20)
"""

CONFTEST = """
def pytest_sessionfinish(session):
    manager = session.config.pluginmanager.get_plugin("memray_manager")
    print("memray manager registered:", manager is not None)
"""

MEMBOUND_FAILS = "*limit_memory: the test's * peak was *, over its limit of * (1,000,000 bytes)*"
MEMRAY_FAILS = "*Test was limited to 1.0MiB but allocated*"
WARNING = "*membound and pytest-memray both read @pytest.mark.limit_memory*"


def test_without_memray_a_bare_limit_is_membounds_and_pytest_memray_stays_out(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(TESTS)
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3, passed=1)
    result.stdout.fnmatch_lines(["*memray manager registered: False*"])
    result.stdout.fnmatch_lines([MEMBOUND_FAILS])
    result.stdout.no_fnmatch_line(MEMRAY_FAILS)
    text = result.stdout.str()
    assert text.count("both read @pytest.mark.limit_memory") == 1, text
    assert "it is membound's (pytest-memray's markers act only under --memray)" in text


def test_with_memray_a_bare_limit_is_pytest_memrays_and_the_namespaced_one_membounds(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        TESTS
        + """
@pytest.mark.limit_memory("100 MB", current_thread_only=True)  # pytest-memray's arguments
def test_memray_arguments():
    _hold(1)
"""
    )
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest_subprocess("--memray", "-s", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3, passed=2)
    result.stdout.fnmatch_lines(["*memray manager registered: True*"])
    result.stdout.fnmatch_lines([MEMRAY_FAILS])
    result.stdout.fnmatch_lines(["*it is pytest-memray's*"])
    failures = result.stdout.str().split("= FAILURES =", 1)[1]
    bare = failures.split("_ test_bare _", 1)[1].split("_ test_bare_again _", 1)[0]
    assert "Test was limited to" in bare
    assert "limit_memory: the test's" not in bare, "membound read pytest-memray's marker too"
    namespaced = failures.split("_ test_namespaced _", 1)[1]
    assert "limit_memory: the test's heap peak was" in namespaced.split("short test summary")[0]
