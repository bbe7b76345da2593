"""status.json: what a run is doing, with a heartbeat, so that a reader (the dashboard, a sweep)
can tell a running run from a killed one. The heartbeat beats from a timer while the run lives
(lightnas.outputs.tracking.heartbeat); the folder's lock, where it can be tested, decides."""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time
from pathlib import Path

from lightnas.runtime.fileio import lock_held, read_json, write_json_atomic

RUNNING, FINISHED, INTERRUPTED, FAILED = "running", "finished", "interrupted", "failed"
PRUNED = "pruned"  # ended early by a sweep's pruner (lightnas.run.folder.StopRun)
HEARTBEAT_S = 5.0  # how often a running run's heartbeat beats
STALE_S = 60.0  # a running status whose heartbeat is older than this belongs to a dead process
# the run's thread and its heartbeat's take turns to read, update and replace status.json
_status_lock = threading.Lock()


def write_status(path: Path, state: str, **fields) -> None:
    """Record the run's state (running, finished, interrupted, failed) and a heartbeat."""
    with _status_lock:
        _write_status(path, read_status_file(path), state, fields)


def _write_status(path: Path, previous: dict, state: str, fields: dict) -> None:
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


def beat_status(path: Path, **fields) -> None:
    """Refresh the heartbeat (and `fields`) of the running status this process wrote; a status
    the run has ended (finished, interrupted, failed, pruned) is left as it is."""
    with _status_lock:
        previous = read_status_file(path)
        if previous.get("state") == RUNNING and previous.get("pid") == os.getpid():
            _write_status(path, previous, RUNNING, fields)


def read_status_file(path: Path) -> dict:
    return read_json(path)


def read_status(path: Path, lock: Path | None = None) -> dict:
    """The recorded status, with `state` corrected to `interrupted` for a run that says it is
    running but has ended without saying so (killed). With the folder's `lock`, see `run_alive`."""
    status = read_status_file(path)
    if status.get("state") != RUNNING or run_alive(status, lock):
        return status
    return {**status, "state": INTERRUPTED, "killed": True}


def run_alive(status: dict, lock: Path | None = None) -> bool:
    """Whether the run of a `running` status still runs. The folder's lock, which the system
    drops when the run's process ends however it ends, decides where it can: held, the run is
    alive (whatever its heartbeat says); free, a run of this machine is dead. Otherwise (no
    lock file: an older version; or the run is on another machine, whose file system may not
    share locks): dead when its process is gone from this machine, or its heartbeat is older than
    STALE_S."""
    held = lock_held(lock) if lock is not None else None
    if held:
        return True
    same_host = status.get("host") == socket.gethostname()
    if held is False and same_host:
        return False
    if same_host and not process_alive(status.get("pid")):
        return False
    return time.time() - status.get("heartbeat_unix", 0) <= STALE_S


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
