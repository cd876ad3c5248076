"""Memory baselines across commits, through real pytest runs: ``--membound-baseline`` records,
``--membound-compare`` fails a test whose peak rose beyond its noise or whose verdict got worse,
under xdist too; an unchanged suite is never flagged, whatever order its tests run in."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

# A suite with the usual sources of noise: small and large peaks, a cache filled by whichever
# test calls it first (an order effect: under xdist either test may run first, or alone), a
# dict that resizes, a test whose allocation varies a little from run to run, a tmp_path test
# that cannot run twice, and a class-based test.
SUITE = """
import functools, os, random

EXTRA = int(os.environ.get("EXTRA_BYTES", "0"))

@functools.lru_cache(maxsize=None)
def table():
    return [str(i) * 40 for i in range(20_000)]  # several MiB, once per process

def test_tiny():
    x = [0] * 100

def test_big():
    block = bytearray(6 * 2**20 + EXTRA)
    names = {str(i): i for i in range(5_000)}

def test_cache_one():
    assert len(table()) == 20_000
    x = [1] * 10_000

def test_cache_two():
    assert table()[5] == "5" * 40

def test_jitter():
    x = bytearray(2**20 + random.randint(0, 200_000))

def test_makes_a_dir(tmp_path):
    (tmp_path / "out").mkdir()
    data = bytearray(3 * 2**20)

class TestGroup:
    def test_method(self):
        rows = [(i, str(i)) for i in range(5_000)]
"""


#: A plugin a subprocess run here does not need (it costs start-up time); the suite's own tools'
#: plugins are left out for every pytester run (tests/conftest.py).
QUIET = ["-p", "no:memray"]


def _entries(path: Path) -> dict[str, dict[str, object]]:
    data = json.loads(path.read_text())
    assert data["membound_baseline"] == 1
    entries: dict[str, dict[str, object]] = data["entries"]
    return entries


def test_a_recorded_baseline_is_sorted_one_line_per_test_and_a_rise_fails_its_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    recorded = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--membound-baseline=b.json")
    recorded.assert_outcomes(passed=7)
    text = (pytester.path / "b.json").read_text()
    lines = [line for line in text.splitlines() if "::" in line]
    names = [json.loads("{" + line.rstrip(",") + "}").popitem()[0] for line in lines]
    assert names == sorted(names), text
    assert len(names) == 6, text
    entries = _entries(pytester.path / "b.json")
    big = entries["test_suite.py::test_big"]
    assert 6 * 2**20 < int(big["heap_peak"]) < 7 * 2**20  # type: ignore[call-overload]
    assert big["runs"] == 3
    # The tmp_path test raised on a repeat: no entry, and it is named.
    assert "test_suite.py::test_makes_a_dir" not in entries
    recorded.stdout.fnmatch_lines(["*test_makes_a_dir: FileExistsError on a repeat: *"])

    summary = pytester.path / "summary.md"
    monkeypatch.setenv("EXTRA_BYTES", str(3 * 2**20))
    compared = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--membound-compare=b.json",
        f"--membound-summary-md={summary}",
        "-n",
        "2",
    )
    compared.assert_outcomes(passed=6, failed=1)
    out = compared.stdout.str()
    assert re.search(
        r"FAILED test_suite.py::test_big - Failed: membound baseline: heap peak rose", out
    )
    compared.stdout.fnmatch_lines(
        ["*heap peak rose: *MiB now, *MiB in the baseline, +3.0 MiB (+*%); a change counts beyond*"]
    )
    md = summary.read_text()
    assert md.startswith("## membound memory baseline: regressed")
    assert "| test_suite.py::test_big | heap peak |" in md
    assert "6 checked against b.json: 1 regressed, 0 improved, 5 within noise; 0 new" in md


def test_the_repeats_collect_only_what_the_runs_made_and_leave_the_process_as_they_found_it(
    pytester: pytest.Pytester,
) -> None:
    """What lived before the measured runs is frozen during them (each collection before a
    run walks only what the runs made), and thawed after: the next test's own call, and a
    test that froze objects itself, find the collector as they left it."""
    pytester.makepyfile(
        test_frozen="""
        import gc

        SEEN = []

        def test_first():
            SEEN.append(gc.get_freeze_count())

        def test_second():
            SEEN.append(gc.get_freeze_count())

        def test_zz_report():
            print("SEEN", SEEN[:5])
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", *QUIET, "-s", "--membound-baseline=b.json"
    )
    result.assert_outcomes(passed=3)
    line = next(x for x in result.outlines if x.startswith("SEEN"))
    seen = [int(n) for n in re.findall(r"\d+", line)]
    own_call, *repeats, next_call = seen
    assert len(repeats) == 3, line
    assert all(r > own_call for r in repeats), line
    # 3.12 starts with a few hundred objects frozen (immortal ones): the thaw leaves them in
    # the oldest generation (see membound/measure/heap.py), where they stay alive as before.
    assert next_call == (0 if sys.version_info[:2] == (3, 12) else own_call), line


# Twenty comparisons in one fresh interpreter (a pytest process per run would cost its start-up
# twenty times): the suite's module is imported anew for each, so its cache starts empty, and
# every third run is under xdist, whose workers run their own sequence of the tests.
TWENTY_RUNS = """
import random, sys, pytest
ids = sys.argv[1:]
shuffle = random.Random(20)
for run in range(20):
    for name in [m for m in sys.modules if m.startswith("test_suite")]:
        del sys.modules[name]
    order = shuffle.sample(ids, len(ids))
    xdist = ["-n", "2"] if run % 3 == 2 else []
    quiet = ["-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:memray"]
    args = ["-q", "-p", "no:cacheprovider", *quiet, "--membound-compare=b.json", *xdist, *order]
    code = pytest.main(args)
    print(f"RUN {run} EXIT {int(code)} ORDER {order} {xdist}", flush=True)
"""


@pytest.mark.slow
def test_twenty_runs_of_an_unchanged_suite_in_any_order_flag_nothing(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", *QUIET, "--membound-baseline=b.json"
    ).assert_outcomes(passed=7)
    ids = [*_entries(pytester.path / "b.json"), "test_suite.py::test_makes_a_dir"]
    script = pytester.makepyfile(twenty_runs=TWENTY_RUNS)
    result = pytester.run(sys.executable, str(script), *ids, timeout=280)
    out = result.stdout.str()
    runs = re.findall(r"^RUN (\d+) EXIT (\d+)", out, flags=re.M)
    assert [int(r) for r, _ in runs] == list(range(20)), out
    assert [int(code) for _, code in runs] == [0] * 20, out
    assert out.count("6 checked against b.json: 0 regressed, ") == 20, out


def test_a_removed_test_is_ignored_and_an_added_one_is_new(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_one="def test_kept():\n    x = [0] * 10\n\ndef test_gone():\n    pass\n"
    )
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--membound-baseline=b.json"
    ).assert_outcomes(passed=2)
    pytester.makepyfile(
        test_one="def test_kept():\n    x = [0] * 10\n\ndef test_added():\n    pass\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--membound-compare=b.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*1 checked against b.json: 0 regressed, 0 improved, 1 within noise; 1 new, "
            "1 in the baseline not run (ignored)*"
        ]
    )


def test_a_worse_leak_verdict_fails_with_the_verdicts_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = """
import os, pytest
KEPT = []

@pytest.mark.no_leak(iterations=200, warmup=20)
def test_calls():
    if os.environ.get("LEAK"):
        KEPT.append(bytearray(20_000))
    else:
        x = bytearray(20_000)
"""
    pytester.makepyfile(test_leaky=suite)
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--membound-baseline=b.json"
    ).assert_outcomes(passed=1)
    assert _entries(pytester.path / "b.json") == {"test_leaky.py::test_calls": {"leak": "no leak"}}
    monkeypatch.setenv("LEAK", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--membound-compare=b.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*leak verdict got worse: no leak → leak*"])


def test_an_interrupted_run_leaves_the_old_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_stop="def test_a():\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "--membound-baseline=b.json")
    before = (pytester.path / "b.json").read_text()
    pytester.makepyfile(
        test_stop="def test_a():\n    x = bytearray(2**20)\n\n"
        "def test_b():\n    raise KeyboardInterrupt\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--membound-baseline=b.json")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*the run was interrupted: b.json was not written*"])
    assert (pytester.path / "b.json").read_text() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--membound-compare=missing.json"], "*cannot read the baseline missing.json*"),
        (["--membound-compare=bad.json"], "*bad.json: not a membound baseline*"),
        (["--membound-compare=b.json", "--membound-tolerance=lots"], "*not a percentage: 'lots'*"),
        (["--membound-baseline=b.json", "--membound-repeat=0"], "*--membound-repeat must be 1*"),
        (["--membound-summary-md=s.md"], "*--membound-summary-md needs --membound-compare*"),
        (["--membound-baseline=no/dir/b.json"], "*--membound-baseline=no/dir/b.json: no such*"),
        (["--membound-baseline=."], "*--membound-baseline=.: is a directory*"),
        (
            ["--membound-compare=b.json", "--membound-summary-md=no/dir/s.md"],
            "*--membound-summary-md=no/dir/s.md: no such directory*",
        ),
        (["--membound-compare=b.json", "--membound-tolerance=10"], "*write 10% for a percent*"),
    ],
)
def test_bad_options_and_files_are_one_line_usage_errors(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    (pytester.path / "bad.json").write_text('{"entries": {}}')
    (pytester.path / "b.json").write_text('{"membound_baseline": 1, "entries": {}}')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_a_testcase_is_measured_again_without_reporting_its_subtests_again(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_case="""
import unittest

class Numbers(unittest.TestCase):
    def setUp(self):
        self.values = list(range(100_000))

    def test_each(self):
        for i in (1, 2, 3):
            with self.subTest(i=i):
                self.assertIn(i, self.values)
"""
    )
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", "--membound-baseline=b.json"
    )
    result.stdout.fnmatch_lines(["*1 passed, 3 subtests passed*"])
    entry = _entries(pytester.path / "b.json")["test_case.py::Numbers::test_each"]
    assert entry["runs"] == 3
    assert int(entry["heap_peak"]) > 100_000 * 8  # type: ignore[call-overload]
