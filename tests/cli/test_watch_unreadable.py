"""A cgroup whose usage cannot be read (issue 36): ``membound watch`` names it in one line and
exits 2, instead of judging the process's own memory against the group's limit. The group's
usage files are made unreadable for a root that has given up its power to read past file
modes (``setpriv`` drops ``CAP_DAC_OVERRIDE`` and ``CAP_DAC_READ_SEARCH``); its limit stays
readable, so the limit is the group's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from tests.guard.cgroup_helpers import memory_cgroup

MIB = 1 << 20
WATCH = [sys.executable, "-m", "membound", "watch"]
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def test_a_cgroup_that_cannot_be_read_is_one_line_exit_2() -> None:
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed"
    with memory_cgroup(300 * MIB) as group:
        sleeper = subprocess.Popen(group.enter_argv(["sleep", "60"]))
        try:
            deadline = time.monotonic() + 10
            while sleeper.pid not in group.pids() and time.monotonic() < deadline:
                time.sleep(0.02)
            unreadable = ("memory.stat", "memory.usage_in_bytes", "memory.current")
            for name in unreadable:
                if os.path.exists(group.file(name)):
                    os.chmod(group.file(name), 0)
            done = subprocess.run(
                [*NO_DAC, *WATCH, str(sleeper.pid), "--duration", "1", "--no-live"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            sleeper.kill()
            sleeper.wait()
    assert 2 == done.returncode, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert 1 == len(lines), done.stderr
    assert lines[0].startswith("membound: error: cannot read the memory cgroup "), lines
    assert group.path in lines[0]
    assert "" == done.stdout
