from __future__ import annotations

import dataclasses
import functools
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import membound as mb
from membound.measure.isolate.command import _command_peak
from membound.measure.sampler.process import SamplerReport
from membound.results.timeline import Timeline
from tests.measure import targets

MIB = 2**20


def test_isolated_allocation_of_300_mib() -> None:
    m = mb.measure(targets.allocate, 300 * MIB)
    assert 290 * MIB <= m.rss_peak_delta <= 320 * MIB
    assert "isolated" == m.kind
    assert "ok" == m.outcome
    assert 0 == m.exit_code
    # the baseline is a fresh interpreter's, far below the peak
    assert m.rss_start < 100 * MIB


def test_target_by_string_and_partial_give_the_same_answer() -> None:
    by_name = mb.measure("tests.measure.targets:allocate", 64 * MIB)
    by_partial = mb.measure(functools.partial(targets.allocate, 64 * MIB))
    for m in (by_name, by_partial):
        assert 60 * MIB <= m.rss_peak_delta <= 80 * MIB


def test_heap_in_the_child() -> None:
    m = mb.measure(targets.allocate_objects, 100_000, heap=True)
    assert m.heap_peak is not None
    assert m.heap_peak > 100_000 * 100
    assert m.gc_collections is not None


def test_limit_stops_a_runaway_child_and_says_so() -> None:
    m = mb.measure(targets.runaway, limit="150MB", timeout=60)
    assert "limit" == m.outcome
    assert "memory limit 143.1 MiB exceeded at" in m.outcome_detail
    assert m.duration_s < 30  # stopped, not left to eat the machine
    assert m.rss_peak > 150 * 10**6
    with pytest.raises(mb.LimitExceeded):
        m.raise_for_outcome()


def test_timeout_stops_the_child() -> None:
    m = mb.measure(targets.sleeper, 30, timeout=1.0)
    assert "timeout" == m.outcome
    assert "timeout of 1 s" in m.outcome_detail


def test_child_exception_comes_back_with_its_traceback() -> None:
    with pytest.raises(mb.ChildFailed) as info:
        mb.measure(targets.raises)
    assert "ValueError: deliberate failure in the child" in str(info.value)
    assert "def raises" not in info.value.traceback  # a traceback, not source
    assert 'targets.py", line' in info.value.traceback
    assert info.value.measurement is not None


def test_child_killed_by_a_signal() -> None:
    with pytest.raises(mb.ChildFailed, match="SIGKILL"):
        mb.measure(targets.kills_itself)


def test_child_leaving_without_a_report() -> None:
    with pytest.raises(mb.ChildFailed, match="status 7"):
        mb.measure(targets.exits_hard)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module_xyz:f", "No module named 'no_such_module_xyz'"),
        ("tests.measure.targets:nope", "has no attribute 'nope'"),
        ("not a target", "is not of the form"),
        ("missing_file.py:f", "target file not found"),
    ],
)
def test_unimportable_targets(target: str, message: str) -> None:
    with pytest.raises(mb.TargetError, match=message):
        mb.measure(target)


def test_a_files_missing_function_is_named_by_the_file_not_an_internal_module(
    tmp_path: Path,
) -> None:
    """A file is imported under a module name of membound's making: the error names the file."""
    (tmp_path / "handlers.py").write_text("def ok():\n    return 1\n")
    with pytest.raises(mb.TargetError) as info:
        mb.measure(f"{tmp_path / 'handlers.py'}:nosuch")
    assert "handlers.py has no attribute 'nosuch'" in str(info.value)
    assert "__membound" not in str(info.value)


def test_local_function_is_refused_with_a_hint() -> None:
    def local() -> None:
        pass

    with pytest.raises(mb.TargetError) as info:
        mb.measure(local)
    assert "isolate=False" in info.value.hint
    assert mb.measure(local, isolate=False).kind == "in-process"


def test_unpicklable_arguments() -> None:
    with pytest.raises(mb.TargetError, match="cannot be pickled"):
        mb.measure(targets.takes, targets.Unpicklable())


def test_limit_without_isolation_is_refused() -> None:
    with pytest.raises(mb.TargetError, match="isolate=True"):
        mb.measure(targets.allocate, 10, isolate=False, limit="1GB")


def test_script_file_target(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("def work(n):\n    return len(bytearray(n))\n")
    m = mb.measure(f"{script}:work", 80 * MIB)
    assert 75 * MIB <= m.rss_peak_delta <= 95 * MIB


def test_function_of_a_main_script(tmp_path: Path) -> None:
    script = tmp_path / "main_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import membound as mb

            def work(n):
                return len(bytearray(n))

            if __name__ == "__main__":
                m = mb.measure(work, 70 * 2**20)
                print(m.rss_peak_delta // 2**20)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    assert 65 <= int(out.stdout.strip()) <= 85


# --- commands -----------------------------------------------------------------------------------

ALLOC_300 = "import time; b = bytearray(300 * 2**20); time.sleep(0.3)"


@pytest.mark.skipif(
    not Path("/usr/bin/time").exists(), reason="GNU time is not installed (apt install time)"
)
def test_command_peak_agrees_with_gnu_time() -> None:
    gnu = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-c", ALLOC_300],
        capture_output=True,
        text=True,
        check=True,
    )
    reference = int(gnu.stderr.strip().splitlines()[-1]) * 1024
    m = mb.measure_command([sys.executable, "-c", ALLOC_300])
    assert abs(m.rss_peak - reference) / reference < 0.03
    assert 0 == m.exit_code


def test_command_tree_is_summed() -> None:
    # a parent and a child each hold 100 MiB at the same time
    child = "import time; b = bytearray(100 * 2**20); time.sleep(0.6)"
    parent = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', {child!r}]); "
        "b = bytearray(100 * 2**20); p.wait()"
    )
    m = mb.measure_command([sys.executable, "-c", parent])
    assert m.rss_peak > 200 * MIB


def test_command_exit_code_is_kept() -> None:
    m = mb.measure_command([sys.executable, "-c", "raise SystemExit(3)"], quiet=True)
    assert 3 == m.exit_code
    assert "failed" == m.outcome
    with pytest.raises(mb.ChildFailed):
        m.raise_for_outcome()


def test_command_limit_and_timeout() -> None:
    runaway = "b = []\nwhile True: b.append(bytearray(8 << 20))"
    m = mb.measure_command([sys.executable, "-c", runaway], limit="120MB", timeout=60)
    assert "limit" == m.outcome
    assert -9 == m.exit_code
    m = mb.measure_command(["sleep", "20"], timeout=0.5)
    assert "timeout" == m.outcome


def test_command_killed_by_signal_is_an_outcome() -> None:
    m = mb.measure_command([sys.executable, "-c", "import os; os.kill(os.getpid(), 9)"])
    assert "killed" == m.outcome
    assert "SIGKILL" in m.outcome_detail


def test_missing_command() -> None:
    with pytest.raises(mb.CommandNotFound, match="command not found: no-such-command-xyz"):
        mb.measure_command(["no-such-command-xyz"])
    with pytest.raises(mb.CommandNotFound):
        mb.measure_command([])


def test_heap_of_a_python_command(tmp_path: Path) -> None:
    script = tmp_path / "objs.py"
    script.write_text("import sys\nitems = [{'i': i} for i in range(int(sys.argv[1]))]\n")
    m = mb.measure_command([sys.executable, str(script), "100000"], heap=True)
    assert m.heap_peak is not None
    assert m.heap_peak > 100_000 * 100
    assert m.gc_collections is not None
    with pytest.raises(mb.TargetError, match="Python command"):
        mb.measure_command(["sleep", "0"], heap=True)


def test_shell_string_is_split_not_run_by_a_shell() -> None:
    exe = shutil.which("echo")
    assert exe is not None
    m = mb.measure_command("echo 'a b' ; echo c", quiet=True)
    assert 0 == m.exit_code  # ';' reached echo as an argument: no shell ran


def test_a_command_that_exits_right_after_its_peak_is_measured_exactly() -> None:
    # the sampler may never see this peak; the kernel's ru_maxrss of the command does
    for _ in range(3):
        m = mb.measure_command([sys.executable, "-c", "b = bytearray(60 * 2**20)"])
        assert 60 * MIB <= m.rss_peak <= 80 * MIB
        assert "ru_maxrss" in m.rss_peak_source


def test_a_tiny_command_says_its_peak_is_a_lower_bound() -> None:
    m = mb.measure_command(["true"])
    assert 0 == m.exit_code
    assert "lower bound" in m.rss_peak_source or "unknown" in m.rss_peak_source
    assert 0 == m.rss_start  # a command's baseline is an empty process
    assert m.rss_peak == m.rss_peak_delta


def test_programs_that_cannot_run(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("print('hi')\n")
    with pytest.raises(mb.CommandNotFound, match="permission denied"):
        mb.measure_command([str(script)])
    with pytest.raises(mb.CommandNotFound, match="is a directory"):
        mb.measure_command([str(tmp_path)])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, mb.TargetError),
        ({"timeout": -1}, mb.TargetError),
        ({"limit": 0}, mb.SizeError),
    ],
)
def test_nonsense_limits_are_refused(kwargs: dict[str, float], error: type[Exception]) -> None:
    with pytest.raises(error):
        mb.measure_command(["true"], **kwargs)
    with pytest.raises(error):
        mb.measure(targets.sleeper, 0.01, **kwargs)


MIB = 2**20


def _command_report(max_rss: int, max_hwm: int, ru_maxrss: int) -> SamplerReport:
    """A spawn-mode sampler report with these peaks (the sampler spawned at 12 MiB)."""
    return SamplerReport(
        timeline=Timeline(times=(0.0,), lows=(float(max_rss),), highs=(float(max_rss),)),
        start=0.0,
        max_rss=max_rss,
        max_hwm=max_hwm,
        limit_hit_at=None,
        limit_hit_rss=None,
        exit_code=0,
        ru_maxrss=ru_maxrss,
        spawner_hwm=12 * MIB,
    )


def test_a_sample_above_the_kernel_peak_stands_and_is_named() -> None:
    # the kernel's per-CPU RSS counters let VmHWM read a few pages above wait4's ru_maxrss
    report = _command_report(60 * MIB, 70 * MIB + 8192, 70 * MIB)
    peak, source = _command_peak(report, 1, 0.01)
    assert peak == 70 * MIB + 8192
    assert "ru_maxrss" in source
    # the figure shown is the sample's: the words say so first, the kernel's figure beside it
    assert source.startswith("a sample's reading, 8 KiB above the kernel's peak RSS")
    assert "(70.0 MiB, wait4 ru_maxrss" in source
    report = dataclasses.replace(report, ru_maxrss=71 * MIB)
    peak, source = _command_peak(report, 1, 0.01)
    assert peak == 71 * MIB
    assert source.startswith("the kernel's peak RSS of the command")
    assert "a sample's reading" not in source


def test_a_tree_whose_sum_beats_every_process_peak_is_named_as_a_sum() -> None:
    # Four 50 MiB pool workers at once: wait4's ru_maxrss is one process's peak (60 MiB); the
    # sampled sum of the tree (255 MiB) is the run's peak, and it is not "counter noise".
    peak, source = _command_peak(_command_report(255 * MIB, 61 * MIB, 60 * MIB), 5, 0.01)
    assert peak == 255 * MIB
    assert source.startswith("the summed RSS of the command's 5 processes")
    assert "ru_maxrss 60.0 MiB" in source
    assert "approximate" not in source
