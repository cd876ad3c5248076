"""Saved results and labels from the world outside: a command argument that is not UTF-8, a
``.json`` that is a FIFO or a link to ``/dev/zero``, a file too large to be a result, and a
result whose figures no run can produce. Each renders safely or is refused in one line."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from membound.cli.main import main
from membound.report.json import MAX_BYTES

#: A command with an argument that is not UTF-8, as a shell passes ``$'\xff'``.
NOT_UTF8 = [b"python3", b"-c", b"1", b"\xff"]


def run_membound(*args: str | bytes, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """``python -m membound ARGS`` in a subprocess, its memory capped at 2 GiB (a read that
    never ends fails fast instead of taking the machine's memory)."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    return subprocess.run(
        [sys.executable, "-m", "membound", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        preexec_fn=cap,
    )


def one_line(err: bytes) -> str:
    lines = err.decode(errors="replace").strip().splitlines()
    assert 1 == len(lines), err.decode(errors="replace")[-2000:]
    return lines[0]


# --- 4. labels that are not UTF-8 --------------------------------------------------------------


@pytest.fixture(scope="module")
def not_utf8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved result whose label holds the byte 0xff."""
    saved = tmp_path_factory.mktemp("bytes") / "run.json"
    done = run_membound("run", "--json", str(saved), "--", *NOT_UTF8)
    assert 0 == done.returncode, done.stderr
    assert "\udcff" in json.loads(saved.read_text())["result"]["label"]  # kept as it was
    return saved


def test_run_plot_draws_a_label_that_is_not_utf8(tmp_path: Path) -> None:
    png = tmp_path / "run.png"
    done = run_membound("run", "--plot", str(png), "--", *NOT_UTF8)
    assert 0 == done.returncode, done.stderr
    assert png.read_bytes().startswith(b"\x89PNG")


def test_report_html_and_plot_of_a_label_that_is_not_utf8(not_utf8: Path, tmp_path: Path) -> None:
    saved = not_utf8
    page, png = tmp_path / "r.html", tmp_path / "r.png"
    for argv in (["--html", str(page)], ["--plot", str(png)]):
        done = run_membound("report", str(saved), *argv)
        assert 0 == done.returncode, done.stderr
    text = page.read_bytes().decode("utf-8")  # the page is UTF-8 throughout
    assert "python3 -c 1 &#x27;\ufffd&#x27;" in text  # escaped, as every text
    assert png.read_bytes().startswith(b"\x89PNG")


def test_the_terminal_shows_the_label_as_its_bytes(not_utf8: Path) -> None:
    done = run_membound("report", str(not_utf8), "--markdown")
    assert 0 == done.returncode
    assert b"python3 -c 1 '\xff'" in done.stdout  # as ls prints such a name: the byte itself


# --- 5. a .json that is not a regular file, or too large ---------------------------------------


def test_a_link_to_dev_zero_is_refused_at_once(tmp_path: Path) -> None:
    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    done = run_membound("report", str(link), timeout=30)
    assert 2 == done.returncode
    expected = f"membound: error: cannot read {link}: not a regular file (a character device)"
    assert expected == one_line(done.stderr)


def test_a_fifo_without_a_writer_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    done = run_membound("report", str(fifo), "--html", str(tmp_path / "x.html"), timeout=30)
    assert 2 == done.returncode
    expected = f"membound: error: cannot read {fifo}: not a regular file (a FIFO)"
    assert expected == one_line(done.stderr)
    assert not (tmp_path / "x.html").exists()


def test_a_file_larger_than_any_result_is_refused_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: no disk, and not read
    assert 2 == main(["report", str(big)])
    err = capsys.readouterr().err
    assert f"cannot read {big}: file too large ({MAX_BYTES + 1:,} bytes" in one_line(err.encode())


# --- 6. figures no run can produce -------------------------------------------------------------


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """A saved result of each kind worth tampering with: a run and a comparison."""
    folder = tmp_path_factory.mktemp("docs")
    code = "import time; time.sleep(0.2)"
    made = {
        "measurement": ["run", "--json", "RUN", "--", sys.executable, "-c", code],
        "comparison": [
            *("compare", "--repeat", "2", "--json", "RUN"),
            *("--cmd", f"{sys.executable} -c '{code}'", "--cmd", "true"),
        ],
    }
    docs = {}
    for kind, argv in made.items():
        path = folder / f"{kind}.json"
        done = run_membound(*[str(path) if a == "RUN" else a for a in argv])
        assert 0 == done.returncode, done.stderr
        docs[kind] = json.loads(path.read_text())
    return docs


def _set(*keys: str | int, value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        place: Any = doc["result"]
        for key in keys[:-1]:
            place = place[key]
        place[keys[-1]] = value

    return change


def _backwards(doc: dict[str, Any]) -> None:
    times = doc["result"]["timeline"]["times"]
    times[3], times[4] = times[4], times[3]


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("measurement", _backwards, "Measurement.timeline.times[4] is "),
        ("measurement", _set("rss_peak", value=-1), "Measurement.rss_peak is -1, expected 0 or"),
        ("measurement", _set("duration_s", value=-0.5), "Measurement.duration_s is -0.5"),
        ("measurement", _set("timeline", "lows", 0, value=-4096.0), "timeline.lows[0] is -4096.0"),
        ("measurement", _set("timeline", "stride", value=0), "timeline.stride is 0, expected"),
        ("comparison", _set("repeat", value=0), "Comparison.repeat is 0, expected above 0"),
        (
            "comparison",
            _set("rows", 0, "rss_peak", "median", value=1e12),
            "rows[0].rss_peak has median 1000000000000.0 outside its range",
        ),
        (
            "comparison",
            _set("rows", 1, "duration_s", "low", value=-1.0),
            "rows[1].duration_s.low is -1.0",
        ),
    ],
    ids=[
        "time backwards",
        "negative peak",
        "negative duration",
        "negative rss",
        "stride 0",
        "repeat 0",
        "median outside range",
        "negative time",
    ],
)
def test_a_result_no_run_can_produce_is_refused_naming_the_field(
    documents: dict[str, dict[str, Any]],
    kind: str,
    change: Callable[[dict[str, Any]], None],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = json.loads(json.dumps(documents[kind]))
    change(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert 2 == main(["report", str(bad)])
    captured = capsys.readouterr()
    first = captured.err.splitlines()[0]
    assert first.startswith("membound: error: malformed membound result: ")
    assert message in first
    assert "Traceback" not in captured.err
    assert "" == captured.out


def test_the_untouched_results_still_render(
    documents: dict[str, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, doc in documents.items():
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(doc))
        assert 0 == main(["report", str(path)]), capsys.readouterr().err
