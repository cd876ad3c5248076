"""Leak verdicts from evidence: sawtooth and bounded caches are not leaks, small steady leaks are,
the holder and the line that adds to it are named, native leaks have a site, and a run too short
to decide says so."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import membound as mb
from membound._units import format_size
from membound.judge import leaks as leaks_module
from membound.judge.retained import judge_retention
from membound.report.sections import leak_holders_table, leak_note
from tests.judge import leak_cases as lc
from tests.judge import leak_targets as lt

ROOT = Path(__file__).resolve().parents[2]


def _source(file: str | None, line: int | None) -> str:
    assert file is not None
    assert line is not None
    return Path(file).read_text().splitlines()[line - 1]


# --- the judge of one series -----------------------------------------------------------------

CALLS = [100.0 * i for i in range(11)]


def test_a_flat_series_with_noise_is_no_leak() -> None:
    ys = [1000, 1100, 950, 1040, 990, 1060, 1010, 940, 1050, 990, 1020]
    r = judge_retention(CALLS, ys)
    assert ("no leak", "flat") == (r.verdict, r.shape)


def test_a_steady_rise_is_a_leak_and_its_slope_is_the_rise_per_call() -> None:
    ys = [5000 + 55 * x for x in CALLS]
    r = judge_retention(CALLS, ys)
    assert ("leak", "steady") == (r.verdict, r.shape)
    assert r.per_unit == pytest.approx(55)


def test_growth_that_stops_early_is_levelled() -> None:
    ys = [0, 4000, 8000, 9000, 9000, 9000, 9000, 9000, 9000, 9000, 9000]
    r = judge_retention(CALLS, ys)
    assert ("no leak", "levelled") == (r.verdict, r.shape)


@pytest.mark.parametrize("period_rounds", [2, 3, 4])
def test_a_sawtooth_is_no_leak_and_its_period_is_measured(period_rounds: int) -> None:
    ys = [1000 + 3000 * (i % period_rounds) for i in range(11)]
    r = judge_retention(CALLS, ys)
    assert ("no leak", "sawtooth") == (r.verdict, r.shape)
    assert r.period == pytest.approx(100 * period_rounds)


def test_one_early_fall_is_no_sawtooth_and_what_follows_is_judged() -> None:
    flat_after = [9000, 2000, 2010, 1990, 2000, 2005, 1995, 2000, 2010, 1990, 2000]
    r = judge_retention(CALLS, flat_after)
    assert ("no leak", "flat") == (r.verdict, r.shape)
    rising_after = [9000, 2000, *(2000 + 50 * (x - 200) for x in CALLS[2:])]
    r = judge_retention(CALLS, rising_after)
    assert ("leak", "steady") == (r.verdict, r.shape)
    assert r.per_unit == pytest.approx(50)


def test_a_sawtooth_over_a_rising_floor_is_a_leak() -> None:
    ys = [1000 + 3000 * (i % 3) + 900 * i for i in range(11)]
    r = judge_retention(CALLS, ys)
    assert ("leak", "sawtooth") == (r.verdict, r.shape)
    assert r.per_unit == pytest.approx(9, rel=0.35)


def test_growth_that_slows_within_the_late_half_is_undecided() -> None:
    ys = [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 7100, 7120, 7130]
    r = judge_retention(CALLS, ys)
    assert ("undecided", "slowing") == (r.verdict, r.shape)
    assert r.needed is not None
    assert r.needed > CALLS[-1]


def test_growth_barely_over_the_noise_is_undecided_and_names_a_longer_run() -> None:
    ys = [0, 0, 0, 0, 0, 0, 80, 160, 240, 320, 400]
    r = judge_retention(CALLS, ys, quantum=64)
    assert ("undecided", "faint") == (r.verdict, r.shape)
    assert r.needed is not None
    assert r.needed >= 2 * CALLS[-1]


def test_an_explicit_tolerance_overrides_the_noise() -> None:
    ys = [5000 + 55 * x for x in CALLS]
    assert "no leak" == judge_retention(CALLS, ys, tolerance=60).verdict
    assert "leak" == judge_retention(CALLS, ys, tolerance=20).verdict
    # Between the tolerance and twice it: a given tolerance is a line, not "faint".
    assert "leak" == judge_retention(CALLS, ys, tolerance=40).verdict


# --- find_leaks on functions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "period"), [(lc.flush_every_250, 250), (lc.flush_every_350, 350)]
)
def test_periodic_flushes_are_sawtooth_not_leaks(target: object, period: int) -> None:
    report = mb.find_leaks(target)  # type: ignore[arg-type]
    assert ("no leak", "sawtooth") == (report.verdict, report.shape), report.explanation
    assert not report.leaking
    assert report.period is not None
    # Rounds are 100 calls: a fall is seen at the end of the round it happened in.
    assert abs(report.period - period) <= 100
    assert f"drops back every ~{report.period:,.0f} calls" in report.explanation


def test_an_lru_cache_bounded_above_the_calls_made_is_a_bounded_cache_filling() -> None:
    report = mb.find_leaks(lc.lru_bound_above_calls)
    assert ("no leak", "bounded") == (report.verdict, report.shape), report.explanation
    top = report.holders[0]
    assert 6000 == top.capacity
    assert top.size < 6000
    assert top.type_name == "functools._lru_cache_wrapper"
    assert f"bounded cache filling: {top.size:,} of 6,000 entries" in report.explanation
    assert top.path.endswith("._render")


def test_an_lru_cache_bounded_below_the_calls_made_is_no_leak() -> None:
    report = mb.find_leaks(lc.lru_bound_below_calls)
    assert "no leak" == report.verdict, report.explanation


@pytest.mark.parametrize("target", [lc.ring_buffer_filling, lc.deque_filling])
def test_containers_that_declare_a_bound_are_bounded_caches(target: object) -> None:
    report = mb.find_leaks(target, iterations=500)  # type: ignore[arg-type]
    assert ("no leak", "bounded") == (report.verdict, report.shape), report.explanation
    assert report.holders[0].capacity in (50_000, 20_000)


def test_functools_cache_on_a_method_with_new_arguments_is_a_leak() -> None:
    report = mb.find_leaks(lc.cache_on_method)
    assert "leak" == report.verdict, report.explanation
    # The cache, not also the dict it keeps its entries in: that one grows by as much, and
    # which of the two came first was the order of their addresses.
    assert ["functools._lru_cache_wrapper"] == [h.type_name for h in report.holders]
    top = report.holders[0]
    assert top.capacity is None
    assert top.type_name == "functools._lru_cache_wrapper"
    assert top.per_call == pytest.approx(1.0, abs=0.05)
    assert "PriceBook" in top.path
    assert top.path.endswith(".quote")


def test_a_listener_never_removed_names_the_list_and_the_line_that_appends() -> None:
    report = mb.find_leaks(lc.listener_never_removed)
    assert report.leaking, report.explanation
    top = report.holders[0]
    assert top.type_name == "list"
    assert top.path.endswith("._handlers"), top.path
    assert "self._handlers.append(handler)" in _source(top.file, top.line)
    assert top.per_call == pytest.approx(1.0, abs=0.05)
    assert "kept by `_handlers` (list, +1.0 entry/call), added at " in report.explanation


def test_kept_exceptions_are_a_leak_held_by_the_list() -> None:
    report = mb.find_leaks(lc.exceptions_kept)
    assert report.leaking, report.explanation
    top = report.holders[0]
    assert top.path == "module tests.judge.leak_cases → .FAILURES"
    assert "FAILURES.append(exc)" in _source(top.file, top.line)


@pytest.mark.parametrize(
    ("target", "name", "low", "high"),
    [
        (lc.ids_kept_in_a_set, "SESSION_IDS", 40, 160),
        (lc.floats_kept_in_a_dict, "LATENCIES", 40, 160),
    ],
)
def test_small_steady_leaks_are_found(target: object, name: str, low: int, high: int) -> None:
    report = mb.find_leaks(target)  # type: ignore[arg-type]
    assert "leak" == report.verdict, report.explanation
    assert low <= report.bytes_per_call <= high
    assert report.holders[0].path.endswith("." + name)
    assert report.tolerance < 10  # derived from this run's noise, far under 64 B
    # The explanation quotes the report's own figure.
    assert f"leaks {report.bytes_per_call:.1f} B per call".replace(".0 B", " B") in (
        report.explanation
    )


def test_cycles_with_finalizers_are_collected_not_leaked() -> None:
    report = mb.find_leaks(lc.cycles_with_finalizers)
    assert "no leak" == report.verdict, report.explanation


def test_a_run_too_short_to_decide_says_how_long_would_decide() -> None:
    # Bursts in the late half of every lengthened run (1,000 calls doubled up to 16,000): even
    # the longest run cannot tell bursts that stop from a leak.
    report = mb.find_leaks(lc.bursts_at(*lc.BURSTS_PAST_EVERY_LENGTHENING), warmup=0)
    assert "undecided" == report.verdict, report.explanation
    assert not report.leaking
    assert report.extended_from == 1000
    assert report.iterations == 16000
    needed = report.needed_iterations
    assert needed is not None
    assert needed > report.iterations
    assert f"run about {needed:,} iterations to decide" in report.explanation
    # ... and a run of that length decides.
    longer = mb.find_leaks(
        lc.bursts_at(*lc.BURSTS_PAST_EVERY_LENGTHENING), warmup=0, iterations=needed
    )
    assert "no leak" == longer.verdict, longer.explanation


def test_a_run_is_lengthened_past_4x_only_while_that_is_cheap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Bursts at 700, 1,500 and 3,000 calls: the 4,000-call run still has one in its late half,
    # the 8,000-call run does not. A fast target gets the longer run ...
    fast = mb.find_leaks(lc.bursts_at(700, 1500, 3000), warmup=0)
    assert ("no leak", 8000) == (fast.verdict, fast.iterations), fast.explanation
    assert "lengthened from 1,000 to 8,000 calls" in fast.explanation
    # ... a slow one (here: any run counts as slow) stops at 4x, undecided.
    monkeypatch.setattr(leaks_module, "_CHEAP_S", 0.0)
    slow = mb.find_leaks(lc.bursts_at(700, 1500, 3000), warmup=0)
    assert ("undecided", 4000) == (slow.verdict, slow.iterations), slow.explanation


def test_the_judgement_between_lengthenings_is_not_measured() -> None:
    # A burst at call 700 makes the 1,000-call run undecided; the run goes on to 2,000 calls,
    # after which nothing more is kept. The objects of the first judgement must be gone before
    # the rounds that follow it are read: alive, they were a step of ~100 blocks there (a
    # test runner's I/O thread, busy under load, adds a few tens to a round now and then).
    report = mb.find_leaks(lc.bursts_at(700), warmup=0)
    assert "no leak" == report.verdict, report.explanation
    assert report.extended_from == 1000
    at = {r.calls: r for r in report.rounds}
    assert abs(at[1100].blocks - at[1000].blocks) < 50, (at[1000], at[1100])


def test_growth_that_stops_late_in_the_run_is_no_leak() -> None:
    report = mb.find_leaks(lc.memo_filling(800), warmup=0)
    assert "no leak" == report.verdict, report.explanation


def test_a_rise_the_attribution_round_does_not_see_again_is_measured_once_more() -> None:
    # The memo fills over exactly the first run's 1,000 calls: the rounds rise to their end,
    # the attribution round after them keeps nothing (as when another thread's allocations
    # made the rise). A second run is flat, and its judgement stands.
    report = mb.find_leaks(lc.memo_filling(1000), warmup=0)
    assert "no leak" == report.verdict, report.explanation
    assert abs(report.rounds[-1].held - report.rounds[0].held) < 10_000, report.rounds


def test_a_leak_that_slows_but_goes_on_is_decided_by_a_longer_run() -> None:
    report = mb.find_leaks(lc.fills_then_trickles(fill=800, every=10), warmup=0)
    assert "leak" == report.verdict, report.explanation
    assert report.extended_from == 1000
    assert "lengthened from 1,000 to" in report.explanation
    assert report.holders[0].per_call == pytest.approx(0.1, abs=0.03)


def test_the_explanation_quotes_the_tolerance_and_noise_of_the_run() -> None:
    report = mb.find_leaks(lc.lru_bound_below_calls)
    shown = f"{report.tolerance:.1f} B".replace(".0 B", " B")
    assert f"tolerance {shown} per call: 4 × " in report.explanation
    # The late half the words name: the second half of the series, or of what follows its first
    # fall back to the floor (the cache's evictions can make one), so it is read from the words.
    late = re.search(r"over the last ([\d,]+) calls", report.explanation)
    assert late is not None, report.explanation
    calls = int(late.group(1).replace(",", ""))
    assert 0 < calls < report.iterations
    assert report.tolerance == pytest.approx(4 * report.noise_bytes / calls, rel=0.01)


# --- native memory ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def native_lib(tmp_path_factory: pytest.TempPathFactory) -> lc.NativeLib:
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is needed (the CI script installs gcc)"
    folder = tmp_path_factory.mktemp("native")
    source = folder / "native.c"
    source.write_text(lc.NATIVE_SOURCE)
    lib = folder / "libnative.so"
    # -O0: at -O1 gcc drops scratch()'s malloc+memset+free entirely (the memory is never read),
    # which left the native hard negative below with no native memory to judge.
    subprocess.run([compiler, "-shared", "-fPIC", "-O0", "-o", str(lib), str(source)], check=True)
    return lc.NativeLib(str(lib))


def test_a_native_malloc_per_call_is_a_leak_with_its_python_line(
    native_lib: lc.NativeLib,
) -> None:
    report = mb.find_leaks(native_lib.keeps_4k, iterations=500)
    assert report.leaking, report.explanation
    # From one attribution round (malloc growth beyond what tracemalloc traced): coarser.
    assert 2048 < report.native_bytes_per_call < 6144
    assert report.bytes_per_call == pytest.approx(4096, rel=0.2)
    native = [s for s in report.sites if s.kind == "native"]
    assert native, report.sites
    assert "self.lib.keep(4096)" in _source(native[0].file, native[0].line)
    assert native[0].bytes_per_call == pytest.approx(4096, rel=0.05)
    assert "per call of native memory" in report.explanation
    assert "(native)" in report.to_markdown()


def test_native_temporaries_freed_each_call_are_no_leak(native_lib: lc.NativeLib) -> None:
    report = mb.find_leaks(native_lib.scratch_4k, iterations=500)
    assert "no leak" == report.verdict, report.explanation


def test_without_memray_a_native_leak_is_named_from_mallocs_total(tmp_path: Path) -> None:
    # A fresh interpreter where importing memray fails.
    blocker = tmp_path / "memray.py"
    blocker.write_text("raise ImportError('memray is not installed here')\n")
    code = (
        "import membound as mb\n"
        "from tests.judge import leak_targets as lt\n"
        "r = mb.find_leaks(lt.native_malloc_leak, iterations=200)\n"
        "print(r.verdict)\n"
        "print(r.explanation)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.startswith("leak\n")
    # No memray: the line comes from malloc's total, read line by line.
    assert "allocated natively under tests/judge/leak_targets.py:" in out, out
    assert "read from malloc's total line by line" in out, out


def test_a_leak_through_a_pointer_to_libc_malloc_names_its_line() -> None:
    # ctypes calls libc's malloc by a pointer it looked up: memray's hooks see nothing, the
    # line comes from malloc's total.
    report = mb.find_leaks(lt.native_malloc_leak, iterations=200)
    assert report.leaking, report.explanation
    native = [s for s in report.sites if s.kind == "native"]
    assert native, report.explanation
    assert "_LIBC.malloc(100_000)" in _source(native[0].file, native[0].line)
    assert native[0].bytes_per_call == pytest.approx(100_000, rel=0.01)
    assert report.native_sites_by == "read from malloc's total line by line"
    assert "memray saw no kept malloc" not in report.explanation


# --- isolate, timeout, CLI and the no_leak marker ----------------------------------------------


def test_isolate_runs_the_hunt_in_a_fresh_interpreter_with_the_same_report() -> None:
    report = mb.find_leaks("tests.judge.leak_cases:floats_kept_in_a_dict", isolate=True)
    assert isinstance(report, mb.LeakReport)
    assert report.leaking, report.explanation
    assert report.holders[0].path.endswith(".LATENCIES")
    # In this process nothing was called: the dict here is as the tests left it.
    before = len(lc.LATENCIES)
    mb.find_leaks(lc.ids_kept_in_a_set, iterations=100, isolate=True)
    assert before == len(lc.LATENCIES)


def test_isolate_reports_the_targets_own_failure() -> None:
    with pytest.raises(mb.ChildFailed, match="ValueError: broken target"):
        mb.find_leaks("tests.judge.leak_targets:raises_value_error", isolate=True)
    with pytest.raises(mb.TargetError, match="cannot import"):
        mb.find_leaks("tests.judge.leak_targets:missing", isolate=True)


def _sleeps_forever() -> None:
    time.sleep(3600)


def test_timeout_stops_a_hunt_that_never_returns_in_this_process() -> None:
    started = time.monotonic()
    with pytest.raises(mb.LimitExceeded, match="timeout of 1 s"):
        mb.find_leaks(_sleeps_forever, timeout=1)
    assert time.monotonic() - started < 10


def test_timeout_stops_an_isolated_hunt_and_leaves_no_process() -> None:
    started = time.monotonic()
    with pytest.raises(mb.LimitExceeded, match="the child was stopped"):
        mb.find_leaks("tests.judge.test_leak_verdicts:_sleeps_forever", isolate=True, timeout=2)
    assert time.monotonic() - started < 15
    children = psutil.Process().children(recursive=True)
    assert [] == [p for p in children if "membound.judge._leaks_child" in " ".join(p.cmdline())]


def test_cli_expect_clean_fails_on_undecided_and_leak(tmp_path: Path) -> None:
    script = tmp_path / "targets.py"
    script.write_text(
        "from tests.judge.leak_cases import BURSTS_PAST_EVERY_LENGTHENING as AT\n"
        "from tests.judge.leak_cases import bursts_at, ids_kept_in_a_set\n"
        "bursts = bursts_at(*AT)\n"
        "def filling():\n    bursts()\n"
        "def leaking():\n    ids_kept_in_a_set()\n"
        "def clean():\n    return sum(range(100))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    codes = {}
    for name in ("filling", "leaking", "clean"):
        out = tmp_path / f"{name}.json"
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "membound", "leaks", f"{script}:{name}"),
                *("--warmup", "0", "--expect-clean", "--json", str(out)),
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        codes[name] = proc.returncode
        verdict = json.loads(out.read_text())["result"]["verdict"]
        assert {"filling": "undecided", "leaking": "leak", "clean": "no leak"}[name] == verdict
        if name == "filling":
            assert re.search(r"run about [\d,]+ iterations to decide", proc.stderr)
    assert {"filling": 1, "leaking": 1, "clean": 0} == codes


def test_no_leak_marker_fails_an_undecided_test_with_the_iterations_that_decide(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import itertools
        import pytest

        BATCHES = []
        COUNT = itertools.count(1)

        @pytest.mark.no_leak(iterations=100, warmup=0)
        def test_fills_slowly():
            if next(COUNT) in (70, 150, 300, 600, 1200):
                BATCHES.append([str(i) * 3 for i in range(2000)])
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no_leak: test_fills_slowly undecided: *run about * iterations*"])


def test_format_of_sizes_in_the_explanation_matches_format_size() -> None:
    report = mb.find_leaks(lc.exceptions_kept)
    per_call = report.bytes_per_call
    shown = format_size(per_call) if per_call >= 1024 else f"{per_call:.1f} B"
    assert f"leaks {shown.replace('.0 B', ' B')} per call" in report.explanation


def test_bounded_pool_declares_its_bound_to_leak_hunting() -> None:
    from membound.measure.holders import size_of

    pool: mb.BoundedPool[dict[str, int]] = mb.BoundedPool(dict, max_size=3)
    assert (0, 3) == size_of(pool)
    with contextlib.ExitStack() as stack:
        for _ in range(5):
            stack.enter_context(pool.acquire())
    assert (3, 3) == size_of(pool)


def test_a_holders_entries_are_counted_against_every_call_made() -> None:
    """A list that keeps one entry a call holds as many entries as calls were made when it was
    counted, and the note says how many calls the hunt made beyond the warm-up and the rounds
    (the attribution's): an entry count above "50 warm-up calls, 300 calls" is explained."""
    kept: list[bytearray] = []

    def one_a_call() -> None:
        kept.append(bytearray(100))

    report = mb.find_leaks(one_a_call, iterations=300, warmup=50)
    assert report.leaking, report.explanation
    top = report.holders[0]
    assert top.size == top.calls  # one entry a call, every call counted
    assert report.calls == len(kept)
    assert top.calls > report.warmup + report.iterations
    assert f"{report.calls:,} calls in all (the rest found where" in leak_note(report)
    table = leak_holders_table(report)
    assert f"{top.size:,} after {top.calls:,} calls" == table.rows[0][table.head.index("entries")]


def test_a_target_that_raises_shows_its_own_traceback_not_membounds_frames() -> None:
    """The traceback of the measured code's failure starts at the measured code."""

    def boom() -> None:
        raise ValueError("bad input row")

    with pytest.raises(mb.ChildFailed) as raised:
        mb.find_leaks(boom, iterations=100, warmup=0)
    shown = raised.value.traceback or ""
    assert "in boom" in shown, shown
    assert "ValueError: bad input row" in shown, shown
    assert "membound/measure" not in shown, shown  # rounds.py, the frame that called it


_GROWN: list[int] = []


def _add(value: int) -> None:
    _GROWN.append(value)  # one line, reached from two stacks


def _warm_up() -> None:
    for i in range(5000):
        _add(i)


def _one_round() -> None:
    for i in range(2000):
        _add(i)


def test_a_lines_allocation_site_is_what_it_kept_net_of_what_it_freed() -> None:
    """A list grown at one line reallocates its array there under another stack than the one
    that made the array before: the line keeps 8 B a call (a pointer), not the new array's
    whole size spread over the calls (freed and allocated counted together by line)."""
    import tracemalloc

    _GROWN.clear()
    tracemalloc.start(16)
    try:
        _warm_up()
        before = tracemalloc.take_snapshot()
        _one_round()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    sites = leaks_module._sites(before, after, 2000)
    line = next(s for s in sites if s.file == __file__ and s.count_per_call < 0.01)
    assert line.bytes_per_call < 16, sites
