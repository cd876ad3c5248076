"""The README's gunicorn recipe for ``membound watch``: ``--on-hard signal:TTOU`` sheds one
worker when the server's whole tree reaches ``hard``, ``--on-recover signal:TTIN`` adds one
back once memory is under ``recover``; HUP and TERM get a one-line warning.

A real gunicorn (3 sync workers) is started by ``membound watch --cmd`` inside a memory cgroup
made for the test; ``watch`` makes the command's own group under it, so an OOM kill anywhere in
the server would be counted in the test's group."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.guard.cgroup_helpers import memory_cgroup
from tests.guard.server_helpers import free_port
from tests.processes import default_sigint, kill_tagged, new_tag, tagged_env

APPS = Path(__file__).parent / "apps"
WATCH = [sys.executable, "-m", "membound", "watch"]
MiB = 1 << 20
WORKERS = 3
#: Rounds of one ``/grow`` per worker: each worker then holds 150 MiB, the tree ~480 MiB (past
#: ``hard``); shedding one worker leaves ~330 MiB (still past ``recover``, so no TTIN yet), and
#: ``/drop`` to the two left brings it to ~30 MiB (under ``recover``: TTIN).
ROUNDS = 3
THRESHOLDS = ["--soft", "380MiB", "--hard", "400MiB", "--recover", "150MiB"]


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return str(response.read().decode())


def _wait_up(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            _get(port, "/")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not come up")


def _together(port: int, path: str, n: int) -> list[str]:
    """``n`` requests at once, each holding its worker for a second: with ``n`` idle sync
    workers, one request each."""
    replies: list[str] = []
    threads = [
        threading.Thread(target=lambda: replies.append(_get(port, f"{path}?hold=1")))
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(replies) == n, replies
    return replies


def _gunicorn(port: int, workers: int) -> str:
    return (
        f"{sys.executable} -m gunicorn -w {workers} -b 127.0.0.1:{port} "
        f"--chdir {APPS} growing_wsgi:application"
    )


def _master(watch: subprocess.Popen[str], deadline: float) -> psutil.Process:
    """The gunicorn master: the command ``watch`` started (run without a shell)."""
    while time.monotonic() < deadline:
        for child in psutil.Process(watch.pid).children():
            if "gunicorn" in " ".join(child.cmdline()):
                return child
        time.sleep(0.05)
    raise AssertionError("watch started no gunicorn")


def _workers(master: psutil.Process) -> dict[int, float]:
    """The master's live workers (zombies not reaped yet left out): pid → start time."""
    found = {}
    for child in master.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                found[child.pid] = child.create_time()
        except psutil.NoSuchProcess:
            continue
    return found


def _wait_workers(master: psutil.Process, count: int, deadline: float) -> dict[int, float]:
    while time.monotonic() < deadline:
        found = _workers(master)
        if len(found) == count:
            return found
        time.sleep(0.02)
    raise AssertionError(f"the master never had {count} workers (has {_workers(master)})")


def test_ttou_sheds_a_worker_at_hard_and_ttin_adds_it_back(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "watch.json"
    tag = new_tag()
    recipe = ["--on-hard", "signal:TTOU", "--on-recover", "signal:TTIN"]
    with memory_cgroup(1 << 30) as group:
        argv = [
            *WATCH,
            "--cmd",
            _gunicorn(port, WORKERS),
            "--no-live",
            "--interval",
            "0.05",
            "--json",
            str(out),
            *THRESHOLDS,
            *recipe,
        ]
        watch = subprocess.Popen(
            group.enter_argv(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=tagged_env(tag),
            preexec_fn=default_sigint,  # noqa: PLW1509 (no threads yet)
        )
        try:
            deadline = time.monotonic() + 40
            _wait_up(port, deadline)
            master = _master(watch, deadline)
            before = _wait_workers(master, WORKERS, deadline)
            oldest = min(before, key=lambda pid: before[pid])
            for _ in range(ROUNDS):  # each worker grows by 50 MiB a round: the tree passes hard
                _together(port, "/grow", WORKERS)

            # hard → TTOU: gunicorn retires one worker, its oldest, and no other.
            shed = _wait_workers(master, WORKERS - 1, deadline)
            assert oldest not in shed, (before, shed)
            assert set(shed) < set(before), (before, shed)
            # Memory is still past recover (the two left hold 300 MiB): no TTIN yet.
            settled = time.monotonic() + 1.5
            while time.monotonic() < settled:
                assert _workers(master) == shed, "a worker came back before memory recovered"
                time.sleep(0.02)

            # The two left give back what they hold: under recover → TTIN, one worker more.
            _together(port, "/drop", WORKERS - 1)
            after = _wait_workers(master, WORKERS, deadline)
            new = set(after) - set(shed)
            assert len(new) == 1, (before, shed, after)
            assert not new & set(before), (before, shed, after)
            assert _get(port, "/")  # still serving

            watch.send_signal(signal.SIGINT)  # Ctrl-C: the summary and --json are written
            _, stderr = watch.communicate(timeout=30)
            assert 130 == watch.returncode, stderr
            assert 0 == group.oom_kills()  # nothing in the server was OOM-killed
        finally:
            # The server first: it holds watch's pipes, which communicate() reads to the end.
            kill_tagged(tag)
            if watch.poll() is None:
                watch.kill()
            watch.communicate()
            for left in Path(group.path).glob("membound-watch-*"):  # a watch killed midway
                group.remove_child(left.name)
    result = json.loads(out.read_text())["result"]
    done = [(a["option"], a["result"]) for a in result["actions"]]
    assert [option for option, _ in done] == ["on-hard", "on-recover"], (done, stderr)
    assert f"sent SIGTTOU to pid {master.pid}" == done[0][1]
    assert f"sent SIGTTIN to pid {master.pid}" == done[1][1]
    assert result["judged"].startswith("the cgroup made for it, " + group.path), result["judged"]
    assert result["peak_bytes"] >= 400 * MiB  # the workers' memory was judged, not the master's
    assert 0 == result["oom_kills"]  # none in the command's own group either


@pytest.mark.parametrize(
    ("sent", "why"),
    [("HUP", "new workers before the old ones exit"), ("TERM", "stops the whole server")],
)
def test_hup_or_term_to_a_gunicorn_master_is_warned_about(sent: str, why: str) -> None:
    port = free_port()
    tag = new_tag()
    argv = [*WATCH, "--cmd", _gunicorn(port, 1), "--no-live", "--duration", "3"]
    try:
        done = subprocess.run(
            [*argv, "--on-hard", f"signal:{sent}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=tagged_env(tag),
        )
    finally:
        kill_tagged(tag)
    assert 0 == done.returncode, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert 1 == len(warnings), done.stderr
    assert warnings[0].startswith(
        f"membound: warning: --on-hard signal:{sent} to a gunicorn master "
    )
    assert why in warnings[0]
    assert "signal:TTOU" in warnings[0]
    assert "signal:TTIN" in warnings[0]


def _warnings(args: list[str], tag: str) -> list[str]:
    """The warning lines of a short watch."""
    done = subprocess.run(
        [*WATCH, *args, "--no-live", "--duration", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=tagged_env(tag),
    )
    assert 0 == done.returncode, done.stderr
    return [line for line in done.stderr.splitlines() if "warning:" in line]


def test_the_recipe_itself_and_other_processes_get_no_warning() -> None:
    port = free_port()
    tag = new_tag()
    sleeper = f"{sys.executable} -c 'import time; time.sleep(30)'"
    server: subprocess.Popen[bytes] | None = None
    try:
        recipe = ["--on-hard", "signal:TTOU", "--on-recover", "signal:TTIN"]
        assert [] == _warnings(["--cmd", _gunicorn(port, 1), *recipe], tag)
        assert [] == _warnings(["--cmd", sleeper, "--on-hard", "signal:HUP"], tag)
        # Attached to a running server: its master is warned about, a worker (forked from the
        # master, the same command line) is not.
        server = subprocess.Popen(_gunicorn(port, 1).split(), env=tagged_env(tag))
        _wait_up(port, time.monotonic() + 30)
        master = psutil.Process(server.pid)
        worker = _wait_workers(master, 1, time.monotonic() + 30)
        hup = ["--on-hard", "signal:HUP"]
        assert 1 == len(_warnings([str(master.pid), *hup], tag))
        assert [] == _warnings([str(next(iter(worker))), *hup], tag)
    finally:
        kill_tagged(tag)
        if server is not None:
            server.wait(30)
