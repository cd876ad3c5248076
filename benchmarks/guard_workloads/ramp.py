"""Child program of ``bench_guard.py``: a paced allocation ramp against its cgroup's limit.

A zygote: it imports membound once, then reads one JSON command per stdin line and, for each,
forks a child that joins the command's memory cgroup, starts a Watchdog (``soft="80%"``,
``hard="90%"``, ``on_hard=actions.raise_in()``, ``on_soft=None``; ``events`` on or off) or none,
and allocates 1 MiB pieces of non-zero bytes up to ``target`` bytes, busy-waiting to a schedule
of ``rate`` bytes/s (piece ``i`` at ``i / rate`` s; after a stall, late pieces follow at once).
When ``MemoryBudgetExceeded`` lands it frees everything and exits with :data:`STOPPED`; a ramp
that reaches its target exits with :data:`REACHED`; an OOM kill shows as signal 9. The zygote
prints one JSON line per run (exit status or signal, what the child saw).

Forking from one warm interpreter saves the 0.6 s import of membound per run; the child's own
pages (written after it joined the group) are charged to the group, as in a fresh process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque

from _child import MIB, join_cgroup, pin_mmap_threshold

STOPPED = 3
REACHED = 4
FAILED = 1


def ramp(cmd: dict[str, object]) -> tuple[int, dict[str, object]]:
    from membound import MemoryBudgetExceeded
    from membound.guard import actions
    from membound.guard.watchdog import Watchdog

    join_cgroup(str(cmd["cgroup"]))
    rate = float(cmd["rate"])  # type: ignore[arg-type]
    count = int(cmd["target"]) // MIB  # type: ignore[call-overload]
    mode = cmd["mode"]
    wd = None
    if mode != "none":
        wd = Watchdog(
            soft="80%",
            hard="90%",
            on_soft=None,
            on_hard=actions.raise_in(),
            events=mode == "events",
        ).start()
    pieces: list[bytes] = []
    info: dict[str, object] = {"events_kind": wd.events_kind if wd else "none"}
    recent: deque[float] = deque(maxlen=129)
    t0 = time.perf_counter()
    try:
        try:
            for i in range(count):
                due = t0 + i * MIB / rate
                while time.perf_counter() < due:
                    pass
                recent.append(time.perf_counter())
                pieces.append(b"\x01" * MIB)
            status = REACHED
        except MemoryBudgetExceeded:
            status = STOPPED
        info["elapsed_s"] = time.perf_counter() - t0
        info["pieces"] = len(pieces)
        if len(recent) > 1:  # the rate over the last 128 MiB: how fast it met the threshold
            info["final_rate_bytes_per_s"] = (len(recent) - 1) * MIB / (recent[-1] - recent[0])
        pieces.clear()
    except MemoryBudgetExceeded:  # landed late, outside the ramp: it was stopped all the same
        status = STOPPED
        pieces.clear()
    if wd is not None:
        info["hard_bytes"] = wd.hard_bytes
        info["limit_bytes"] = wd.limit.bytes
        info["watchdog_peak_bytes"] = wd.peak_bytes
        info["transitions"] = [t["to"] for t in wd.transitions]
        wd.stop()
    return status, info


def main() -> None:
    pin_mmap_threshold()
    import membound.guard.watchdog  # noqa: F401  (warm: every fork starts with it imported)

    for line in sys.stdin:
        cmd = json.loads(line)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            status, info = FAILED, {}
            try:
                status, info = ramp(cmd)
            except BaseException as exc:
                info = {"error": repr(exc)}
            finally:
                os.write(write_end, json.dumps(info).encode())
                os._exit(status)
        os.close(write_end)
        _, wait_status = os.waitpid(pid, 0)
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
        os.close(read_end)
        out: dict[str, object] = {}
        if chunks:
            out.update(json.loads(b"".join(chunks)))
        if os.WIFSIGNALED(wait_status):
            out["signal"] = os.WTERMSIG(wait_status)
        else:
            out["status"] = os.WEXITSTATUS(wait_status)
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
