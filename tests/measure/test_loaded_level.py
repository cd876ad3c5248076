"""A command's start-up told from its work by what its imports hold (issue 37).

A program that loads 300 MB in a second and then holds them for three read "flat, after its
start-up (the first 1.06 s, to 317.8 MiB)" in three runs of four, "retained" in the fourth: its
level lasted about twice as long as the rise to it. An idle interpreter with the same imports
(DESIGN §5.1) holds a twelfth of it: the level is the job's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import membound as mb
from membound.measure import child_code
from membound.measure.loaded_level import loaded_level, python_target
from membound.results.growth import Anchors
from membound.results.lifespan import classify_lifespan, needs_loaded, startup_level

MIB = 2**20
PY = sys.executable
BASELINE = child_code.path("import_baseline")

#: Builds 150 MB in about a tenth of a second and holds it 2.5 s: its level lasts far longer
#: than twice the rise to it.
LOAD_AND_HOLD = textwrap.dedent(
    """
    import json, time
    rows = [bytearray(10**6) for _ in range(150)]
    time.sleep(2.5)
    print(len(rows))
    """
)


def test_a_load_held_long_is_the_jobs_work_not_its_start_up() -> None:
    for _ in range(2):
        m = mb.measure_command([PY, "-c", LOAD_AND_HOLD], quiet=True)
        assert "retained" == m.growth.label, m.growth.explanation
        # a loaded machine may stretch the build past half its hold: no level, then
        assert any(
            words in m.growth.explanation
            for words in ("an idle interpreter with its imports holds", "no level held before")
        ), m.growth.explanation
        # judged from the interpreter loaded, not from the level of the 150 MB
        assert m.growth.level_start is not None
        assert m.growth.level_start < 60 * MIB, m.growth.explanation


def test_imports_then_a_level_are_still_start_up(tmp_path: Path) -> None:
    """The imports are in a module of the command's own folder: read for its imports, never
    run by the baseline (it writes a line each time it runs: once, the job's)."""
    marks = tmp_path / "ran.txt"
    (tmp_path / "helpers.py").write_text(
        "import json, sqlite3, decimal, asyncio, email.parser, http.client, xml.dom.minidom\n"
        f"with open({str(marks)!r}, 'a') as f:\n    f.write('ran\\n')\n"
    )
    script = tmp_path / "job.py"
    script.write_text("import time\nimport helpers\ntime.sleep(1.5)\n")
    m = mb.measure_command([PY, str(script)], quiet=True)
    assert "flat" == m.growth.label, m.growth.explanation
    assert ["ran"] == marks.read_text().split()
    loaded = loaded_level([PY, str(script)])
    assert loaded is not None
    assert {"json", "sqlite3", "asyncio", "time"} <= set(loaded.imported)
    assert "helpers" not in loaded.imported
    assert ["ran"] == marks.read_text().split()


def test_what_an_idle_interpreter_with_the_imports_holds() -> None:
    bare = loaded_level([PY, "-c", "pass"])
    heavy = loaded_level([PY, "-c", "def main():\n    import asyncio, decimal, email.parser"])
    assert bare is not None
    assert heavy is not None
    assert heavy.rss > bare.rss + MIB
    assert {"asyncio", "decimal", "email.parser"} <= set(heavy.imported)


def test_only_python_commands_have_a_target(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text("pass\n")
    assert ("script", str(script)) == python_target(["python3", str(script)])
    assert ("code", "pass") == python_target([PY, "-c", "pass"])
    assert ("module", "json.tool") == python_target([PY, "-m", "json.tool"])
    assert python_target(["sort", str(script)]) is None
    assert python_target([PY, "-u", str(script)]) is None
    assert python_target([PY, str(tmp_path / "missing.py")]) is None
    assert loaded_level(["sort", str(script)]) is None


def _level_run(level_mib: float) -> mb.Timeline:
    """Birth, a rise of 0.1 s to ``level_mib``, held 1.5 s, then the exit."""
    values = [0.2, 8.0] + [8.0 + (level_mib - 8.0) * k / 10 for k in range(1, 11)]
    values += [level_mib] * 150 + [4.0]
    return mb.Timeline.from_values([v * MIB for v in values], interval=0.01)


def test_a_level_near_what_the_imports_hold_is_start_up() -> None:
    t = _level_run(40.0)
    assert startup_level(t) is not None
    anchors = Anchors.of(0, 40 * MIB, "VmHWM", 4 * MIB)
    growth = classify_lifespan(t, anchors=anchors, loaded=35 * MIB)
    assert "flat" == growth.pattern, growth.explanation
    high = Anchors.of(0, 300 * MIB, "VmHWM", 4 * MIB)
    far = classify_lifespan(_level_run(300.0), anchors=high, loaded=35 * MIB)
    assert "retained" == far.pattern, far.explanation
    assert "the level of 300.0 MiB it held next was its work" in far.explanation
    # without the figure, the rule of the samples alone: the level lasted, it is start-up
    assert "flat" == classify_lifespan(_level_run(300.0), anchors=high).pattern


def test_a_start_up_never_ends_at_the_level_it_told_from_the_work() -> None:
    """Two samples at the interpreter, then the 300 MiB level: the start-up ends before it."""
    values = [0.2, 8.0, 8.0] + [300.0] * 150 + [4.0]
    t = mb.Timeline.from_values([v * MIB for v in values], interval=0.01)
    anchors = Anchors.of(0, 300 * MIB, "VmHWM", 4 * MIB)
    growth = classify_lifespan(t, anchors=anchors, loaded=35 * MIB)
    assert "retained" == growth.pattern, growth.explanation
    assert growth.level_start is not None
    assert growth.level_start < 10 * MIB, growth.explanation


def test_the_commands_folder_never_runs_even_on_the_import_path(tmp_path: Path) -> None:
    """``PYTHONPATH=.`` puts the command's folder first: its ``datetime.py`` would shadow the
    standard library's, and run."""
    ran = tmp_path / "ran.txt"
    (tmp_path / "datetime.py").write_text(f"open({str(ran)!r}, 'a').write('ran')\n")
    (tmp_path / "job.py").write_text("import email.utils\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [PY, str(BASELINE), "script", "job.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "email.utils" in json.loads(out.stdout)["imported"]
    assert not ran.exists()


def test_a_package_run_with_m_is_read_from_its_main(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "__main__.py").write_text("from .helpers import x\nimport decimal\n")
    (app / "helpers.py").write_text("import sqlite3\nx = 1\n")
    (app / "cli.py").write_text("from .helpers import x\n")
    whole = subprocess.run(
        [PY, str(BASELINE), "module", "app"], cwd=tmp_path, capture_output=True, check=True
    )
    assert {"decimal", "sqlite3"} <= set(json.loads(whole.stdout)["imported"])
    one = subprocess.run(
        [PY, str(BASELINE), "module", "app.cli"], cwd=tmp_path, capture_output=True, check=True
    )
    assert "sqlite3" in json.loads(one.stdout)["imported"]


def test_what_an_import_starts_ends_with_the_baseline(tmp_path: Path) -> None:
    """An installed module that starts a process at import (holding the answer's pipe open)
    neither holds the baseline up nor outlives it."""
    site = tmp_path / "site"
    site.mkdir()
    pid_file = tmp_path / "pid"
    (site / "spawner.py").write_text(
        "import subprocess\n"
        "p = subprocess.Popen(['sleep', '30'], stdout=None)\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
    )
    work = tmp_path / "work"
    work.mkdir()
    script = work / "job.py"
    script.write_text("import spawner\n")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(site)
    try:
        loaded = loaded_level([PY, str(script)], wait=10.0)
    finally:
        if old is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = old
    assert loaded is not None
    assert "spawner" in loaded.imported
    pid = int(pid_file.read_text())
    # SIGKILL is sent, not yet delivered, when the baseline returns: the kernel ends the
    # process as soon as it is scheduled.
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _running(pid)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a killed process its parent left behind is a zombie until its
    new parent reaps it: not running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


#: Builds 100 MB over about 0.3 s and exits: shorter than a start-up with no level can be told
#: from (0.5 s), far past what its imports hold.
BRIEF_BUILD = textwrap.dedent(
    """
    import json, time
    kept = []
    for _ in range(100):
        kept.append(bytearray(10**6))
        time.sleep(0.003)
    """
)


def test_a_brief_build_far_past_what_the_imports_hold_is_judged() -> None:
    """ "too short to judge" on a quiet machine and "retained" on a busy one that stretched it
    past 0.5 s: no start-up rises to 100 MB, however briefly."""
    m = mb.measure_command([PY, "-c", BRIEF_BUILD], quiet=True)
    assert "retained" == m.growth.label, m.growth.explanation


def test_a_brief_rise_within_what_the_imports_hold_is_still_start_up() -> None:
    values = [0.2, 8.0] + [8.0 + 2.0 * k for k in range(1, 21)] + [4.0]
    t = mb.Timeline.from_values([v * MIB for v in values], interval=0.01)
    anchors = Anchors.of(0, 48 * MIB, "VmHWM", 4 * MIB)
    assert needs_loaded(t)
    assert not classify_lifespan(t, anchors=anchors, loaded=45 * MIB).judged
    small = [0.2, 8.0] + [8.0 + 0.17 * k for k in range(1, 21)] + [4.0]
    # no figure is sought where the run never rose far past where it started
    assert not needs_loaded(mb.Timeline.from_values([v * MIB for v in small], interval=0.01))
    far = classify_lifespan(t, anchors=anchors, loaded=12 * MIB)
    assert "retained" == far.pattern, far.explanation
    assert "what it rose to past that was its work" in far.explanation
