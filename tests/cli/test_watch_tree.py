"""``membound watch --cmd`` judges the whole tree the command starts: the workers a command
forks hold memory the top process does not, and all of it is what the OOM killer counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from membound.cli.watch_tree import TreeLimit, tree_for_command
from membound.measure.cgroup_memory import memory_groups

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
