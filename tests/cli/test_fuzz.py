"""Fuzzing the CLI as a careless user and an attacker would: hostile numbers, markup, quotes,
paths and measured code that exits, crashes or raises what it should not.

Every invocation runs ``python -m membound`` in a subprocess, tagged by an environment variable
that its descendants inherit. Whatever the input: the exit code is 0, 1 or 2; stderr holds no
traceback of membound's and no "internal error"; the run ends within its time limit; and no
process carrying the tag is left afterwards. The examples are drawn from a fixed seed
(``derandomize``), so a failure here is a failure on every machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.processes import kill_tagged, new_tag, tagged, tagged_env

#: Text nobody should have to think twice about: numbers at and past every limit, markup of
#: rich and matplotlib, quotes, blanks.
HOSTILE = [
    "",
    " ",
    "0",
    "-1",
    "nan",
    "inf",
    "-inf",
    "1e400",
    "1e300TB",
    "1" + "0" * 400,
    "[/x]",
    "[bold]x",
    "$\\frac{$",
    ":ok:",
    "'",
    '"x',
    "é ü",
    "--",
    "-",
]

TARGETS = """\
import ctypes, os, subprocess, sys

def ok():
    pass

def ok_n(n):
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

def forks(*a):
    subprocess.Popen(["sleep", "30"], start_new_session=True)

class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no str")

def badstr(*a):
    raise BadStr()
"""

SCENARIOS = """\
import membound

@membound.scenario("[/x] $\\\\frac{$ :ok:")
def a():
    pass

@membound.scenario("b")
def b():
    pass
"""

RUN_LIMIT = 60.0  # seconds for one invocation; every generated run is far shorter


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with targets, scenario files and result files good and bad."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "t.py").write_text(TARGETS)
    (folder / "scen.py").write_text(SCENARIOS)
    (folder / "scen_exit.py").write_text("import sys\nsys.exit(4)\n")
    good = _membound(folder, ["run", "--json", "good.json", "--", sys.executable, "-c", "pass"])
    assert 0 == good.returncode, good.stderr
    doc = json.loads((folder / "good.json").read_text())
    for name, value in {
        "str_peak": "x",
        "nan_peak": float("nan"),
        "huge_peak": 10**400,
        "list_peak": [1],
    }.items():
        bad = json.loads(json.dumps(doc))
        bad["result"]["rss_peak"] = value
        (folder / f"{name}.json").write_text(json.dumps(bad))
    (folder / "list.json").write_text(json.dumps({**doc, "result": [1]}))
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (folder / "empty.json").write_text("")
    (folder / "a_dir.json").mkdir()
    tree = folder / "tree"
    tree.mkdir()
    (tree / "app.py").write_text("rows = session.query(User).all()\nfor r in rows:\n    pass\n")
    os.mkfifo(tree / "pipe.py")
    (tree / "zero.py").symlink_to("/dev/zero")
    (tree / "loop.py").symlink_to(tree / "loop.py")
    return folder


def _membound(folder: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "membound", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
        check=False,
    )


def check_invocation(folder: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run membound on ``args`` and assert the contract every input must keep."""
    tag = new_tag()
    env = tagged_env(tag)
    env.pop("MEMBOUND_DEBUG", None)
    started = time.monotonic()
    # Output goes to files, not pipes: a left-over process holding a pipe would block the
    # read, and the measured command's stdout should be what a user's terminal or log file is.
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "membound", *args],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out_file,
            stderr=err_file,
            text=True,
        )
        try:
            proc.wait(timeout=RUN_LIMIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"membound {args!r} did not end within {RUN_LIMIT} s") from None
        finally:
            left = tagged(tag)
            kill_tagged(tag)  # never leave them to the next test
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    assert proc.returncode in (0, 1, 2), (args, proc.returncode, err[-2000:])
    assert "Traceback (most recent call last)" not in err or _child_traceback(err), (args, err)
    assert "internal error" not in err, (args, err)
    assert not left, f"membound {args!r} left {len(left)} process(es) running"
    assert time.monotonic() - started < RUN_LIMIT
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _child_traceback(err: str) -> bool:
    """True when the only tracebacks shown are the measured code's (membound shows the
    child's traceback above its one-line error), never one through membound's own code."""
    blocks = err.split("Traceback (most recent call last)")[1:]
    return all("site-packages/click" not in b and "membound/cli/" not in b for b in blocks)


def hostile(*more: str) -> st.SearchStrategy[str]:
    return st.sampled_from(HOSTILE + list(more))


def options(
    pairs: dict[str, st.SearchStrategy[str]], flags: list[str]
) -> st.SearchStrategy[list[str]]:
    """Any subset of ``pairs`` (option and drawn value) and ``flags``, in a drawn order."""
    items = [st.tuples(st.just(k), v).map(list) for k, v in pairs.items()]
    items += [st.just([f]) for f in flags]
    return st.lists(st.one_of(*items), max_size=4).map(lambda xs: [a for x in xs for a in x])


#: Inputs drawn per command; ``MEMBOUND_FUZZ_EXAMPLES=200`` for a longer hunt than ``make test``'s.
EXAMPLES = int(os.environ.get("MEMBOUND_FUZZ_EXAMPLES", "12"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

OUTPUTS = {
    "--json": hostile("out.json", "/nonexistent/x.json", "a_dir.json"),
    "--plot": hostile("out.png", "/nonexistent/x.png"),
}


@FUZZ
@given(
    opts=options(
        {
            "--limit": hostile("100MB", "1KB"),
            "--timeout": hostile("5", "0.001"),
            "--interval": hostile("0.01", "1e-9"),
            **OUTPUTS,
        },
        ["--heap", "--markdown"],
    ),
    cmd=st.sampled_from(
        [
            [sys.executable, "-c", "pass"],
            [sys.executable, "-c", "import sys; sys.exit(3)"],
            ["echo", "[/x]", "$\\frac{$", ":ok:"],
            ["/nonexistent/program"],
            [""],
            ["."],
            ["bash", "-c", "sleep 30 & sleep 0.2; echo started"],
            ["bash", "-c", "setsid sleep 30 & sleep 0.2; echo started"],
        ]
    ),
)
def test_run_keeps_the_contract(place: Path, opts: list[str], cmd: list[str]) -> None:
    check_invocation(place, ["run", *opts, "--", *cmd])


@FUZZ
@given(
    source=st.sampled_from(
        [
            ["scen.py"],
            ["scen_exit.py"],
            ["missing.py"],
            ["--cmd", "true", "--cmd", "echo [/x] :ok: $\\frac{$"],
            ["--cmd", 'python3 -c "x', "--cmd", "true"],
            ["--cmd", "", "--cmd", "true"],
            ["--cmd", "bash -c 'setsid sleep 30 & sleep 0.2'", "--cmd", "true"],
            [],
        ]
    ),
    opts=options(
        {"--repeat": hostile("1", "2"), "--timeout": hostile("5"), **OUTPUTS}, ["--markdown"]
    ),
)
def test_compare_keeps_the_contract(place: Path, source: list[str], opts: list[str]) -> None:
    check_invocation(place, ["compare", *source, *opts])


@FUZZ
@given(
    target=hostile("t.py:ok_n", "t.py:exits", "t.py:segv", "t.py:base", "t.py:forks", "t.py", ":"),
    opts=options(
        {
            "--sizes": hostile("1,10,100", "1,2", "1,10,1e400", "nan,1,2,3"),
            "--metric": hostile("rss", "heap"),
            "--repeat": hostile("1"),
            "--expect": hostile("O(1)", "O(n)", "bogus"),
            "--timeout": hostile("10"),
            **OUTPUTS,
        },
        ["--markdown"],
    ),
)
def test_scale_keeps_the_contract(place: Path, target: str, opts: list[str]) -> None:
    if "--sizes" not in opts:
        opts = [*opts, "--sizes", "1,10,100"]  # keep the valid runs short
    check_invocation(place, ["scale", target, *opts])


@FUZZ
@given(
    target=hostile(
        "t.py:ok", "t.py:exits", "t.py:hard", "t.py:segv", "t.py:base", "t.py:badstr", "t.py:forks"
    ),
    opts=options(
        {
            "--iterations": hostile("40", "1"),
            "--warmup": hostile("0", "5"),
            "--rounds": hostile("4"),
            "--tolerance": hostile("64B", "1e400"),
            "--timeout": hostile("20", "0.001"),
            **OUTPUTS,
        },
        ["--in-process", "--expect-clean", "--markdown"],
    ),
)
def test_leaks_keeps_the_contract(place: Path, target: str, opts: list[str]) -> None:
    if "--iterations" not in opts:
        opts = [*opts, "--iterations", "40", "--rounds", "4"]  # keep the valid runs short
    if "--in-process" in opts and target in ("t.py:hard", "t.py:segv"):
        # In-process, the measured code owns the process: os._exit and a crash end membound
        # too, as documented; the isolated default is what keeps the contract for them.
        opts = [o for o in opts if o != "--in-process"]
    check_invocation(place, ["leaks", target, *opts])


@FUZZ
@given(
    files=st.lists(
        hostile(
            "good.json",
            "str_peak.json",
            "nan_peak.json",
            "huge_peak.json",
            "list_peak.json",
            "list.json",
            "deep.json",
            "binary.json",
            "empty.json",
            "a_dir.json",
            "missing.json",
        ),
        min_size=0,
        max_size=3,
    ),
    opts=options(
        {"--plot": hostile("r.png"), "--html": hostile("r.html", "/nonexistent/r.html")},
        ["--markdown"],
    ),
)
def test_report_keeps_the_contract(place: Path, files: list[str], opts: list[str]) -> None:
    check_invocation(place, ["report", *opts, *files])


@FUZZ
@given(
    rows=hostile("1000000000000000000000000000", "10"),
    opts=options({"--repeat": hostile(), "--out": hostile()}, ["--no-scale"]),
)
def test_demo_refuses_what_it_cannot_do(place: Path, rows: str, opts: list[str]) -> None:
    # Every --rows drawn here is refused (a valid demo runs for minutes): what is fuzzed is
    # that each refusal is a clean usage error, whatever comes with it.
    proc = check_invocation(place, ["demo", "--rows", rows, *opts])
    assert 2 == proc.returncode, (rows, opts, proc.stdout[-500:])


@FUZZ
@given(
    paths=st.lists(hostile("tree", "tree/pipe.py", "tree/zero.py", "tree/app.py"), max_size=2),
    opts=options(
        {
            "--select": hostile("MB1", "MB9999", ","),
            "--ignore": hostile("MB1", "ALL"),
            "--format": hostile("json", "sarif", "github", "text"),
            "--max-file-size": hostile("10MB", "1"),
            "--jobs": hostile("2"),
            "-o": hostile("lint.txt", "/nonexistent/x"),
        },
        ["--exit-zero", "--statistics", "--isolated"],
    ),
)
def test_lint_keeps_the_contract(place: Path, paths: list[str], opts: list[str]) -> None:
    check_invocation(place, ["lint", *opts, *(paths or ["tree"])])
