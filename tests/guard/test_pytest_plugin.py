"""The pytest plugin, through real pytest runs (pytester)."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_markers_are_registered_with_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.limit_memory(limit, [*], kind='heap'): Fail when the test's peak*",
            "@pytest.mark.no_leak(iterations=200, warmup=20, tolerance=None, rounds=10, "
            "timeout=None): *",
            "@pytest.mark.memory_complexity(expected, sizes=(1000, 10000, 100000), arg='n',*",
        ]
    )


def test_limit_memory_heap_pass_and_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.limit_memory("10 MB")
        def test_small():
            x = [0] * 1000

        @pytest.mark.limit_memory("10 MB")
        def test_big():
            x = [0] * 5_000_000
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*limit_memory: the test's heap peak was * MiB (tracemalloc), over its limit of 9.5 MiB*"]
    )
    # 40,000,056 bytes of list, plus what pytest's call of the test allocates (a few KiB).
    peak = re.search(r"heap peak was ([0-9.]+) MiB", result.stdout.str())
    assert peak is not None
    assert 38.1 <= float(peak.group(1)) <= 38.3
    assert "Traceback" not in result.stdout.str()


def test_limit_memory_rss_counts_native_memory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.limit_memory("50 MB", kind="rss")
        def test_native():
            block = bytearray(100 * 2**20)

        @pytest.mark.limit_memory("50 MB", kind="heap")
        def test_mmap_is_not_heap():
            import mmap
            with mmap.mmap(-1, 100 * 2**20) as m:
                for i in range(0, 100 * 2**20, 4096):
                    m[i] = 1
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_native*", "*rss peak was * MiB (VmHWM, reset before the call)*"]
    )
    peak = re.search(r"rss peak was ([0-9.]+) MiB", result.stdout.str())
    assert peak is not None
    assert 95 <= float(peak.group(1)) <= 115


def test_a_bad_limit_kind_in_the_ini_is_named_by_its_own_key(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-o",
        "membound_limit_memory=30MB",
        "-o",
        "membound_limit_kind=vms",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: membound_limit_kind: must be 'heap' or 'rss', not 'vms'"])


def test_per_parametrize_limits_and_ini_default(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        membound_limit_memory = 30MB
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize(
            "mib",
            [
                10,
                pytest.param(60, marks=pytest.mark.limit_memory("100 MB", kind="rss")),
                pytest.param(60, id="over-default"),
            ],
        )
        def test_alloc(mib):
            block = bytearray(mib * 2**20)
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_alloc?over-default? FAILED*"])


def test_no_leak_pass_and_fail_with_sites(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        CACHE = []

        @pytest.fixture
        def payload():
            return {"rows": list(range(10))}

        @pytest.mark.no_leak
        def test_leaky(payload):
            CACHE.append(dict(payload))

        @pytest.mark.no_leak(iterations=100, tolerance="128 B")
        def test_clean(payload):
            copy = dict(payload)
            assert copy == payload
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no_leak: test_leaky leaks * per call (memory held after collection, *; kept by "
            "`CACHE` (list, +1.0 entry/call), added at "
            "test_no_leak_pass_and_fail_with_sites.py:11*",
            "*kept by  module test_no_leak_pass_and_fail_with_sites → .CACHE (list)  "
            "+1.00 entries/call  * entries  added at *test_no_leak_pass_and_fail_with_sites.py:11",
            "*site  *.py:11*",
            "*type  builtins.dict  +1.00 per call*",
        ]
    )


def test_memory_complexity_pass_and_fail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memory_complexity("O(1)", sizes=[1000, 10000, 100000])
        def test_streams(n):
            assert sum(range(n)) >= 0

        @pytest.mark.memory_complexity("O(1)", sizes=[1000, 10000, 100000])
        def test_materialises(n):
            assert sum(list(range(n))) >= 0

        @pytest.mark.memory_complexity("O(n)", sizes=[1000, 10000, 100000], arg="rows")
        def test_named_arg(rows):
            data = [str(i) for i in range(rows)]
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*memory_complexity: expected O(1), measured O(n) — heap peak grows * per unit of n*",
            "*n=1,000: *, n=10,000: *, n=100,000: **",
        ]
    )


def test_fixture_helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        KEPT = []

        def test_peak_below(membound):
            with membound.assert_peak_below("1 MB"):
                x = [0] * 10

        def test_peak_over(membound):
            with membound.assert_peak_below("1 MB"):
                x = [0] * 1_000_000

        def test_assert_no_leak(membound):
            membound.assert_no_leak(lambda: KEPT.append([0] * 20), iterations=100)

        def test_assert_complexity(membound):
            membound.assert_complexity(lambda n: list(range(n)), "O(n)")

        def test_track(membound):
            with membound.track("x", heap=True) as t:
                y = [0] * 100_000
            assert t.result.heap_peak > 700_000
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*heap peak 7.6 MiB is over the limit of 976.6 KiB*"])
    result.stdout.fnmatch_lines(["*AssertionError: no leak expected:*"])


def test_summary_table(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_big():
            block = bytearray(80 * 2**20)

        def test_small():
            pass
        """
    )
    result = pytester.runpytest("--membound")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*membound: top tests by peak memory*",
            "*test_summary_table.py::test_big * MiB  rss*",
            "*2 tests measured*",
        ]
    )


@pytest.mark.parametrize("top", ["0", "-3"])
def test_a_top_of_no_tests_is_a_usage_error(pytester: pytest.Pytester, top: str) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--membound", f"--membound-top={top}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --membound-top must be 1 or more, not {top}"])


def test_summary_and_limits_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.limit_memory("10 MB", kind="rss")
        def test_over():
            block = bytearray(40 * 2**20)

        def test_big():
            block = bytearray(60 * 2**20)

        def test_small():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--membound", "-p", "xdist")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*limit_memory: the test's rss peak was*", "*3 tests measured*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('limit_memory("lots")', "not a size: 'lots'"),
        ('limit_memory("10 MB", kind="vms")', "kind must be 'heap' or 'rss'"),
        ("limit_memory(0)", "the limit must be positive"),
        ("no_leak(iterations=0)", "iterations must be a whole number >= 1"),
        ('no_leak(iterations="many")', "iterations must be a whole number"),
        ('no_leak(tolerance="x")', "not a size: 'x'"),
        ("no_leak(iterations=20)", "too few to tell a leak from noise"),
        ('memory_complexity("O(n^3)")', "unknown complexity 'O(n^3)'"),
        ('memory_complexity("O(1)", sizes=[1, 2])', "three or more distinct whole numbers"),
        ('memory_complexity("O(1)", arg="m")', "the test has no parameter named 'm'"),
        ("no_leak(bogus=1)", "unexpected keyword argument 'bogus'"),
    ],
)
def test_bad_marker_arguments_are_a_usage_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.{marker}
        def test_x(n=1):
            pass

        def test_other():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert message in output
    assert "usage: " in output or "no parameter" in output
    assert "Traceback" not in output
    result.assert_outcomes()  # nothing ran: a typo is not a memory failure


def test_a_failing_no_leak_test_fails_with_its_own_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.no_leak
        def test_broken():
            assert 1 == 2, "the test's own assertion"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: the test's own assertion*"])


def test_unmarked_tests_run_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        async def test_async_is_left_to_pytest():
            pass

        def test_plain():
            assert 1 + 1 == 2
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    # pytest's own verdict on an async test without a plugin: membound did not take the call
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])
