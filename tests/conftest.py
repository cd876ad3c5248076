"""Shared test configuration: pytester drives the plugin in real pytest runs; a throwaway
PostgreSQL cluster serves the tests that need a real server.

One cluster per test session and per xdist worker (each worker is its own session), in a temp
directory, listening on 127.0.0.1 on a free port with trust authentication; it is always stopped.
Debian's server binaries live in /usr/lib/postgresql/<version>/bin. initdb refuses to run as
root, so as root the cluster runs as the ``postgres`` OS user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of ``FAST_MODULES`` ``fast``."""
    for item in items:
        if item.path.relative_to(_ROOT).as_posix() in FAST_MODULES:
            item.add_marker(pytest.mark.fast)


pytest_plugins = ["pytester"]


def _pg_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
