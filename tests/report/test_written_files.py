"""Files written whole or not at all, and read only when they are regular and small
(``membound._files``); report output (PNG, HTML) written through them; user text made drawable
(``report/text.py``)."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from membound._files import Unreadable, read_regular, write_atomic
from membound.report.text import displayable


def test_a_new_file_gets_what_open_would_give_it(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    old = os.umask(0o027)
    try:
        write_atomic(target, b"{}\n")
    finally:
        os.umask(old)
    assert b"{}\n" == target.read_bytes()
    assert 0o640 == stat.S_IMODE(target.stat().st_mode)
    assert ["new.json"] == [p.name for p in tmp_path.iterdir()]  # no temporary file left


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.html"
    target.write_bytes(b"old")
    target.chmod(0o604)
    inode = target.stat().st_ino
    write_atomic(target, b"new")
    assert b"new" == target.read_bytes()
    assert 0o604 == stat.S_IMODE(target.stat().st_mode)
    assert inode != target.stat().st_ino  # a new file renamed over the old one


def test_a_link_is_kept_and_its_target_replaced(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_atomic(link, b"new")
    assert link.is_symlink()
    assert b"new" == real.read_bytes()


def test_a_stream_is_written_in_place(tmp_path: Path) -> None:
    write_atomic("/dev/null", b"into nothing")  # a device: no rename, no error
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    write_atomic(fifo, b"through the pipe")
    reader.join(10)
    assert [b"through the pipe"] == got
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_failed_write_names_the_path_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        write_atomic(tmp_path / "no" / "such.json", b"x")
    assert str(tmp_path / "no" / "such.json") == caught.value.filename
    with pytest.raises(IsADirectoryError) as folder:
        write_atomic(tmp_path, b"x")
    assert str(tmp_path) == folder.value.filename
    assert [] == list(tmp_path.iterdir())


def test_read_regular_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(Unreadable, match=r"not a regular file \(a FIFO\)"):
        read_regular(fifo, 100)  # no writer: an open would block for ever
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    with pytest.raises(Unreadable, match=r"not a regular file \(a character device\)"):
        read_regular(zero, 100)
    with pytest.raises(Unreadable, match="Is a directory"):
        read_regular(tmp_path, 100)
    big = tmp_path / "big.json"
    big.write_bytes(b"x" * 101)
    with pytest.raises(Unreadable, match=r"file too large \(101 bytes; at most 100"):
        read_regular(big, 100)
    with pytest.raises(Unreadable, match="No such file or directory"):
        read_regular(tmp_path / "missing.json", 100)
    assert b"x" * 101 == read_regular(big, 101)


def test_chart_and_html_write_whole_files(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import membound as mb

    result = mb.Measurement(
        label="label \udcff",
        kind="command",
        duration_s=1.0,
        rss_start=0,
        rss_end=2**20,
        rss_peak=2**21,
        rss_peak_delta=2**21,
        rss_peak_source="test",
        heap_current=None,
        heap_peak=None,
        gc_collections=None,
        gc_pause_s=None,
        timeline=mb.Timeline.from_values([0, 2**20, 2**21, 2**20]),
        growth=mb.classify(mb.Timeline.from_values([0, 2**20, 2**21, 2**20])),
    )
    png, page = tmp_path / "c.png", tmp_path / "p.html"
    png.write_bytes(b"old")
    mb.report.chart(result, png)
    mb.report.html([result], page)
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "label \ufffd" in page.read_bytes().decode("utf-8")
    assert {"c.png", "p.html"} == {p.name for p in tmp_path.iterdir()}


def test_displayable_replaces_each_lone_surrogate() -> None:
    assert "a\ufffdb\ufffd" == displayable("a\udcffb\ud800")
    assert "café ✓" == displayable("café ✓")
