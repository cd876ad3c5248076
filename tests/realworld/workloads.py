"""Real-code workloads for growth verdicts (module-level: each runs in a fresh interpreter)."""

from __future__ import annotations

import json
import logging
import time

KEPT: list[object] = []


def fragmented_after_free(n: int = 600_000) -> int:
    """Parse a JSON document of n records and drop all but one record in fifty: the survivors
    keep their pages, so RSS stays up though most objects are gone."""
    text = json.dumps([{"id": i, "name": f"user{i}"} for i in range(n)])
    records = json.loads(text)
    del text
    KEPT.extend(records[::50])
    del records
    time.sleep(0.3)
    return len(KEPT)


def released_after_use(size: int = 150 * 2**20) -> int:
    """Read a large buffer, use it, free it: the memory goes back to the OS."""
    time.sleep(0.1)
    buffer = bytearray(size)
    total = len(buffer)
    time.sleep(0.2)
    del buffer
    time.sleep(0.3)
    return total


def logger_per_request(requests: int = 60, per_step: int = 2_000) -> int:
    """A classic real leak: a logger named after each request id. ``logging`` keeps every
    logger forever in its manager's registry."""
    for step in range(requests):
        for i in range(per_step):
            logging.getLogger(f"request.{step}.{i}")
        time.sleep(0.01)
    return len(logging.Logger.manager.loggerDict)


def buffered_writer(flushes: int = 6, chunks: int = 24, chunk_bytes: int = 2**20) -> int:
    """Encoded rows buffered in 1 MiB chunks and dropped at each flush (as a writer that sends
    its buffer when full): a sawtooth."""
    row = json.dumps({"row": 0, "payload": "x" * 40}).encode()
    per_chunk = chunk_bytes // len(row)
    written = 0
    for _ in range(flushes):
        buffer = [bytearray(row * per_chunk) for _ in range(chunks)]
        time.sleep(0.08)
        written += sum(len(chunk) for chunk in buffer)
        del buffer
        time.sleep(0.08)
    return written
