"""Shared test configuration: pytester drives the plugin in real pytest runs; a throwaway
PostgreSQL cluster serves the tests that need a real server.

One cluster per test session and per xdist worker (each worker is its own session), in a temp
directory, listening on 127.0.0.1 on a free port with trust authentication; it is always stopped.
Debian's server binaries live in /usr/lib/postgresql/<version>/bin. initdb refuses to run as
root, so as root the cluster runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.own_tools import OWN_TOOL_PLUGINS
from tests.ports import free_port as _free_port

#: Modules that get the ``fast`` marker: measuring, judging growth and leaks, the pytest plugin,
#: lint and batching, a few minutes in all. CI runs them on every Python ``pyproject.toml``
#: promises besides the default one (``make test-matrix-fast``); ``make test-matrix`` runs the
#: whole suite on each.
FAST_MODULES = frozenset(
    {
        "tests/test_units.py",
        "tests/test_exported_members.py",
        "tests/measure/test_track.py",
        "tests/measure/test_sizeof.py",
        "tests/measure/test_target.py",
        "tests/measure/test_heap_memray.py",
        "tests/measure/test_where.py",
        "tests/measure/test_traced_stacks.py",
        "tests/measure/test_lazy_imports.py",
        "tests/measure/test_limit_stack.py",
        "tests/judge/test_complexity.py",
        "tests/judge/test_leaks.py",
        "tests/judge/test_compare.py",
        "tests/results/test_growth.py",
        "tests/guard/test_pytest_plugin.py",
        "tests/guard/test_pytest_memray_together.py",
        "tests/lint/test_rules.py",
        "tests/lint/test_newer_grammar.py",
        "tests/bound/test_executemany.py",
        "tests/bound/test_unnest_batch.py",
    }
)
_ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """Stop a ``--dist loadgroup`` run that would not group the ``xdist_group`` tests.

    xdist groups them by a suffix it writes into each test's node id; pytest 9.2's node ids
    ignore that write (pytest-xdist#1386), and the tests of a group then run side by side in
    different workers, silently: those of ``memory-pressure`` fill each other's memory group
    and fail at random. pyproject.toml pins pytest below 9.2 for it."""
    if config.getoption("dist", "no") == "loadgroup" and pytest.version_tuple[:2] >= (9, 2):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} keeps --dist loadgroup from grouping tests "
            "(pytest-xdist#1386): install the pytest pyproject.toml names (make venv)"
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of ``FAST_MODULES`` ``fast``, and run the ``slow`` ones first.

    xdist hands the tests out in this order, one to each worker in turn: a test of minutes
    that starts last is the suite's tail, with every other worker idle beside it (the demo end
    to end, collected among the e2e tests, used to start several minutes into a run)."""
    for item in items:
        if item.path.relative_to(_ROOT).as_posix() in FAST_MODULES:
            item.add_marker(pytest.mark.fast)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


pytest_plugins = ["pytester"]


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester, whose runs (in this process or a new one) leave out the suite's own tools'
    plugins: :data:`OWN_TOOL_PLUGINS`, through ``PYTEST_ADDOPTS`` (pytester clears it first)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", OWN_TOOL_PLUGINS)
    return pytester


@pytest.fixture(scope="session", autouse=True)
def own_cgroups() -> Iterator[list[str]]:
    """Each pytest process in cgroups of its own, beside nothing another worker makes.

    The samplers a test starts make their run groups inside their process's cgroup, and sweep
    the stale ones there: with every xdist worker in one shared cgroup, a worker's sweep could
    remove the group another worker's test had just made. As root, each worker moves into a
    child group in every hierarchy membound makes groups in, and back out at the end (what is
    still running in them is killed, and the groups removed)."""
    from membound.measure.cgroup import groups as cgroups

    made: list[tuple[str, str]] = []  # (the group made, the one the process came from)
    if os.geteuid() == 0:
        name = f"suite-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"
        for hierarchy in cgroups.hierarchies():
            path = os.path.join(hierarchy.path, name)
            try:
                os.mkdir(path)
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                with contextlib.suppress(OSError):
                    os.rmdir(path)
                continue
            made.append((path, hierarchy.path))
    try:
        yield [path for path, _ in made]
    finally:
        for path, home in reversed(made):
            with contextlib.suppress(OSError), open(os.path.join(home, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            cgroups.remove(path)


def _pg_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_cluster_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL (``postgresql+psycopg://``) of a throwaway cluster, started once per session."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt install postgresql"
        )
    base = Path(tempfile.mkdtemp(prefix="membound-pg-"))
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    port = _free_port()

    def run(*argv: str) -> None:
        subprocess.run(_as_cluster_user(list(argv)), check=True, capture_output=True, cwd=base)

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        # fsync off: the tests kill clients, never the server, so durability of the server's
        # own files is irrelevant here and turning it off keeps the suite fast.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=60"
        )
        run(
            str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode()}\n{log}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_cluster_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
            cwd=base,
        )
        shutil.rmtree(base, ignore_errors=True)
