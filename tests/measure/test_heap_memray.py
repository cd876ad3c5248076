"""``heap="memray"``: the same heap figures as tracemalloc for Python objects, native
allocations counted too, in this process, a fresh interpreter and a Python command."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import sys

import pytest

import membound as mb
from tests.judge.leak_cases import NATIVE_SOURCE
from tests.measure import targets

MIB = 2**20


def _objects() -> None:
    items = [{"i": i, "pair": (i, -i)} for i in range(150_000)]
    del items


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    """A tiny C library whose ``scratch(n)`` mallocs n bytes, touches and frees them: native
    memory, as a C extension allocates it (memray hooks the library's malloc). Built without
    optimisation: a compiler may drop a malloc whose memory is never read."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "a C compiler is needed (the CI script installs gcc)"
    folder = tmp_path_factory.mktemp("native")
    (folder / "native.c").write_text(NATIVE_SOURCE)
    lib = folder / "libnative.so"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O0", "-o", str(lib), str(folder / "native.c")],
        check=True,
    )
    loaded = ctypes.CDLL(str(lib))
    loaded.scratch.argtypes = [ctypes.c_size_t]
    return loaded


def test_memray_and_tracemalloc_agree_on_python_objects() -> None:
    with mb.track("objects", heap="memray") as by_memray:
        _objects()
    with mb.track("objects", heap="tracemalloc") as by_tracemalloc:
        _objects()
    memray, traced = by_memray.result, by_tracemalloc.result
    assert memray is not None
    assert traced is not None
    assert memray.heap_source is not None
    assert memray.heap_source.startswith("memray")
    assert traced.heap_source is not None
    assert traced.heap_source.startswith("tracemalloc")
    assert memray.heap_peak is not None
    assert traced.heap_peak is not None
    assert traced.heap_peak > 30 * MIB
    assert abs(memray.heap_peak - traced.heap_peak) < 0.1 * traced.heap_peak
    # memray's own table of live allocations is measured apart: ~96 B for each of the 450,000+
    # objects live at the peak (a dict, a tuple and ints per item)
    assert memray.heap_overhead is not None
    assert 30 * MIB < memray.heap_overhead < 150 * MIB, memray.heap_overhead
    assert memray.heap_current is not None
    assert memray.heap_current < MIB  # all freed


def test_memray_counts_native_allocations_that_tracemalloc_misses(native: ctypes.CDLL) -> None:
    with mb.track("native", heap="memray") as by_memray:
        native.scratch(40 * MIB)
    with mb.track("native", heap=True) as by_tracemalloc:
        native.scratch(40 * MIB)
    assert by_memray.result is not None
    assert by_tracemalloc.result is not None
    assert (by_memray.result.heap_peak or 0) >= 40 * MIB
    assert (by_tracemalloc.result.heap_peak or 0) < MIB


def test_memray_heap_in_a_fresh_interpreter_and_a_command() -> None:
    isolated = mb.measure(targets.allocate, 30 * MIB, heap="memray")
    assert isolated.heap_source is not None
    assert isolated.heap_source.startswith("memray")
    assert 30 * MIB <= (isolated.heap_peak or 0) < 32 * MIB
    command = mb.measure_command(
        [sys.executable, "-c", "block = bytearray(25 * 2**20)"], heap="memray", quiet=True
    )
    assert command.ok
    assert command.heap_source is not None
    assert command.heap_source.startswith("memray")
    assert 25 * MIB <= (command.heap_peak or 0) < 27 * MIB


def test_memray_cannot_nest_and_bad_modes_are_one_line() -> None:
    with mb.track("outer", heap="memray"), pytest.raises(mb.TargetError, match="cannot start"):  # noqa: SIM117
        with mb.track("inner", heap="memray"):
            pass
    with pytest.raises(mb.TargetError, match="heap='fast' is not a heap mode"):
        mb.track("x", heap="fast")  # type: ignore[arg-type]


def test_the_cli_takes_heap_memray_and_reports_its_source(tmp_path: object) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "membound",
            "run",
            "--heap=memray",
            "--",
            sys.executable,
            "-c",
            "block = bytearray(25 * 2**20)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert "| heap peak (memray) | 25.0 MiB |" in done.stdout
    assert "memray counts native allocations too" in done.stdout
