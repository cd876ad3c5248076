"""Backends for the batching tests: real SQLite files (rollback journal and WAL) and PostgreSQL,
and a PostgreSQL cluster a test may restart (``pg_cluster``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bound.helpers import BACKENDS, Db, sa, sqlite_engine
from tests.conftest import _as_cluster_user, _pg_bin
from tests.ports import free_port as _free_port


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    """Each test runs once per backend; PostgreSQL tables are dropped afterwards."""
    kind = request.param
    metadata = sa.MetaData()
    if kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(url)
    else:
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = sqlite_engine(tmp_path / "test.db", wal=kind == "sqlite-wal")
    try:
        yield Db(kind, url, engine, metadata)
    finally:
        if kind == "postgres":
            metadata.drop_all(engine)
        engine.dispose()


class PgCluster:
    """A PostgreSQL cluster of its own that a test may restart, stop, or whose backends it may
    terminate: the session-wide ``postgres_url`` cluster is shared by other tests."""

    def __init__(self, bindir: Path, base: Path, port: int) -> None:
        self.bindir = bindir
        self.base = base
        self.port = port
        self.data = base / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        self.options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
            "-c full_page_writes=off -c max_connections=40"
        )

    def pg_ctl(self, *argv: str, check: bool = True) -> None:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), *argv]
        subprocess.run(_as_cluster_user(command), check=check, capture_output=True, cwd=self.base)

    def start(self) -> None:
        self.pg_ctl("-o", self.options, "-l", str(self.base / "log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown: every session is ended, open transactions roll back."""
        self.pg_ctl("-m", "fast", "-w", "stop")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut (about 0.2 s here)."""
        log = str(self.base / "log")  # without -l the server would hold pg_ctl's pipes open
        self.pg_ctl("-m", "fast", "-w", "-t", "60", "-o", self.options, "-l", log, "restart")

    def running(self) -> bool:
        status = subprocess.run(
            _as_cluster_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            check=False,
            cwd=self.base,
        )
        return status.returncode == 0

    def start_later(self, seconds: float) -> threading.Thread:
        """Start the (stopped) cluster from a thread after ``seconds``; join it."""

        def run() -> None:
            time.sleep(seconds)
            self.start()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def cut(self, how: str) -> threading.Thread | None:
        """Cut every connection: ``"restart"``, ``"terminate"`` the backends, stop for a
        second (``"down 1 s"``), or ``"crash"`` (``pg_ctl stop -m immediate``: the server
        runs crash recovery when it starts a second later); the last two return the thread
        that starts it again."""
        if how == "restart":
            self.restart()
        elif how == "terminate":
            self.terminate_backends()
        elif how == "crash":
            self.pg_ctl("-m", "immediate", "-w", "stop")
            return self.start_later(1.0)
        else:
            self.stop()
            return self.start_later(1.0)
        return None

    def start_as_standby(self) -> None:
        """Start (stopped) as a standby with no primary and ``hot_standby=off``: it runs but
        turns every connection away ("the database system is not accepting connections",
        SQLSTATE 57P03), as a server in recovery does."""
        signal = self.data / "standby.signal"
        signal.touch()
        if os.geteuid() == 0:
            shutil.chown(signal, "postgres", "postgres")
        log = str(self.base / "log")
        options = self.options + " -c hot_standby=off"
        self.pg_ctl("-o", options, "-l", log, "start")  # no -w: it never accepts connections
        deadline = time.monotonic() + 30
        while "entering standby mode" not in Path(log).read_text() and time.monotonic() < deadline:
            time.sleep(0.05)

    def ensure_running(self) -> None:
        """Running as it was made: a standby a failed test left is stopped and started again
        as itself, a stopped cluster started."""
        if (self.data / "standby.signal").exists():
            self.pg_ctl("-m", "fast", "-w", "stop", check=False)
            (self.data / "standby.signal").unlink()
        if not self.running():
            self.start()

    def promote_later(self, seconds: float) -> threading.Thread:
        """After ``seconds``, stop the standby and start the cluster as it was (from a thread;
        join it)."""

        def run() -> None:
            time.sleep(seconds)
            self.pg_ctl("-m", "fast", "-w", "stop")
            (self.data / "standby.signal").unlink(missing_ok=True)
            self.start()

        thread = threading.Thread(target=run)
        thread.start()
        return thread

    @contextlib.contextmanager
    def holding(self, sql: str, at_most: float = 8.0) -> Iterator[None]:
        """Another session takes a lock with ``sql`` and holds it while the block runs, for
        ``at_most`` seconds (so code that ignores its lock timeout fails a test instead of
        hanging it)."""
        taken, release = threading.Event(), threading.Event()

        def hold() -> None:
            engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
            with engine.connect() as conn, conn.begin():
                conn.exec_driver_sql(sql)
                taken.set()
                release.wait(at_most)
            engine.dispose()

        thread = threading.Thread(target=hold)
        thread.start()
        try:
            assert taken.wait(10)
            yield
        finally:
            release.set()
            thread.join()

    def terminate_backends(self) -> int:
        """``pg_terminate_backend`` on every other client session; how many were ended."""
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return len(
                    conn.exec_driver_sql(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    ).all()
                )
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def _pg_cluster_module() -> Iterator[PgCluster]:
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt install postgresql"
        )
    base = Path(tempfile.mkdtemp(prefix="membound-pg-faults-"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    cluster = PgCluster(bindir, base, _free_port())
    try:
        initdb = [str(bindir / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres"]
        subprocess.run(
            _as_cluster_user([*initdb, "--no-sync"]),
            check=True,
            capture_output=True,
            cwd=base,
        )
        cluster.start()
    except subprocess.CalledProcessError as exc:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr.decode()}\n{log}")
    try:
        yield cluster
    finally:
        cluster.pg_ctl("-m", "immediate", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_cluster(_pg_cluster_module: PgCluster) -> Iterator[PgCluster]:
    """A PostgreSQL cluster of this test module's own, running when the test starts; the test
    may restart or stop it (it is started again afterwards)."""
    cluster = _pg_cluster_module
    if not cluster.running():
        cluster.start()
    yield cluster
    cluster.ensure_running()
