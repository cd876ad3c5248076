"""membound's guard against the servers' own recycling, tried as a new user's SRE would
(DESIGN §6b: "on real servers it must do better than the server's own recycling").

Three servers, each (master and workers) in a fresh 400 MiB memory cgroup (v1, made under this
process's own, removed afterwards; needs root), on 127.0.0.1:

* **gunicorn** sync, ``-w 3``; **uvicorn** ``--workers 3``; **Celery** prefork, concurrency 3,
  on a private ``redis-server`` (broker and result backend).
* **The app** (``benchmarks/peer_apps/``): every request or task keeps 100 KiB in its worker (a
  leak), and 0.7 % of them (``--spike-fraction``) write a temporary 60–150 MiB buffer of non-zero
  bytes, hold it 0.2 s and free it. Which ones, and how big, comes from
  ``random.Random(request_id)`` for ids 0..N-1, so every configuration sees the same sequence.
* **Loads**: ``paced`` — 60 requests a second in all (32 client threads), ``--requests`` (6,000)
  per round, Celery ``--tasks`` (4,000); ``stress`` — 8 client threads as fast as the server
  answers, ``--stress-requests`` (3,000). HTTP: a new connection per request, 30 s timeout;
  Celery: ``send_task`` and ``get`` with a 60 s timeout. A run stops early (what is left counts
  as failed) when the server's main process dies or nothing has completed for 90 s.
* **Configurations**, interleaved round by round: ``none`` (no recycling); ``server``, the
  server's own option — gunicorn ``--max-requests 500 --max-requests-jitter 50``, uvicorn
  ``--limit-max-requests 500``, Celery ``--max-memory-per-child`` at the KiB membound's recipe
  recycles at (and ``server-tasks``, ``--max-tasks-per-child 500``); ``membound``, the one recipe
  of docs/guides/service-leaks.md for that server with membound's defaults (``MEMBOUND`` below:
  the only place to change when the guide's recipe changes).

Per run: OOM kills (the group's ``memory.oom_control``), requests failed — 503 (refused) and
others (connection errors, other statuses, timeouts) — or Celery tasks lost (no result: a
``WorkerLostError``, a timeout), p50/p99 of the served requests (send to answer) and p99 of
the served requests that write no buffer (the buffer's 0.2 s makes those that write one the
slowest when served, and a configuration whose workers are killed with them loses them from
its served set: this p99 compares the same work), p99 of all requests sent with a failed one
counted slower than any answer (what the clients got: the option's OOM-killed requests are
in its tail), how many buffer-writing requests were served, worker
restarts (distinct worker pids that answered, less 3; and processes new in the group), peak
group memory (``memory.max_usage_in_bytes``), wall time, and what the server logged about
recycling. The table gives medians over rounds; the targets, per server and load: membound
has 0 OOM kills, no more failed requests or lost tasks than the server's option (strictly
fewer where the option has any), and a p99 at most 1.5× the option's (each of the three).

The full run (2 rounds of every server × load × configuration) takes about 45 minutes on 2
CPUs; ``--servers``, ``--loads``, ``--rounds``, ``--requests``, ``--tasks`` and
``--stress-requests`` make it smaller (``--requests 600 --stress-requests 300 --rounds 1``: a
few minutes). Writes ``benchmarks/results/peers.json``; ``--logs DIR`` keeps the servers' logs.
Servers, Redis and cgroups are removed at the end, on an error and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import median, write
from bench_guard import Cgroups, group_figures, own_memory_cgroup

HERE = Path(__file__).resolve().parent
APPS = HERE / "peer_apps"
SRC = HERE.parent / "src"
sys.path.insert(0, str(APPS))

import work  # noqa: E402  (peer_apps: the same spike plan as the servers)

MIB = 1 << 20
LIMIT = 400 * MIB
WORKERS = 3
RATE = 60.0
PACED_THREADS = 32
STRESS_THREADS = 8
HTTP_TIMEOUT_S = 30.0
TASK_TIMEOUT_S = 60.0
STALL_S = 90.0
P99_TARGET = 1.5
SERVERS = ("gunicorn", "uvicorn", "celery")
LOADS = ("paced", "stress")

#: membound's recipe per server, as docs/guides/service-leaks.md gives it, with membound's
#: defaults otherwise: the files (in ``peer_apps/``) are the guide's code around the plain app,
#: ``hard`` reaches them as ``PEERS_MEMBOUND_HARD``. gunicorn and uvicorn: the recycler, the
#: health middleware and a ``Watchdog(on_hard=actions.refuse_new_work())`` in every worker (the
#: guide's full guard); Celery: ``recycle_children(app, hard=…, largest_task="150 MiB")``.
#: ``hard`` by the guide's rule for leaving room for the largest request or task:
#: ≤ (0.9 × 400 − ~25 main process − 150 largest) / 3 ≈ 61 MiB, 45 % of a 133 MiB share.
MEMBOUND: dict[str, dict[str, Any]] = {
    "gunicorn": {
        "hard": "45%",
        "argv": ["-c", str(APPS / "gunicorn_membound.py")],
        "app": "wsgi_membound:application",
    },
    "uvicorn": {"hard": "45%", "argv": [], "app": "asgi_membound:application"},
    "celery": {"hard": "45%", "argv": [], "app": "celery_membound"},
}


def configs_of(server: str) -> list[str]:
    """The configurations compared for ``server``, in the order each round runs them."""
    if server == "celery":
        return ["none", "server", "server-tasks", "membound"]
    return ["none", "server", "membound"]


def options_of(server: str) -> list[str]:
    """The configurations that are the server's own recycling."""
    return [c for c in configs_of(server) if c.startswith("server")]


def recipe_kib(server: str) -> int:
    """The KiB a child of ``server`` recycles at under membound's recipe (a percentage is of a
    worker's share of the group's limit, as membound reads it)."""
    hard = str(MEMBOUND[server]["hard"]).strip()
    if hard.endswith("%"):
        return int(LIMIT / WORKERS * float(hard[:-1]) / 100) // 1024
    from membound._units import parse_size

    return parse_size(hard) // 1024


def command(
    server: str, config: str, port: int, redis: str | None
) -> tuple[list[str], dict[str, str]]:
    """The argv and the extra environment of ``server`` under ``config``."""
    env = {"PEERS_SPIKE_FRACTION": str(work.SPIKE_FRACTION)}
    if config == "membound":
        env["PEERS_MEMBOUND_HARD"] = str(MEMBOUND[server]["hard"])
        extra, app = list(MEMBOUND[server]["argv"]), str(MEMBOUND[server]["app"])
    else:
        extra, app = (
            [],
            {"gunicorn": "wsgi_app:application", "uvicorn": "asgi_app:application"}.get(
                server, "celery_app"
            ),
        )
    python = [sys.executable, "-m"]
    if server == "gunicorn":
        if config == "server":
            extra += ["--max-requests", "500", "--max-requests-jitter", "50"]
        argv = [*python, "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}"]
        # One control socket per user by default: never shared with another gunicorn here.
        return [*argv, "--no-control-socket", *extra, app], env
    if server == "uvicorn":
        if config == "server":
            extra += ["--limit-max-requests", "500"]
        argv = [*python, "uvicorn", "--workers", str(WORKERS), "--host", "127.0.0.1"]
        return [*argv, "--port", str(port), "--no-access-log", *extra, app], env
    assert redis is not None
    env["PEERS_REDIS"] = redis
    if config == "server":
        extra += ["--max-memory-per-child", str(recipe_kib(server))]
    elif config == "server-tasks":
        extra += ["--max-tasks-per-child", "500"]
    argv = [*python, "celery", "-A", app, "worker", "--pool", "prefork"]
    argv += ["--concurrency", str(WORKERS), "--loglevel", "INFO", "-n", "peers@localhost"]
    return [*argv, "--without-gossip", "--without-mingle", "--without-heartbeat", *extra], env


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM to the process's session, SIGKILL after ``timeout``."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server of this run's own on 127.0.0.1, nothing saved; its ``redis://`` URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    argv += ["no", "--dir", str(folder), "--protected-mode", "yes"]
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(process, 10)


def flush(redis_url: str) -> None:
    """Empty the broker and the results: nothing of a run reaches the next."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    client.flushall()
    client.close()


def http_status(port: int, path: str = "/") -> int | None:
    """The status of one GET, or None when nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


@contextlib.contextmanager
def serve(
    server: str, config: str, group: Path, log: Path, redis: str | None
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``server`` under ``config`` in ``group``, ready for work; always stopped."""
    port = free_port()
    argv, extra = command(server, config, port, redis)
    shell = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"), *argv]
    env = {**os.environ, **extra, "PYTHONPATH": os.pathsep.join([str(APPS), str(SRC)])}
    with log.open("wb") as out:
        process = subprocess.Popen(
            shell,
            cwd=APPS,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while not ready(server, port, log):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{server} ({config}) did not start:\n{tail(log)}")
            time.sleep(0.1)
        time.sleep(2.0)  # every worker up
        yield port, process
    finally:
        stop(process)


def ready(server: str, port: int, log: Path) -> bool:
    """Whether ``server`` takes work: an HTTP answer, or Celery's "ready." line."""
    if server == "celery":
        return " ready." in log.read_text(errors="replace")
    return http_status(port) == 200


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:]


class GroupWatch:
    """The processes seen in a cgroup while a load runs (every 0.1 s)."""

    def __init__(self, group: Path) -> None:
        self.group = group
        self.first = self._pids()
        self.seen = set(self.first)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _pids(self) -> set[int]:
        try:
            return {int(p) for p in (self.group / "cgroup.procs").read_text().split()}
        except OSError:
            return set()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.seen |= self._pids()

    def close(self) -> int:
        """Stop watching; how many processes appeared."""
        self._stop.set()
        self._thread.join(2)
        return len(self.seen - self.first)


# --- load -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one request or task ended: ``ok``, ``503``, ``http N``, ``timeout``, ``error: X``,
    ``lost: X`` (Celery) or ``not sent`` (the run stopped early)."""

    kind: str
    seconds: float = 0.0
    pid: int | None = None
    sent: float = 0.0


Send = Callable[[int], Outcome]


def drive(
    send: Send, count: int, threads: int, rate: float | None, alive: Callable[[], bool]
) -> list[Outcome]:
    """Requests 0..count-1 from ``threads`` threads, at most ``rate`` a second in all (None: as
    fast as they are answered). Stops early, leaving ``not sent``, when ``alive()`` says no or
    nothing completed for ``STALL_S``."""
    outcomes: list[Outcome | None] = [None] * count
    lock = threading.Lock()
    state = {"next": 0, "at": time.perf_counter(), "last": time.monotonic()}
    halt = threading.Event()

    def run() -> None:
        while not halt.is_set():
            with lock:
                n = state["next"]
                if n >= count:
                    return
                state["next"] = n + 1
                at = state["at"] = max(state["at"], time.perf_counter())
                if rate:
                    state["at"] += 1 / rate
            if rate and halt.wait(max(0.0, at - time.perf_counter())):
                return
            outcome = send(n)
            with lock:
                outcomes[n] = outcome
                state["last"] = time.monotonic()

    pool = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    try:
        while any(t.is_alive() for t in pool):
            time.sleep(0.2)
            if not alive() or time.monotonic() - state["last"] > STALL_S:
                halt.set()
                break
    finally:
        halt.set()
    for thread in pool:  # each waits at most its own timeout
        thread.join(TASK_TIMEOUT_S + 5)
    return [o if o is not None else Outcome("not sent") for o in outcomes]


def http_sender(port: int) -> Send:
    """One GET ``/work?id=N`` on a new connection."""

    def send(n: int) -> Outcome:
        sent = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
        try:
            conn.request("GET", f"/work?id={n}")
            response = conn.getresponse()
            body = response.read()
            status = response.status
        except TimeoutError:
            return Outcome("timeout", time.perf_counter() - sent, sent=sent)
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(f"error: {type(exc).__name__}", time.perf_counter() - sent, sent=sent)
        finally:
            conn.close()
        seconds = time.perf_counter() - sent
        if status == 200:
            return Outcome("ok", seconds, int(json.loads(body)["pid"]), sent)
        return Outcome("503" if status == 503 else f"http {status}", seconds, sent=sent)

    return send


def celery_sender(app: Any) -> Send:
    """``peers.work(n)`` sent, and its result waited for."""
    from celery.exceptions import TimeoutError as ResultTimeout

    def send(n: int) -> Outcome:
        sent = time.perf_counter()
        try:
            result = app.send_task("peers.work", args=[n])
        except Exception as exc:
            return Outcome(f"error: {type(exc).__name__}", time.perf_counter() - sent, sent=sent)
        try:
            value = result.get(timeout=TASK_TIMEOUT_S, propagate=True)
        except ResultTimeout:
            kind = "lost: timeout"
        except Exception as exc:  # WorkerLostError and kin: the task never gave a result
            kind = f"lost: {type(exc).__name__}"
        else:
            return Outcome("ok", time.perf_counter() - sent, int(value[1]), sent)
        finally:
            with contextlib.suppress(Exception):
                result.forget()
        return Outcome(kind, time.perf_counter() - sent, sent=sent)

    return send


# --- one run ----------------------------------------------------------------------------------

#: What the servers say about recycling and dying, counted in each run's log.
LOG_LINES = {
    "membound recycles": r"membound: worker \d+ recycles after this request",
    "membound recycles (celery)": r"membound: celery child \d+ recycles after its task",
    "membound refused-too-long recycles": r"has refused new work for",
    "membound lines": r"membound:",
    "gunicorn max-requests": r"Autorestarting worker after current request",
    "gunicorn worker killed": r"was sent SIGKILL|Perhaps out of memory",
    "gunicorn worker timeout": r"WORKER TIMEOUT",
    "uvicorn max-requests": r"Maximum request limit of \d+ exceeded",
    "uvicorn worker died": r"Child process \[\d+\] died",
    "celery max-memory": r"child process exiting after exceeding memory limit",
    "celery worker lost": r"WorkerLostError",
    "tracebacks": r"Traceback \(most recent call last\)",
}


#: Seconds a failed request counts as in the p99 of all requests sent: past any answer.
_FAILED_S = 10 * HTTP_TIMEOUT_S


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else values[0]


def one_run(
    groups: Cgroups,
    server: str,
    load: str,
    config: str,
    count: int,
    logs: Path,
    tag: str,
    redis: str | None,
    client: Any,
) -> dict[str, Any]:
    """One server under one configuration and one load, in a fresh group: what happened."""
    log = logs / f"{server}-{load}-{config}-{tag}.log"
    if redis is not None:
        flush(redis)
    with groups.group(LIMIT) as group, serve(server, config, group, log, redis) as (port, process):
        send = celery_sender(client) if server == "celery" else http_sender(port)
        threads, rate = (PACED_THREADS, RATE) if load == "paced" else (STRESS_THREADS, None)
        watch = GroupWatch(group)
        started = time.perf_counter()
        try:
            done = drive(send, count, threads, rate, lambda: process.poll() is None)
        finally:
            new_processes = watch.close()
        wall = time.perf_counter() - started
        peak, kills = group_figures(group)
        server_alive = process.poll() is None
    text = log.read_text(errors="replace")
    kinds = Counter(o.kind for o in done)
    served = [o.seconds for o in done if o.kind == "ok"]
    # The requests that write a buffer hold it 0.2 s: served, they are the slowest; killed with
    # their worker, they leave the served set. p99 of the other requests compares the servers'
    # latency on the same work, whichever requests each configuration lost.
    plain = [o.seconds for n, o in enumerate(done) if o.kind == "ok" and not work.spike_bytes(n)]
    # The client's view: a request that failed got less than the slowest answer; counted as
    # slower than any, it takes one of the top 1 % (None: more than 1 % failed).
    failed = count - kinds["ok"]
    sent = p99([*served, *([_FAILED_S] * failed)]) if served else None
    sent_ms = round(sent * 1000, 1) if sent is not None and sent < HTTP_TIMEOUT_S else None
    spikes_served = sum(1 for n, o in enumerate(done) if o.kind == "ok" and work.spike_bytes(n))
    pids = {o.pid for o in done if o.pid is not None}
    refused = sorted(o.sent for o in done if o.kind == "503")
    return {
        "server": server,
        "load": load,
        "config": config,
        "requests": count,
        "ok": kinds["ok"],
        "refused_503": kinds["503"],
        "failed": failed,
        "failed_other": count - kinds["ok"] - kinds["503"],
        "outcomes": dict(kinds),
        "oom_kills": kills,
        "p50_ms": round(median(served) * 1000, 1) if served else None,
        "p99_ms": round(p99(served) * 1000, 1) if served else None,
        "p99_plain_ms": round(p99(plain) * 1000, 1) if plain else None,
        "p99_sent_ms": sent_ms,
        "spikes_served": spikes_served,
        "pids_answering": len(pids),
        "restarts": max(0, len(pids) - WORKERS),
        "new_processes": new_processes,
        "peak_mib": round(peak / MIB, 1),
        "wall_s": round(wall, 1),
        "refusing_s": len({int(t * 10) for t in refused}) / 10,
        "longest_refusing_s": round(longest_refusal(done), 1),
        "server_alive_at_end": server_alive,
        "log": {k: len(re.findall(v, text)) for k, v in LOG_LINES.items()},
        "membound_said": membound_lines(text),
    }


def longest_refusal(done: list[Outcome]) -> float:
    """The longest stretch, in seconds of send time, from a 503 to the last 503 before the
    next served request."""
    best, first, last = 0.0, None, None
    for o in sorted(done, key=lambda o: o.sent):
        if o.kind == "503":
            first = o.sent if first is None else first
            last = o.sent
            best = max(best, last - first)
        elif o.kind == "ok":
            first = last = None
    return best


def membound_lines(text: str) -> dict[str, int]:
    """membound's log lines by their shape (numbers and sizes left out), and how many."""
    shapes: Counter[str] = Counter()
    for line in text.splitlines():
        at = line.find("membound:")
        if at >= 0:
            shape = re.sub(r"[\d.,]+( ?[KMG]i?B)?", "#", line[at : at + 110])
            shapes[shape] += 1
    return dict(shapes.most_common(8))


# --- summary ----------------------------------------------------------------------------------

FIGURES = ("oom_kills", "ok", "refused_503", "failed_other", "failed", "p50_ms", "p99_ms")
FIGURES += ("p99_plain_ms", "p99_sent_ms", "spikes_served")
FIGURES += ("restarts", "new_processes", "peak_mib", "wall_s", "longest_refusing_s")


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (None where a round had none)."""
    out: dict[str, Any] = {"rounds": len(runs)}
    for key in FIGURES:
        values = [r[key] for r in runs if r[key] is not None]
        out[key] = round(median(values), 1) if values else None
    out["oom_kills_per_round"] = [r["oom_kills"] for r in runs]
    return out


#: The p99 figures compared with each server option, and their words.
P99S = (("p99_ms", "p99 served"), ("p99_plain_ms", "p99 of requests writing no buffer"))
P99S += (("p99_sent_ms", "p99 of all requests sent, a failed one counted slowest"),)


def targets(summary: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """membound against each server option, per server and load."""
    rows = []
    for key, by_config in summary.items():
        ours = by_config.get("membound")
        if ours is None:
            continue
        kills = sum(ours["oom_kills_per_round"])
        rows.append(
            {
                "what": f"{key}: membound OOM kills",
                "target": "0",
                "measured": f"{kills} in {ours['rounds']} round(s)",
                "met": kills == 0,
            }
        )
        for option in (c for c in by_config if c.startswith("server")):
            theirs = by_config[option]
            mine, other = ours["failed"], theirs["failed"]
            rows.append(
                {
                    "what": f"{key}: failed/lost, membound vs {option}",
                    "target": "fewer" if other else "no more (0)",
                    "measured": f"{mine:g} vs {other:g} (membound: {ours['refused_503']:g} × 503"
                    f" + {ours['failed_other']:g} other)",
                    "met": mine < other if other else mine == 0,
                }
            )
            for field, words in P99S:
                a, b = ours[field], theirs[field]
                rows.append(
                    {
                        "what": f"{key}: {words}, membound vs {option}",
                        "target": f"≤ {P99_TARGET}×",
                        "measured": "n/a"
                        if a is None or b is None
                        else f"{a:g} vs {b:g} ms ({a / b:.2f}×)",
                        "met": a is not None and b is not None and a <= P99_TARGET * b,
                    }
                )
    return rows


def table(summary: dict[str, dict[str, dict[str, Any]]]) -> str:
    head = ["server / load", "config", "OOM", "ok", "503", "other", "p50 ms", "p99 ms"]
    head += ["p99 plain", "p99 sent", "spikes ok", "restarts", "new procs", "peak MiB", "wall s"]
    head += ["refusing ≤ s"]
    keys = ["oom_kills", "ok", "refused_503", "failed_other", "p50_ms", "p99_ms"]
    keys += ["p99_plain_ms", "p99_sent_ms", "spikes_served", "restarts"]
    keys += ["new_processes", "peak_mib", "wall_s", "longest_refusing_s"]
    rows = [head]
    for key, by_config in summary.items():
        for config, m in by_config.items():
            rows.append([key, config, *("–" if m[k] is None else f"{m[k]:g}" for k in keys)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def split(value: str, known: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = sorted(set(names) - set(known))
    if unknown:
        parser.error(f"unknown {unknown}; known: {', '.join(known)}")
    return names


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument("--loads", default=",".join(LOADS), help="paced, stress or both")
    parser.add_argument("--configs", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=6000, help="paced HTTP requests a round")
    parser.add_argument(
        "--tasks",
        type=int,
        default=None,
        help="paced Celery tasks a round (default: two thirds of --requests)",
    )
    parser.add_argument("--stress-requests", type=int, default=3000, help="a stress round")
    parser.add_argument("--spike-fraction", type=float, default=work.SPIKE_FRACTION)
    parser.add_argument("--logs", type=Path, default=None, help="keep the servers' logs here")
    args = parser.parse_args()
    servers = split(args.servers, SERVERS, parser)
    loads = split(args.loads, LOADS, parser)
    only = set(split(args.configs, ("none", "server", "server-tasks", "membound"), parser))
    tasks = args.tasks if args.tasks is not None else args.requests * 2 // 3
    work.SPIKE_FRACTION = args.spike_fraction
    parent = own_memory_cgroup()
    if os.geteuid() != 0 or parent is None or not os.access(parent, os.W_OK):
        print("bench_peers skipped: needs root and the cgroup v1 memory controller")
        return
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM and Ctrl-C alike stop and clean up,
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in background
    groups = Cgroups(parent)
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-peers-")))
        logs = args.logs or folder
        logs.mkdir(parents=True, exist_ok=True)
        redis = client = None
        if "celery" in servers:
            redis = stack.enter_context(redis_server(folder))
            from celery import Celery

            client = Celery("peers", broker=f"{redis}/0", backend=f"{redis}/1")
            stack.callback(client.close)
        for server in servers:
            for load in loads:
                count = (
                    args.stress_requests
                    if load == "stress"
                    else (tasks if server == "celery" else args.requests)
                )
                spikes = sum(1 for n in range(count) if work.spike_bytes(n))
                print(
                    f"{server}, {load}: {count} requests a round, {spikes} writing 60–150 MiB",
                    flush=True,
                )
                for round_ in range(args.rounds):
                    for config in configs_of(server):
                        if only and config not in only:
                            continue
                        found = one_run(
                            groups, server, load, config, count, logs, f"r{round_}", redis, client
                        )
                        found["round"] = round_
                        runs.append(found)
                        brief = {k: found[k] for k in FIGURES}
                        print(f"  round {round_} {config}: {json.dumps(brief)}", flush=True)
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for server in servers:
        for load in loads:
            key = f"{server} / {load}"
            for config in configs_of(server):
                mine = [
                    r
                    for r in runs
                    if (r["server"], r["load"], r["config"]) == (server, load, config)
                ]
                if mine:
                    summary.setdefault(key, {})[config] = medians(mine)
    print()
    print(table(summary))
    print()
    rows = targets(summary)
    for row in rows:
        mark = "met" if row["met"] else "NOT MET"
        print(f"{row['what']}: {row['measured']} (target {row['target']}: {mark})")
    path = write(
        "peers",
        {
            "parameters": {
                "limit_mib": LIMIT // MIB,
                "workers": WORKERS,
                "leak_kib": work.LEAK_BYTES // 1024,
                "spike_mib": list(work.SPIKE_MIB),
                "spike_fraction": args.spike_fraction,
                "hold_s": work.HOLD_S,
                "rate_per_s": RATE,
                "rounds": args.rounds,
                "requests": args.requests,
                "tasks": tasks,
                "stress_requests": args.stress_requests,
                "membound": {s: MEMBOUND[s]["hard"] for s in servers},
                "celery_max_memory_per_child_kib": recipe_kib("celery"),
                "elapsed_s": round(time.monotonic() - started, 1),
            },
            "summary": summary,
            "targets": rows,
            "runs": runs,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
