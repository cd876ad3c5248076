"""The process ``membound watch`` watches: a pid given (attached to, never stopped), or a command
it started in a session of its own (and so stops at the end: SIGTERM, then SIGKILL after
``STOP_GRACE_S``)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Callable

import psutil

from membound._proc import check_status, status_fields
from membound.cli.commands.watch.errors import WatchError, WatchUsageError

#: Seconds a command started with ``--cmd`` gets between SIGTERM and SIGKILL.
STOP_GRACE_S = 3.0


def read_status(pid: int) -> tuple[int | None, int | None]:
    """``VmRSS`` and ``VmHWM`` of ``pid`` in bytes (None when unreadable or gone)."""
    found = status_fields(pid) or {}
    return found.get("VmRSS"), found.get("VmHWM")


class Target:
    """The watched process: a pid given, or a command membound started (and so stops)."""

    def __init__(self, pid: int, popen: subprocess.Popen[bytes] | None, label: str) -> None:
        self.pid, self.popen, self.label = pid, popen, label
        self.returncode: int | None = None
        self._proc: psutil.Process | None = None
        if popen is None:
            with contextlib.suppress(psutil.Error):
                self._proc = psutil.Process(pid)

    @classmethod
    def attach(cls, pid: int) -> Target:
        """Check that ``pid`` is a live process whose memory can be read.

        Raises:
            WatchError: no such process, a zombie, or no permission to read it.
        """
        if pid <= 0:
            raise WatchUsageError(f"a pid is a positive number, got {pid}")
        try:
            proc = psutil.Process(pid)
            zombie = proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            raise WatchError(f"no process with pid {pid}") from None
        except psutil.AccessDenied:
            raise WatchError(f"no permission to read process {pid}") from None
        if zombie:
            raise WatchError(
                f"process {pid} has already exited (a zombie its parent has not reaped)"
            )
        try:
            check_status(pid)
        except PermissionError:
            raise WatchError(f"no permission to read /proc/{pid}/status") from None
        except FileNotFoundError:
            raise WatchError(f"no process with pid {pid}") from None
        except OSError as exc:
            raise WatchError(f"cannot read /proc/{pid}/status: {exc.strerror}") from None
        try:
            words = shlex.join(proc.cmdline()) or proc.name()
        except psutil.Error:
            words = ""
        return cls(pid, None, shorten(words))

    @classmethod
    def start(cls, cmd: str, enter: Callable[[], None] | None = None) -> Target:
        """Start ``cmd`` (split like a shell would, run without one) in a session of its own;
        ``enter`` runs in the child before ``exec`` (it moves into the cgroup made for it).

        Raises:
            WatchUsageError: an empty command or quotes that do not close.
            WatchError: the command cannot be started.
        """
        try:
            argv = shlex.split(cmd)
        except ValueError as exc:
            raise WatchUsageError(f"cannot split --cmd {cmd!r}: {exc}") from None
        if not argv:
            raise WatchUsageError("--cmd is empty")
        try:
            # Its own session: Ctrl-C stops membound, which then stops the command and says so
            # (rather than the terminal interrupting both at once).
            # ``enter`` before ``exec``, not after the start: a command that forks at once
            # would leave children outside its cgroup. membound runs no other thread yet here,
            # which is what makes ``preexec_fn`` safe.
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=enter,  # noqa: PLW1509
            )
        except subprocess.SubprocessError as exc:  # ``enter`` failed in the child
            raise WatchError(f"cannot start {argv[0]} in its cgroup: {exc}") from None
        except FileNotFoundError:
            raise WatchError(f"command not found: {argv[0]}") from None
        except PermissionError:
            raise WatchError(f"not executable: {argv[0]}") from None
        except OSError as exc:
            raise WatchError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        return cls(popen.pid, popen, shorten(shlex.join(argv)))

    def ended(self) -> bool:
        """Whether the process has exited (a zombie counts: it runs no more)."""
        if self.popen is not None:
            self.returncode = self.popen.poll()
            return self.returncode is not None
        if self._proc is None:
            return True
        try:
            return not self._proc.is_running() or self._proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False

    def stop(self) -> str | None:
        """Stop the command membound started: SIGTERM to its group, SIGKILL after
        :data:`STOP_GRACE_S`; how it went, in words (None when it had already ended)."""
        if self.popen is None or self.ended():
            return None
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.returncode = self.popen.wait(STOP_GRACE_S)
            how = "SIGTERM"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(self.pid, signal.SIGKILL)
            self.returncode = self.popen.wait()
            how = f"SIGKILL (it ignored SIGTERM for {STOP_GRACE_S:g} s)"
        # Whatever else is left of its session goes too.
        with contextlib.suppress(OSError):
            os.killpg(self.pid, signal.SIGKILL)
        return f"stopped {self.label} (pid {self.pid}) with {how}"


#: Control characters of a command line (``python -c`` code has newlines) as escapes.
_ESCAPES = {c: f"\\x{c:02x}" for c in range(32)} | {9: "\\t", 10: "\\n", 13: "\\r"}


def shorten(words: str, width: int = 80) -> str:
    """One line of at most ``width`` characters."""
    words = words.translate(_ESCAPES)
    return words if len(words) <= width else words[: width - 1] + "…"
