"""A request that meets a ``MemoryError`` before its answer began (the backstop refused an
allocation that did not fit beside another request's temporary): a GET runs once more when
memory comes back, anything else is answered 503 with ``Retry-After`` — never the server's
500. Real gunicorn and uvicorn workers in a real memory cgroup, real backstop."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.guard.cgroup_helpers import memory_cgroup
from tests.guard.server_helpers import Reply, get, python, serve
from tests.ports import free_port

MIB = 1 << 20
#: One worker after the other with test_backstop.py's programs (see there).
pytestmark = pytest.mark.xdist_group("memory-pressure")
CONF = str(Path(__file__).parent / "apps" / "guarded_conf.py")


def _two_at_once(url: str, method: str = "GET") -> list[Reply]:
    """Two requests for a 150 MiB temporary each, the second 150 ms after the first (once the
    first is written, while it is held)."""
    replies: list[Reply] = []
    lock = threading.Lock()

    def one(delay: float) -> None:
        time.sleep(delay)
        reply = get(url, method=method)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=one, args=(d,)) for d in (0.0, 0.15)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


@pytest.mark.parametrize("pages", ["bare", "error-pages"])
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_a_get_refused_beside_another_temporary_runs_again_and_is_served(
    tmp_path: Path, server: str, pages: str
) -> None:
    """``error-pages``: the app sits behind a framework's error handling, which turns the
    ``MemoryError`` into its own 500 page; the middleware holds that page back and runs the
    request again all the same."""
    port = free_port()
    env = {"MB_TEST_GUARD": "full", "MB_TEST_RECYCLER": "0", "MB_TEST_HOLD_S": "0.2"}
    env["MB_TEST_ERROR_PAGES"] = "1" if pages == "error-pages" else "0"
    if server == "gunicorn":
        argv = python("gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "-c", CONF)
        argv += ["guarded_wsgi:application"]
    else:
        argv = python("uvicorn", "--workers", "2", "--host", "127.0.0.1", "--port", str(port))
        argv += ["--no-access-log", "guarded_asgi:application"]
        env["MB_TEST_HARD"] = "1 GiB"  # the recycler stays out of it
    with (
        memory_cgroup(300 * MIB) as group,
        serve(argv, port, tmp_path, env, group=group) as running,
    ):
        base = f"http://127.0.0.1:{port}"
        for _ in range(8):  # both workers serve and have started their watchdogs
            assert 200 == get(f"{base}/").status
        # two temporaries of 150 MiB cannot both fit in 300 MiB beside the interpreters
        replies = _two_at_once(f"{base}/leak?hold=150")
        running.stop()
        log = running.log
        kills = group.oom_kills()
    assert 0 == kills, log
    # the message a str, so that pytest prints the servers' log whole
    assert [200, 200] == sorted(r.status for r in replies), f"{replies}\n{log}"
    assert "the backstop refused an allocation" in log, log
    assert "and it runs once more" in log, log


def test_another_method_is_answered_503_not_500(tmp_path: Path) -> None:
    port = free_port()
    env = {"MB_TEST_GUARD": "full", "MB_TEST_RECYCLER": "0", "MB_TEST_HOLD_S": "0.2"}
    argv = python("gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "-c", CONF)
    argv += ["guarded_wsgi:application"]
    with (
        memory_cgroup(300 * MIB) as group,
        serve(argv, port, tmp_path, env, group=group) as running,
    ):
        base = f"http://127.0.0.1:{port}"
        for _ in range(8):
            assert 200 == get(f"{base}/").status
        replies = _two_at_once(f"{base}/leak?hold=150", method="POST")
        running.stop()
        log = running.log
        kills = group.oom_kills()
    assert 0 == kills, log
    # Both cannot fit; a POST is never run twice: the one refused (at the kernel's line, or
    # under its share of the group's room, turns.py) is answered 503, never the server's 500.
    statuses = sorted(r.status for r in replies)
    assert statuses in ([200, 503], [503, 503]), f"{replies}\n{log}"
    for refused in (r for r in replies if r.status == 503):
        assert "5" == refused.headers["retry-after"]
