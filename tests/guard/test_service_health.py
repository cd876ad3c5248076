"""The whole service from any worker (issue 28): ``health(scope="service")`` and
``/health?scope=service`` list every worker, and the leak trend of a recycled service is judged
per request across workers, so it matures though each worker lives seconds."""

from __future__ import annotations

import contextvars
import multiprocessing
import os
from pathlib import Path

import pytest

from membound.guard.health import health
from membound.guard.recycle.ledger import FINISHED_KEPT, Ledger, Life, read_service
from membound.guard.service_health import GREW_BYTES, judge_lives
from tests.guard.server_helpers import get, load, python, serve
from tests.ports import free_port

MIB = 1 << 20
CONF = str(Path(__file__).parent / "apps" / "guarded_conf.py")
#: Half a MiB a request: a worker lives ~10-15 requests between its boot and its point.
LEAK = {"MB_TEST_LEAK_MIB": "0.5"}


def _life(pid: int, served: int, later_bytes: int) -> Life:
    return Life(pid, 0.0, 40 * MIB, served, 40 * MIB + later_bytes, served // 2, 40 * MIB)


def test_lives_that_grow_in_their_later_half_are_a_leak_per_request() -> None:
    lives = [_life(pid, 40, 20 * MIB) for pid in range(1, 5)] + [_life(9, 40, 0)]
    trend = judge_lives(lives)
    assert "leak" == trend["pattern"]
    assert 5 == trend["lives_judged"]
    assert 100 == trend["requests_judged"]
    assert round(80 * MIB / 100) == trend["bytes_per_request"]
    assert trend["explanation"].startswith("leak: workers grow ≈819.2 KiB per request; 4 of 5")


def test_lives_that_stay_within_noise_are_flat_and_too_few_are_unknown() -> None:
    flat = judge_lives([_life(pid, 400, GREW_BYTES // 2) for pid in range(1, 4)])
    assert "flat" == flat["pattern"]
    assert flat["explanation"].startswith("flat: 0 of 3 worker lives grew")
    # one grown life of three is not two thirds
    assert (
        "flat" == judge_lives([_life(1, 40, 9 * MIB), _life(2, 40, 0), _life(3, 40, 0)])["pattern"]
    )
    assert "unknown" == judge_lives([_life(1, 400, 90 * MIB)])["pattern"]
    # lives that served too few requests after their mark are not judged
    assert "unknown" == judge_lives([_life(pid, 6, 90 * MIB) for pid in range(5)])["pattern"]
    # nor too few requests in all
    assert "unknown" == judge_lives([_life(pid, 16, 90 * MIB) for pid in range(2)])["pattern"]


def test_the_mark_leaves_out_the_warm_up_half(tmp_path: Path) -> None:
    """A worker that allocates 16 MiB in its first request and nothing after: its later half
    did not grow, whatever it did at the start."""
    ledger = Ledger(str(tmp_path), os.getpid(), boot_bytes=0)
    warm = [bytearray(16 * MIB)]

    def serve_64() -> None:
        for _ in range(64):
            ledger.served()

    # a fresh context, as each request of a server has: a probe an earlier test answered in
    # this thread is not one of these requests
    contextvars.Context().run(serve_64)
    ledger.write()
    (live,), _, _ = read_service(str(tmp_path), os.getpid())
    assert 64 == live.served
    assert 32 == live.mark_served
    assert abs(live.later_bytes) < GREW_BYTES, live
    assert live.usage_bytes - live.boot_bytes >= 16 * MIB  # it did grow, before its mark
    del warm


def _serve_and_leave(slot_dir: str, supervisor: int, keep: int) -> None:
    ledger = Ledger(slot_dir, supervisor, boot_bytes=0)
    for _ in range(keep):
        ledger.served()
    ledger.write()


def test_finished_workers_are_folded_and_kept_bounded(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    for n in range(FINISHED_KEPT + 8):
        worker = context.Process(target=_serve_and_leave, args=(str(tmp_path), os.getpid(), n))
        worker.start()
        worker.join(30)
    live, finished, count = read_service(str(tmp_path), os.getpid())
    assert [] == live
    assert FINISHED_KEPT + 8 == count
    assert FINISHED_KEPT == len(finished)
    folder = tmp_path / f"membound-recycle-{os.getpid()}"
    assert [] == sorted(p.name for p in folder.glob("worker-*"))  # the records were folded
    # nothing is folded twice on a second read
    assert FINISHED_KEPT + 8 == read_service(str(tmp_path), os.getpid())[2]


def test_health_in_one_process_reports_itself_as_the_service() -> None:
    report = health(scope="service")
    service = report["service"]
    assert isinstance(service, dict)
    pids = [row["pid"] for row in service["workers"]]
    assert os.getpid() in pids
    assert "unknown" == service["growth"]["pattern"]
    with pytest.raises(ValueError, match="scope must be"):
        health(scope="everything")  # type: ignore[arg-type]


def _gunicorn(tmp_path: Path, port: int) -> list[str]:
    argv = python("gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "-c", CONF)
    return [*argv, "guarded_wsgi:application"]


def test_a_recycled_gunicorn_service_reports_a_leak_per_request(tmp_path: Path) -> None:
    """Workers leak 0.5 MiB a request and recycle at ~44 MiB: each lives a few seconds, yet the
    service's trend says leak, ≈0.5 MiB per request, from any worker."""
    port = free_port()
    env = {"MB_TEST_HARD": "48 MiB", "MB_TEST_SLOT_DIR": str(tmp_path), **LEAK}
    with serve(_gunicorn(tmp_path, port), port, tmp_path, env) as server:
        replies = load(f"http://127.0.0.1:{port}/leak", 200, threads=2, pause=0.02)
        answer = get(f"http://127.0.0.1:{port}/health?scope=service")
        own = get(f"http://127.0.0.1:{port}/health")
        server.stop()
    assert {200} == {r.status for r in replies}, server.log
    assert 200 == answer.status, answer.body
    service = answer.body["service"]
    assert isinstance(service, dict), answer.body
    assert "ledger" == service["source"]
    assert 1 <= service["workers_count"] <= 2  # a replacement may not serve yet
    assert answer.body["pid"] in [row["pid"] for row in service["workers"]]
    assert service["recycled"] >= 2, service
    growth = service["growth"]
    assert "leak" == growth["pattern"], growth
    assert 0.35 * MIB <= growth["bytes_per_request"] <= 0.75 * MIB, growth
    assert "service" not in own.body  # without the query, this worker only


def test_a_gunicorn_service_that_does_not_leak_is_flat(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_HARD": "48 MiB", "MB_TEST_SLOT_DIR": str(tmp_path), **LEAK}
    with serve(_gunicorn(tmp_path, port), port, tmp_path, env) as server:
        replies = load(f"http://127.0.0.1:{port}/", 200, threads=2, pause=0.02)
        answer = get(f"http://127.0.0.1:{port}/health?scope=service")
        server.stop()
    assert {200} == {r.status for r in replies}, server.log
    service = answer.body["service"]
    assert isinstance(service, dict), answer.body
    assert 0 == service["recycled"]
    assert "flat" == service["growth"]["pattern"], service["growth"]


def test_uvicorn_workers_report_a_leak_per_request_too(tmp_path: Path) -> None:
    port = free_port()
    env = {
        "MB_TEST_GUARD": "recycle",
        "MB_TEST_HARD": "48 MiB",
        "MB_TEST_SLOT_DIR": str(tmp_path),
        **LEAK,
    }
    argv = python("uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port))
    with serve([*argv, "--no-access-log", "guarded_asgi:application"], port, tmp_path, env) as s:
        replies = load(f"http://127.0.0.1:{port}/leak", 200, threads=2, pause=0.02)
        answer = get(f"http://127.0.0.1:{port}/health?scope=service")
        s.stop()
    assert {200} == {r.status for r in replies}, s.log
    service = answer.body["service"]
    assert isinstance(service, dict), answer.body
    assert "ledger" == service["source"]
    assert 1 <= service["workers_count"] <= 2  # a replacement may still be starting
    assert service["recycled"] >= 2, service
    assert "leak" == service["growth"]["pattern"], service["growth"]
