"""A real Streamlit server and a real Chromium for the browser tests.

The server is ``streamlit run app.py`` on 127.0.0.1 and a free port, with ``stdin`` closed (so it
never waits at a prompt), waited for on ``/_stcore/health``, and stopped by its PID. Chromium is
Debian's (``/usr/bin/chromium``) driven through Playwright's sync API.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "test-artefacts" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def start_server(db_path: Path, log_path: Path, *, no_sample: bool = True, timeout: float = 60,
                 env_extra: dict[str, str] | None = None) -> Server:
    """``streamlit run app.py`` on a free port against ``db_path``; returns once healthy.
    ``env_extra`` adds environment variables (e.g. ``OPSFUNNEL_PASSWORD``)."""
    port = free_port()
    env = dict(os.environ, OPSFUNNEL_DB=str(db_path), **(env_extra or {}))
    if no_sample:
        env["OPSFUNNEL_NO_SAMPLE"] = "1"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"streamlit did not become healthy in {timeout} s: {log_path.read_text()[-2000:]}")


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the script run the last interaction started has finished and the page drew."""
    page.wait_for_function(
        "() => { const a = document.querySelector('[data-testid=stApp]');"
        " return a && a.getAttribute('data-test-script-state') === 'notRunning'"
        " && !document.querySelector('[data-testid=stStatusWidget] [data-testid=stStatusWidgetRunningIcon]'); }",
        timeout=timeout)
    page.wait_for_timeout(300)  # the last deltas of the finished run are painted
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]').getAttribute('data-test-script-state') === 'notRunning'",
        timeout=timeout)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
