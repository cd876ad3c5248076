"""Nothing a measured run starts outlives it (issue: processes outlive the run).

Every run here starts processes that try to get away: into a new session (``setsid``), out of
the tree (a double fork, so that init adopts them), or simply in the background. Each is tagged
by an environment variable and looked for in ``/proc`` afterwards: after the run ends, after its
limit or timeout, after membound gets SIGINT, SIGTERM or SIGHUP, and after SIGKILL of membound
(its sampler then ends the run) or of membound and its sampler together (the next run removes
the leftover cgroup). The runs go through both ways of keeping a run: the cgroup per run (root
here) and the subreaper fallback (``MEMBOUND_PROCESS_TRACKING=subreaper``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from membound.measure import child_code
from membound.measure.cgroup import groups as cgroups
from membound.measure.isolate.command import measure_command
from membound.measure.isolate.function import measure, run_python
from tests.processes import (
    default_sigint,
    kill_tagged,
    new_tag,
    settle,
    tagged,
    tagged_env,
    wait_for_tagged,
)

#: A background child in a new session, and the command ends at once.
SETSID_CHILD = "setsid sleep 60 & sleep 0.3; echo started"
#: A daemon: double fork and setsid, so init (or a subreaper) adopts it; it holds 80 MiB.
DAEMON = textwrap.dedent(
    """
    import os, sys, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            block = bytearray(80 * 2**20)
            for i in range(0, len(block), 4096):
                block[i] = 1
            open(sys.argv[1], "w").write(str(os.getpid()))
            time.sleep(60)
        os._exit(0)
    while not os.path.exists(sys.argv[1]) or not open(sys.argv[1]).read():
        time.sleep(0.01)
    time.sleep(0.3)
    """
)
FORKS_TARGET = textwrap.dedent(
    """
    import subprocess

    def forks(n=1):
        for _ in range(n):
            subprocess.Popen(["sleep", "60"], start_new_session=True)
        return n
    """
)


def _cgroups_here() -> bool:
    """Whether this machine lets a run have a cgroup (the probe group is removed at once)."""
    group = cgroups.RunGroup.create(os.getpid()) if os.geteuid() == 0 else None
    if group is None:
        return False
    group.remove()
    return True


CGROUPS_HERE = _cgroups_here()


@pytest.fixture(params=["cgroup", "subreaper"])
def tracking(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with a cgroup per run and with the subreaper fallback."""
    mode = str(request.param)
    if mode == "subreaper":
        monkeypatch.setenv("MEMBOUND_PROCESS_TRACKING", "subreaper")
    return mode


@pytest.fixture
def tag(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A tag in this process's environment, so every process a run starts carries it."""
    value = new_tag()
    monkeypatch.setenv("MEMBOUND_TEST_TAG", value)
    yield value
    kill_tagged(value)


def _expected_mode(tracking: str) -> str:
    return "cgroup" if tracking == "cgroup" and CGROUPS_HERE else "subreaper"


def test_cgroups_are_used_where_this_machine_allows() -> None:
    # CI runs as root with cgroupfs writable: the main path must be exercised there.
    if os.geteuid() == 0 and any(os.access(h.path, os.W_OK) for h in cgroups.hierarchies()):
        assert CGROUPS_HERE


def test_a_background_child_in_its_own_session_is_killed_when_the_command_ends(
    tracking: str, tag: str
) -> None:
    m = measure_command(["bash", "-c", SETSID_CHILD], quiet=True)
    assert "ok" == m.outcome
    assert [] == settle(tag)
    assert "1 process it left running was killed when it ended" in m.outcome_detail


def test_a_daemon_is_counted_in_the_peak_and_killed(
    tracking: str, tag: str, tmp_path: Path
) -> None:
    marker = tmp_path / "daemon.pid"
    m = measure_command([sys.executable, "-c", DAEMON, str(marker)], quiet=True)
    daemon = int(marker.read_text())
    assert [] == settle(tag)
    assert not Path(f"/proc/{daemon}/environ").exists() or daemon not in tagged(tag)
    # The daemon left the command's tree at once, yet its 80 MiB are the run's.
    assert m.rss_peak >= 80 * 2**20, m.rss_peak_source
    assert "killed when it ended" in m.outcome_detail


def test_the_report_says_how_the_run_was_kept(tracking: str, tag: str) -> None:
    from membound.measure.sampler.process import Sampler

    devnull = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    sampler = Sampler(None, spawn=["true"], stdio=devnull, tree=True).start()
    for fd in devnull:  # the sampler owns them: closed once its process has them
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)
    report, timed_out = sampler.finish(30)
    assert not timed_out
    assert _expected_mode(tracking) == report.tracking
    assert (sampler.cgroup is not None) == (report.tracking == "cgroup")
    if sampler.cgroup:
        assert not os.path.exists(sampler.cgroup), "the run's cgroup was not removed"


def test_the_limit_kills_a_child_that_left_the_session(tracking: str, tag: str) -> None:
    hog = f"{sys.executable} -c 'import time; b = bytearray(400 * 2**20); time.sleep(60)'"
    m = measure_command(["bash", "-c", f"setsid {hog} & sleep 60"], limit="150 MB", quiet=True)
    assert "limit" == m.outcome
    assert [] == settle(tag)


def test_the_timeout_kills_a_child_that_left_the_session(tracking: str, tag: str) -> None:
    m = measure_command(["bash", "-c", "setsid sleep 60 & sleep 60"], timeout=1.0, quiet=True)
    assert "timeout" == m.outcome
    assert [] == settle(tag)


def test_an_isolated_call_that_forks_leaves_nothing(
    tracking: str, tag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "forker.py").write_text(FORKS_TARGET)
    m = measure(f"{tmp_path / 'forker.py'}:forks", 3)
    assert "ok" == m.outcome
    assert "3 processes it left running were killed when it ended" in m.outcome_detail
    assert [] == settle(tag)


def test_a_fresh_interpreter_run_that_forks_leaves_nothing(tracking: str, tag: str) -> None:
    code, timed_out = run_python(
        ["-c", "import subprocess; subprocess.Popen(['sleep', '60'], start_new_session=True)"],
        timeout=30,
    )
    assert (0, False) == (code, timed_out)
    assert [] == settle(tag)


@pytest.fixture(autouse=True)
def _temporary_files_in_the_test_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A membound SIGKILLed (here, or by an outer run's timeout) cannot remove its temporary
    folder: the runs started here keep theirs in the test's own folder."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))


def _membound(
    args: list[str], tag: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "membound", *args],
        env={**tagged_env(tag), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,  # noqa: PLW1509 - the runner may ignore SIGINT
    )


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
)
def test_a_signal_to_membound_ends_every_process_of_the_run(
    tracking: str, tag: str, signum: int, code: int
) -> None:
    proc = _membound(["run", "--", "bash", "-c", "setsid sleep 60 & sleep 60"], tag)
    # membound, its sampler, bash and two sleeps
    wait_for_tagged(tag, 5)
    time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert code == proc.returncode, err
    assert [] == settle(tag)


def test_sigkill_of_membound_its_sampler_ends_the_run(tracking: str, tag: str) -> None:
    proc = _membound(["run", "--", "bash", "-c", "setsid sleep 60 & sleep 60"], tag)
    wait_for_tagged(tag, 5)
    proc.kill()
    proc.wait()
    # The sampler gets SIGTERM from PR_SET_PDEATHSIG (or sees its parent gone) and ends it.
    assert [] == settle(tag, timeout=10)


def test_a_sampler_whose_parent_died_before_it_said_started_still_ends_the_run(
    tracking: str, tag: str
) -> None:
    """membound killed between the spawn and the sampler's ``started`` line (seen under load,
    1 in 40): that line meets a closed pipe, and the sampler must still end the run."""
    command = ["bash", "-c", "setsid sleep 60 & sleep 60"]
    config = json.dumps({"pid": 0, "interval": 0.01, "tree": True, "spawn": command}).encode()
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will read what the sampler says
    sampler = subprocess.Popen(
        [sys.executable, "-E", "-s", "-S", str(child_code.path("sampler_process"))],
        stdin=subprocess.PIPE,
        stdout=write_end,
        stderr=subprocess.DEVNULL,
        env=tagged_env(tag),
    )
    os.close(write_end)
    assert sampler.stdin is not None
    sampler.stdin.write(b"%d\n%s" % (len(config), config))
    sampler.stdin.flush()
    wait_for_tagged(tag, 3)  # bash and its two sleeps (and the sampler, if it lives)
    time.sleep(0.3)
    sampler.stdin.close()  # the parent is gone
    sampler.wait(timeout=30)
    assert [] == settle(tag, timeout=10)


@pytest.mark.skipif(not CGROUPS_HERE, reason="needs a writable cgroup hierarchy (root)")
def test_after_sigkill_of_membound_and_sampler_the_next_run_removes_the_leftovers(tag: str) -> None:
    proc = _membound(["run", "--", "bash", "-c", "setsid sleep 60 & sleep 60"], tag)
    pids = wait_for_tagged(tag, 5)
    samplers = [p for p in pids if b"sampler_process" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert 1 == len(samplers)
    names = [Path(h.path, f"{cgroups.PREFIX}{samplers[0]}") for h in cgroups.hierarchies()]
    assert 1 == sum(p.exists() for p in names)
    os.kill(samplers[0], signal.SIGKILL)
    proc.kill()
    proc.wait()
    time.sleep(0.3)
    # Nothing but the sweep of a later run can end them now (their sampler is gone, and they
    # have no PR_SET_PDEATHSIG of their own); a run of another test process may sweep first.
    measure_command(["true"], quiet=True)
    assert [] == settle(tag)
    assert not any(p.exists() for p in names)


def test_stale_groups_of_dead_samplers_are_removed_and_live_ones_kept(tag: str) -> None:
    if not CGROUPS_HERE:
        pytest.skip("needs a writable cgroup hierarchy (root)")
    home = cgroups.hierarchies()[0].path
    # The owner died and was not reaped yet: a zombie still has a /proc entry, and is gone.
    dead = subprocess.Popen(["true"])
    while Path(f"/proc/{dead.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z":
        time.sleep(0.01)
    stale = cgroups.RunGroup(os.path.join(home, f"{cgroups.PREFIX}{dead.pid}"), home, 0)
    os.mkdir(stale.path)
    sleeper = subprocess.Popen(["sleep", "60"], env=tagged_env(tag))
    try:
        stale.enter(sleeper.pid)
        # Making a group sweeps the dead ones beside it (a concurrent test process may sweep
        # first); this process's own group, kept by name, must survive the sweep.
        mine = cgroups.RunGroup.create(os.getpid())
        assert mine is not None
        assert not os.path.exists(stale.path)
        assert sleeper.wait(timeout=5) == -signal.SIGKILL
        assert os.path.exists(mine.path)
        mine.remove()
        assert not os.path.exists(mine.path)
    finally:
        sleeper.kill()
        sleeper.wait()
        dead.wait()


#: 200 MiB held until the other allocator holds its own (a rendezvous in the folder argv[1]),
#: so that both are held at once however slowly a loaded machine starts them.
ALLOC = (
    "import os, sys, time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
    "open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close(); t = time.time(); "
    "exec('while len(os.listdir(sys.argv[1])) < 2 and time.time() - t < 60: time.sleep(0.01)'); "
    "time.sleep(0.3)"
)


def test_a_run_inside_a_run_counts_in_the_outer_peak_and_is_cleaned_up(
    tracking: str, tag: str, tmp_path: Path
) -> None:
    meet = tmp_path / "meet"  # the rendezvous: nothing else is made in it
    meet.mkdir()
    alloc = f'{sys.executable} -c "{ALLOC}" {meet}'
    inner = f"{sys.executable} -m membound run -- {alloc}"
    m = measure_command(["bash", "-c", f"{inner} > /dev/null 2>&1 & {alloc}; wait"], quiet=True)
    assert "ok" == m.outcome, m.outcome_detail
    # Two 200 MiB processes at once, one of them in the inner run's own group.
    assert m.rss_peak >= 2 * 200 * 2**20, m.rss_peak_source
    assert [] == settle(tag)


def test_a_timeout_of_the_outer_run_ends_the_inner_run_and_removes_both_groups(
    tracking: str, tag: str
) -> None:
    before = {h.path: _groups(h.path) for h in cgroups.hierarchies()}
    m = measure_command(
        [sys.executable, "-m", "membound", "run", "--", "sleep", "60"], timeout=2.0, quiet=True
    )
    assert "timeout" == m.outcome
    assert [] == settle(tag)
    for home, names in before.items():
        assert _groups(home) <= names | _live_groups(home), "a run's cgroup was left behind"


def _groups(home: str) -> set[str]:
    try:
        return {n for n in os.listdir(home) if n.startswith(cgroups.PREFIX)}
    except OSError:
        return set()


def _live_groups(home: str) -> set[str]:
    """Groups of runs other test processes are making right now: with processes in them, or
    made by another process that still runs (a run of another worker is empty for a moment
    between making its group and moving its command in, and after its command ended)."""
    live = set()
    for name in _groups(home):
        path = os.path.join(home, name)
        owner = name[len(cgroups.PREFIX) :]
        if cgroups.procs(path) or (
            owner.isdigit() and int(owner) != os.getpid() and cgroups._owner_alive(int(owner), path)
        ):
            live.add(name)
    return live


def test_the_command_gets_default_signal_dispositions(tracking: str, tag: str) -> None:
    # The sampler ignores SIGINT (the parent handles Ctrl-C); a measured Python program must
    # still get KeyboardInterrupt, and SIGPIPE must kill a shell pipeline's writer as usual.
    m = measure_command(
        [
            sys.executable,
            "-c",
            "import signal, sys; "
            "ok = signal.getsignal(signal.SIGINT) is signal.default_int_handler; "
            "sys.exit(0 if ok else 5)",
        ],
        quiet=True,
    )
    assert 0 == m.exit_code
    code, _ = run_python(
        ["-c", "import signal, sys; sys.exit(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"],
        timeout=30,
    )
    assert 0 == code
