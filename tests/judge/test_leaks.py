from __future__ import annotations

import functools
import gc
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

import membound as mb
from tests.judge import leak_targets as lt


@pytest.mark.parametrize(
    "target",
    [
        lt.clean,
        lt.bounded_lru,
        lt.re_cache,
        lt.bounded_deque,
        lt.sawtooth,
        lt.collected_cycles,
        lt.logging_calls,
        lt.asyncio_runs,
    ],
    ids=lambda f: f.__name__,
)
def test_hard_negatives_are_not_leaks(target: object) -> None:
    report = mb.find_leaks(target)  # type: ignore[arg-type]
    assert "no leak" == report.verdict, report.explanation
    assert not report.leaking
    assert report.explanation.startswith("no leak")
    assert () == report.sites


def test_a_reading_drops_the_names_cpythons_type_cache_keeps() -> None:
    from membound.measure.rounds import collect

    class Probe:
        pass

    name = "".join(["attribute_", "never_seen"])  # a fresh string, not interned
    before = sys.getrefcount(name)
    hasattr(Probe, name)
    assert sys.getrefcount(name) > before  # the cache holds it: a leak to a reading
    collect()
    assert sys.getrefcount(name) == before


def test_a_session_per_request_is_found_with_site_type_and_chain() -> None:
    report = mb.find_leaks(lt.session_per_request)
    assert report.leaking
    assert report.bytes_per_call > 200
    top = report.sites[0]
    assert top.file.endswith("leak_targets.py")
    site_lines = {s.line for s in report.sites}
    source = open(top.file).read().splitlines()  # noqa: SIM115
    assert any("SESSIONS[request_id] = Session" in source[line - 1] for line in site_lines) or any(
        "self." in source[line - 1] for line in site_lines
    )
    types = {t.type_name: t.per_call for t in report.types}
    assert abs(types["tests.judge.leak_targets.Session"] - 1.0) < 0.1
    assert report.chain[0] == "module tests.judge.leak_targets"
    assert any("SESSIONS" in step for step in report.chain)
    assert report.chain[-1].endswith("(Session)")
    assert "leak_targets.py" in report.explanation


def test_a_slow_leak_of_about_100_bytes_per_call() -> None:
    report = mb.find_leaks(lt.slow_leak)
    assert report.leaking, report.explanation
    assert 90 <= report.bytes_per_call <= 130
    assert any(s.line and "KEPT.append" in _line(s) for s in report.sites)


def test_keeping_every_event_is_a_leak() -> None:
    report = mb.find_leaks(lt.history_leak, iterations=300)
    assert report.leaking
    types = {t.type_name for t in report.types}
    assert {"builtins.dict", "builtins.list"} <= types


def test_a_native_buffer_leak() -> None:
    report = mb.find_leaks(lt.native_buffer_leak, iterations=200)
    assert report.leaking
    assert report.bytes_per_call > 4000


def test_the_tolerance_decides() -> None:
    assert not mb.find_leaks(lt.slow_leak, tolerance="1 KiB").leaking
    assert mb.find_leaks(lt.slow_leak, tolerance=16).leaking


def test_cycles_freed_only_by_the_cyclic_gc_are_counted() -> None:
    report = mb.find_leaks(lt.collected_cycles, iterations=200)
    assert not report.leaking
    assert report.cycles_per_call >= 2.0  # two Node objects (and their __dict__s) per call
    assert "cyclic GC" in report.explanation
    assert gc.isenabled()  # the collector is back on


def test_a_bounded_cache_is_explained_as_early_growth() -> None:
    # A cache of its own: one filled by an earlier test would not grow here.
    cached = functools.lru_cache(maxsize=256)(lambda key: [key] * 20)
    keys = itertools.count()

    def bounded_lru() -> list[int]:
        return cached(next(keys) % 1000)  # type: ignore[no-any-return]

    report = mb.find_leaks(bounded_lru, iterations=1000, warmup=0)
    assert "no leak" == report.verdict, report.explanation
    assert "levelled" == report.shape
    assert report.early_growth_bytes > 0
    assert "a cache filling to its bound" in report.explanation


def test_target_by_name_and_bad_targets() -> None:
    report = mb.find_leaks("tests.judge.leak_targets:clean", iterations=100)
    assert not report.leaking
    with pytest.raises(mb.TargetError, match="cannot import"):
        mb.find_leaks("tests.judge.leak_targets:missing")
    with pytest.raises(mb.TargetError, match="rounds"):
        mb.find_leaks(lt.clean, rounds=3)
    with pytest.raises(mb.TargetError, match="too few to tell a leak from noise"):
        mb.find_leaks(lt.clean, iterations=5)


@pytest.mark.parametrize(("rounds", "fewer"), [(4, False), (8, True)])
def test_too_few_calls_a_round_hints_only_what_can_be_done(rounds: int, fewer: bool) -> None:
    """At the fewest rounds allowed, "or fewer rounds" is no way out (a new user tried it)."""
    with pytest.raises(mb.TargetError) as caught:
        mb.find_leaks(lt.clean, iterations=12, rounds=rounds)
    assert f"use at least {10 * rounds} iterations" in caught.value.hint
    assert fewer == ("fewer rounds" in caught.value.hint)


def test_a_native_leak_is_seen_in_rss(tmp_path: Path) -> None:
    # In a fresh interpreter: a long-lived test worker has free resident heap that would
    # absorb the first megabytes of a malloc leak before RSS moves.
    out = tmp_path / "leaks.json"
    target = "tests.judge.leak_targets:native_malloc_leak"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "membound",
            "leaks",
            target,
            "--iterations",
            "300",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert 0 == proc.returncode, proc.stderr
    report = json.loads(out.read_text())["result"]
    assert report["leaking"]
    assert 80_000 < report["native_bytes_per_call"] < 120_000
    assert report["explanation"].startswith("leaks ")
    assert "per call of native memory" in report["explanation"]
    # ctypes calls libc's malloc through a pointer memray does not intercept: no Python site.
    assert [] == [s for s in report["sites"] if s["kind"] == "python"]


def test_a_failing_target_is_reported_as_its_own_failure() -> None:
    with pytest.raises(mb.ChildFailed) as info:
        mb.find_leaks(lt.raises_value_error)
    assert "ValueError: broken target" in str(info.value)
    assert "leak_targets.py" in info.value.traceback
    assert isinstance(info.value.__cause__, ValueError)


def test_rounds_are_recorded_for_charts() -> None:
    report = mb.find_leaks(lt.clean, iterations=100, rounds=5)
    assert [r.phase for r in report.rounds] == ["trend"] * 3 + ["late"] * 2
    assert all(r.held is not None and r.blocks > 0 for r in report.rounds)
    calls = [r.calls for r in report.rounds]
    assert calls == sorted(calls)


def _line(site: mb.Site) -> str:
    with open(site.file) as f:
        return f.read().splitlines()[site.line - 1]


def test_a_hunt_leaves_the_collector_as_it_found_it() -> None:
    # The rounds freeze what lived before them (so that collections walk only the calls' own
    # objects) and thaw it after; a process that froze objects itself keeps them frozen.
    from membound.measure.heap import _STARTUP_FROZEN

    # CPython's own frozen objects (3.12's deep-frozen constants) are thawed by the first hunt.
    assert gc.get_freeze_count() in (0, _STARTUP_FROZEN)
    report = mb.find_leaks(lt.history_leak, iterations=300)
    assert report.leaking, report.explanation
    assert 0 == gc.get_freeze_count()
    gc.freeze()  # as a pre-fork server does before it forks its workers
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        report = mb.find_leaks(lt.history_leak, iterations=300)
        assert report.leaking, report.explanation
        assert report.sites, report.explanation  # the line that allocates is still named
        # neither thawed (0) nor frozen further; frozen objects freed meanwhile leave it
        assert 0.99 * frozen < gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()


def test_a_module_imported_while_holders_are_watched_is_not_a_holder(tmp_path: Path) -> None:
    # The first call imports a module (a lazy import, or another thread's): sys.modules and the
    # import caches grow by an entry, which is not what the calls keep.
    from membound.measure.holders import growing_holders

    (tmp_path / "lazily_imported_once.py").write_text("VALUE = 1\n")
    sys.path.insert(0, str(tmp_path))

    def first_call_imports() -> None:
        import lazily_imported_once  # noqa: F401  (keeps nothing else)

    try:
        grown, _ = growing_holders(first_call_imports, 20, min_size=4)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lazily_imported_once", None)
    assert sys.modules not in [g.holder for g in grown], [g.type_name for g in grown]


_EVALUATED: list[int] = []
_KEPT_BESIDE_A_PROXY: list[object] = []


def _evaluate_the_proxy(kept: list[object]) -> dict[str, int]:
    _EVALUATED.append(1)
    return {"kept": len(kept)}


def test_a_leak_hunt_never_evaluates_a_lazy_proxy_it_meets_on_the_heap() -> None:
    """Celery's task proxies (like Django's SimpleLazyObject) evaluate what they stand for when
    ``__class__`` or ``__dict__`` is read: a heap scan using ``isinstance`` or ``getattr`` ran
    the application's code mid-measurement (tasks registered, modules imported, and the leak
    blamed on ``sys.modules``)."""
    from celery.local import PromiseProxy

    lazy = PromiseProxy(_evaluate_the_proxy, args=(_KEPT_BESIDE_A_PROXY,))

    def leaky() -> None:
        _KEPT_BESIDE_A_PROXY.append(object())

    report = mb.find_leaks(leaky)
    assert report.leaking
    assert _EVALUATED == [], "the leak hunt evaluated a lazy proxy"
    assert "kept by `_KEPT_BESIDE_A_PROXY`" in report.explanation
    assert lazy.__evaluated__() is False


_AWAITED: list[bytes] = []


async def _await_futures() -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    for _ in range(20):
        future = loop.create_future()
        loop.call_soon(future.set_result, None)
        await future  # a future iterator, freed into _asyncio's free list after
    _AWAITED.append(bytes(300))


@pytest.mark.timeout(120)
def test_a_leak_hunt_of_asyncio_code_ends_on_every_python() -> None:
    """CPython 3.12.0–3.12.5 and 3.13.0 give freed future iterators as referents of the
    ``_asyncio`` module (gh-122695); the holder scan once took them, and the next collection
    looped for ever (an anyio test's hunt never ended on 3.12.1)."""
    import asyncio

    report = mb.find_leaks(lambda: asyncio.run(_await_futures()), iterations=200)
    assert report.leaking
    assert "_AWAITED" in report.explanation
