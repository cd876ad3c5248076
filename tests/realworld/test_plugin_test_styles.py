"""The pytest plugin measures and enforces every test style pytest runs: plain functions,
class-based tests, parametrized tests, ``unittest.TestCase`` methods, and async tests under
pytest-asyncio and anyio (each on its own event loop). Run through pytester, as a user's suite."""

from __future__ import annotations

import pytest

BIG = "bytearray(150 * 2**20)"  # 150 MiB, far over a 10 MB limit


def test_limit_memory_on_a_testcase_method(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import unittest
        import pytest

        class Jobs(unittest.TestCase):
            def setUp(self):
                self.rows = list(range(10))

            @pytest.mark.limit_memory("10 MB", kind="rss")
            def test_builds_big(self):
                block = {BIG}
                self.assertEqual(len(block), 150 * 2**20)

            @pytest.mark.limit_memory("10 MB", kind="rss")
            def test_small(self):
                self.assertEqual(sum(self.rows), 45)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_builds_big*", "*limit_memory: the test's rss peak was*"])


def test_ini_default_and_summary_measure_a_testcase_suite(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        membound_limit_memory = 50MB
        """
    )
    pytester.makepyfile(
        f"""
        import unittest

        class Suite(unittest.TestCase):
            def test_over(self):
                block = {BIG}

            def test_under(self):
                self.assertTrue(True)

            def test_also_under(self):
                self.assertIn(1, [1, 2])
        """
    )
    result = pytester.runpytest("--membound")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*Suite::test_over * MiB  rss*", "*3 tests measured*"])
    assert "no test was measured" not in result.stdout.str()


def test_no_leak_on_a_testcase_runs_setup_method_teardown(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import unittest
        import pytest

        KEPT = []
        CALLS = {"setUp": 0, "tearDown": 0}

        class Cache(unittest.TestCase):
            def setUp(self):
                CALLS["setUp"] += 1

            def tearDown(self):
                CALLS["tearDown"] += 1

            @pytest.mark.no_leak(iterations=200)
            def test_leaks(self):
                KEPT.append(bytes(200))

            @pytest.mark.no_leak(iterations=200)
            def test_clean(self):
                self.assertEqual(len(bytes(200)), 200)

        def test_setup_and_teardown_ran_per_iteration():
            # test_clean and test_leaks ran warm-up + iterations + attribution rounds each
            assert CALLS["setUp"] == CALLS["tearDown"] > 400
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*no_leak: test_leaks leaks * per call*"])


def test_a_failing_testcase_under_no_leak_reports_its_own_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import unittest
        import pytest

        class Broken(unittest.TestCase):
            @pytest.mark.no_leak
            def test_wrong(self):
                self.assertEqual(1, 2, "the case's own assertion")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: 1 != 2 : the case's own assertion*"])


@pytest.mark.parametrize("marker", ["asyncio", "anyio"])
def test_async_tests_are_measured_and_enforced(pytester: pytest.Pytester, marker: str) -> None:
    pytester.makepyfile(
        f"""
        import asyncio
        import pytest

        KEPT = []
        LOOPS = set()

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.{marker}
        @pytest.mark.limit_memory("10 MB", kind="rss")
        async def test_big():
            await asyncio.sleep(0)
            block = {BIG}

        @pytest.mark.{marker}
        @pytest.mark.no_leak(iterations=200)
        async def test_leaky():
            LOOPS.add(id(asyncio.get_running_loop()))
            await asyncio.sleep(0)
            KEPT.append(bytes(300))

        @pytest.mark.{marker}
        @pytest.mark.no_leak(iterations=200)
        async def test_clean():
            await asyncio.sleep(0)

        def test_every_iteration_ran_on_the_tests_own_loop():
            assert len(LOOPS) == 1
            assert len(KEPT) > 200
        """
    )
    # In a subprocess: an in-process pytester run records every hook call pytest makes, and the
    # async plugins run each iteration through a hook, so the record itself would grow.
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*limit_memory: the test's rss peak was*"])
    result.stdout.fnmatch_lines(["*no_leak: test_leaky leaks * per call*"])


def test_class_based_and_parametrized_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        class TestJobs:
            @pytest.mark.limit_memory("10 MB", kind="rss")
            def test_big(self):
                block = {BIG}

            @pytest.mark.memory_complexity("O(n)", sizes=[10_000, 100_000, 300_000])
            def test_linear(self, n):
                data = [str(i) for i in range(n)]

        @pytest.mark.parametrize("size", [1, 150 * 2**20])
        @pytest.mark.limit_memory("10 MB", kind="rss")
        def test_sized(size):
            block = bytearray(size)
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*TestJobs::test_big FAILED*", "*test_sized?157286400? FAILED*"])
