"""The baseline gate on a suite as a new user runs it: the compare file may live anywhere and be
given in either form; a compare that checks too few tests fails the run; ``-W error`` does not
break a run beside pytest-memray; a regression names its lines; every test that cannot run again
is named; the ``--membound-where`` table fits the terminal and names no line for an empty peak."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

#: No cache folder in the runs' projects; the suite's own tools' plugins are left out for every
#: pytester run (tests/conftest.py).
QUIET = ["-p", "no:cacheprovider"]
NO_MEMRAY = ["-p", "no:memray"]

GROWING = """
import os

EXTRA_MIB = int(os.environ.get("EXTRA_MIB", "0"))


def build(n):
    return bytearray(n)


def test_grows():
    block = build((1 + EXTRA_MIB) * 2**20)


def test_steady():
    rows = [str(i) for i in range(1_000)]
"""


def _line(source: str, text: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if text in line)


def test_a_compare_file_outside_the_project_in_the_space_form_never_passes_silently(
    pytester: pytest.Pytester,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_growing=GROWING)
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "b.json"
    pytester.runpytest_subprocess(
        *QUIET, *NO_MEMRAY, f"--membound-baseline={elsewhere}"
    ).assert_outcomes(passed=2)
    monkeypatch.setenv("EXTRA_MIB", "40")
    result = pytester.runpytest_subprocess(*QUIET, *NO_MEMRAY, "--membound-compare", str(elsewhere))
    # pytest chose its rootdir from the file before any plugin's options were known: the run
    # stops before any test with one line that says how to write it.
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    assert f"--membound-compare={elsewhere}" in errors[0]
    # The same file in the = form gates as it should.
    result = pytester.runpytest_subprocess(*QUIET, *NO_MEMRAY, f"--membound-compare={elsewhere}")
    result.assert_outcomes(passed=1, failed=1)
    # A file inside the project in the space form leaves the rootdir alone: it just works.
    inside = pytester.path / "b.json"
    inside.write_text(elsewhere.read_text())
    result = pytester.runpytest_subprocess(*QUIET, *NO_MEMRAY, "--membound-compare", "b.json")
    result.assert_outcomes(passed=1, failed=1)


def test_a_compare_that_checks_fewer_than_half_of_the_measured_tests_fails_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_old=GROWING)
    pytester.runpytest_subprocess(*QUIET, *NO_MEMRAY, "--membound-baseline=b.json").assert_outcomes(
        passed=2
    )
    # A part of the suite is fine: every test that ran is in the baseline.
    part = pytester.runpytest_subprocess(
        *QUIET, *NO_MEMRAY, "--membound-compare=b.json", "-k", "steady"
    )
    part.assert_outcomes(passed=1, deselected=1)
    assert part.ret == pytest.ExitCode.OK
    # The same tests under other ids (another rootdir, a renamed module): nothing is compared.
    (pytester.path / "test_old.py").rename(pytester.path / "test_new.py")
    moved = pytester.runpytest_subprocess(*QUIET, *NO_MEMRAY, "--membound-compare=b.json")
    moved.assert_outcomes(passed=2)
    assert moved.ret == pytest.ExitCode.TESTS_FAILED, moved.stdout.str()
    why = [line for line in moved.stdout.lines if line.startswith("membound: the gate failed")]
    assert len(why) == 1, moved.stdout.str()
    assert "0 of the 2 tests measured in this run are in b.json" in why[0]


def test_w_error_beside_pytest_memray_runs_the_suite_and_shows_the_note(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("pytest_memray")
    pytester.makepyfile(
        test_marked="""
import pytest

@pytest.mark.limit_memory("100 MB")
def test_bare():
    assert bytearray(1000)
"""
    )
    result = pytester.runpytest_subprocess(*QUIET, "-p", "no:asyncio", "-W", "error")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*membound and pytest-memray both read*limit_memory*"])


def test_a_regression_names_the_lines_that_held_its_peak_with_membound_where(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = pytester.makepyfile(test_growing=GROWING)
    source = path.read_text()
    helper, call = _line(source, "return bytearray(n)"), _line(source, "block = build(")
    pytester.runpytest_subprocess(*QUIET, "--membound-baseline=b.json").assert_outcomes(passed=2)
    monkeypatch.setenv("EXTRA_MIB", "8")
    result = pytester.runpytest_subprocess(*QUIET, "--membound-compare=b.json", "--membound-where")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*membound baseline: heap peak rose*",
            "*held at the peak*",
            f"*test_growing.py:{helper} in build  ← test_growing.py:{call}",
        ]
    )


def test_every_test_that_cannot_run_again_is_named_with_its_reason(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_once="""
import pytest

@pytest.mark.parametrize("n", range(14))
def test_makes_a_dir(tmp_path, n):
    (tmp_path / "out").mkdir()

def test_repeatable():
    x = [0] * 100
"""
    )
    result = pytester.runpytest_subprocess(*QUIET, *NO_MEMRAY, "--membound-baseline=b.json")
    result.assert_outcomes(passed=15)
    result.stdout.fnmatch_lines(["*14 could not run again*"])
    named = [line for line in result.stdout.lines if "FileExistsError on a repeat" in line]
    assert len(named) == 14, result.stdout.str()
    assert {line.split("[")[1].split("]")[0] for line in named} == {str(n) for n in range(14)}


WIDE = """
import pytest

def build(n):
    return [bytearray(1000) for _ in range(n)]

def test_nothing():
    pass

@pytest.mark.parametrize("case", ["a-parameter-id-long-enough-to-push-the-table-past-the-screen"])
def test_holds_memory_through_a_helper_with_a_long_name(case):
    data = build(30_000)
    assert data
"""


def test_the_where_table_fits_the_terminal_and_an_empty_peak_names_no_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_wide=WIDE)
    monkeypatch.setenv("COLUMNS", "80")
    result = pytester.runpytest_subprocess(*QUIET, "--membound", "--membound-where")
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    section = out.split("membound: top tests by peak memory", 1)[1].splitlines()[1:]
    section = section[: next(i for i, line in enumerate(section) if "tests measured" in line)]
    assert all(len(line) <= 80 for line in section), "\n".join(section)
    assert "held by test_wide.py" in out  # the test that holds memory names its line
    at = next(i for i, line in enumerate(section) if "test_nothing" in line)
    assert "held by" not in " ".join(section[at : at + 2]), "\n".join(section)
