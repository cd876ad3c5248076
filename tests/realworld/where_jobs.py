"""Jobs on real libraries for the lines that held the peak (``where=``), each also traced by
memray's own ``Tracker`` as its users run it, whose high-watermark view is the reference.

Module-level functions (``mb.measure`` imports them in a fresh interpreter; the reference run
imports them too, so that neither counts the imports); the same module run as a script
(``python where_jobs.py NAME``) runs one job as a command. Sizes stay near 50 MB and runs under
a second: the suite shares its machine. The line each job holds most of its peak on is marked
``# top``.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: What a job keeps to its end.
KEPT: list[object] = []


def _block(rows: int) -> np.ndarray:
    return np.ones((rows, 1000))  # top: numpy_helper_two_callers


def numpy_helper_two_callers() -> int:
    """A numpy helper called from two places: the helper's line holds both results."""
    first = _block(4000)  # 32 MB
    second = _block(2000)  # 16 MB
    KEPT.extend((first, second))
    return int(first.shape[0] + second.shape[0])


def json_load() -> int:
    """A JSON text parsed into lists and dicts (its records take eight times the text)."""
    text = ",".join(f'{{"id": {i}, "name": "user {i}", "tags": ["a"]}}' for i in range(80_000))
    records = json.loads(f"[{text}]")  # top: json_load
    KEPT.append(records)
    return len(records)


def sqlite_fetchall() -> int:
    """Every row of a table fetched at once."""
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", ((i, f"n{i}", i / 3) for i in range(150_000)))
    rows = db.execute("SELECT id, name, score FROM t").fetchall()  # top: sqlite_fetchall
    KEPT.append(rows)
    db.close()
    return len(rows)


def pillow_decode() -> int:
    """A PNG decoded into pixels (Pillow's own buffers, under the user's line)."""
    buffer = io.BytesIO()
    Image.new("RGB", (1000, 1000), (10, 20, 30)).save(buffer, "PNG")
    images = []
    for _ in range(12):
        image = Image.open(io.BytesIO(buffer.getvalue()))
        image.load()  # top: pillow_decode
        images.append(image)
    KEPT.append(images)
    return len(images)


def worker_thread() -> int:
    """A worker thread builds what the program keeps."""

    def work() -> None:
        KEPT.append([bytes(1000) + bytes([i % 256]) for i in range(40_000)])  # top: worker_thread

    thread = threading.Thread(target=work, name="loader")
    thread.start()
    thread.join()
    return len(KEPT)


def transient_peak() -> int:
    """A big temporary freed at once, a smaller result kept: the peak is the temporary's."""
    temporary = bytearray(b"\x01") * (60 * 10**6)  # top: transient_peak
    KEPT.append(bytes(temporary[: 10 * 10**6]))
    del temporary
    return len(KEPT)


def generator_into_list() -> int:
    """A generator pipeline collected into a list at the end."""
    lines = (f"{i},{i * 2},{i * 3}" for i in range(200_000))
    fields = (line.split(",") for line in lines)
    rows = [tuple(map(int, parts)) for parts in fields]  # top: generator_into_list
    KEPT.append(rows)
    return len(rows)


def slower_when_run_again(marker: str) -> int:
    """:func:`generator_into_list`, then, in any run after the one that wrote ``marker``, a
    wait of two minutes (a second run that does not end in time)."""
    count = generator_into_list()
    if os.path.exists(marker):
        time.sleep(120)
    else:
        Path(marker).touch()
    return count


JOBS = {
    "numpy_helper_two_callers": numpy_helper_two_callers,
    "json_load": json_load,
    "sqlite_fetchall": sqlite_fetchall,
    "pillow_decode": pillow_decode,
    "worker_thread": worker_thread,
    "transient_peak": transient_peak,
    "generator_into_list": generator_into_list,
}


def top_line(name: str) -> int:
    """The line marked ``# top: NAME``."""
    with open(__file__, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if line.rstrip().endswith(f"# top: {name}"):
                return number
    raise LookupError(name)


if __name__ == "__main__":
    JOBS[sys.argv[1]]()
