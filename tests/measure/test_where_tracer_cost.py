"""What tracing the lines costs in memory, kept out of a run's figures or measured and said.

memray's aggregated capture keeps a table entry per live allocation in the traced process (about
96 B each): a job that keeps many small mallocs peaked 1.7× higher traced than plain, and a
``--limit`` sized from a plain run fired. A run of its own (a command, an isolated call) now
streams its records to a file instead; a block inside a longer-lived process keeps the
aggregated capture, and its table's size is measured and said beside the figures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: A job that keeps ``n`` bytes objects of 520 B: each leaves pymalloc (over 512 B) for malloc,
#: one traced allocation apiece; n comes from argv.
JOB = """
import sys, time
held = [bytes(520) for _ in range(int(sys.argv[1]))]
print(len(held))
if len(sys.argv) > 2:  # as much again, slowly (a second in all)
    for step in range(50):
        held.extend(bytes(520) for _ in range(int(sys.argv[1]) // 50))
        time.sleep(0.02)
"""


def _run(
    tmp_path: Path,
    n: int,
    *options: str,
    env: dict[str, str] | None = None,
    slowly: bool = False,
) -> tuple[int, dict[str, object]]:
    """``membound run OPTIONS --json -- python job.py n``: its exit code and result."""
    job = tmp_path / "job.py"
    job.write_text(JOB)
    out = tmp_path / f"run-{n}-{len(options)}.json"
    command = [sys.executable, str(job), str(n), *(["slowly"] if slowly else [])]
    done = subprocess.run(
        [sys.executable, "-m", "membound", "run", *options, "--json", str(out), "--", *command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert out.exists(), done.stderr
    data = json.loads(out.read_text())
    return done.returncode, data.get("result", data)


def test_a_traced_command_keeps_no_table_that_grows_with_its_live_allocations(
    tmp_path: Path,
) -> None:
    extra = {}
    for n in (100_000, 500_000):
        _code, plain = _run(tmp_path, n)
        _code, traced = _run(tmp_path, n, "--where")
        assert "streamed capture" in str(traced["where_source"]), traced["where_source"]
        extra[n] = int(traced["rss_peak"]) - int(plain["rss_peak"])  # type: ignore[call-overload]
    # 400,000 more live mallocs: an aggregated table grows by about 37 MiB (96 B each); what
    # memray costs here stays what loading and starting it costs.
    grew = extra[500_000] - extra[100_000]
    assert abs(grew) < 10 * 2**20, extra


def test_what_the_runner_and_memray_took_before_the_program_began_is_said(
    tmp_path: Path,
) -> None:
    n = 100_000
    _code, plain = _run(tmp_path, n)
    _code, traced = _run(tmp_path, n, "--where")
    source = str(traced["where_source"])
    found = re.search(
        r"loaded and started, took ([\d,.]+) MiB of the RSS before the program", source
    )
    assert found is not None, source
    said = float(found.group(1).replace(",", "")) * 2**20
    extra = int(traced["rss_peak"]) - int(plain["rss_peak"])  # type: ignore[call-overload]
    # Most of what tracing added to the peak, never more than all of it (memray's buffers
    # during the run are the rest).
    assert extra / 2 < said <= extra + 2**20, (said, extra, source)


def test_a_limit_sized_from_a_plain_run_holds_when_the_lines_are_traced(tmp_path: Path) -> None:
    n = 500_000
    _code, plain = _run(tmp_path, n)
    limit = int(plain["rss_peak"]) + 32 * 2**20  # type: ignore[call-overload]
    code, traced = _run(tmp_path, n, "--where", "--limit", str(limit))
    assert (0, "ok") == (code, traced["outcome"]), traced["outcome_detail"]


BLOCK = """
import json, sys
import membound as mb
where = sys.argv[1] == "where"
with mb.track(where=True if where else None) as t:
    held = [bytes(520) for _ in range(300_000)]
    del held  # freed before the block ends: the table's size at the end is not its peak
m = t.result
print(json.dumps({"delta": m.rss_peak_delta, "source": m.where_source}))
"""


def _block(tmp_path: Path, how: str) -> dict[str, object]:
    script = tmp_path / "block.py"
    script.write_text(textwrap.dedent(BLOCK))
    done = subprocess.run(
        [sys.executable, str(script), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_blocks_aggregated_table_is_measured_at_its_peak_and_said(tmp_path: Path) -> None:
    plain = _block(tmp_path, "plain")
    traced = _block(tmp_path, "where")
    source = str(traced["source"])
    assert "aggregated capture" in source, source
    found = re.search(r"took about ([\d,.]+) MiB", source)
    assert found is not None, source
    said = float(found.group(1).replace(",", "")) * 2**20
    # The traced block peaked higher than the plain one by about the table's size at the peak:
    # the estimate must be within 30 % of what the RSS shows (the end's table alone, after the
    # block freed what it made, is a tenth of it).
    shown = int(traced["delta"]) - int(plain["delta"])  # type: ignore[call-overload]
    assert shown > 0, (plain, traced)
    assert said == pytest.approx(shown, rel=0.3), source


def test_a_streamed_capture_stops_at_its_bound_on_disk_and_says_what_it_covers(
    tmp_path: Path,
) -> None:
    """A run that keeps 100,000 mallocs at once, then as many again over a second: with the
    capture's bound on disk below what the whole run streams, the capture stops part of the way
    and the note says so; the run itself goes on to its end."""
    _code, whole = _run(tmp_path, 100_000, "--where", slowly=True)
    found = re.search(r"to a file \(([\d,.]+) MiB\)", str(whole["where_source"]))
    assert found is not None, whole["where_source"]
    streamed = float(found.group(1).replace(",", "")) * 2**20
    bound = {**os.environ, "MEMBOUND_CAPTURE_BOUND": str(int(streamed * 0.6))}
    code, bounded = _run(tmp_path, 100_000, "--where", env=bound, slowly=True)
    assert (0, "ok") == (code, bounded["outcome"])
    note = str(bounded["where_note"])
    assert "the capture stopped after" in note, note
    assert "the lines are those of the run until then" in note, note
    assert "capture stopped" not in str(whole["where_note"])
    traced = [sum(int(s["bytes"]) for s in r["peak_sites"]) for r in (bounded, whole)]  # type: ignore[attr-defined]
    assert traced[0] < traced[1] * 0.9, traced
