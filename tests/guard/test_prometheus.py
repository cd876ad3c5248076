"""membound.guard.prometheus: the guard's figures in one process (a collector read at scrape
time) and across gunicorn workers (prometheus_client's multiprocess mode, one scrape)."""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import membound as mb
from membound.guard import prometheus
from membound.guard.limit import memory_limit
from tests.ports import free_port
from tests.processes import kill_tagged, new_tag, settle, tagged_env

MiB = 1 << 20
APPS = Path(__file__).parent / "apps"
SRC = Path(__file__).resolve().parents[2] / "src"


def samples(text: str) -> dict[str, list[Sample]]:
    """Sample name → its samples, parsed by prometheus_client's own parser."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def one(found: dict[str, list[Sample]], name: str) -> float:
    assert 1 == len(found[name]), found[name]
    return float(found[name][0].value)


def vm_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def scrape_collector(collector: prometheus.MemboundCollector) -> dict[str, list[Sample]]:
    registry = CollectorRegistry()
    registry.register(collector)
    return samples(generate_latest(registry).decode())


# --- one process ---------------------------------------------------------------------------------


def test_single_process_figures_match_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    registry = CollectorRegistry()
    collector = prometheus.register(registry)
    assert isinstance(collector, prometheus.MemboundCollector)
    found = samples(generate_latest(registry).decode())
    rss = one(found, "membound_memory_rss_bytes")
    assert abs(rss - vm_rss()) < 4 * MiB, (rss, vm_rss())
    limit = memory_limit()
    [limit_sample] = found["membound_memory_limit_bytes"]
    assert limit.bytes == limit_sample.value
    assert {"source": limit.source, "kind": limit.kind} == limit_sample.labels
    assert 0.0 == one(found, "membound_watchdog_state")
    # Without a watchdog the trend is unknown: NaN, never a made-up 0.
    assert math.isnan(one(found, "membound_time_to_limit_seconds"))
    assert math.isnan(one(found, "membound_growth_bytes_per_second"))
    assert 0.0 == one(found, "membound_exporter_errors_total")
    # Multiprocess-only figures are not made up in one process.
    assert "membound_processes" not in found


def test_single_process_reports_the_given_watchdog() -> None:
    dog = mb.Watchdog(soft="1MB", hard="2GB", recover="512KB", limit="4GB", on_soft=None)
    collector = prometheus.MemboundCollector(watchdog=dog)
    found = scrape_collector(collector)
    assert 0.0 == one(found, "membound_watchdog_state")  # no reading taken yet
    assert "soft" == dog.check()
    found = scrape_collector(collector)
    assert 1.0 == one(found, "membound_watchdog_state")
    [limit_sample] = found["membound_memory_limit_bytes"]
    assert 4_000_000_000 == limit_sample.value
    assert {"source": "given", "kind": "ram"} == limit_sample.labels
    headroom = one(found, "membound_memory_headroom_bytes")
    usage = one(found, "membound_memory_usage_bytes")
    assert 4_000_000_000 == headroom + usage


def test_single_process_pools() -> None:
    pool: mb.BoundedPool[dict[str, int]] = mb.BoundedPool(dict, max_size=1, name="prom-pool")
    with pool.acquire(), pool.acquire():  # two made; one kept idle, one discarded
        pass
    with pool.acquire():  # served by the idle one
        found = scrape_collector(prometheus.MemboundCollector())
    mine = {"pool": "prom-pool"}

    def value(name: str) -> float:
        [sample] = [s for s in found[name] if s.labels == mine]
        return float(sample.value)

    assert 0 == value("membound_pool_idle")
    assert 1 == value("membound_pool_in_use")
    assert 2 == value("membound_pool_objects_created_total")
    assert 1 == value("membound_pool_objects_reused_total")
    assert 1 == value("membound_pool_objects_discarded_total")
    del pool


def test_registering_twice_is_refused_by_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    registry = CollectorRegistry()
    prometheus.register(registry)
    with pytest.raises(ValueError, match="membound_memory_rss_bytes"):
        prometheus.register(registry)


def test_a_report_served_on_localhost_until_stopped() -> None:
    """A report's figures, served by the metrics server on 127.0.0.1 (port 0: a free one), read
    at each scrape and without the metrics left out; stopped, the port answers no more."""
    from membound.guard.prometheus.collector import ReportCollector
    from membound.guard.prometheus.server import MetricsServer

    reports = iter([{"rss_bytes": 5 * MiB, "status": "soft"}, {"rss_bytes": 7 * MiB}])
    collector = ReportCollector(lambda: next(reports), leave_out=("membound_refusing_new_work",))
    server = MetricsServer([collector])
    port = server.start()
    try:
        assert 0 != port == server.port
        scraped = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/metrics")
            scraped.append(samples(connection.getresponse().read().decode()))
            connection.close()
    finally:
        server.stop()
    assert [5 * MiB, 7 * MiB] == [one(f, "membound_memory_rss_bytes") for f in scraped]
    assert 1 == one(scraped[0], "membound_watchdog_state")
    assert "membound_refusing_new_work" not in scraped[0]
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


# --- multiprocess mode ---------------------------------------------------------------------------


def test_multiprocess_needs_the_variable_before_prometheus_client_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process imported prometheus_client without the variable: its metrics live here only.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(mb.MemboundError, match="imported before PROMETHEUS_MULTIPROC_DIR"):
        prometheus.register()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(mb.MemboundError, match="not a directory"):
        prometheus.start_updater()


UPDATER_CHILD = textwrap.dedent(
    """
    import os, sys, threading, time
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    import membound as mb
    from membound.guard import prometheus

    class Failing(mb.Watchdog):
        failing = True

        def snapshot(self):
            if self.failing:
                raise RuntimeError("broken on purpose")
            return super().snapshot()

    def scrape():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry).decode()

    def wait(until):
        deadline = time.monotonic() + 5
        while not until():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)

    dog = Failing(soft="1MB", hard="2GB", recover="512KB", limit="4GB", on_soft=None)
    updater = prometheus.register(watchdog=dog, interval=0.05)
    assert isinstance(updater, prometheus.Updater), updater
    assert prometheus.start_updater() is updater
    wait(lambda: updater.errors >= 3)
    assert updater.running
    assert "membound_exporter_errors_total" in scrape()
    print("errors_counted", "membound_exporter_errors_total 0.0" not in scrape())
    dog.failing = False
    dog.check()
    # The check writes the state itself; the updater's first reading that does not fail is
    # what says it recovered (the thread may not have run again yet on a loaded machine).
    wait(lambda: updater.updates > 0)
    print("recovered", 'membound_watchdog_state{pid="%d"} 1.0' % os.getpid() in scrape())
    prometheus.stop_updater()
    print("stopped", not updater.running, threading.active_count())
    """
)


def test_updater_survives_failing_readings_and_stops(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run(
        [sys.executable, "-c", UPDATER_CHILD, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert "errors_counted True\nrecovered True\nstopped True 1\n" == done.stdout
    assert "broken on purpose" in done.stderr  # logged, with its traceback


POOL_CHILD = textwrap.dedent(
    """
    import gc, os, sys
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    import membound as mb
    from membound.guard import prometheus

    def show():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        lines = generate_latest(registry).decode().splitlines()
        print(" ".join(
            line.split("{")[0].replace("membound_pool_", "") + "=" + line.split()[-1]
            for line in lines
            if line.startswith("membound_pool_") and 'pool="p"' in line
        ))

    updater = prometheus.Updater(interval=3600)  # updated by hand, no thread
    pool = mb.BoundedPool(dict, max_size=1, name="p")
    with pool.acquire(), pool.acquire():
        pass
    updater.update(); show()
    with pool.acquire():
        pass
    updater.update(); show()
    del pool; gc.collect()
    updater.update(); show()
    pool = mb.BoundedPool(dict, max_size=1, name="p")
    with pool.acquire(), pool.acquire():
        pass
    updater.update(); show()
    pool = mb.BoundedPool(dict, max_size=1, name="p")  # replaced between two updates
    with pool.acquire():
        pass
    updater.update(); show()
    """
)


def test_multiprocess_pool_counters_only_go_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run(
        [sys.executable, "-c", POOL_CHILD, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    shown = [dict(item.split("=") for item in line.split()) for line in done.stdout.splitlines()]
    # The counters advance by what the pool counted since the last update.
    # A pool made anew under the same name counts from 0 again: its counts are added.
    assert ["2.0", "2.0", "2.0", "4.0", "5.0"] == [s["objects_created_total"] for s in shown]
    assert ["0.0", "1.0", "1.0", "1.0", "1.0"] == [s["objects_reused_total"] for s in shown]
    assert ["1.0", "1.0", "1.0", "2.0", "2.0"] == [s["objects_discarded_total"] for s in shown]
    # A pool that is gone holds nothing (multiprocess mode cannot delete its sample).
    assert ["1.0", "1.0", "0.0", "1.0", "1.0"] == [s["idle"] for s in shown]
    assert ["0.0", "0.0", "0.0", "0.0", "0.0"] == [s["in_use"] for s in shown]


WORKERS_CHILD = textwrap.dedent(
    """
    import json, os, sys
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    import membound as mb
    from membound.guard import prometheus
    from membound.guard.prometheus.multiprocess import read_workers

    dog = mb.Watchdog(soft="1MB", hard="2GB", recover="512KB", limit="4GB", on_soft=None)
    dog.check()
    pid = os.fork()
    if pid == 0:  # a worker that wrote its figures, then died
        prometheus.Updater(interval=3600, watchdog=dog).update()
        os._exit(0)
    os.waitpid(pid, 0)
    prometheus.Updater(interval=3600, watchdog=dog).update()
    read = {w["pid"]: w for w in read_workers(sys.argv[1])}
    service = mb.health(dog, scope="service")["service"]
    print(json.dumps({"dead": pid, "me": os.getpid(), "read": read, "service": service}))
    """
)


def test_the_service_reads_the_workers_figures_from_the_directory(tmp_path: Path) -> None:
    """``health(scope="service")`` without a ledger lists the live processes that write into the
    multiprocess directory, with the figures each wrote last; a dead one's series are read but
    not listed."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    env["PYTHONPATH"] = str(SRC)
    done = subprocess.run(
        [sys.executable, "-c", WORKERS_CHILD, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    found = json.loads(done.stdout)
    me, dead = str(found["me"]), str(found["dead"])
    assert {me, dead} == set(found["read"])
    for pid in (me, dead):
        figures = found["read"][pid]
        assert ["pid", "rss_bytes", "state", "updated"] == sorted(figures)
        assert (int(pid), "soft") == (figures["pid"], figures["state"])
        assert figures["rss_bytes"] > 0
        assert abs(time.time() - figures["updated"]) < 30
    service = found["service"]
    assert ("prometheus", 1, "soft") == (
        service["source"],
        service["workers_count"],
        service["worst_state"],
    )
    (worker,) = service["workers"]
    assert {**found["read"][me], "usage_bytes": int(found["read"][me]["rss_bytes"])} == worker


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """Three gunicorn workers of ``apps/prom_app.py`` in multiprocess mode; always stopped."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    port = free_port()
    tag = new_tag()
    env = {k: v for k, v in tagged_env(tag).items() if k.lower() != "prometheus_multiproc_dir"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(multiproc)
    env["PYTHONPATH"] = os.pathsep.join([str(APPS), str(SRC)])
    log = tmp_path / "gunicorn.log"
    argv = [sys.executable, "-m", "gunicorn", "-w", "3", "-b", f"127.0.0.1:{port}"]
    argv += ["-c", str(APPS / "prom_gunicorn_conf.py"), "prom_app:app"]
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, cwd=APPS, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield port, log
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        kill_tagged(tag)  # workers of a master that had to be killed
        assert [] == settle(tag), log.read_text()


def rss_by_pid(found: dict[str, list[Sample]]) -> dict[str, float]:
    return {s.labels["pid"]: float(s.value) for s in found.get("membound_memory_rss_bytes", [])}


def scrape_until(
    port: int, ok: Callable[[dict[str, list[Sample]]], bool], what: str
) -> dict[str, list[Sample]]:
    """Scrape ``/metrics`` until ``ok(samples)`` holds: at most 60 short requests, 0.2 s apart."""
    last: dict[str, list[Sample]] = {}
    for _ in range(60):
        try:
            status, body = get(port, "/metrics")
        except OSError:  # not listening yet
            time.sleep(0.2)
            continue
        assert 200 == status, body
        last = samples(body)
        if ok(last):
            return last
        time.sleep(0.2)
    raise AssertionError(f"never saw {what}; last scrape: {rss_by_pid(last)}")


def test_gunicorn_workers_in_one_scrape(gunicorn: tuple[int, Path]) -> None:
    port, log = gunicorn
    found = scrape_until(port, lambda f: len(rss_by_pid(f)) == 3, "three workers' RSS")
    status, body = get(port, "/grow?mb=64")
    assert 200 == status, body
    grown = body
    assert grown in rss_by_pid(found)

    def grew(f: dict[str, list[Sample]]) -> bool:
        rss = rss_by_pid(f)
        others = [v for pid, v in rss.items() if pid != grown]
        return len(rss) == 3 and rss[grown] >= max(others) + 60 * MiB

    def summed(f: dict[str, list[Sample]]) -> bool:
        # livesum: one series, the workers' RSS summed. A worker writes its row and the sum in
        # one update, but to two files (one per multiprocess mode): a scrape between the two
        # reads one new and one old, so the sum is waited for as the rows are.
        return abs(sum(rss_by_pid(f).values()) - one(f, "membound_processes_rss_bytes")) < 4 * MiB

    found = scrape_until(
        port, lambda f: grew(f) and summed(f), f"worker {grown} 64 MiB above the others, summed"
    )
    assert 3 == one(found, "membound_processes")
    # livemostrecent: the limit once, without a pid.
    [limit] = found["membound_memory_limit_bytes"]
    assert memory_limit().bytes == limit.value
    assert "pid" not in limit.labels
    assert 6 == len(found["membound_memory_pressure"])
    assert 0 == one(found, "membound_exporter_errors_total")
    # liveall: a dead worker's series go with it (child_exit), its successor's appear.
    status, body = get(port, "/exit")
    assert 200 == status, body
    victim = body

    def replaced(f: dict[str, list[Sample]]) -> bool:
        now = rss_by_pid(f)
        return len(now) == 3 and victim not in now

    found = scrape_until(port, replaced, f"worker {victim} replaced")
    assert 3 == one(found, "membound_processes")
    assert "Traceback" not in log.read_text()


# --- the extra is missing ------------------------------------------------------------------------


def test_missing_prometheus_client_names_the_extra() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None
        try:
            import membound.guard.prometheus
        except ImportError as exc:
            print(type(exc).__name__, exc.__cause__, exc.__suppress_context__, exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    assert done.stdout.startswith("ImportError None True "), done.stdout
    assert "pip install 'membound[prometheus]'" in done.stdout


def test_a_worker_never_shows_a_scrape_an_empty_metrics_file(tmp_path: Path) -> None:
    """prometheus_client creates a worker's ``.db`` file, then sizes it: a scrape in between
    reads 0 bytes and fails whole (``struct.error``; seen as a 500 from ``/metrics`` while
    gunicorn started workers). The updater's files are in place, sized, before prometheus_client
    opens them: traced, no ``.db`` file it opens is one it has to size."""
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    script = textwrap.dedent(
        """
        import time
        from membound.guard import prometheus
        prometheus.start_updater(interval=0.05)
        time.sleep(0.3)
        prometheus.stop_updater()
        """
    )
    log = tmp_path / "strace.log"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "PYTHONPATH": str(SRC)}
    argv = ["strace", "-f", "-o", str(log), "-e", "trace=openat,ftruncate,close"]
    subprocess.run([*argv, sys.executable, "-c", script], env=env, check=True, timeout=60)
    opened: dict[tuple[str, str], str] = {}
    sized = []
    for line in log.read_text().splitlines():
        pid, _, call = line.partition(" ")
        call = call.strip()
        if call.startswith("openat(") and ".db" in call and "= " in call:
            fd = call.rsplit("= ", 1)[1].split()[0]
            opened[pid, fd] = call.split('"')[1]
        elif call.startswith("close("):
            opened.pop((pid, call[6:].split(")")[0]), None)
        elif call.startswith("ftruncate("):
            fd = call[10:].split(",")[0]
            if (pid, fd) in opened:
                sized.append(opened[pid, fd])
    assert any(p.endswith(".db") for p in os.listdir(multiproc)), log.read_text()[-2000:]
    assert [] == sized


def test_an_empty_metrics_file_left_for_good_is_named_in_one_line(tmp_path: Path) -> None:
    """A worker killed between creating its file and sizing it leaves it empty: reading the
    workers' figures names the file to remove instead of failing with ``struct.error``."""
    from membound.guard.prometheus.multiprocess import read_workers

    (tmp_path / "gauge_liveall_4242.db").touch()
    with pytest.raises(mb.MemboundError) as raised:
        read_workers(str(tmp_path))
    assert "empty value file(s) gauge_liveall_4242.db" in str(raised.value)
    assert "\n" not in str(raised.value)
