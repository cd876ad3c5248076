"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
JSON messages ended by NUL on file descriptors 3 (to the browser) and 4 (from it). No driver, no
websocket library and no browser download: the Debian ``chromium`` that ``.ci/run`` installs."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Flags that keep the browser from calling home or doing anything but render the page.
QUIET_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the suite runs as root in CI
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--password-store=basic",
    "--use-mock-keychain",
)


def chromium_path() -> str | None:
    """The Debian chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageVisit:
    """What the browser saw of one page."""

    facts: dict[str, Any]
    """The value the probe expression returned, evaluated in the page."""
    console: list[tuple[str, str]] = field(default_factory=list)
    """Console messages and log entries, as (level, text)."""
    exceptions: list[str] = field(default_factory=list)
    """Uncaught exceptions."""
    requests: list[str] = field(default_factory=list)
    """URLs of every request the page made (the page itself first)."""
    png: bytes = b""
    """A screenshot of the whole page."""


class Browser:
    """One headless Chromium with a DevTools session on its first page."""

    def __init__(self, executable: str, width: int = 1200, height: int = 900) -> None:
        self._profile = tempfile.mkdtemp(prefix="membound-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        # The protocol's fixed descriptors (3 and 4) are set in the browser's process by a tiny
        # launcher: no preexec_fn (unsafe with threads), and sh cannot name descriptors over 9.
        launcher = (
            "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        self._log = open(os.path.join(self._profile, "stderr.log"), "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                launcher,
                str(to_browser_r),
                str(from_browser_w),
                executable,
                *QUIET_FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self.session = attached["sessionId"]

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            # Wait with the deadline, not in a bare read: a page that blocks the browser (a
            # dialog, a hung renderer) must fail the test, not hang the suite.
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                log = Path(self._profile, "stderr.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"chromium closed its DevTools pipe:\n{log}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)  # type: ignore[no-any-return]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events meanwhile are kept)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 60
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})  # type: ignore[no-any-return]
            self.events.append(answer)

    def wait_for(self, event: str, timeout: float = 60) -> dict[str, Any]:
        """The first event of that name (already received or still to come)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.events[seen:]:
                if message.get("method") == event:
                    return message
            seen = len(self.events)
            self.events.append(self._read_message(deadline))

    def visit(self, url: str, probe: str) -> PageVisit:
        """Load ``url``, wait for it, evaluate ``probe`` in it and take a screenshot."""
        s = self.session
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", s)
        self.call("Page.navigate", s, url=url)
        self.wait_for("Page.loadEventFired")
        time.sleep(0.3)  # late console messages and requests land before they are read
        value = self.call("Runtime.evaluate", s, expression=probe, returnByValue=True)
        shot = self.call("Page.captureScreenshot", s, format="png", captureBeyondViewport=True)
        visit = PageVisit(value["result"].get("value"), png=base64.b64decode(shot["data"]))
        for message in self.events:
            method, params = message.get("method"), message.get("params", {})
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method == "Runtime.consoleAPICalled":
                text = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params["args"]
                )
                visit.console.append((params["type"], text))
            elif method == "Log.entryAdded":
                visit.console.append((params["entry"]["level"], params["entry"]["text"]))
            elif method == "Runtime.exceptionThrown":
                visit.exceptions.append(params["exceptionDetails"].get("text", ""))
        return visit

    def close(self) -> None:
        """Close the browser and remove its profile."""
        with contextlib.suppress(RuntimeError, OSError, TimeoutError):
            self.call("Browser.close")
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def artifact_dir() -> Path:
    """Where the suite keeps files worth looking at after a run (``build/test-artifacts``)."""
    folder = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def render_report(sources: list[str], html: Path) -> Path:
    """``membound report SOURCES --html HTML`` through the CLI; the page's path."""
    done = subprocess.run(
        [sys.executable, "-m", "membound", "report", *sources, "--html", str(html)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    return html


def visit_cleanly(page: Path, probe: str, screenshot: str) -> PageVisit:
    """Open ``page`` in headless Chromium, keep its screenshot as ``screenshot`` among the test
    artifacts, and check it loaded cleanly: no exception, no console error or warning, no
    request beyond the page itself (``data:`` URIs aside)."""
    executable = chromium_path()
    assert executable, "chromium is needed (the CI script installs Debian's chromium)"
    with Browser(executable) as browser:
        visit = browser.visit(page.as_uri(), probe)
    (artifact_dir() / screenshot).write_bytes(visit.png)
    assert [] == visit.exceptions
    assert [] == [c for c in visit.console if c[0] in ("error", "warning")], visit.console
    assert [page.as_uri()] == [u for u in visit.requests if not u.startswith("data:")]
    return visit
