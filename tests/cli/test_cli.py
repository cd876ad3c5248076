from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from membound.cli.main import main

ALLOC = "b = bytearray(60 * 2**20)"


def test_run_through_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "membound",
            "run",
            "--json",
            str(out),
            "--",
            sys.executable,
            "-c",
            ALLOC,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert 0 == proc.returncode, proc.stderr
    assert "Δ peak RSS" in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["result"]["rss_peak"] > 60 * 2**20
    assert 0 == doc["result"]["exit_code"]


def test_run_markdown_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "run.png"
    code = main(["run", "--markdown", "--plot", str(png), "--", sys.executable, "-c", ALLOC])
    assert 0 == code
    assert "| RSS peak |" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_run_limit_fails_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    runaway = "b = []\nwhile True: b.append(bytearray(8 << 20))"
    code = main(["run", "--limit", "100MB", "--", sys.executable, "-c", runaway])
    assert 1 == code
    err = capsys.readouterr().err
    assert "memory limit 95.4 MiB exceeded" in err
    # how to get the lines, in words a reader of the command line can use, one aside deep
    assert "(--where, or where=True in Python, names the lines that held it)" in err


def test_run_failing_command_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert 1 == main(["run", "--", sys.executable, "-c", "raise SystemExit(4)"])
    assert "exited with status 4" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--", "no-such-command-xyz"], "command not found: no-such-command-xyz"),
        (["run", "--limit", "lots", "--", "true"], "not a size: 'lots'"),
        (["run"], "Missing argument"),
        (["run", "--interval", "0", "--", "true"], "from 0.001 to 60 seconds"),
        (["compare"], "give either a scenarios FILE"),
        (["compare", "missing.py"], "scenarios file not found"),
        (["report", "missing.json"], "cannot read missing.json"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(argv)
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_usage_error_through_a_subprocess_has_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "membound", "run", "--", "no-such-command-xyz"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert 2 == proc.returncode
    assert "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_commands_and_report_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp.json"
    code = main(
        [
            "compare",
            "--repeat",
            "1",
            "--json",
            str(out),
            "--cmd",
            f"{sys.executable} -c 'b = bytearray(50 * 2**20)'",
            "--cmd",
            f"{sys.executable} -c pass",
        ]
    )
    assert 0 == code
    capsys.readouterr()
    assert 0 == main(["report", str(out), "--markdown"])
    md = capsys.readouterr().out
    assert "| scenario | peak RSS |" in md
    png = tmp_path / "cmp.png"
    assert 0 == main(["report", str(out), "--plot", str(png)])
    assert png.exists()


def test_compare_scenarios_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "s.py"
    file.write_text(
        "import membound\n@membound.scenario('a')\ndef a():\n    return len(bytearray(2**20))\n"
    )
    assert 0 == main(["compare", str(file), "--repeat", "1", "--markdown"])
    assert "| a |" in capsys.readouterr().out


def test_report_of_a_non_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert 2 == main(["report", str(bad)])
    assert "not a membound result" in capsys.readouterr().err


def test_child_traceback_is_shown_for_a_raising_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "s.py"
    file.write_text("import membound\n@membound.scenario\ndef bad():\n    raise KeyError('nope')\n")
    assert 2 == main(["compare", str(file), "--repeat", "1"])
    err = capsys.readouterr().err
    assert "KeyError: 'nope'" in err
    assert "s.py" in err


def test_unwritable_output_path_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.json"
    assert 2 == main(["run", "--json", str(target), "--", sys.executable, "-c", "pass"])
    err = capsys.readouterr().err
    assert "does not exist" in err  # checked before the run, so no measurement is lost
    assert "Traceback" not in err


@pytest.mark.parametrize("mode", ["run", "compare"])
def test_sigterm_stops_the_measured_command(tmp_path: Path, mode: str) -> None:
    import signal
    import time

    pidfile = tmp_path / "pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    if mode == "run":
        argv = ["run", "--", sys.executable, "-c", code]
    else:
        argv = ["compare", "--repeat", "1", "--cmd", f"{sys.executable} -c {code!r}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "membound", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert 143 == proc.returncode
    assert "terminated" in err
    assert "Traceback" not in err
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_sigterm_while_the_command_is_imported_is_one_line() -> None:
    """SIGTERM lands while ``main`` imports the command's module (its handler is membound's by
    then): one line and 143, no traceback of import machinery and no exit 1."""
    code = (
        "import importlib, os, signal, sys\n"
        "from membound.cli import main as cli_main\n"
        "real = importlib.import_module\n"
        "def landing(name, *args):\n"
        "    if name.startswith('membound.cli.commands.'):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)  # delivered inside this import\n"
        "    return real(name, *args)\n"
        "importlib.import_module = landing\n"
        "sys.exit(cli_main.main(['run', '--', 'true']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert 143 == done.returncode, done.stderr
    assert "Traceback" not in done.stderr
    assert ["membound: terminated by SIGTERM while starting"] == done.stderr.splitlines()


def test_sigterm_between_the_start_and_the_wait_stops_the_command(tmp_path: Path) -> None:
    """SIGTERM lands after the sampler started the command and before membound waits for it
    (a busy machine can hold membound there for a while): the command is stopped all the same,
    not orphaned when the sampler goes, holding membound's stderr open."""
    import os
    import signal
    import time

    pidfile = tmp_path / "pid"
    # Written then renamed, so the file is never seen empty: the signal can land between
    # open() and the write's flush.
    measured = (
        f"import os, time; open({str(pidfile)!r} + '.tmp', 'w').write(str(os.getpid())); "
        f"os.replace({str(pidfile)!r} + '.tmp', {str(pidfile)!r}); time.sleep(60)"
    )
    code = (
        "import os, signal, sys, time\n"
        "from membound.measure.sampler import process\n"
        "real = process.Sampler.start\n"
        "def start(self):\n"
        "    started = real(self)\n"
        f"    while not os.path.exists({str(pidfile)!r}):\n"
        "        time.sleep(0.01)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # delivered before finish() is called\n"
        "    return started\n"
        "process.Sampler.start = start\n"
        "from membound.cli import main as cli_main\n"
        f"sys.exit(cli_main.main(['run', '--', sys.executable, '-c', {measured!r}]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _, err = proc.communicate(timeout=30)  # an orphaned command would hold stderr for 60 s
        child = int(pidfile.read_text())
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:  # what a failure left running
        proc.kill()
        if pidfile.exists() and pidfile.read_text() and _alive(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
    assert 143 == proc.returncode, err
    assert "Traceback" not in err


def test_sigkill_of_membound_still_stops_the_command(tmp_path: Path) -> None:
    import signal
    import time

    pidfile = tmp_path / "pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-m", "membound", "run", "--", sys.executable, "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    proc.send_signal(signal.SIGKILL)  # no handler runs: the sampler notices its parent is gone
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_main_called_in_a_process_gives_its_signal_handlers_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``main()`` turns SIGTERM and SIGHUP into an unwinding stop while it runs; called inside
    another program (a test, a script) it must give that program's handlers back. Left in
    place, a multiprocessing pool forked later got them: its ``terminate()`` made each worker
    unwind in Python instead of ending, and a worker stuck on a lock another thread held at
    the fork hung the pool's exit (a suite run waited 300 s)."""
    import signal

    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, mine)
        for argv in (["run", "--quiet", "--", sys.executable, "-c", "pass"], ["banana"]):
            main(argv)
            assert signal.SIG_DFL == signal.getsignal(signal.SIGTERM), argv
            assert mine is signal.getsignal(signal.SIGHUP), argv
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    capsys.readouterr()


#: Modules a plain `membound run` has no use for: rich's progress and live views (drawn only on
#: a terminal), importlib.metadata (lending memray to a foreign interpreter), importlib.resources
#: (HTML pages), secrets (a random file name needs no CSPRNG module). Each was in every
#: command's start-up; together about 30 ms of it.
NOT_AT_START_UP = (
    "rich.progress",
    "rich.live",
    "importlib.metadata",
    "importlib.resources",
    "secrets",
)


def test_a_plain_run_imports_nothing_only_other_runs_need(tmp_path: Path) -> None:
    code = (
        "import atexit, json, sys\n"
        f"unwanted = {NOT_AT_START_UP!r}\n"
        "atexit.register(lambda: print(json.dumps([m for m in unwanted if m in sys.modules]),"
        " file=sys.stderr))\n"
        "from membound.cli.main import main\n"
        f"sys.exit(main(['run', '--json', {str(tmp_path / 'r.json')!r}, '--', {sys.executable!r},"
        " '-c', 'pass']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert 0 == proc.returncode, proc.stderr
    assert (tmp_path / "r.json").is_file()  # the run was written (the JSON path was used)
    assert [] == json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--interval", "0", "--", "true"],
        ["run"],
        ["nosuchcommand"],
        ["scale", "--sizes", "1e5,abc", "x:y"],
        ["watch", "--bogus"],
    ],
)
def test_a_usage_error_is_one_error_line_and_at_most_one_hint(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Click's own block (usage, a "Try" line, a blank line, "Error: ...") is not shown: the
    error is one ``membound: error:`` line, as every other error, then a hint."""
    assert 2 == main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("membound: error: "), lines
    assert len(lines) <= 2, lines
    assert all(line.startswith("hint: ") for line in lines[1:]), lines
