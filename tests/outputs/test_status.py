"""lightnas.outputs.status: status.json and how a reader tells a live run from a dead one."""

import json
import os
import subprocess
import sys
import time

from lightnas.outputs.status import (
    FINISHED,
    INTERRUPTED,
    RUNNING,
    STALE_S,
    process_alive,
    read_status,
    write_status,
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_run_reads_as_running_and_keeps_its_start(tmp_path):
    path = tmp_path / "status.json"
    write_status(path, RUNNING, epoch=1)
    started = read_status(path)["started"]
    write_status(path, FINISHED, epoch=2)
    status = read_status(path)
    assert status["state"] == FINISHED and status["epoch"] == 2 and status["started"] == started
    assert status["pid"] == os.getpid() and not status.get("killed")


def test_a_running_status_of_a_dead_process_or_a_stale_heartbeat_reads_as_interrupted(tmp_path):
    path = tmp_path / "status.json"
    write_status(path, RUNNING)
    status = json.loads(path.read_text())
    path.write_text(json.dumps({**status, "pid": dead_pid()}))
    assert read_status(path)["state"] == INTERRUPTED and read_status(path)["killed"]
    path.write_text(json.dumps({**status, "heartbeat_unix": time.time() - STALE_S - 1}))
    assert read_status(path)["state"] == INTERRUPTED
    path.write_text(json.dumps(status))
    assert read_status(path)["state"] == RUNNING


def test_a_missing_or_broken_status_reads_as_empty(tmp_path):
    assert read_status(tmp_path / "status.json") == {}
    (tmp_path / "status.json").write_text("{")
    assert read_status(tmp_path / "status.json") == {}


def test_process_alive():
    assert process_alive(os.getpid())
    assert not process_alive(dead_pid())
    assert not process_alive(None) and not process_alive(0) and not process_alive("1")
