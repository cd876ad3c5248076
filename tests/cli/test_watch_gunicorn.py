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
from tests.ports import free_port
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


def test_a_recovery_that_never_reached_hard_adds_no_worker(tmp_path: Path) -> None:
    """Memory passes ``soft`` and falls back under ``recover`` without reaching ``hard``: no
    TTOU was sent, so no TTIN is either (it sent one for every such recovery: -w 3 reached 6
    workers)."""
    port = free_port()
    out = tmp_path / "watch.json"
    tag = new_tag()
    recipe = ["--on-hard", "signal:TTOU", "--on-recover", "signal:TTIN"]
    thresholds = ["--soft", "200MiB", "--hard", "600MiB", "--recover", "150MiB"]
    with memory_cgroup(1 << 30) as group:
        argv = [*WATCH, "--cmd", _gunicorn(port, 2), "--no-live", "--interval", "0.05"]
        argv += ["--json", str(out), *thresholds, *recipe]
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
            _wait_workers(master, 2, deadline)
            for _ in range(3):  # soft, then ok, three times over
                _together(port, "/grow", 2)
                _together(port, "/grow", 2)  # ~230 MiB: past soft, far from hard
                _together(port, "/drop", 2)  # back under recover
            settled = time.monotonic() + 3
            most = 0
            while time.monotonic() < settled:
                most = max(most, len(_workers(master)))
                time.sleep(0.02)
            assert 2 == most, "a worker was added though none had been shed"
            watch.send_signal(signal.SIGINT)
            watch.communicate(timeout=30)
        finally:
            kill_tagged(tag)
            if watch.poll() is None:
                watch.kill()
            watch.communicate()
            for left in Path(group.path).glob("membound-watch-*"):
                group.remove_child(left.name)
    result = json.loads(out.read_text())["result"]
    assert [] == [a for a in result["actions"] if "SIGTTIN" in a["result"]], result["actions"]
    assert sum(1 for t in result["transitions"] if t["to"] == "ok") >= 1, result["transitions"]


@pytest.mark.parametrize(
    "args",
    [
        ["--on-hard", "signal:TTOU", "--on-recover", "signal:TTIN"],
        ["--on-soft", "signal:TTOU"],
    ],
)
def test_the_recipe_outside_a_server_it_knows_is_one_line_exit_2(args: list[str]) -> None:
    """TTOU and TTIN stop a process that does not handle them (their default action): sent to
    anything but a gunicorn master or a ``uvicorn --workers`` parent, the watch refuses."""
    sleeper = f"{sys.executable} -c 'import time; time.sleep(30)'"
    done = subprocess.run(
        [*WATCH, "--cmd", sleeper, "--no-live", "--duration", "2", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 2 == done.returncode, done.stderr
    lines = done.stderr.strip().splitlines()
    assert 1 == len(lines), done.stderr
    assert lines[0].startswith("membound: error: "), lines
    assert "TTOU" in lines[0]
    assert "gunicorn" in lines[0]
    assert "" == done.stdout


def test_ttin_without_the_ttou_it_undoes_is_one_line_exit_2() -> None:
    tag = new_tag()
    argv = [*WATCH, "--cmd", _gunicorn(free_port(), 1), "--duration", "2", "--no-live"]
    try:
        done = subprocess.run(
            [*argv, "--on-recover", "signal:TTIN"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=tagged_env(tag),
        )
    finally:
        kill_tagged(tag)
    assert 2 == done.returncode, done.stderr
    lines = done.stderr.strip().splitlines()
    assert 1 == len(lines), done.stderr
    assert "--on-recover signal:TTIN" in lines[0]
    assert "signal:TTOU" in lines[0]


def test_a_recovery_that_does_not_hold_adds_no_worker(tmp_path: Path) -> None:
    """After a TTOU, memory dips under ``recover`` and rises past it again within the hold:
    no TTIN (sent at once, it made the server flap ~3 times a second)."""
    port = free_port()
    tag = new_tag()
    recipe = ["--on-hard", "signal:TTOU", "--on-recover", "signal:TTIN"]
    with memory_cgroup(1 << 30) as group:
        argv = [*WATCH, "--cmd", _gunicorn(port, WORKERS), "--no-live", "--interval", "0.05"]
        watch = subprocess.Popen(
            group.enter_argv([*argv, *THRESHOLDS, *recipe]),
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
            _wait_workers(master, WORKERS, deadline)
            for _ in range(ROUNDS):  # past hard: TTOU
                _together(port, "/grow", WORKERS)
            _wait_workers(master, WORKERS - 1, deadline)
            _together(port, "/drop", WORKERS - 1)  # under recover…
            for _ in range(2):  # …and back above it (~230 MiB) within a second
                _together(port, "/grow", WORKERS - 1)
            settled = time.monotonic() + 7
            while time.monotonic() < settled:
                assert len(_workers(master)) <= WORKERS - 1, "TTIN before the recovery held"
                time.sleep(0.05)
            watch.send_signal(signal.SIGINT)
            watch.communicate(timeout=30)
            assert 0 == group.oom_kills()
        finally:
            kill_tagged(tag)
            if watch.poll() is None:
                watch.kill()
            watch.communicate()
            for left in Path(group.path).glob("membound-watch-*"):
                group.remove_child(left.name)
