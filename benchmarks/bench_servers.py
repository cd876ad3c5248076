"""The guard in real servers: gunicorn and uvicorn workers under a leak, and what the guard
costs on a service that does not leak (DESIGN §6b, issue 28).

Servers run ``tests/guard/apps/guarded_wsgi.py`` (gunicorn sync workers) and
``guarded_asgi.py`` (``uvicorn --workers``, gunicorn's ``UvicornWorker``) on 127.0.0.1, each in
a fresh memory cgroup (v1, made under this process's own; needs root). "The full guard" is a
``Watchdog(on_hard=actions.refuse_new_work())`` started in every worker, the health middleware
and the recycler (``GunicornRecycler`` hooks for gunicorn, ``ASGIRecycler`` for uvicorn).

* **Leak** (``--requests``, 5,000 by default, per server): 4 workers in a 400 MiB cgroup, every
  request keeps 1 MiB in its worker, 8 client threads paced to ``--rate`` (200) requests a
  second in all — 200 MiB/s of leak — with the full guard, the recycler at ``hard="70%"`` of a
  worker's share (70 MiB). Target: 0 OOM kills and no response but 2xx, or 503 from the
  middleware while work is refused (its JSON body and ``Retry-After``); no request lost. Then
  ``--stress-requests`` unpaced (as fast as the server answers: a refusing worker answers 503
  in a millisecond, so the share of 503s says how fast the client is; the time spent refusing
  is reported beside it). The contrast, the paced load without the guard: OOM kills.
* **Cost** (``--cost-requests`` per variant): a server without the guard and one with the full
  guard, 2 workers each in their own 400 MiB cgroup, side by side; a request that keeps nothing
  goes to each in turn from 4 client threads, so both see the same machine at the same time.
  The p99 of the guarded server over the unguarded, per round of ``--round`` requests; the
  median of the rounds. Target ≤ 1.1×.
* **Idle CPU**: each worker's CPU time (``/proc/PID/stat``) over ``--idle-s`` seconds with no
  request, with the full guard and without. Target ≤ 0.5 % of one core per guarded worker.

Writes ``benchmarks/results/servers.json`` and prints target vs measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import median, write
from bench_guard import Cgroups, group_figures, own_memory_cgroup

ROOT = Path(__file__).resolve().parents[1]
APPS = ROOT / "tests" / "guard" / "apps"
MIB = 1 << 20
LIMIT = 400 * MIB
SHED_BODY = b'{"status": "hard", "error": "memory near its limit: try again later"}'
KINDS = ("gunicorn sync", "uvicorn --workers", "gunicorn UvicornWorker")
COST_P99_TARGET = 1.1
#: One request's outcome: (url index, status or error, body, headers, seconds, sent at).
Done = tuple[int, Any, bytes, dict[str, str], float, float]
IDLE_CPU_TARGET = 0.005


def argv_for(kind: str, port: int, workers: int) -> list[str]:
    """The command line of a server of ``kind`` on 127.0.0.1:``port``."""
    bind = f"127.0.0.1:{port}"
    conf = str(APPS / "guarded_conf.py")
    if kind == "uvicorn --workers":
        return [
            *(sys.executable, "-m", "uvicorn", "--workers", str(workers)),
            *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
            "guarded_asgi:application",
        ]
    worker = ["-k", "uvicorn.workers.UvicornWorker"] if kind == "gunicorn UvicornWorker" else []
    app = "guarded_asgi:application" if worker else "guarded_wsgi:application"
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers),
        *worker,
        "-b",
        bind,
        "-c",
        conf,
        app,
    ]


def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(url: str) -> tuple[int | str, bytes, dict[str, str], float]:
    """(status or error, body, headers, seconds)."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            status, body, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, body, headers = exc.code, exc.read(), dict(exc.headers)
    except OSError as exc:
        return type(exc).__name__, b"", {}, time.perf_counter() - start
    return status, body, {k.lower(): v for k, v in headers.items()}, time.perf_counter() - start


@contextlib.contextmanager
def server(
    kind: str, workers: int, env: dict[str, str], group: Path, log: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A server of ``kind`` in ``group``, answering; always stopped."""
    port = free_port()
    argv = argv_for(kind, port, workers)
    shell = ["sh", "-c", f'echo $$ > "{group / "cgroup.procs"}" && exec "$@"', "sh", *argv]
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APPS), str(ROOT)]), **env}
    with log.open("wb") as out:
        process = subprocess.Popen(
            shell, env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while not isinstance(fetch(f"http://127.0.0.1:{port}/")[0], int):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        time.sleep(1.0)  # every worker up
        yield port, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def load(urls: list[str], count: int, threads: int, rate: float | None = None) -> list[Done]:
    """``count`` requests from ``threads`` threads, each thread going through ``urls`` in turn
    (its own offset, so every url sees every thread), at most ``rate`` a second in all (None:
    as fast as they are answered); (url index, status, body, headers, seconds, sent at)."""
    done: list[Done] = []
    lock = threading.Lock()
    left = [count]
    next_at = [time.perf_counter()]

    def run(offset: int) -> None:
        turn = offset
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
                at = next_at[0] = max(next_at[0], time.perf_counter())
                if rate:
                    next_at[0] += 1 / rate
            if rate:
                time.sleep(max(0.0, at - time.perf_counter()))
            which = turn % len(urls)
            turn += 1
            sent = time.perf_counter()
            status, body, headers, seconds = fetch(urls[which])
            with lock:
                done.append((which, status, body, headers, seconds, sent))

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return done


def p99(values: list[float]) -> float:
    """The 99th percentile."""
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


# --- leak -----------------------------------------------------------------------------------


def leak(
    groups: Cgroups, kind: str, guarded: bool, requests: int, rate: float | None, folder: Path
) -> dict[str, Any]:
    """4 workers, 1 MiB kept per request, 400 MiB: how every request ended."""
    env = {
        "MB_TEST_GUARD": "full" if guarded else "none",
        "MB_TEST_RECYCLER": "1" if guarded else "0",
        "MB_TEST_HARD": "70%",
        "MB_TEST_LEAK_MIB": "1",
        "MB_TEST_SLOT_DIR": str(folder),
    }
    log = folder / f"leak-{kind.replace(' ', '_')}-{guarded}-{rate}.log"
    with groups.group(LIMIT) as group:
        with server(kind, 4, env, group, log) as (port, _):
            started = time.perf_counter()
            done = load([f"http://127.0.0.1:{port}/leak"], requests, threads=8, rate=rate)
            elapsed = time.perf_counter() - started
        peak, kills = group_figures(group)
    text = log.read_text(errors="replace")
    kinds: Counter[str] = Counter()
    for _, status, body, headers, _, _ in done:
        if isinstance(status, int) and 200 <= status < 300:
            kinds["2xx"] += 1
        elif status == 503 and body == SHED_BODY and "retry-after" in headers:
            kinds["503 refusing"] += 1
        else:
            kinds[f"other: {status}"] += 1
    seconds = [d[4] for d in done]
    refusing = {int(d[5] * 10) for d in done if d[1] == 503}  # tenths of a second with a 503
    return {
        "requests": len(done),
        "rate_per_s": rate,
        "outcomes": dict(kinds),
        "refusing_s": len(refusing) / 10,
        "oom_kills": kills,
        "peak_mib": round(peak / MIB, 1),
        "recycles": text.count("recycles after this request"),
        "stuck_recycles": text.count("has refused new work for"),
        "p50_ms": round(median(seconds) * 1000, 1),
        "p99_ms": round(p99(seconds) * 1000, 1),
        "elapsed_s": round(elapsed, 1),
    }


# --- cost -------------------------------------------------------------------------------------


def workers_of(group: Path, server_pid: int) -> list[int]:
    """The worker processes in ``group``: all but the supervisor, its shell and helpers."""
    pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
    found = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid != server_pid and b"resource_tracker" not in cmdline:
            found.append(pid)
    return found


def cpu_s(pid: int) -> float:
    """The CPU time a process has used (user + system), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(group: Path, server_pid: int, seconds: float) -> list[float]:
    """Each worker's share of one core over ``seconds`` with no request."""
    time.sleep(3.0)  # settle after the last request
    pids = workers_of(group, server_pid)
    before = {pid: cpu_s(pid) for pid in pids}
    start = time.perf_counter()
    time.sleep(seconds)
    wall = time.perf_counter() - start
    return [round((cpu_s(pid) - before[pid]) / wall, 5) for pid in pids]


def cost(
    groups: Cgroups, kind: str, requests: int, per_round: int, idle_s: float, folder: Path
) -> dict[str, Any]:
    """Both variants side by side: p99 per round, and idle CPU per worker."""
    common = {"MB_TEST_LEAK_MIB": "0", "MB_TEST_HARD": "90%", "MB_TEST_SLOT_DIR": str(folder)}
    bare = {**common, "MB_TEST_GUARD": "none", "MB_TEST_RECYCLER": "0"}
    full = {**common, "MB_TEST_GUARD": "full", "MB_TEST_RECYCLER": "1"}
    name = kind.replace(" ", "_")
    with (
        groups.group(LIMIT) as group_a,
        groups.group(LIMIT) as group_b,
        server(kind, 2, bare, group_a, folder / f"cost-{name}-bare.log") as (port_a, proc_a),
        server(kind, 2, full, group_b, folder / f"cost-{name}-full.log") as (port_b, proc_b),
    ):
        urls = [f"http://127.0.0.1:{port_a}/", f"http://127.0.0.1:{port_b}/"]
        load(urls, 400, threads=4)  # warm up
        ratios, rows = [], []
        done = load(urls, 2 * requests, threads=4)
        for start in range(0, len(done), 2 * per_round):
            chunk = done[start : start + 2 * per_round]
            a = [d[4] for d in chunk if d[0] == 0 and d[1] == 200]
            b = [d[4] for d in chunk if d[0] == 1 and d[1] == 200]
            if len(a) >= 100 and len(b) >= 100:
                ratios.append(p99(b) / p99(a))
                rows.append([round(p99(a) * 1000, 2), round(p99(b) * 1000, 2)])
        failed = sum(1 for d in done if d[1] != 200)
        all_a = [d[4] for d in done if d[0] == 0]
        all_b = [d[4] for d in done if d[0] == 1]
        idle_bare = idle_cpu(group_a, proc_a.pid, idle_s)
        idle_full = idle_cpu(group_b, proc_b.pid, idle_s)
    return {
        "requests_per_variant": requests,
        "failed": failed,
        "p99_ratio_median": round(median(ratios), 3),
        "p99_ratio_per_round": [round(r, 3) for r in ratios],
        "p99_ms_per_round": rows,
        "p50_ms": [round(median(all_a) * 1000, 2), round(median(all_b) * 1000, 2)],
        "p99_ms": [round(p99(all_a) * 1000, 2), round(p99(all_b) * 1000, 2)],
        "idle_cpu_per_worker_without": idle_bare,
        "idle_cpu_per_worker_with": idle_full,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="leak requests per server")
    parser.add_argument("--rate", type=float, default=200.0, help="leak requests a second")
    parser.add_argument(
        "--stress-requests", type=int, default=3000, help="leak requests sent unpaced (0: none)"
    )
    parser.add_argument("--contrast-requests", type=int, default=2000)
    parser.add_argument("--cost-requests", type=int, default=6000, help="per variant")
    parser.add_argument("--round", type=int, default=1000, help="requests per variant a round")
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--servers", default=",".join(KINDS), help="comma-separated")
    parser.add_argument("--parts", default="leak,cost", help="leak, cost or both")
    args = parser.parse_args()
    parent = own_memory_cgroup()
    if os.geteuid() != 0 or parent is None or not os.access(parent, os.W_OK):
        print("bench_servers skipped: needs root and the cgroup v1 memory controller")
        return
    kinds = [k.strip() for k in args.servers.split(",") if k.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown server(s) {sorted(unknown)}; known: {', '.join(KINDS)}")
    groups = Cgroups(parent)
    started = time.monotonic()
    results: dict[str, Any] = {"leak": {}, "stress": {}, "contrast": {}, "cost": {}}
    targets: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp:
        folder = Path(tmp)
        for kind in kinds if "leak" in args.parts else ():
            series = [("paced", args.requests, args.rate), ("unpaced", args.stress_requests, None)]
            for name, requests, rate in series:
                if not requests:
                    continue
                found = leak(groups, kind, True, requests, rate, folder)
                results["leak" if name == "paced" else "stress"][kind] = found
                print(f"leak, {kind}, full guard, {name}: {json.dumps(found)}", flush=True)
                bad = sum(v for k, v in found["outcomes"].items() if k.startswith("other"))
                pace = f"{rate:g}/s" if rate else "as fast as answered (8 threads)"
                targets.append(
                    {
                        "what": f"{kind}: {found['requests']} requests leaking 1 MiB, "
                        f"400 MiB, {pace}",
                        "target": "0 OOM kills; only 2xx, or 503 while refusing",
                        "measured": f"{found['oom_kills']} OOM kills; {found['outcomes']}; "
                        f"refusing {found['refusing_s']} s; {found['recycles']} recycles; "
                        f"peak {found['peak_mib']} MiB",
                        "met": found["oom_kills"] == 0 and bad == 0,
                    }
                )
            if args.contrast_requests:
                plain = leak(groups, kind, False, args.contrast_requests, args.rate, folder)
                results["contrast"][kind] = plain
                print(f"leak, {kind}, no guard: {json.dumps(plain)}", flush=True)
                targets.append(
                    {
                        "what": f"{kind}: the same leak without the guard (contrast)",
                        "target": "(contrast) OOM kills",
                        "measured": f"{plain['oom_kills']} OOM kills; {plain['outcomes']}",
                        "met": None,
                    }
                )
        for kind in (k for k in kinds if k != "gunicorn UvicornWorker" and "cost" in args.parts):
            found = results["cost"][kind] = cost(
                groups, kind, args.cost_requests, args.round, args.idle_s, folder
            )
            print(f"cost, {kind}: {json.dumps(found)}", flush=True)
            ratio = found["p99_ratio_median"]
            targets.append(
                {
                    "what": f"{kind}: p99 with the full guard / without (median of rounds)",
                    "target": f"≤ {COST_P99_TARGET}×",
                    "measured": f"{ratio}× (p99 {found['p99_ms'][1]} vs {found['p99_ms'][0]} ms)",
                    "met": ratio <= COST_P99_TARGET and found["failed"] == 0,
                }
            )
            worst = max(found["idle_cpu_per_worker_with"])
            targets.append(
                {
                    "what": f"{kind}: idle CPU per worker with the full guard",
                    "target": f"≤ {IDLE_CPU_TARGET:.1%}",
                    "measured": f"{worst:.2%} at most (without: "
                    f"{max(found['idle_cpu_per_worker_without']):.2%})",
                    "met": worst <= IDLE_CPU_TARGET,
                }
            )
    for row in targets:
        mark = {True: "met", False: "NOT MET", None: "reported"}[row["met"]]
        print(f"{row['what']}: {row['measured']} (target {row['target']}: {mark})")
    write(
        "servers",
        {
            "parameters": {
                "limit_mib": LIMIT // MIB,
                "leak_workers": 4,
                "leak_requests": args.requests,
                "leak_rate_per_s": args.rate,
                "stress_requests": args.stress_requests,
                "contrast_requests": args.contrast_requests,
                "recycler_hard": "70% of a worker's share",
                "cost_workers": 2,
                "cost_requests_per_variant": args.cost_requests,
                "round": args.round,
                "idle_s": args.idle_s,
                "elapsed_s": round(time.monotonic() - started, 1),
            },
            "results": results,
            "targets": targets,
        },
    )


if __name__ == "__main__":
    main()
