"""``membound watch --cmd`` judges the whole tree the command starts: the workers a command
forks hold memory the top process does not, and all of it is what the OOM killer counts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from membound.cli.commands.watch.tree import TreeLimit, tree_for_command
from membound.guard.limit import memory_limit
from membound.measure.cgroup.memory import memory_groups

WATCH = [sys.executable, "-m", "membound", "watch"]
MiB = 1 << 20
#: Three children that each write 40 MiB and hold it for a while; the parent holds nothing.
FORKING = textwrap.dedent(
    """
    import multiprocessing as mp, sys, time

    def work(seconds):
        held = [b"\\x01" * (1 << 20) for _ in range(40)]
        print("held", flush=True)
        time.sleep(seconds)

    if __name__ == "__main__":
        ps = [mp.Process(target=work, args=(float(sys.argv[1]),)) for _ in range(3)]
        for p in ps:
            p.start()
        for p in ps:
            p.join()
    """
)


def _script(tmp_path: Path) -> Path:
    path = tmp_path / "forking.py"
    path.write_text(FORKING)
    return path


@pytest.mark.skipif(not memory_groups(), reason="no memory cgroup here")
def test_the_whole_tree_is_judged_in_a_cgroup_made_for_the_command(tmp_path: Path) -> None:
    out = tmp_path / "watch.json"
    command = f"{sys.executable} {_script(tmp_path)} 2"
    done = subprocess.run(
        [*WATCH, "--cmd", command, "--no-live", "--interval", "0.05", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    result = json.loads(out.read_text())["result"]
    assert result["judged"].startswith("the cgroup made for it, "), result["judged"]
    group = result["judged"].removeprefix("the cgroup made for it, ")
    assert "judging the whole command: the cgroup made for it" in done.stderr
    # The three children's 120 MiB count; the top process alone holds ~10 MiB.
    assert result["peak_bytes"] >= 110 * MiB, result["peak_bytes"]
    assert "the cgroup's charge" in result["last"]["counts"]
    assert not os.path.exists(group)  # removed at the end


def test_without_a_cgroup_the_tree_is_summed(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, str(_script(tmp_path)), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        seen = ""
        while seen.count("held") < 3:  # three children write at once: lines may run together
            line = child.stdout.readline()
            assert line, seen
            seen += line
        usage = TreeLimit(8 << 30, "given", "ram", child.pid).usage()
        assert usage is not None
        assert usage.judged >= 120 * MiB, usage
        assert "descendants" in usage.source
    finally:
        child.kill()
        child.wait()
        time.sleep(0.1)
    assert TreeLimit(8 << 30, "given", "ram", child.pid).usage() is None  # gone


def test_a_group_that_cannot_be_made_falls_back_in_one_line(tmp_path: Path) -> None:
    tree = tree_for_command()
    try:
        if tree.group is None:
            assert tree.words.startswith("the process tree, summed (")
        else:
            assert os.path.isdir(tree.group.path)
    finally:
        tree.remove()
    if tree.group is not None:
        assert not os.path.exists(tree.group.path)


#: Prints the memory cgroup it runs in and that group's own limit, then writes 10 MiB every
#: 50 ms up to ``sys.argv[1]`` MiB and holds it.
OWN_GROUP = textwrap.dedent(
    """
    import sys, time
    from membound.measure.cgroup.memory import memory_groups

    group = memory_groups()[0]
    name = "memory.max" if group.version == 2 else "memory.limit_in_bytes"
    with open(group.file(name)) as f:
        print("group", group.path, f.read().strip(), flush=True)
    held = []
    for _ in range(int(sys.argv[1]) // 10):
        held.append(bytearray(b"\\x01") * (10 << 20))
        time.sleep(0.05)
    time.sleep(1)
    """
)


def _watch_own_group(tmp_path: Path, mib: int, *args: str) -> tuple[int, str, dict[str, Any]]:
    """Watch ``OWN_GROUP`` writing ``mib`` MiB: the exit code, its ``group`` line, the result."""
    script = tmp_path / "own_group.py"
    script.write_text(OWN_GROUP)
    out = tmp_path / "watch.json"
    command = f"{sys.executable} {script} {mib}"
    done = subprocess.run(
        [*WATCH, "--cmd", command, "--no-live", "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    said = [line for line in done.stdout.splitlines() if line.startswith("group ")]
    assert 1 == len(said), (done.stdout, done.stderr)
    return done.returncode, said[0], json.loads(out.read_text())["result"]


@pytest.mark.skipif(not memory_groups(), reason="no memory cgroup here")
def test_limit_becomes_the_cgroups_own_limit_and_its_oom_kills_are_counted(
    tmp_path: Path,
) -> None:
    thresholds = ["--soft", "60MiB", "--hard", "80MiB"]
    code, said, result = _watch_own_group(tmp_path, 300, "--limit", "100MiB", *thresholds)
    _, path, own_limit = said.split()
    assert 100 * MiB == int(own_limit)  # set on the group before the command started
    assert f"the cgroup made for it, {path} (its limit set to 100.0 MiB)" == result["judged"]
    assert result["limit"]["source"].startswith(path + "/memory.")
    assert 100 * MiB == result["limit"]["bytes"]
    # The kernel enforced it: 300 MiB asked for, the command OOM-killed in its group.
    assert -9 == result["exit_status"]
    assert result["oom_kills"] >= 1
    assert 1 == code  # it reached hard
    assert not os.path.exists(path)


@pytest.mark.skipif(not memory_groups(), reason="no memory cgroup here")
def test_without_limit_the_group_has_no_limit_of_its_own(tmp_path: Path) -> None:
    code, said, result = _watch_own_group(tmp_path, 30)
    _, path, own_limit = said.split()
    assert own_limit == "max" or int(own_limit) >= 1 << 62, own_limit  # unlimited
    assert result["judged"] == f"the cgroup made for it, {path}"
    assert memory_limit().bytes == result["limit"]["bytes"]  # membound's own, which it is under
    assert 0 == result["oom_kills"]
    assert 0 == code
    assert not os.path.exists(path)


def test_where_no_group_can_be_made_the_tree_is_summed_end_to_end() -> None:
    """Not root: no cgroup can be made, so the watch sums the tree and says so."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and setpriv to run the watch as another user")
    system_python = "/usr/bin/python3"  # the venv's interpreter may live under /root
    if not os.access(system_python, os.X_OK):
        pytest.skip(f"no {system_python} for the other user to run")
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    runs = subprocess.run(
        [*nobody, sys.executable, "-c", "pass"], capture_output=True, text=True, check=False
    )
    if runs.returncode:  # e.g. an interpreter whose libpython lies under root's own home
        pytest.skip(f"the other user cannot run {sys.executable}: {runs.stderr.strip()}")
    shared = Path(tempfile.mkdtemp(prefix="membound-watch-"))
    try:
        shared.chmod(0o777)  # the other user reads the script and writes the summary here
        script = _script(shared)
        script.chmod(0o644)
        out = shared / "watch.json"
        command = f"{system_python} {script} 2"
        done = subprocess.run(
            [
                *nobody,
                *WATCH,
                "--cmd",
                command,
                "--no-live",
                "--interval",
                "0.05",
                "--json",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert 0 == done.returncode, done.stderr
        result = json.loads(out.read_text())["result"]
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert result["judged"].startswith("the process tree, summed ("), result["judged"]
    assert f"judging the whole command: {result['judged']}" in done.stderr
    assert result["peak_bytes"] >= 110 * MiB, result["peak_bytes"]  # the three children's
    assert "and its descendants" in result["last"]["source"]
    assert result["oom_kills"] is None
