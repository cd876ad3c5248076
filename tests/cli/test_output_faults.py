"""Faults of the world around a run, met for real: a full disk (a small tmpfs, ``/dev/full``),
a read-only folder, a closed stdout or stderr, Ctrl-C while membound is still importing, and a
child whose exception message is megabytes long.

Each is run as a user meets it: ``python -m membound`` in a subprocess, with its stdout and
stderr as they would be in a shell (a pipe whose reader is gone, a closed descriptor).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from membound._files import write_atomic
from membound.cli.output import SHOWN_CHARS, cut_long

#: What each output file held before the run: it must still hold it after a failed write.
OLD = b"old\n"
#: Output file names, each present (holding OLD) on the full disk before it is filled.
NAMES = ("run.json", "cmp.json", "run.png", "page.html", "x.sarif", "watch.json", "watch.png")
#: A run long enough that its JSON (~5 KiB) does not fit in the page the old file freed.
SLEEPER = [sys.executable, "-c", "import time; time.sleep(0.5)"]

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root"
)


def run_membound(
    *args: str | bytes, timeout: float = 120, **popen: object
) -> subprocess.CompletedProcess[bytes]:
    """``python -m membound ARGS`` in a subprocess; stdout and stderr as bytes."""
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "membound", *args], timeout=timeout, check=False, **popen
    )


def one_line(err: bytes) -> str:
    """The only line of ``err``: a fault is reported in one line, never a traceback."""
    lines = err.decode(errors="replace").strip().splitlines()
    assert 1 == len(lines), err.decode(errors="replace")[-2000:]
    assert "error::" not in lines[0]
    return lines[0]


# --- a small tmpfs, full or read-only ---------------------------------------------------------


def _mount(folder: Path, options: str) -> None:
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _unmount(folder: Path) -> None:
    """Unmount for sure: retried while busy (a child may still hold a file), then lazily."""
    for _ in range(20):
        if not os.path.ismount(folder):
            return
        if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode:
            time.sleep(0.1)
    if os.path.ismount(folder):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
    assert not os.path.ismount(folder), f"{folder} is still mounted"


def _fill(folder: Path) -> None:
    """Take every free byte of the file system under ``folder``."""
    fd = os.open(folder / "fill", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.statvfs(folder).f_bavail:
            os.write(fd, b"\0" * 4096)
        with pytest.raises(OSError, match="No space left on device"):
            os.write(fd, b"\0")
    finally:
        os.close(fd)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs holding an old file of each output name, then filled to the last byte;
    unmounted at teardown whatever the test did."""
    folder = tmp_path / "full"
    _mount(folder, "size=64k,mode=0777")
    try:
        for name in NAMES:
            (folder / name).write_bytes(OLD)
        _fill(folder)
        yield folder
    finally:
        _unmount(folder)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding an old file of each output name, remounted read-only."""
    folder = tmp_path / "ro"
    _mount(folder, "size=64k,mode=0777")
    try:
        for name in NAMES:
            (folder / name).write_bytes(OLD)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        _unmount(folder)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A result file to render again."""
    path = tmp_path_factory.mktemp("saved") / "good.json"
    done = run_membound("run", "--json", str(path), "--", *SLEEPER)
    assert 0 == done.returncode, done.stderr
    return path


@pytest.fixture(scope="module")
def linted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python file with a finding for ``membound lint``."""
    path = tmp_path_factory.mktemp("lint") / "job.py"
    path.write_text("import copy\nfor s in subs:\n    s.send(copy.deepcopy(payload))\n")
    return path


def _untouched(folder: Path) -> None:
    """Every old file as it was; no temporary file left beside them."""
    assert sorted([*NAMES, "fill"]) == sorted(p.name for p in folder.iterdir())
    for name in NAMES:
        assert OLD == (folder / name).read_bytes(), name


def _argv(what: str, folder: Path, saved: Path, linted: Path) -> tuple[list[str], str, str]:
    """``(argv, the output path, what stdout must show)`` for each kind of output."""
    if what == "run --json":
        out = folder / "run.json"
        return ["run", "--json", str(out), "--", *SLEEPER], str(out), "time.sleep(0.5)"
    if what == "compare --json":
        out = folder / "cmp.json"
        argv = ["compare", "--repeat", "1", "--json", str(out), "--cmd", "true", "--cmd", "sleep 0"]
        return argv, str(out), "sleep 0"
    if what == "run --plot":
        out = folder / "run.png"
        return ["run", "--plot", str(out), "--", *SLEEPER], str(out), "time.sleep(0.5)"
    if what == "report --html":
        out = folder / "page.html"
        return ["report", str(saved), "--markdown", "--html", str(out)], str(out), "| label |"
    if what.startswith("watch"):
        option = what.split()[1]
        out = folder / ("watch.json" if option == "--json" else "watch.png")
        cmd = " ".join(SLEEPER[:2]) + ' "import time; time.sleep(0.5)"'
        argv = ["watch", "--cmd", cmd, "--limit", "1GB", "--no-live", option, str(out)]
        return argv, str(out), "peak"
    out = folder / "x.sarif"
    return ["lint", str(linted), "--format", "sarif", "-o", str(out)], str(out), ""


OUTPUTS = [
    "run --json",
    "compare --json",
    "run --plot",
    "report --html",
    "lint -o",
    "watch --json",
    "watch --plot",
]


# --- 1. a full disk, /dev/full and a read-only folder ----------------------------------------


@needs_root
@pytest.mark.parametrize("what", OUTPUTS)
def test_a_full_disk_is_one_line_and_leaves_the_old_file_whole(
    what: str, full_disk: Path, saved: Path, linted: Path
) -> None:
    argv, out, shown = _argv(what, full_disk, saved, linted)
    done = run_membound(*argv)
    assert 2 == done.returncode, done.stderr
    said = f"membound: error: cannot write {out}: No space left on device"
    if what.startswith("watch"):  # watch says what it watches on stderr first
        assert said == done.stderr.decode().splitlines()[-1]
    else:
        assert said == one_line(done.stderr)
    assert shown in done.stdout.decode()  # the result is printed all the same
    _untouched(full_disk)


@needs_root
def test_write_atomic_on_a_full_disk_leaves_the_old_file_and_no_temporary_one(
    full_disk: Path,
) -> None:
    with pytest.raises(OSError, match="No space left on device") as caught:
        write_atomic(full_disk / "run.json", b"x" * 10_000)
    assert errno.ENOSPC == caught.value.errno
    assert str(full_disk / "run.json") == caught.value.filename
    _untouched(full_disk)


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_dev_full_is_one_line_naming_it_and_the_result_is_printed(option: str) -> None:
    done = run_membound("run", option, "/dev/full", "--", sys.executable, "-c", "pass")
    assert 2 == done.returncode, done.stderr
    expected = "membound: error: cannot write /dev/full: No space left on device"
    assert expected == one_line(done.stderr)
    assert b"-c pass" in done.stdout


@needs_root
@pytest.mark.parametrize("what", OUTPUTS)
def test_a_read_only_folder_is_one_line_naming_the_path(
    what: str, read_only: Path, saved: Path, linted: Path
) -> None:
    argv, out, _ = _argv(what, read_only, saved, linted)
    done = run_membound(*argv)
    assert 2 == done.returncode, done.stderr
    assert f"membound: error: cannot write {out}: Read-only file system" == one_line(done.stderr)
    for name in NAMES:
        assert OLD == (read_only / name).read_bytes()


def test_a_missing_folder_is_refused_before_the_run_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "no" / "run.json"
    done = run_membound("run", "--json", str(out), "--", "sleep", "30", timeout=20)
    assert 2 == done.returncode
    line = one_line(done.stderr)
    assert f"cannot write {out}: folder {out.parent} does not exist" in line


# --- 2. a closed stdout or stderr --------------------------------------------------------------


def _closed_pipe_run(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run with stdout a pipe whose reader is gone, as in ``membound … | true``."""
    read, write = os.pipe()
    os.close(read)
    try:
        return run_membound(*args, stdout=write)
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["run", "--", sys.executable, "-c", "1"], ["report", "SAVED"]],
    ids=["help", "run", "report"],
)
def test_a_closed_stdout_ends_quietly_with_141(argv: list[str], saved: Path) -> None:
    done = _closed_pipe_run(*[str(saved) if a == "SAVED" else a for a in argv])
    assert 128 + signal.SIGPIPE == done.returncode, done.stderr
    assert b"" == done.stderr


def test_the_json_file_is_written_before_stdout_closes(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    done = _closed_pipe_run("run", "--json", str(out), "--", sys.executable, "-c", "1")
    assert 141 == done.returncode
    assert b'"schema": "membound/1"' in out.read_bytes()


def test_stdout_on_dev_full_is_one_line_naming_stdout(saved: Path) -> None:
    for argv in (["--help"], ["report", str(saved)]):
        with open("/dev/full", "wb") as full:
            done = run_membound(*argv, stdout=full)
        assert 2 == done.returncode, done.stderr
        expected = "membound: error: cannot write to stdout: No space left on device"
        assert expected == one_line(done.stderr)


def _close_stderr() -> None:
    os.close(2)


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["run", "--", "nosuchcmd-membound"], 2), (["run", "--", sys.executable, "-c", "1"], 0)],
)
def test_a_closed_stderr_keeps_the_exit_code(argv: list[str], code: int) -> None:
    done = run_membound(*argv, stderr=None, preexec_fn=_close_stderr)
    assert code == done.returncode


# --- 3. Ctrl-C while membound is still importing ----------------------------------------------


def _default_stops() -> None:
    """In the child: the signals at their defaults, as a terminal gives them (a suite started
    under ``nohup`` ignores SIGHUP, and membound rightly leaves an ignored signal ignored)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def _signal_while_importing(argv: list[str], signum: int = signal.SIGINT) -> tuple[int, str]:
    """Start ``argv`` under ``-X importtime`` (each import is reported on stderr as it ends),
    send ``signum`` as soon as membound's first own modules are in, and return the exit code
    and what stderr said besides the import times."""
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_stops,  # noqa: PLW1509
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            # Early in membound/__init__.py's imports, a few hundred ms before they end.
            if re.search(r"\|\s+membound\._errors\s*$", line):
                proc.send_signal(signum)
                break
        else:
            pytest.fail("membound._errors was never imported")
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert "usage" not in out.lower()  # stopped before it could print its help
    return proc.returncode, "".join(ln for ln in err.splitlines(True) if "import time:" not in ln)


@pytest.mark.parametrize(
    ("signum", "words"),
    [
        (signal.SIGINT, "interrupted"),
        (signal.SIGTERM, "terminated by SIGTERM"),
        (signal.SIGHUP, "terminated by SIGHUP"),
    ],
)
def test_a_signal_while_importing_ends_with_128_plus_n_and_one_line(
    signum: int, words: str
) -> None:
    code, err = _signal_while_importing(["-m", "membound", "--help"], signum)
    assert 128 + signum == code, err
    assert f"membound: {words} while starting\n" == err  # no traceback


def test_ctrl_c_while_the_console_script_imports_ends_with_130() -> None:
    script = Path(sys.executable).parent / "membound"
    if not script.exists():
        pytest.skip("the membound console script is not installed beside this interpreter")
    code, err = _signal_while_importing([str(script), "--help"])
    assert 130 == code, err
    assert "membound: interrupted while starting\n" == err


def test_importing_membound_as_a_library_leaves_ctrl_c_alone() -> None:
    # Compared with the handler the interpreter started with: a shell's background job starts
    # with SIGINT ignored, and Python then installs no handler of its own.
    probe = (
        "import signal, sys\n"
        "before = signal.getsignal(signal.SIGINT)\n"
        "import membound\n"
        "sys.exit(0 if signal.getsignal(signal.SIGINT) is before else 3)\n"
    )
    assert 0 == subprocess.run([sys.executable, "-c", probe], check=False).returncode


# --- 7. a child's exception of megabytes -------------------------------------------------------


def test_a_ten_megabyte_exception_message_is_cut(tmp_path: Path) -> None:
    (tmp_path / "t.py").write_text("def boom(n):\n    raise ValueError('x' * 10_000_000)\n")
    done = run_membound("scale", "t.py:boom", "--sizes", "1,2,3", cwd=tmp_path)
    assert 2 == done.returncode
    assert len(done.stderr) < 4 * SHOWN_CHARS  # was 20 MB: the traceback and the error line
    err = done.stderr.decode()
    assert "ValueError: xxx" in err
    assert "characters cut" in err
    assert "membound: error: " in err


def test_cut_long_keeps_both_ends_and_says_how_much_was_cut() -> None:
    text = "head " + "x" * 100_000 + " tail"
    cut = cut_long(text, 1000)
    assert cut.startswith("head ")
    assert cut.endswith(" tail")
    assert len(cut) < 1100
    assert f"[{100_010 - 1000:,} characters cut]" in cut
    assert "short" == cut_long("short", 1000)


# --- an output option that swallowed the word after it ----------------------------------------


@pytest.mark.parametrize("command", [["run"], ["lint", "."]])
@pytest.mark.parametrize("value", ["--", "-"])
def test_an_output_file_named_like_an_option_is_a_usage_error(
    command: list[str], value: str, tmp_path: Path
) -> None:
    """``--json -- cmd`` took ``--`` for the file and wrote a file named ``--`` beside the
    result; ``--json -`` one named ``-``. Refused before anything runs, exit 2, no file."""
    args = [*command[:1], "--json", value, *command[1:]]
    if command[0] == "run":
        args += ["--", sys.executable, "-c", "print('ran')"]
    done = run_membound(*args, cwd=tmp_path)
    assert 2 == done.returncode, done.stderr.decode()
    err = done.stderr.decode()
    assert f"{value}: expected a file name, not an option" in err, err
    assert b"ran" not in done.stdout
    assert [] == list(tmp_path.iterdir())
