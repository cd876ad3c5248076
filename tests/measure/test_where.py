"""``where=``: the lines that held the peak, on real processes, real memray, real SQLite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import membound as mb
from membound._errors import TargetError
from membound.results import Measurement, PeakSite
from tests.measure import where_targets as wt
from tests.measure.interpreters import other_version_without_memray

HERE = str(Path(wt.__file__).resolve())
MIB = 1 << 20


def _at(name: str) -> str:
    return f"{HERE}:{wt.line_of(name)}"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``membound ARGS`` in a subprocess, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "membound", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _named(sites: tuple[PeakSite, ...]) -> list[PeakSite]:
    return [s for s in sites if s.kind != "other"]


def test_two_callers_of_one_helper_are_two_sites_each_with_its_caller() -> None:
    m = mb.measure(wt.two_callers, where=True)
    sites = _named(m.peak_sites)
    first = sites[0]
    assert (first.location, first.caller) == (_at("helper"), _at("first_call"))
    assert first.function == "strings"
    # The thread's 16 MB sits between the two calls' shares (30 MB and 15 MB of strings).
    assert [_at("thread")] == [s.location for s in sites if s.location == _at("thread")]
    assert any(s.location == _at("helper") and s.caller == _at("second_call") for s in sites)
    held = {s.location: s.bytes for s in sites}
    assert _at("freed") not in held  # freed before the peak: not at the peak
    assert 14_000_000 < held[_at("thread")] < 18_000_000
    (thread,) = [s for s in sites if s.location == _at("thread")]
    assert thread.thread is not None
    assert thread.thread.startswith("Thread-"), thread
    assert thread.caller == _at("start"), thread.trace  # the line that started it
    assert first.thread is None  # the main thread's sites name no thread
    assert sum(s.share for s in m.peak_sites) == pytest.approx(1.0, abs=0.02)
    assert sum(s.share for s in sites[:10]) >= 0.9
    assert m.where_source is not None
    assert "memray" in m.where_source


def test_what_membounds_own_threads_hold_is_no_site() -> None:
    """The capture's own poller once showed as a 0.4 % site (``where_capture.py`` in
    ``folder_disk_use``): memory its threads hold at the peak is the tracer's, not a line of
    the user's."""
    m = mb.measure(wt.beside_a_thread_named_like_membounds, where=True)
    sites = _named(m.peak_sites)
    assert (sites[0].location, sites[0].caller) == (_at("helper"), _at("own_kept"))
    assert _at("thread") not in [s.location for s in sites], sites


def test_a_pools_threads_are_named_by_the_users_line_that_started_them() -> None:
    # The pool's threads run json.loads with only the standard library's frames on their
    # stacks: the line of the user's code that led to their start is the site.
    m = mb.measure(wt.pool_parses, where=True)
    top = _named(m.peak_sites)[0]
    assert top.location == _at("pool_map"), m.peak_sites
    assert top.share > 0.5
    assert top.thread is not None
    assert "ThreadPoolExecutor-0_" in top.thread, top
    assert top.thread_words in (f"thread {top.thread}", top.thread)
    assert f"[{top.thread_words}]" in m.to_markdown()


def test_native_sites_name_sqlites_allocator_at_the_users_line() -> None:
    m = mb.measure(wt.sqlite_pages, where="native")
    native = [s for s in m.peak_sites if s.kind == "native"]
    assert native, m.peak_sites
    top = native[0]
    assert top.location == _at("sqlite")
    assert top.native_symbol is not None
    assert "sqlite3" in top.native_symbol
    assert top.bytes > 15_000_000
    # Without native stacks the same memory is counted at the same Python line.
    plain = _named(mb.measure(wt.sqlite_pages, where=True).peak_sites)
    assert plain[0].location == _at("sqlite")
    assert plain[0].kind == "python"


def test_native_sites_name_the_code_past_a_librarys_allocator_wrappers() -> None:
    """numpy asks for an array's buffer through two wrappers of its own (``default_malloc``
    under ``PyDataMem_UserNEW``), built without source lines, whose ``Py…`` names read like the
    interpreter's: the site names numpy's array constructor, the code that wanted the memory."""
    m = mb.measure(wt.numpy_buffer, where="native")
    native = [s for s in m.peak_sites if s.kind == "native"]
    assert native, m.peak_sites
    top = native[0]
    assert top.location == _at("numpy")
    assert top.bytes >= 40_000_000
    assert top.native_symbol is not None
    assert "alloc" not in top.native_symbol.lower(), top.native_symbol
    assert not top.native_symbol.lower().endswith("new"), top.native_symbol
    assert top.native_symbol.startswith("PyArray_"), top.native_symbol


def test_a_limit_stop_hands_over_the_lines_that_held_it() -> None:
    m = mb.measure(wt.grows_forever, where=True, limit="200 MB", timeout=60)
    assert m.outcome == "limit"
    assert _named(m.peak_sites)[0].location == _at("grows")
    assert "held by" in m.outcome_detail
    assert "grows" in m.outcome_detail


def test_a_limit_stop_without_where_says_how_to_get_the_lines() -> None:
    m = mb.measure(wt.grows_forever, limit="150 MB", timeout=60)
    assert m.outcome == "limit"
    assert m.peak_sites == ()
    assert "where=True" in m.outcome_detail


def test_in_process_track_names_the_called_lines() -> None:
    with mb.track("block", where=True) as t:
        kept = wt.strings(200_000)
    assert t.result is not None
    top = _named(t.result.peak_sites)[0]
    assert top.location == _at("helper")
    # The block's own line is the caller (memray cannot see it; the block's frame is added).
    assert top.caller is not None
    assert top.caller.startswith(f"{Path(__file__).resolve()}:")
    assert kept


#: Blocks below and above their ``sites_from``, in a fresh interpreter: in a long-lived one
#: (an xdist worker after hundreds of tests) even 16 MiB of new bytes can come from memory the
#: allocator holds already and raise no RSS, so nothing would be read.
RISE_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
import membound as mb
from membound.measure.where import engine
from tests.measure import where_targets as wt
if {engine!r} == "tracemalloc":
    engine.memray_available = lambda: False  # the engine where memray is not installed
with mb.track("small", interval=None, where=True, sites_from=64 * 2**20) as small:
    kept = wt.strings(1000)
with mb.track("big", interval=None, where=True, sites_from=2**20) as big:
    filled = wt.filled(16 * 2**20)
decorated = mb.track("call", interval=None, where=True, sites_from=64 * 2**20)
decorated(wt.strings)(1000)
out = {{}}
for name, m in (("small", small.result), ("big", big.result), ("call", decorated.result)):
    top = m.peak_sites[0] if m.peak_sites else None
    out[name] = {{
        "rise": m.rss_peak_delta,
        "sites": len(m.peak_sites),
        "top": top and top.location,
        "source": m.where_source,
        "note": m.where_note,
    }}
print(json.dumps(out))
"""


@pytest.mark.parametrize("engine", ["memray", "tracemalloc"])
def test_lines_are_read_only_from_the_rise_asked_for(engine: str) -> None:
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", RISE_SCRIPT.format(root=root, engine=engine)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    out = json.loads(done.stdout)
    small, big, call = out["small"], out["big"], out["call"]
    assert 0 == small["sites"]
    assert "the lines were not read" in small["note"]
    assert "under the 64.0 MiB they are read from" in small["note"]
    assert big["rise"] >= 2**20
    assert engine in (big["source"] or "")
    assert _at("filled") == big["top"]
    assert "not read" not in big["note"]
    # each call of a decorated function the same way
    assert "the lines were not read" in call["note"]


def test_unread_captures_reuse_one_folder_and_leave_none(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import glob, os, tempfile
        import membound as mb
        for _ in range(20):
            with mb.track("small", interval=None, where=True, sites_from=2**30):
                pass
        print(len(glob.glob(os.path.join(tempfile.gettempdir(), "membound-memray-*"))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert "1" == done.stdout.strip(), done.stderr  # one kept for the next capture
    assert [] == [p.name for p in tmp_path.glob("membound-memray-*")]  # and removed at exit


def test_nested_memray_trackers_are_refused_in_one_line() -> None:
    with (
        mb.track("outer", where=True),
        pytest.raises(TargetError, match="already active"),
        mb.track("inner", where=True),
    ):
        pass


def test_a_bad_where_lists_the_choices() -> None:
    with pytest.raises(TargetError) as info:
        mb.measure(wt.nothing, where="banana")
    assert "banana" in str(info.value)
    assert "native" in str(info.value)


def test_a_run_that_allocates_nothing_says_so() -> None:
    m = mb.measure(wt.nothing, where=True)
    assert _named(m.peak_sites) == []
    assert "nothing to attribute" in m.where_note


def test_sites_round_trip_through_json() -> None:
    m = mb.measure(wt.two_callers, where=True)
    back = Measurement.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back.peak_sites == m.peak_sites
    assert back.end_sites == m.end_sites
    assert isinstance(m.to_dict()["peak_sites"][0]["trace"], list)


SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from tests.measure import where_targets as wt
    wt.two_callers()
    """
)


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "job.py"
    path.write_text(SCRIPT.format(root=str(Path(__file__).resolve().parents[2])))
    return path


def test_a_command_under_run_where_gets_the_same_lines(tmp_path: Path) -> None:
    m = mb.measure_command([sys.executable, str(_script(tmp_path))], where=True, quiet=True)
    first = _named(m.peak_sites)[0]
    assert (first.location, first.caller) == (_at("helper"), _at("first_call"))


def test_without_memray_the_tracemalloc_fallback_names_the_lines(tmp_path: Path) -> None:
    # Another Python than this one, without memray: membound's cannot be lent to it.
    other = other_version_without_memray()
    m = mb.measure_command([other, str(_script(tmp_path))], where=True, quiet=True)
    assert m.where_source is not None
    assert "tracemalloc" in m.where_source
    first = _named(m.peak_sites)[0]
    assert (first.location, first.caller) == (_at("helper"), _at("first_call"))
    assert first.function == "strings"
    # The tracer's own memory is said apart, with a figure inside the RSS it is part of.
    said = re.search(r"tracemalloc's own records .* at least ([0-9.]+) MiB", m.where_note or "")
    assert said, m.where_note
    assert 0 < float(said.group(1)) * 2**20 < m.rss_peak


def test_cli_run_where_prints_the_lines_and_json_carries_them(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = _cli(
        "run",
        "--where",
        "--quiet",
        "--json",
        str(out),
        "--",
        sys.executable,
        str(_script(tmp_path)),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())["result"]
    assert result["peak_sites"][0]["line"] == wt.line_of("helper")


def test_cli_where_banana_is_one_line_exit_2() -> None:
    done = _cli("run", "--where=banana", "--", "true")
    assert done.returncode == 2
    assert "banana" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_where_on_a_non_python_command_is_one_line() -> None:
    done = _cli("run", "--where", "--", "true")
    assert done.returncode == 2
    assert "Python command" in done.stderr
    assert "Traceback" not in done.stderr


def test_compare_where_keeps_the_sites_of_a_run_with_where() -> None:
    c = mb.compare({"two": wt.two_callers, "none": wt.nothing}, repeat=1, where=True)
    assert _named(c.rows[0].peak_sites)[0].location == _at("helper")
    # The figures come from runs without the tracer: its own memory (MiBs) is not in them.
    assert c.rows[1].rss_peak_delta.median < 2 * 2**20


def test_cli_compare_where_prints_each_scenarios_lines(tmp_path: Path) -> None:
    bench = tmp_path / "bench.py"
    bench.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
            import membound as mb
            from tests.measure import where_targets as wt

            @mb.scenario("two callers")
            def two():
                wt.two_callers()
            """
        )
    )
    done = _cli("compare", str(bench), "--repeat", "1", "--where")
    assert done.returncode == 0, done.stderr
    assert "Where the memory was at the peak — two callers (a run with --where)" in done.stdout
    assert f"where_targets.py:{wt.line_of('helper')}" in done.stdout


def test_heap_memray_and_where_share_one_tracker() -> None:
    m = mb.measure(wt.two_callers, heap="memray", where=True)
    assert m.heap_source is not None
    assert "memray" in m.heap_source
    assert m.heap_peak is not None
    assert m.heap_peak > 40_000_000  # 45 MB of strings and the thread's 16 MB at the peak
    assert _named(m.peak_sites)[0].location == _at("helper")


def test_native_in_an_interpreter_of_the_same_abi_without_memray_borrows_membounds(
    tmp_path: Path,
) -> None:
    base = Path(sys.base_prefix, "bin", "python3")
    probe = subprocess.run([base, "-c", "import memray"], check=False, capture_output=True)
    assert probe.returncode != 0, "the base interpreter must lack memray for this test"
    m = mb.measure_command([str(base), str(_script(tmp_path))], where="native", quiet=True)
    assert m.where_source is not None
    assert m.where_source.startswith("memray"), (m.where_source, m.where_note)
    first = _named(m.peak_sites)[0]
    assert (first.location, first.caller) == (_at("helper"), _at("first_call"))


def test_native_in_an_interpreter_that_cannot_load_memray_is_one_line(tmp_path: Path) -> None:
    other = other_version_without_memray()
    with pytest.raises(TargetError, match="memray is not installed for") as info:
        mb.measure_command([other, str(_script(tmp_path))], where="native", quiet=True)
    assert "\n" not in str(info.value)


def test_a_kept_block_is_retained_and_names_the_line_that_keeps_it() -> None:
    with mb.track("cell", where=True) as t:
        wt.keeps_a_block()
    assert t.result is not None
    growth = t.result.growth
    assert growth.pattern == "retained"
    assert f":{wt.line_of('kept')} in keeps_a_block)" in growth.explanation
    assert "leak" not in growth.explanation
    wt.KEPT.clear()


def test_a_limit_stop_with_where_does_not_wait_for_a_long_c_call_to_grow_on(
    tmp_path: Path,
) -> None:
    """One ``bytearray`` of 800 MiB written in one C call answers no request for its capture:
    the run is stopped once it has gone past its limit during the handover, not after the call
    (it ran a 200 MB limit to the whole 800 MiB)."""
    job = tmp_path / "one_call.py"
    job.write_text("def big():\n    return bytearray(b'x') * (800 << 20)\n\nx = big()\n")
    m = mb.measure_command([sys.executable, str(job)], where=True, limit="200 MB", timeout=60)
    assert "limit" == m.outcome, m.outcome_detail
    assert m.rss_peak < 400_000_000, (m.rss_peak, m.outcome_detail)
    assert "one_call.py:2" in m.outcome_detail  # the line running at the stop is still named


def test_at_a_limit_stop_the_lines_bytes_never_exceed_what_was_resident(tmp_path: Path) -> None:
    """memray counts a block whole when it is made; a stop while its pages are being written
    finds the line "holding" more than the process had: its bytes become its share of RSS."""
    job = tmp_path / "touch.py"
    job.write_text(
        "import mmap\n"
        "flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS\n"
        "block = mmap.mmap(-1, 600 << 20, flags=flags)  # mapped, not yet written\n"
        "for at in range(0, len(block), 4096):\n"
        "    block[at] = 1\n"
    )
    m = mb.measure_command([sys.executable, str(job)], where=True, limit="200 MB", timeout=60)
    assert "limit" == m.outcome, m.outcome_detail
    assert m.peak_sites, (m.rss_peak, m.outcome_detail, m.where_note)
    top = _named(m.peak_sites)[0]
    assert top.location.endswith("touch.py:3"), m.peak_sites
    assert sum(s.bytes for s in m.peak_sites) <= m.rss_peak
    assert sum(s.bytes for s in m.end_sites) <= m.rss_peak
    assert "had allocated 600.0 MiB" in m.where_note, m.where_note


def test_the_threads_of_one_pool_are_one_site_and_other_threads_are_apart() -> None:
    from membound.measure.children.where_capture import group_sites

    user = ("work", "/app/job.py", 7)
    stacks = [
        ([user], 300, "python", None, "ThreadPoolExecutor-0_0"),
        ([user], 200, "python", None, "ThreadPoolExecutor-0_1"),
        ([user], 100, "python", None, "loader"),
        ([user], 50, "python", None, None),
    ]
    sites = group_sites(stacks)
    assert [(s["bytes"], s["thread"]) for s in sites] == [
        (500, "2 threads like ThreadPoolExecutor-0_0"),
        (100, "loader"),
        (50, None),
    ]


def _run_where(
    job: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``membound run --where --json -- python JOB``: the finished process and its result."""
    out = job.with_suffix(".json")
    command = [sys.executable, str(job)]
    done = subprocess.run(
        [sys.executable, "-m", "membound", "run", "--where", "--json", str(out), "--", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert 0 == done.returncode, done.stderr
    data: dict[str, Any] = json.loads(out.read_text())
    return done, data.get("result", data)


@pytest.mark.parametrize("installed", [True, False], ids=["installed", "own-folder"])
def test_a_package_installed_into_a_folder_on_the_path_is_a_library(
    tmp_path: Path, installed: bool
) -> None:
    """``pip install --target vendor`` (or a vendored layout with its ``*.dist-info``) on
    PYTHONPATH is a library: the site is the user's line that called it. The same package
    without the metadata is a folder of the user's own code, named as it is."""
    vendor = tmp_path / "vendor"
    (vendor / "bulk").mkdir(parents=True)
    (vendor / "bulk" / "__init__.py").write_text(
        "def rows(n):\n    return [bytes(1000) for _ in range(n)]\n"
    )
    if installed:
        (vendor / "bulk-1.0.dist-info").mkdir()
    job = tmp_path / "job.py"
    job.write_text("import bulk\nkept = bulk.rows(30_000)\nprint(len(kept))\n")
    _done, result = _run_where(job, {**os.environ, "PYTHONPATH": str(vendor)})
    top = result["peak_sites"][0]
    if installed:
        assert (str(job), 2) == (top["file"], top["line"]), top
    else:
        assert (str(vendor / "bulk" / "__init__.py"), 2) == (top["file"], top["line"]), top


POOL_JOB = """
import multiprocessing
def work(n):
    kept = [bytes(1000) for _ in range(n)]
    return len(kept)
if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    with multiprocessing.Pool(3) as pool:
        print(sum(pool.map(work, [30_000] * 3)))
"""


def test_the_processes_a_run_forks_are_traced_and_named(tmp_path: Path) -> None:
    """A Pool's workers hold the memory: their line is the top site, said to be in forked
    processes, each counted at its own peak; the note says which processes were traced."""
    job = tmp_path / "pool_job.py"
    job.write_text(POOL_JOB)
    done, result = _run_where(job)
    top = result["peak_sites"][0]
    assert (str(job), 4) == (top["file"], top["line"]), top
    assert top["function"] == "work"
    assert top["process"] is not None
    assert top["process"].startswith("3 forked processes like "), top["process"]
    assert top["bytes"] >= 3 * 30_000 * 1000, top
    assert "3 forked process(es) traced" in result["where_source"]
    assert "and of the processes it forked" in result["where_note"], result["where_note"]
    assert "[3 forked processes like " in done.stdout


GROWING_POOL = """
import multiprocessing, time
def work(n):
    kept = []
    for _ in range(n):
        kept.append(bytearray(b"x") * 1_000_000)  # written: resident as it is made
        # 100 MB/s for the three: at 300 MB/s, then at 150 MB/s, a CI run's load starved the
        # sampler long enough (0.23 s) for the tree to pass the bound below before its first
        # reading over the limit
        time.sleep(0.03)
    return len(kept)
if __name__ == "__main__":
    multiprocessing.set_start_method("fork")
    with multiprocessing.Pool(3) as pool:
        print(sum(pool.map(work, [400] * 3)))
"""


def test_a_limit_stops_a_traced_tree_near_the_limit_and_names_the_forked_line(
    tmp_path: Path,
) -> None:
    job = tmp_path / "growing_pool.py"
    job.write_text(GROWING_POOL)
    out = tmp_path / "run.json"
    options = ["--where", "--limit", "300MiB", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "membound", "run", *options, "--", sys.executable, str(job)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 1 == done.returncode, done.stderr
    result = json.loads(out.read_text())
    result = result.get("result", result)
    assert "limit" == result["outcome"]
    assert result["rss_peak"] <= 1.1 * 300 * MIB, result["outcome_detail"]
    detail = result["outcome_detail"]
    assert "in the top process and the processes it forked" in detail, detail
    assert f"{job.name}:6 in work in 3 forked processes like " in detail, detail


def test_code_a_library_generated_is_named_by_the_users_line_that_called_it() -> None:
    """A dataclass's ``__init__`` is code dataclasses wrote with ``exec`` (file ``<string>``):
    its line cannot be opened; the user's line that built the records names the site, as for
    any library's code (markdown-it's tokens read "<string>:13 __init__" before)."""
    m = mb.measure(wt.dataclass_records, where=True)
    sites = _named(m.peak_sites)
    assert _at("records") == sites[0].location, [s.location for s in sites]
    assert not [s for s in sites if s.file.startswith("<")], [s.location for s in sites]


def test_c_code_is_the_users_own(tmp_path: Path) -> None:
    """``python -c`` code is ``<string>`` down to its last frame: it is the user's."""
    code = "def build():\n    return [str(i) * 20 for i in range(200_000)]\nkept = build()\n"
    out = tmp_path / "run.json"
    done = _cli("run", "--quiet", "--where", "--json", str(out), "--", sys.executable, "-c", code)
    assert 0 == done.returncode, done.stderr
    result = Measurement.from_dict(json.loads(out.read_text())["result"])
    assert "<string>:2" == _named(result.peak_sites)[0].location, result.peak_sites


def test_the_heap_rows_are_the_heap_engines_own_beside_a_capture(tmp_path: Path) -> None:
    """``--where`` with ``--heap``: the heap rows are tracemalloc's, as their label says, not
    the capture's (memray traced tracemalloc's own tables too: 143 MiB for 102)."""
    job = tmp_path / "job.py"
    job.write_text("d = {f'key{i}': [i, str(i) * 3] for i in range(60_000)}\nprint(len(d))\n")
    argv = [sys.executable, str(job)]
    alone = mb.measure_command(argv, heap=True, quiet=True)
    both = mb.measure_command(argv, heap=True, where=True, quiet=True)
    assert both.heap_source is not None
    assert both.heap_source.startswith("tracemalloc"), both.heap_source
    assert alone.heap_peak is not None
    assert both.heap_peak is not None
    # One deterministic program, one engine: the same figure within a few per cent.
    assert abs(both.heap_peak - alone.heap_peak) < 0.05 * alone.heap_peak, (alone, both)
