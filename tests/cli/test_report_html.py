"""``membound report FILE… --html PAGE`` end to end, from results the CLI itself saved."""

from __future__ import annotations

import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from membound.cli.main import main

ALLOC = "import time; b = bytearray(30 * 2**20); time.sleep(0.3)"


class Tags(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def count(self, tag: str) -> int:
        return sum(1 for t, _ in self.tags if t == tag)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A measurement and a leak report, saved with --json by the CLI."""
    base = tmp_path_factory.mktemp("results")
    run, leaks = base / "run.json", base / "leaks.json"
    assert 0 == main(["run", "--json", str(run), "--", sys.executable, "-c", ALLOC])
    target = "tests.judge.leak_targets:session_per_request"
    argv = ["leaks", target, "--iterations", "200", "--warmup", "20", "--rounds", "6"]
    assert 0 == main([*argv, "--json", str(leaks)])
    return run, leaks


def test_html_page_of_two_results(
    saved: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    assert 0 == main(["report", *map(str, saved), "--html", str(page)])
    captured = capsys.readouterr()
    assert f"wrote {page}" in captured.err
    text = page.read_text(encoding="utf-8")
    tags = Tags(text)
    assert 2 == tags.count("section")
    assert 2 == tags.count("img")
    srcs = [attrs["src"] or "" for tag, attrs in tags.tags if tag == "img"]
    assert all(src.startswith("data:image/png;base64,") for src in srcs)
    assert "LEAK" in text
    assert "session_per_request" in text


def test_markdown_and_plot_still_work_for_one_file(
    saved: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "run.png"
    assert 0 == main(["report", str(saved[0]), "--markdown", "--plot", str(png)])
    assert "| RSS peak |" in capsys.readouterr().out
    assert b"\x89PNG\r\n\x1a\n" == png.read_bytes()[:8]


def test_markdown_of_several_files(
    saved: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["report", *map(str, saved), "--markdown"])
    out = capsys.readouterr().out
    assert "| RSS peak |" in out
    assert "session_per_request: LEAK**" in out


def _not_a_result(tmp_path: Path) -> str:
    path = tmp_path / "other.json"
    path.write_text('{"schema": "other/1"}')
    return str(path)


@pytest.mark.parametrize(
    ("argv", "message", "hint"),
    [
        (
            lambda tmp, run: ["report", run, str(tmp / "missing.json"), "--html", "x.html"],
            "cannot read",
            "hint: give a file written by",
        ),
        (
            lambda tmp, run: ["report", run, _not_a_result(tmp), "--html", str(tmp / "x.html")],
            "not a membound result",
            "hint: give a file written by",
        ),
        (
            lambda tmp, run: ["report", run, "--html", str(tmp / "no" / "dir" / "x.html")],
            "cannot write",
            "x.html: folder",  # the path and the reason, one line, before any table
        ),
        (
            lambda tmp, run: ["report", run, run, "--plot", str(tmp / "x.png")],
            "--plot draws one results file",
            "hint: see 'membound report --help'",
        ),
        (
            lambda tmp, run: ["report", run, "--html", str(tmp)],
            "is a directory",
            "hint: see 'membound report --help'",
        ),
    ],
    ids=["missing file", "not a result", "unwritable page", "plot of two", "page is a dir"],
)
def test_errors_exit_2_with_a_hint_and_no_traceback(
    argv: Callable[[Path, str], list[str]],
    message: str,
    hint: str,
    saved: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert 2 == main(argv(tmp_path, str(saved[0])))
    captured = capsys.readouterr()
    assert message in captured.err
    assert hint in captured.err
    assert "Traceback" not in captured.err
    assert "" == captured.out  # a bad file or path stops the command before anything is printed
    assert not list(tmp_path.glob("x.*"))


def test_html_alone_prints_no_tables(
    saved: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert 0 == main(["report", *map(str, saved), "--html", str(tmp_path / "r.html")])
    assert "" == capsys.readouterr().out


def test_run_writes_the_same_page_as_report(
    saved: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --html PAGE`` (as ``compare``, ``scale`` and ``leaks``) writes the page ``report
    --html`` draws from the saved result, and still prints the table."""
    page = tmp_path / "run.html"
    assert 0 == main(["run", "--quiet", "--html", str(page), "--", sys.executable, "-c", ALLOC])
    captured = capsys.readouterr()
    assert f"wrote {page}" in captured.err
    assert "| RSS peak |" in captured.out or "RSS peak" in captured.out
    text = page.read_text(encoding="utf-8")
    assert "bytearray(30 * 2**20)" in text  # the run's label
    assert 1 == Tags(text).count("section"), text[:2000]
