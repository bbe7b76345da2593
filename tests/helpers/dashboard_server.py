"""A real dashboard process on a free loopback port, and the processes a dashboard test leaves."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from helpers import ROOT

BASE_URL = "http://127.0.0.1"  # the TestClient's base URL: the CSRF check wants an exact origin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), path) if p)}


class Dashboard:
    """`python -m lightnas dashboard ROOT` in its own process, on a free loopback port."""

    def __init__(self, root: Path, configs: Path, cwd: Path, *extra: str) -> None:
        self.root, self.configs, self.cwd, self.extra = root, configs, cwd, extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Dashboard:
        command = [sys.executable, "-m", "lightnas", "dashboard", str(self.root)]
        command += ["--port", str(self.port), "--configs", str(self.configs), *self.extra]
        self.proc = subprocess.Popen(
            command, cwd=self.cwd, env=child_env(), stdout=subprocess.PIPE, text=True
        )
        self.banner = self.proc.stdout.readline()
        try:
            wait_for(lambda: self._up(), 30, "the dashboard to answer")
        except AssertionError:
            self.proc.kill()
            self.proc.wait()
            raise
        return self

    def _up(self) -> bool:
        try:
            # any answer will do (with a token the answer is 401)
            return httpx2.get(self.url + "/static/dashboard.css", timeout=2).status_code < 500
        except httpx2.TransportError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=20)


def wait_for(condition, timeout: float, what: str, every: float = 0.2):
    """Poll `condition` until it returns something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def status(folder: Path) -> dict:
    try:
        return json.loads((folder / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def stop_searches(root: Path) -> None:
    """End the searches a test started and left running (their pid in status.json or in the
    dashboard's launch records)."""
    pids = {status(p.parent).get("pid") for p in root.rglob("status.json")}
    pids |= {json.loads(p.read_text()).get("pid") for p in root.glob(".dashboard/launches/*.json")}
    for pid in pids - {None, os.getpid()}:
        if is_search(pid):
            os.kill(pid, signal.SIGKILL)


def is_search(pid: int) -> bool:
    """Whether `pid` is a live `lightnas search` process (not some process that reused it)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"lightnas" in command and b"search" in command
