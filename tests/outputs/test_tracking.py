"""status.json and a run's liveness: the heartbeat beats from a timer whatever phase the run is
in, and a folder's lock decides whether a `running` status belongs to a live run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lightnas.dashboard.listing import find_run
from lightnas.engine.loop import Callback, Engine
from lightnas.layout import TrainingFolder
from lightnas.outputs import status, tracking
from lightnas.outputs.status import read_status
from lightnas.run.search import search
from lightnas.runtime.fileio import exclusive_lock, lock_held

BEAT_S, STALE_S = 0.1, 1.0  # the tests' heartbeat interval and staleness (5 s and 60 s in use)
HOLD = """
import fcntl, sys, time
with open(sys.argv[1], "a+") as f:
    fcntl.flock(f, fcntl.LOCK_SH if sys.argv[2] == "shared" else fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


@pytest.fixture
def fast_heartbeat(monkeypatch):
    monkeypatch.setattr(tracking, "HEARTBEAT_S", BEAT_S)
    monkeypatch.setattr(status, "STALE_S", STALE_S)


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lightnas-heartbeat"]


def read(folder: TrainingFolder) -> dict:
    return json.loads(folder.status.read_text())


class SlowPhase(Callback):
    """Makes one phase of epoch 2 last 2.5 stale periods, and records, at its end, what
    status.json and the dashboard's view say about the run; `stop` then asks the run to stop
    (Ctrl-C)."""

    def __init__(self, folder: TrainingFolder, phase: str, stop: bool = False) -> None:
        self.folder, self.phase, self.stop = folder, phase, stop
        self.seen: dict = {}

    def on_phase(self, engine: Engine, phase: str, total: int) -> None:
        if phase != self.phase or engine.epoch != 1 or self.seen:
            return
        time.sleep(2.5 * STALE_S)
        status = read(self.folder)
        self.seen = {
            "age_s": time.time() - status["heartbeat_unix"],
            "state": status["state"],
            # without the lock: the heartbeat alone decides
            "by_heartbeat": read_status(self.folder.status)["state"],
            "dashboard": find_run(self.folder.root.parent, self.folder.root).state,
        }
        engine.interrupted = self.stop


@pytest.mark.parametrize("phase", ["controller", "valid"])
def test_a_run_in_a_long_controller_phase_or_validation_shows_as_running(
    write_config, tmp_path, fast_heartbeat, phase
):
    cfg = write_config(epochs=2)
    folder = TrainingFolder(tmp_path / "trainings" / "tiny")
    slow = SlowPhase(folder, phase)
    assert search(["-c", str(cfg)], [slow]) == 0
    assert slow.seen["state"] == "running"
    assert slow.seen["age_s"] < 5 * BEAT_S  # the heartbeat beat during the phase
    assert slow.seen["by_heartbeat"] == "running"
    assert slow.seen["dashboard"] == "running"
    assert read(folder)["state"] == "finished"


def test_the_heartbeat_stops_at_the_end_and_on_ctrl_c(write_config, tmp_path, fast_heartbeat):
    folder = TrainingFolder(tmp_path / "trainings" / "tiny")
    assert search(["-c", str(write_config(epochs=1))]) == 0
    assert heartbeat_threads() == []
    ended = read(folder)
    time.sleep(5 * BEAT_S)
    assert read(folder) == ended and ended["state"] == "finished"

    stopped = TrainingFolder(tmp_path / "trainings" / "stopped")
    slow = SlowPhase(stopped, "valid", stop=True)  # Ctrl-C during validation
    assert search(["-c", str(write_config(name="stopped")), "--epochs", "3"], [slow]) == 130
    assert slow.seen["dashboard"] == "running"
    assert heartbeat_threads() == []
    ended = read(stopped)
    time.sleep(5 * BEAT_S)
    assert read(stopped) == ended and ended["state"] == "interrupted"
    assert find_run(stopped.root.parent, stopped.root).state == "interrupted"


# ---- liveness: the lock decides where it can ------------------------------------------------
def running_status(folder: Path, age_s: float = 0.0, **fields) -> TrainingFolder:
    run = TrainingFolder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    status = {
        "state": "running",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "heartbeat_unix": time.time() - age_s,
        **fields,
    }
    run.status.write_text(json.dumps(status))
    return run


def hold(lock: Path, kind: str = "exclusive", seconds: float = 60) -> subprocess.Popen:
    """Another process holding `lock`."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), kind, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_held_lock_means_running_whatever_the_heartbeat_says(tmp_path):
    run = running_status(tmp_path / "r", age_s=3600)
    assert read_status(run.status, run.lock)["state"] == "interrupted"  # no lock file: stale
    proc = hold(run.lock)
    try:
        assert lock_held(run.lock) is True
        assert read_status(run.status, run.lock)["state"] == "running"
        # another machine's run too: a held lock is a live holder
        other = running_status(tmp_path / "r", age_s=3600, host="elsewhere")
        assert read_status(other.status, other.lock)["state"] == "running"
    finally:
        proc.kill()
        proc.wait()
    assert lock_held(run.lock) is False
    killed = {**read(run), "state": "interrupted", "killed": True}
    assert read_status(run.status, run.lock) == killed


def test_a_free_lock_on_this_machine_means_killed_even_with_a_live_pid_and_heartbeat(tmp_path):
    # the pid is alive (this process: as a killed run's pid reused by another process)
    run = running_status(tmp_path / "r")
    run.lock.write_text("12345\n")
    assert read_status(run.status)["state"] == "running"  # the heartbeat alone is fooled
    assert read_status(run.status, run.lock)["state"] == "interrupted"
    # another machine's run whose file system may not share locks: its heartbeat decides
    other = running_status(tmp_path / "o", host="elsewhere")
    other.lock.write_text("12345\n")
    assert read_status(other.status, other.lock)["state"] == "running"
    stale = running_status(tmp_path / "s", age_s=120, host="elsewhere")
    stale.lock.write_text("12345\n")
    assert read_status(stale.status, stale.lock)["state"] == "interrupted"


def test_lock_held_tests_without_writing_and_a_lock_waits_out_a_test(tmp_path):
    lock = tmp_path / ".lock"
    assert lock_held(lock) is None and not lock.exists()  # no file: unknown, none created
    with exclusive_lock(lock, "x"):
        assert lock_held(lock) is True  # this process, through another open file
        assert lock.read_text() == f"{os.getpid()}\n"
    assert lock_held(lock) is None and not lock.exists()  # the holder removed it at its end
    lock.write_text("12345\n")  # a killed run's lock file: free, and testing it writes nothing
    assert lock_held(lock) is False and lock.read_text() == "12345\n"
    probe = hold(lock, "shared", 0.2)  # a reader testing the lock just then
    with exclusive_lock(lock, "x"):
        assert lock.read_text() == f"{os.getpid()}\n"
    probe.wait()
