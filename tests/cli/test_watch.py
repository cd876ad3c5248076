"""``membound watch``: the real CLI, as a subprocess, against real processes that the tests
start. Limits and thresholds are set relative to each child's own memory, so the tests do not
depend on the machine's RAM."""

from __future__ import annotations

import json
import os
import pty
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.processes import kill_tagged, new_tag, settle, tagged_env

MIB = 2**20
WATCH = [sys.executable, "-m", "membound", "watch"]

#: Holds 30 MiB and sleeps.
FLAT = """
import sys, time
hold = b"\\x01" * (30 << 20)
print("ready", flush=True)
time.sleep(120)
"""

#: Says "ready"; once a line comes on stdin, adds 10 MiB every 0.1 s, four times, and sleeps.
STEPS = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
hold = []
for _ in range(4):
    hold.append(b"\\x01" * (10 << 20))
    time.sleep(0.1)
time.sleep(120)
"""

#: Exits half a second after a line comes on stdin.
BRIEF = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
time.sleep(0.5)
"""


def status_field(pid: int, name: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def judged(pid: int) -> int:
    """What a given limit counts: RssAnon + RssShmem."""
    return status_field(pid, "RssAnon") + status_field(pid, "RssShmem")


@pytest.fixture
def tag() -> Iterator[str]:
    found = new_tag()
    yield found
    kill_tagged(found)


def start_child(code: str, tag: str) -> subprocess.Popen[str]:
    """A Python child running ``code``, once it has said "ready"."""
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=tagged_env(tag),
    )
    assert child.stdout is not None
    assert "ready" == child.stdout.readline().strip()
    return child


def watch(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WATCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def watch_then_go(child: subprocess.Popen[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Watch ``child`` and tell it to start allocating once the watch has begun."""
    cli = subprocess.Popen(
        [*WATCH, str(child.pid), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert cli.stderr is not None
    assert child.stdin is not None
    first = cli.stderr.readline()
    assert "membound: watching pid" in first, first
    child.stdin.write("go\n")
    child.stdin.flush()
    out, err = cli.communicate(timeout=30)
    return subprocess.CompletedProcess(cli.args, cli.returncode, out, first + err)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_hard_with_signal_term_stops_the_process_and_exits_1(tag: str) -> None:
    child = start_child(STEPS, tag)
    base = judged(child.pid)
    proc = watch_then_go(
        child,
        "--limit",
        str(base + 200 * MIB),
        "--soft",
        str(base + 10 * MIB),
        "--hard",
        str(base + 25 * MIB),
        "--on-hard",
        "signal:TERM",
        "--interval",
        "0.05",
        "--duration",
        "10",
    )
    assert 1 == proc.returncode, proc.stderr
    assert -signal.SIGTERM == child.wait(5)
    assert f"on-hard: sent SIGTERM to pid {child.pid}" in proc.stderr
    assert f"pid {child.pid} reached the hard threshold" in proc.stderr
    assert f"process {child.pid} exited after" in proc.stderr
    assert "ok → soft" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_flat_process_exits_0_and_writes_the_summary(tag: str, tmp_path: Path) -> None:
    child = start_child(FLAT, tag)
    base = judged(child.pid)
    out = tmp_path / "watch.json"
    limit = base + 200 * MIB
    proc = watch(
        str(child.pid),
        "--limit",
        str(limit),
        "--interval",
        "0.05",
        "--duration",
        "1",
        "--json",
        str(out),
    )
    assert 0 == proc.returncode, proc.stderr
    assert alive(child.pid), "membound must never stop a process it did not start"
    assert f"pid {child.pid} keeps running" in proc.stderr
    doc = json.loads(out.read_text())
    assert ("membound/1", "watch") == (doc["schema"], doc["type"])
    result = doc["result"]
    assert child.pid == result["pid"]
    assert {"bytes": limit, "source": "given", "kind": "ram"} == result["limit"]
    assert int(0.8 * limit) == result["thresholds"]["soft_bytes"]
    assert int(0.9 * limit) == result["thresholds"]["hard_bytes"]
    assert 30 * MIB <= result["peak_bytes"] < 80 * MIB
    assert abs(result["last"]["usage_bytes"] - base) < 5 * MIB
    assert result["last"]["rss_bytes"] >= result["last"]["usage_bytes"]
    assert [] == result["transitions"]
    assert "unknown" == result["growth"]["pattern"]
    assert "duration" == result["ended"]
    assert (False, False) == (result["reached_hard"], result["leak_alarm"])
    assert 0 == result["exit_code"]
    # one sample per tick of the 1 s watch, bounded by the downsampler
    assert 5 <= result["samples_kept"] == len(result["timeline"]["times"]) <= 2000
    assert "membound watch: pid" in proc.stdout


def _memoryless_process() -> int:
    """A process that runs and has no memory to read: a kernel thread (kthreadd first)."""
    for entry in ["2", *sorted(os.listdir("/proc"))]:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/statm") as f:
                empty = all(word == "0" for word in f.read().split())
        except OSError:
            continue
        if empty and alive(int(entry)):
            return int(entry)
    raise AssertionError("no kernel thread is visible in /proc")


def test_a_process_whose_memory_cannot_be_read_is_exit_2_after_a_grace() -> None:
    """A process whose memory is gone is given a moment to be seen as ended (one killed by
    --on-hard's signal gives its memory back before it is a zombie), then called unreadable:
    exit 2, not a wait until --duration."""
    pid = _memoryless_process()
    started = time.monotonic()
    proc = watch(str(pid), "--duration", "20")
    assert 2 == proc.returncode, proc.stderr
    assert "cannot be read any more" in proc.stdout + proc.stderr
    assert time.monotonic() - started < 15  # the grace, not the duration


def test_a_pid_that_does_not_exist_is_one_line() -> None:
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    if os.path.exists(f"/proc/{pid}"):
        pytest.skip(f"pid {pid} exists")
    proc = watch(str(pid), "--duration", "1")
    assert 2 == proc.returncode
    assert [f"membound: error: no process with pid {pid}"] == proc.stderr.splitlines()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--soft", "150%"], "soft='150%' is no percentage of the limit"),
        (["--soft", "90%", "--hard", "80%"], "must be below hard='80%'"),
        (["--recover", "85%", "--soft", "80%"], "must be below soft='80%'"),
        (["--on-hard", "signal:NOPE"], "unknown signal 'NOPE'"),
        (["--on-soft", "cmd:no-such-command-xyz --now"], "command not found: no-such-command-xyz"),
        (["--limit", "10MB", "--hard", "20MB"], "above the limit"),
        (["--interval", "0"], "must be from 0.001 to 3600 seconds"),
        (["--leak-window", "forever"], "not a usable duration: 'forever'"),
        (["--cmd", "true"], "give a PID or --cmd"),
    ],
)
def test_bad_options_are_one_line_usage_errors(options: list[str], message: str) -> None:
    proc = watch(str(os.getpid()), *options, "--duration", "1")
    assert 2 == proc.returncode, proc.stderr
    lines = proc.stderr.splitlines()
    assert 1 == len(lines), proc.stderr
    assert lines[0].startswith("membound: error: ")
    assert message in lines[0]


@pytest.mark.parametrize("reaped", [False, True], ids=["zombie", "reaped"])
def test_a_process_that_exits_mid_watch_ends_the_watch(tag: str, reaped: bool) -> None:
    child = start_child(BRIEF, tag)
    if reaped:  # gone from /proc at once; unreaped, it stays a zombie until the test waits
        threading.Thread(target=child.wait, daemon=True).start()
    t0 = time.monotonic()
    proc = watch_then_go(child, "--interval", "0.05", "--duration", "20")
    took = time.monotonic() - t0
    assert 0 == proc.returncode, proc.stderr
    assert f"process {child.pid} exited after" in proc.stderr
    assert took < 10, "the watch must end with the process, not at --duration"
    child.wait(5)


@pytest.mark.parametrize(
    ("code", "how"),
    [
        ("import time; time.sleep(60)", "with SIGTERM"),
        (
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)",
            "with SIGKILL",
        ),
    ],
    ids=["term", "ignores-term"],
)
def test_cmd_is_stopped_when_the_duration_passes(
    tag: str, tmp_path: Path, code: str, how: str
) -> None:
    out = tmp_path / "w.json"
    cmd = shlex.join([sys.executable, "-c", code])
    proc = subprocess.run(
        [*WATCH, "--cmd", cmd, "--duration", "1.5", "--interval", "0.05", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=tagged_env(tag),
    )
    assert 0 == proc.returncode, proc.stderr
    result = json.loads(out.read_text())["result"]
    pid = result["pid"]
    assert f"stopped {shlex.join([sys.executable, '-c'])}"[:40] in proc.stderr
    assert f"(pid {pid}) {how}" in proc.stderr
    assert not alive(pid)
    assert [] == settle(tag, timeout=2)
    assert "duration" == result["ended"]


def test_plot_writes_a_png(tag: str, tmp_path: Path) -> None:
    child = start_child(FLAT, tag)
    png = tmp_path / "watch.png"
    proc = watch(
        str(child.pid),
        "--limit",
        str(judged(child.pid) + 100 * MIB),
        "--interval",
        "0.05",
        "--duration",
        "1",
        "--plot",
        str(png),
    )
    assert 0 == proc.returncode, proc.stderr
    assert b"\x89PNG\r\n\x1a\n" == png.read_bytes()[:8]
    assert f"wrote {png}" in proc.stderr


def test_prometheus_metrics_of_the_watched_process(tag: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    child = start_child(FLAT, tag)
    port = free_port()
    limit = judged(child.pid) + 100 * MIB
    cli = subprocess.Popen(
        [
            *WATCH,
            str(child.pid),
            "--limit",
            str(limit),
            "--interval",
            "0.05",
            "--duration",
            "4",
            "--prometheus-port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        text = ""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
                if "membound_memory_headroom_bytes " in text:  # after the first reading
                    break
            except OSError:
                pass
            time.sleep(0.05)
        rss = status_field(child.pid, "VmRSS")
        assert text, "the metrics never answered"
        parsed = list(text_string_to_metric_families(text))
        samples = {s.name: s for family in parsed for s in family.samples}
        assert abs(samples["membound_memory_rss_bytes"].value - rss) < 2 * MIB
        assert limit == samples["membound_memory_limit_bytes"].value
        thresholds = {
            s.labels["threshold"]: s.value
            for family in parsed
            for s in family.samples
            if s.name == "membound_watchdog_threshold_bytes"
        }
        assert {"soft", "hard", "recover"} == set(thresholds)
        assert thresholds["soft"] < thresholds["hard"] < limit
        # One home: every family the watch serves is the guard's, with its help and type.
        from membound.guard.prometheus.metrics import SPECS

        for family in parsed:
            name = family.name + ("_total" if family.type == "counter" else "")
            assert name in SPECS, name
            assert SPECS[name].help == family.documentation
            assert ("counter" if SPECS[name].counter else "gauge") == family.type
        assert 0 == samples["membound_watchdog_state"].value
        assert limit == samples["membound_memory_limit_bytes"].value
        assert "given" == samples["membound_memory_limit_bytes"].labels["source"]
        headroom = samples["membound_memory_headroom_bytes"].value
        assert abs(headroom - (limit - judged(child.pid))) < 2 * MIB
        for name in ("membound_growth_bytes_per_second", "membound_time_to_limit_seconds"):
            assert name in samples
        _, err = cli.communicate(timeout=20)
        assert 0 == cli.returncode, err
        assert f"serving metrics on http://127.0.0.1:{port}/metrics" in err
    finally:
        cli.kill()
        cli.wait()


def test_ctrl_c_writes_the_summary_and_exits_130(tag: str, tmp_path: Path) -> None:
    from tests.processes import default_sigint

    child = start_child(FLAT, tag)
    out = tmp_path / "w.json"
    cli = subprocess.Popen(
        [*WATCH, str(child.pid), "--json", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 - the runner may ignore SIGINT
    )
    assert cli.stderr is not None
    assert "membound: watching pid" in cli.stderr.readline()
    time.sleep(0.3)
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=20)
    assert 130 == cli.returncode, err
    assert "Traceback" not in err
    result = json.loads(out.read_text())["result"]
    assert ("interrupted", 130) == (result["ended"], result["exit_code"])
    assert alive(child.pid)


def test_on_soft_command_gets_the_event_in_its_environment(tag: str, tmp_path: Path) -> None:
    child = start_child(STEPS, tag)
    base = judged(child.pid)
    seen = tmp_path / "env.json"
    script = (
        "import json, os; json.dump({k: v for k, v in os.environ.items() "
        f"if k.startswith('MEMBOUND_')}}, open({str(seen)!r}, 'w'))"
    )
    limit = base + 300 * MIB
    proc = watch_then_go(
        child,
        "--limit",
        str(limit),
        "--soft",
        str(base + 10 * MIB),
        "--hard",
        str(base + 200 * MIB),
        "--on-soft",
        shlex.join([sys.executable, "-c", script]),
        "--interval",
        "0.05",
        "--duration",
        "2",
    )
    assert 0 == proc.returncode, proc.stderr
    env = json.loads(seen.read_text())
    assert str(child.pid) == env["MEMBOUND_PID"]
    assert "soft" == env["MEMBOUND_STATE"]
    assert str(limit) == env["MEMBOUND_LIMIT_BYTES"]
    assert int(env["MEMBOUND_USAGE_BYTES"]) >= base + 10 * MIB
    assert "exited with status 0" in proc.stderr


def test_live_view_on_a_terminal(tag: str) -> None:
    child = start_child(FLAT, tag)
    controller, terminal = pty.openpty()
    cli = subprocess.Popen(
        [
            *WATCH,
            str(child.pid),
            "--duration",
            "1",
            "--interval",
            "0.05",
            "--limit",
            str(judged(child.pid) + 100 * MIB),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    out, _ = cli.communicate(timeout=20)
    text = shown.decode(errors="replace")
    assert 0 == cli.returncode, text
    assert "recent" in text  # the live view's sparkline row
    assert "▁" in text
    assert "Traceback" not in text
    assert b"membound watch: pid" in out


def test_a_steady_leak_raises_the_alarm_and_exits_1(tag: str, tmp_path: Path) -> None:
    grows = (
        "import time\nkeep = []\nwhile True:\n    keep.append(b'x' * (1 << 20)); time.sleep(0.05)"
    )
    out = tmp_path / "w.json"
    cmd = shlex.join([sys.executable, "-c", grows])
    proc = subprocess.run(
        [
            *WATCH,
            "--cmd",
            cmd,
            "--leak-window",
            "3s",  # a leak is judged over a full window, then confirmed for a quarter of it
            "--limit",
            "2GB",
            "--interval",
            "0.05",
            "--duration",
            "8",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=tagged_env(tag),
    )
    assert 1 == proc.returncode, proc.stderr
    result = json.loads(out.read_text())["result"]
    assert (True, False) == (result["leak_alarm"], result["reached_hard"])
    assert "leak" == result["growth"]["pattern"]
    assert "leak alarm: leak: the floor after collections moved +" in proc.stderr
    assert [] == settle(tag, timeout=2)


def test_a_busy_prometheus_port_is_one_line_and_starts_nothing(tag: str, tmp_path: Path) -> None:
    started = tmp_path / "started"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cmd = shlex.join(["sh", "-c", f"touch {started}; exec sleep 60"])
        proc = subprocess.run(
            [*WATCH, "--cmd", cmd, "--prometheus-port", str(port), "--duration", "5"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=tagged_env(tag),
        )
    assert 2 == proc.returncode
    expected = f"membound: error: cannot serve metrics on 127.0.0.1:{port}: "
    assert [expected + "Address already in use"] == proc.stderr.splitlines()
    assert [] == settle(tag, timeout=1)
    time.sleep(0.2)
    assert not started.exists(), "the command started although the port was taken"
