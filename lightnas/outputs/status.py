"""status.json: what a run is doing, with a heartbeat, so that a reader (the dashboard, a sweep)
can tell a running run from a killed one."""

from __future__ import annotations

import datetime
import json
import os
import socket
import time
from pathlib import Path

from lightnas.runtime.fileio import write_json_atomic

RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "finished", "interrupted", "failed"
PRUNED = "pruned"  # ended early by a sweep's pruner (lightnas.run.folder.StopRun)
STALE_S = 60.0  # a running status whose heartbeat is older than this belongs to a dead process


def write_status(path: Path, state: str, **fields) -> None:
    """Record the run's state (running, finished, interrupted, failed) and a heartbeat."""
    previous = read_status_file(path)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    status = {
        **previous,
        **fields,
        "state": state,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": previous.get("started") if previous.get("pid") == os.getpid() else now,
        "heartbeat": now,
        "heartbeat_unix": time.time(),
    }
    write_json_atomic(path, status)


def read_status_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def read_status(path: Path) -> dict:
    """The recorded status, with `state` corrected to `interrupted` for a run that says it is
    running but whose process is gone (killed) or whose heartbeat stopped."""
    status = read_status_file(path)
    if status.get("state") != RUNNING:
        return status
    same_host = status.get("host") == socket.gethostname()
    stale = time.time() - status.get("heartbeat_unix", 0) > STALE_S
    if (same_host and not process_alive(status.get("pid"))) or stale:
        status = {**status, "state": INTERRUPTED, "killed": True}
    return status


def process_alive(pid: object) -> bool:
    """Whether process `pid` exists on this machine."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
