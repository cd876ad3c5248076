"""Hostile input and faults at the CLI: user text taken literally, measured code that exits or
crashes, timeouts on every command that runs user code, Ctrl-C that keeps what finished, numbers
past every limit, result files that lie. Each case names the exit code and the one line it must
give; none may print membound's traceback or "internal error"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import membound as mb
from membound._errors import describe_exception, failure_words
from membound.cli.main import main
from tests.processes import default_sigint

TARGETS = """\
import ctypes, os, sys, time

def ok():
    pass

def grows(n):
    return bytearray(int(n))

def exits(*a):
    sys.exit(3)

def hard(*a):
    os._exit(9)

def segv(*a):
    ctypes.string_at(0)

class Boom(BaseException):
    pass

def base(*a):
    raise Boom("x")

class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no str")

def badstr(*a):
    raise BadStr()

def sleeps(*a):
    time.sleep(60)

def slow_when_big(n):
    b = bytearray(int(n))
    if n > 10**6:
        open(os.path.join(os.path.dirname(__file__), "big.started"), "w").close()
        time.sleep(60)
"""


@pytest.fixture
def targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "t.py").write_text(TARGETS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _clean(err: str) -> None:
    assert "internal error" not in err
    assert "membound/cli/" not in err  # no traceback through membound's own code


# --- 5. user text is never markup -------------------------------------------------------------


def test_labels_with_markup_and_emoji_codes_print_as_written(tmp_path: Path) -> None:
    out = tmp_path / "cmp.json"
    png = tmp_path / "cmp.png"
    label = "echo [/x] :ok: '$\\frac{$'"  # quoted: shlex keeps the backslash
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "membound",
            "compare",
            "--repeat",
            "1",
            "--cmd",
            label,
            "--cmd",
            "true",
            "--json",
            str(out),
            "--plot",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"},  # rich's terminal output
    )
    assert 0 == proc.returncode, proc.stderr
    _clean(proc.stderr)
    assert "[/x]" in proc.stdout
    assert ":ok:" in proc.stdout  # not an emoji
    assert "\\frac{" in json.loads(out.read_text())["result"]["rows"][0]["name"]
    assert png.read_bytes()[:4] == b"\x89PNG"  # matplotlib did not parse the label as math


# --- 6. the measured code's exits, crashes and odd exceptions -----------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["leaks", "t.py:exits"], "called sys.exit(3)"),
        (["leaks", "--in-process", "t.py:exits"], "called sys.exit(3)"),
        (["leaks", "t.py:hard"], "exited with status 9"),
        (["leaks", "t.py:segv"], "killed by SIGSEGV"),
        (["leaks", "t.py:base"], "raised Boom: x"),
        (["leaks", "--in-process", "t.py:base"], "raised Boom: x"),
        (["leaks", "--in-process", "t.py:badstr"], "BadStr (its message could not be printed"),
        (["scale", "t.py:exits", "--sizes", "1,2,3"], "SystemExit: 3"),
        (["scale", "t.py:segv", "--sizes", "1,2,3"], "SIGSEGV"),
    ],
)
def test_what_the_measured_code_does_is_named_in_one_line_exit_2(
    targets: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(argv)
    err = capsys.readouterr().err
    assert message in err.splitlines()[-2] + err.splitlines()[-1]
    _clean(err)


def test_a_scenario_file_that_exits_on_import_is_an_error_not_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenarios = tmp_path / "scen.py"
    scenarios.write_text("import sys\nsys.exit(4)\n")
    assert 2 == main(["compare", str(scenarios)])
    assert "failed to import: it called sys.exit(4)" in capsys.readouterr().err


def test_a_target_that_exits_on_import_is_an_error(
    targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (targets / "imp.py").write_text("import sys\nsys.exit(5)\ndef f(): pass\n")
    assert 2 == main(["leaks", "--in-process", "imp.py:f"])
    assert "cannot import imp.py:f: SystemExit(5)" in capsys.readouterr().err


def test_describe_exception_survives_a_str_that_raises() -> None:
    class Odd(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    assert "Odd (its message could not be printed: ValueError)" == describe_exception(Odd())
    assert "called sys.exit(3)" == failure_words(SystemExit(3))


# --- 7. a timeout on every command that runs user code ------------------------------------------


def test_compare_stops_a_run_at_its_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(
        ["compare", "--repeat", "1", "--timeout", "1", "--cmd", "sleep 60", "--cmd", "true"]
    )
    assert time.monotonic() - started < 30
    assert 1 == code
    assert "timeout of 1 s reached" in capsys.readouterr().err


def test_scale_and_leaks_stop_at_their_timeout(
    targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert 2 == main(["scale", "t.py:sleeps", "--sizes", "1,2,3", "--timeout", "1"])
    assert "timeout of 1 s reached" in capsys.readouterr().err
    assert 2 == main(["leaks", "t.py:sleeps", "--timeout", "1"])
    assert "did not finish within the timeout of 1 s" in capsys.readouterr().err
    assert time.monotonic() - started < 60


def test_api_timeouts_of_compare_and_complexity(targets: Path) -> None:
    c = mb.compare({"sleeps": "t.py:sleeps"}, repeat=1, timeout=1)
    assert c.rows[0].outcome.startswith("timeout")
    with pytest.raises(mb.LimitExceeded, match="timeout of 1 s"):
        mb.complexity("t.py:sleeps", sizes=(1, 2, 3), timeout=1)
    with pytest.raises(mb.TargetError, match="at most 31536000 seconds"):
        mb.compare({"ok": "t.py:ok"}, timeout=float("inf"))


@pytest.mark.parametrize("command", ["compare", "scale", "leaks"])
def test_the_default_timeout_is_documented(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main([command, "--help"])
    assert "30 minutes" in capsys.readouterr().out


# --- 8. Ctrl-C keeps what finished --------------------------------------------------------------


def _interrupt(
    argv: list[str], cwd: Path, when: Callable[[], bool]
) -> subprocess.CompletedProcess[str]:
    """Run membound with ``argv`` and Ctrl-C it as soon as ``when()`` is true: when the runs
    the test speaks of have visibly started (a fixed wait was too short on a loaded machine,
    where membound was still importing, or a run not yet done, when it came)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "membound", *argv],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 - the runner may ignore SIGINT
    )
    try:
        deadline = time.monotonic() + 120
        while not when():
            if proc.poll() is not None or time.monotonic() > deadline:
                out, err = proc.communicate(timeout=60) if proc.poll() is not None else ("", "")
                pytest.fail(f"membound {argv[0]} never got to the point of the Ctrl-C: {err}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_ctrl_c_in_compare_writes_the_finished_runs(tmp_path: Path) -> None:
    out = tmp_path / "cmp.json"
    # Each run adds a line to "started" as it starts; runs go one at a time, A B A B.
    commands = [f"sh -c 'echo >> started; exec sleep {s}'" for s in ("1.5", "1.6")]
    proc = _interrupt(
        ["compare", "--repeat", "2", "--json", str(out)]
        + [arg for command in commands for arg in ("--cmd", command)],
        cwd=tmp_path,
        when=lambda: _lines(tmp_path / "started") >= 3,  # A and B done, A's second run going
    )
    assert 130 == proc.returncode, proc.stderr
    assert "2 of 4 runs finished" in proc.stderr
    rows = json.loads(out.read_text())["result"]["rows"]
    assert commands == [r["name"] for r in rows]
    assert [1, 1] == [r["runs"] for r in rows]
    assert "sleep 1.5" in proc.stdout  # the table of what finished was printed too


def test_ctrl_c_in_scale_keeps_the_verdict_of_the_sizes_that_finished(targets: Path) -> None:
    out = targets / "sc.json"
    proc = _interrupt(
        ["scale", "t.py:slow_when_big", "--sizes", "1e3,1e4,1e5,1e7", "--json", str(out)],
        cwd=targets,
        when=(targets / "big.started").exists,  # sizes go in order; the largest never ends
    )
    assert 130 == proc.returncode, proc.stderr
    assert "3 of 4 sizes finished" in proc.stderr
    points = json.loads(out.read_text())["result"]["points"]
    assert [1000, 10000, 100000] == [p["n"] for p in points]


def test_ctrl_c_before_anything_finished_says_so(tmp_path: Path) -> None:
    proc = _interrupt(
        ["compare", "--cmd", "sh -c 'touch started; exec sleep 30'", "--cmd", "true"],
        cwd=tmp_path,
        when=(tmp_path / "started").exists,  # the first run is going (not membound's start-up)
    )
    assert 130 == proc.returncode
    assert "0 of 6 runs finished" in proc.stderr
    assert "no result" in proc.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_to_membound_ends_it_with_128_plus_n(
    tmp_path: Path, signum: int, code: int
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "membound", "run", "--", "sleep", "30"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert code == proc.returncode
    assert f"terminated by {signal.Signals(signum).name}" in err


# --- 9. numbers and quoting ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--limit", "1e300TB", "--", "true"], "size too large: '1e300TB'"),
        (["run", "--timeout", "nan", "--", "true"], "not nan"),
        (["run", "--timeout", "inf", "--", "true"], "at most 31536000 seconds"),
        (["run", "--interval", "nan", "--", "true"], "from 0.001 to 60 seconds"),
        (["run", "--interval", "inf", "--", "true"], "from 0.001 to 60 seconds"),
        (["scale", "t.py:grows", "--sizes", "1,10,1e400"], "whole sizes >= 1"),
        (["scale", "t.py:grows", "--sizes", "nan,1,2"], "whole sizes >= 1"),
        (["compare", "--cmd", 'python3 -c "x', "--cmd", "true"], "No closing quotation"),
        (["leaks", "t.py:ok", "--timeout", "-1"], "more than 0"),
        (["demo", "--rows", "1" + "0" * 30], "of disk in"),
        (["demo", "--out", ""], "give a folder name"),
    ],
)
def test_numbers_and_quotes_past_every_limit_are_usage_errors(
    targets: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 2 == main(argv)
    err = capsys.readouterr().err
    assert message in err
    _clean(err)
    assert "SIGKILL" not in err  # no false story of a killed process


def _result_file(folder: Path) -> dict[str, object]:
    path = folder / "good.json"
    assert 0 == main(["run", "--json", str(path), "--", "true"])
    doc: dict[str, object] = json.loads(path.read_text())
    return doc


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["result"].update(rss_peak="x"), "rss_peak is 'x', expected a whole number"),
        (lambda d: d["result"].update(rss_peak=10**400), "401-digit integer"),
        (lambda d: d["result"].update(rss_peak=float("nan")), "rss_peak is nan"),
        (lambda d: d.update(result=[1]), "'result' is not an object"),
        (lambda d: d["result"].pop("timeline"), "no 'timeline'"),
    ],
)
def test_a_result_file_that_lies_is_refused_in_one_line(
    tmp_path: Path, change: object, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _result_file(tmp_path)
    change(doc)  # type: ignore[operator]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    capsys.readouterr()
    assert 2 == main(["report", str(bad)])
    err = capsys.readouterr().err
    assert message in err
    _clean(err)


def test_a_deeply_nested_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert 2 == main(["report", str(deep)])
    assert "nested too deeply" in capsys.readouterr().err


def test_a_scale_result_without_points_still_renders_everywhere(
    targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = targets / "sc.json"
    assert 0 == main(["scale", "t.py:grows", "--sizes", "1e3,1e4,1e5", "--json", str(path)])
    doc = json.loads(path.read_text())
    doc["result"]["points"] = []
    path.write_text(json.dumps(doc))
    html, png = targets / "sc.html", targets / "sc.png"
    assert 0 == main(["report", str(path), "--html", str(html), "--plot", str(png)])
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "<html" in html.read_text()


def test_sizes_past_64_bits_are_refused() -> None:
    with pytest.raises(mb.SizeError, match="too large"):
        mb.parse_size(10**30)
    assert "8.0 EiB" == mb.format_size(2**63)
