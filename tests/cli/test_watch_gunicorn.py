"""The README's gunicorn recipe for ``membound watch``: ``--on-hard signal:TTOU`` sheds one
worker when the server's whole tree reaches ``hard``, ``--on-recover signal:TTIN`` adds it back
once memory is under ``recover``; HUP and TERM get a one-line warning."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from membound.measure.cgroup_memory import memory_groups

APPS = Path(__file__).parent / "apps"
WATCH = [sys.executable, "-m", "membound", "watch"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as response:
        return str(response.read().decode())


def _wait_up(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            _get(port, "/")
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not come up")


def _gunicorn(port: int, workers: int) -> str:
    return (
        f"{sys.executable} -m gunicorn -w {workers} -b 127.0.0.1:{port} "
        f"--chdir {APPS} growing_wsgi:application"
    )


@pytest.mark.skipif(not memory_groups(), reason="no memory cgroup here")
def test_ttou_sheds_a_worker_at_hard_and_ttin_adds_it_back(tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "watch.json"
    thresholds = ["--limit", "2GB", "--soft", "260MB", "--hard", "300MB", "--recover", "220MB"]
    recipe = ["--on-hard", "signal:TTOU", "--on-recover", "signal:TTIN", "--duration", "25"]
    watch = subprocess.Popen(
        [
            *WATCH,
            "--cmd",
            _gunicorn(port, 3),
            "--no-live",
            "--json",
            str(out),
            *thresholds,
            *recipe,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_up(port, time.monotonic() + 20)
        for _ in range(5):  # 250 MiB more across the workers: the tree passes hard
            _get(port, "/grow")
        time.sleep(3)  # TTOU: gunicorn retires its oldest worker
        for _ in range(20):  # the workers left give back what they hold: under recover
            _get(port, "/drop")
        stderr = watch.communicate(timeout=40)[1]
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.communicate()
    result = json.loads(out.read_text())["result"]
    done = [(a["option"], a["result"]) for a in result["actions"]]
    options = [option for option, _ in done]
    assert "on-hard" in options, (done, stderr)
    assert "on-recover" in options, (done, stderr)
    assert options.index("on-hard") < options.index("on-recover")
    assert "SIGTTOU" in dict(done)["on-hard"]
    assert "SIGTTIN" in dict(done)["on-recover"]
    assert result["judged"].startswith("the cgroup made for it"), result["judged"]


def test_hup_to_a_gunicorn_master_is_warned_about(tmp_path: Path) -> None:
    port = _free_port()
    done = subprocess.run(
        [
            *WATCH,
            "--cmd",
            _gunicorn(port, 1),
            "--no-live",
            "--duration",
            "3",
            "--on-hard",
            "signal:HUP",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    warnings = [line for line in done.stderr.splitlines() if "warning: --on-hard" in line]
    assert 1 == len(warnings), done.stderr
    assert "signal:TTOU" in warnings[0]
    assert "new workers before the old ones exit" in warnings[0]
