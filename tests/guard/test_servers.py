"""The guard inside real servers on 127.0.0.1, with bounded request loops: gunicorn recycles a
leaking worker gracefully (every response 200, no request lost, at most ⌈workers/4⌉ recycling at
once) and serves /health; uvicorn serves /health and sheds load with 503 + Retry-After."""

from __future__ import annotations

import re
from pathlib import Path

from tests.guard.cgroup_helpers import memory_cgroup
from tests.guard.server_helpers import Reply, get, load, python, serve
from tests.ports import free_port

MiB = 1 << 20
HARD_MIB = 64
LIMIT_MIB = 256  # two unrecycled workers would keep 400 MiB of leak
REQUESTS = 400
CONF = str(Path(__file__).parent / "apps" / "guarded_conf.py")


def test_gunicorn_recycles_a_leaking_worker_without_dropping_a_request(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_HARD": f"{HARD_MIB} MiB", "MB_TEST_SLOT_DIR": str(tmp_path)}
    argv = python("gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "-c", CONF)
    argv += ["--graceful-timeout", "10", "guarded_wsgi:application"]
    health: list[Reply] = []
    with memory_cgroup(LIMIT_MIB * MiB) as group:
        kills = group.oom_kills()
        with serve(argv, port, tmp_path, env, group) as server:
            server.watch_recycling()
            first = get(f"http://127.0.0.1:{port}/health")
            replies = []
            for _ in range(REQUESTS // 50):  # bounded: each request leaks 1 MiB in its worker
                replies += load(f"http://127.0.0.1:{port}/leak", 50, threads=2, pause=0.005)
                health.append(get(f"http://127.0.0.1:{port}/health"))
            recycled, most = server.recycled_pids(), server.most_recycling_at_once
            server.stop()
        assert kills == group.oom_kills(), server.log  # no OOM kill
    log = server.log
    assert 200 == first.status
    assert {"status", "rss_bytes", "limit_bytes", "headroom_bytes", "watchdog"} <= set(first.body)
    assert all(h.status in (200, 503) and int(str(h.body["limit_bytes"])) > 0 for h in health)
    assert [200] * REQUESTS == [r.status for r in replies], log  # every request answered
    assert len({r.body["pid"] for r in replies}) >= 4, log  # workers were replaced
    assert len(recycled) >= 3, log
    assert most <= 1, log  # ⌈2/4⌉ = 1 at once
    recycled_at = [float(x) for x in re.findall(r"recycles after this request: ([0-9.]+) MiB", log)]
    # current memory, judged after each request: never before the worker's jittered point
    assert all(at >= HARD_MIB * 0.9 for at in recycled_at), log
    # without recycling the two workers would keep about REQUESTS / 2 MiB each
    assert max(float(str(r.body["kept_mib"])) for r in replies) < REQUESTS // 2 - 40, log
    assert "Booting worker" in log


def test_uvicorn_serves_health_and_sheds_load_when_work_is_refused(tmp_path: Path) -> None:
    port = free_port()
    argv = python("uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    with serve([*argv, "health_asgi:application"], port, tmp_path):
        ok = get(f"http://127.0.0.1:{port}/")
        health_ok = get(f"http://127.0.0.1:{port}/health")
        get(f"http://127.0.0.1:{port}/refuse")
        shed = get(f"http://127.0.0.1:{port}/")
        health_refusing = get(f"http://127.0.0.1:{port}/health")
    assert 200 == ok.status
    assert 200 == health_ok.status
    assert "ok" == health_ok.body["status"]
    assert 503 == shed.status
    assert "5" == shed.headers["retry-after"]
    assert 503 == health_refusing.status
    assert health_refusing.body["refusing"] is True
