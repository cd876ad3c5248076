"""``actions.refuse_new_work`` recovers: a leaking worker that refuses work never gets back under
``recover`` by itself, so after ``recycle_after`` seconds with memory not falling it recycles
gracefully under its supervisor (uvicorn ``--workers``, gunicorn) and fresh workers serve 200
again; a single process keeps answering 503 on ``/health`` for a liveness probe. Real servers on
127.0.0.1, bounded request loops; plus the arming and disarming in one process."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from membound.guard import GunicornRecycler, actions
from membound.guard.middleware import ASGIHealthMiddleware, HealthMiddleware
from membound.guard.recycle import Policy
from membound.guard.recycle.uvicorn import ASGIRecycler
from membound.guard.serving import Supervisor
from membound.guard.watchdog import refusal
from tests.guard.server_helpers import Reply, get, load, python, serve, wait_for_line
from tests.ports import free_port

SHED_BODY = {"status": "hard", "error": "memory near its limit: try again later"}
#: While work is refused below ``hard`` the answer says so (never ``ok``).
REFUSING_BODY = {**SHED_BODY, "status": "refusing"}
ENV = {"MB_TEST_ON_HARD": "refuse", "MB_TEST_HEADROOM_MIB": "64", "MB_TEST_RECYCLE_AFTER": "1.5"}


def _until_fresh_workers_serve(url: str, old: set[object], seconds: float) -> list[Reply]:
    """Requests every 50 ms until two in a row come from workers not in ``old`` (bounded)."""
    seen: list[Reply] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(get(url))
        fresh = [r.status == 200 and r.body.get("pid") not in old for r in seen[-2:]]
        if len(fresh) == 2 and all(fresh):
            break
        time.sleep(0.05)
    return seen


@pytest.mark.parametrize("server_kind", ["uvicorn --workers", "gunicorn sync"])
def test_a_refusing_leaking_worker_recycles_and_the_service_recovers(
    tmp_path: Path, server_kind: str
) -> None:
    port = free_port()
    if server_kind == "uvicorn --workers":
        argv = python("uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port))
        argv += ["--no-access-log", "guarded_asgi:application"]
    else:
        conf = str(Path(__file__).parent / "apps" / "guarded_conf.py")
        argv = python("gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "-c", conf)
        argv += ["guarded_wsgi:application"]
    env = {**ENV, "MB_TEST_RECYCLER": "0"}
    with serve(argv, port, tmp_path, env) as server:
        # 1 MiB per request: each worker passes hard (32 MiB above its start) and refuses;
        # /health is asked meanwhile (a stuck worker is replaced within seconds, so a probe
        # after the load may already find only fresh workers)
        done = threading.Event()
        probes: list[Reply] = []
        prober = threading.Thread(
            target=lambda: probes.extend(
                load(f"http://127.0.0.1:{port}/health", 2000, pause=0.02, stop=done)
            )
        )
        prober.start()
        try:
            leaked = load(f"http://127.0.0.1:{port}/leak", 120, threads=2, pause=0.01)
        finally:
            done.set()
            prober.join()
        old = {r.body.get("pid") for r in leaked if r.status == 200}
        after = _until_fresh_workers_serve(
            f"http://127.0.0.1:{port}/", old, seconds=20
        )  # < slots.PENDING_S
        said = wait_for_line(server, rb"refused new work for 2 s", timeout=1)
        server.stop()
    log = server.log
    replies = leaked + after
    assert {r.status for r in replies} <= {200, 503}, log  # nothing lost, no 500
    shed = [r for r in replies if r.status == 503]
    assert shed, log  # the leak did reach hard and work was refused
    assert all(
        r.body in (SHED_BODY, REFUSING_BODY) and r.headers["retry-after"] == "5" for r in shed
    )
    refusing = [r for r in probes if r.status == 503]
    assert refusing, log  # /health said 503 while work was refused
    assert all(r.body["refusing"] is True or r.body["state"] == "hard" for r in refusing), log
    assert said, log
    assert 200 == after[-1].status, log  # recovered: fresh workers serve
    assert after[-1].body["pid"] not in old, log


def test_a_single_process_keeps_refusing_for_a_liveness_probe(tmp_path: Path) -> None:
    port = free_port()
    argv = python("uvicorn", "--host", "127.0.0.1", "--port", str(port), "--no-access-log")
    with serve([*argv, "guarded_asgi:application"], port, tmp_path, ENV) as server:
        load(f"http://127.0.0.1:{port}/leak", 60)
        # Requests keep coming, as they would: each one turned away while refusing arms the
        # check (on a busy machine the watchdog may reach hard only after the 60 were served).
        deadline = time.monotonic() + 20
        said = False
        while not said and time.monotonic() < deadline:
            get(f"http://127.0.0.1:{port}/")
            said = wait_for_line(server, rb"liveness probe", timeout=0.5)
        health = get(f"http://127.0.0.1:{port}/health")
        work = get(f"http://127.0.0.1:{port}/")
        alive = server.process.poll() is None
        server.stop()
    assert said, server.log
    assert alive  # nothing would start it again: it is not stopped
    assert 503 == health.status
    assert health.body["refusing"] is True
    assert 503 == work.status
    assert 1 == server.log.count("liveness probe")


def test_recovering_before_recycle_after_disarms_the_recycle(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="membound.guard")
    refusal._said.clear()
    action = actions.refuse_new_work(recycle_after=0.2)
    try:
        action(None)  # type: ignore[arg-type]
        assert actions.refusing()
        actions.stop_refusing()  # memory back under recover (the watchdog calls this)
        time.sleep(0.6)
        assert "liveness probe" not in caplog.text
        action(None)  # type: ignore[arg-type]
        time.sleep(0.6)  # refusing on, memory not falling, no supervisor in a test process
        assert "liveness probe" in caplog.text
        assert actions.refusing()
    finally:
        actions.stop_refusing()
        refusal._said.clear()


def test_a_shorter_recycle_after_armed_later_wins(caplog: pytest.LogCaptureFixture) -> None:
    # A middleware that shed a request first arms its own (longer) recycle_after; the
    # watchdog's refuse action, arriving just after, must not wait for it.
    caplog.set_level(logging.WARNING, logger="membound.guard")
    refusal._said.clear()
    middleware_default = 30.0
    try:
        refusal.recycle_if_stuck(middleware_default)
        actions.refuse_new_work(recycle_after=0.2)(None)  # type: ignore[arg-type]
        deadline = time.monotonic() + 5
        while "liveness probe" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "liveness probe" in caplog.text
        # and a longer one armed after a shorter one does not postpone it
        actions.stop_refusing()
        refusal._said.clear()
        caplog.clear()
        actions.refuse_new_work(recycle_after=0.2)(None)  # type: ignore[arg-type]
        refusal.recycle_if_stuck(middleware_default)
        deadline = time.monotonic() + 5
        while "liveness probe" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "liveness probe" in caplog.text
    finally:
        actions.stop_refusing()
        refusal._said.clear()


@pytest.fixture
def supervised(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The graces of this test process's stops of serving, recorded, not made (its slot is let
    go as the server's stop would let it go)."""
    graces: list[float] = []

    def stop_serving(grace: float, stopped: Any = None) -> None:
        graces.append(grace)
        if stopped is not None:
            stopped()

    monkeypatch.setattr(refusal, "stop_serving", stop_serving)
    refusal._said.clear()
    yield graces
    actions.stop_refusing()
    refusal._said.clear()
    # Where the slot went while the refusal ignored the recycler's folder.
    shutil.rmtree(os.path.join(tempfile.gettempdir(), f"membound-recycle-{os.getpid()}"), True)


def _stuck_refusal(workers: int, stopped: list[float], seconds: float) -> None:
    """Refuse work for a stuck worker of ``workers`` under this process, and wait ``seconds``
    or until it stops serving."""
    supervisor = Supervisor("gunicorn", os.getpid(), workers)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(refusal, "supervisor", lambda: supervisor)
        actions.refuse_new_work(recycle_after=0.05, grace=1)(None)  # type: ignore[arg-type]
        deadline = time.monotonic() + seconds
        while not stopped and time.monotonic() < deadline:
            time.sleep(0.02)
        actions.stop_refusing()


def test_a_stuck_worker_takes_its_slot_in_the_recyclers_folder(
    tmp_path: Path, supervised: list[float]
) -> None:
    # The recycler and the refusal's way out share one limit: the slots of the folder the
    # recycler was given, not of the temporary directory.
    Policy(hard="1 TiB", slot_dir=str(tmp_path)).boot(1 << 20, 4, os.getpid())
    _stuck_refusal(4, supervised, seconds=5)
    slot = tmp_path / f"membound-recycle-{os.getpid()}" / "slot-0"
    assert [1] == supervised
    assert str(os.getpid()) == slot.read_text()
    assert not os.path.exists(
        os.path.join(tempfile.gettempdir(), f"membound-recycle-{os.getpid()}")
    )


@pytest.mark.parametrize(("workers", "max_recycling"), [(4, None), (8, 1)])
def test_a_stuck_worker_waits_while_the_recyclers_slots_are_taken(
    tmp_path: Path, supervised: list[float], workers: int, max_recycling: int | None
) -> None:
    # One slot (4 workers: ⌈4 / 4⌉; 8 workers with max_recycling=1), taken by a worker the
    # recycler replaced and whose replacement is on its way: the stuck worker keeps serving.
    policy = Policy(hard="1 TiB", max_recycling=max_recycling, slot_dir=str(tmp_path))
    policy.boot(1 << 20, workers, os.getpid())
    folder = tmp_path / f"membound-recycle-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    (folder / "slot-0").write_text("1")  # a pid: a replacement is pending
    _stuck_refusal(workers, supervised, seconds=1)
    assert [] == supervised
    assert ["slot-0"] == sorted(p.name for p in folder.glob("slot-*"))


def _asgi(scope: Any, receive: Any, send: Any) -> Any:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: actions.refuse_new_work(recycle_after=-1), "recycle_after"),
        (lambda: actions.refuse_new_work(grace=float("nan")), "grace"),
        (lambda: actions.exit_gracefully(grace=True), "grace"),
        (lambda: HealthMiddleware(_asgi, recycle_after=float("nan")), "recycle_after"),  # type: ignore[arg-type]
        (lambda: ASGIHealthMiddleware(_asgi, recycle_after="1"), "recycle_after"),  # type: ignore[arg-type]
        (lambda: ASGIRecycler(_asgi, hard="lots"), "lots"),
        (lambda: ASGIRecycler(_asgi, hard="150%"), "percentage"),
        (lambda: ASGIRecycler(_asgi, jitter=0.9), "jitter"),
        (lambda: ASGIRecycler(_asgi, grace=-1), "grace"),
        (lambda: ASGIRecycler(_asgi, workers=0), "workers"),
        (lambda: ASGIRecycler(_asgi, supervised="yes"), "supervised"),  # type: ignore[arg-type]
        (lambda: ASGIRecycler(_asgi, max_recycling=0), "max_recycling"),
        (lambda: GunicornRecycler(jitter=float("nan")), "jitter"),
        (lambda: GunicornRecycler(grace=4000), "grace"),
    ],
)
def test_bad_arguments_are_one_line_errors(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        make()
    assert "\n" not in str(caught.value)
