"""Two workers on a real PostgreSQL server: each trial runs exactly once, and a worker killed
with SIGKILL mid-trial leaves a trial that is failed (heartbeat) and retried, and the sweep
completes.

The server's URL comes from LIGHTNAS_TEST_POSTGRES_URL (set by .ci/run); without it this module
starts a throwaway server itself with shell_scripts/test_postgres.sh, and fails (never skips)
when none can be started.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from helpers import ROOT
from helpers.sweeps import metrics, status, write_base, write_sweep
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from lightnas.cli import main

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "shell_scripts" / "test_postgres.sh"


@pytest.fixture(scope="module")
def postgres_url():
    url = os.environ.get("LIGHTNAS_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    started = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True)
    if started.returncode:
        pytest.fail(f"no PostgreSQL server could be started:\n{started.stderr}")
    env = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.split("\n") if line
    )
    yield env["LIGHTNAS_TEST_POSTGRES_URL"]
    subprocess.run(["bash", str(SCRIPT), "stop", env["LIGHTNAS_TEST_PGDATA"]], check=False)


def statuses(trials: Path) -> dict[str, dict]:
    out = {}
    for path in trials.glob("*/status.json"):
        with contextlib.suppress(OSError, ValueError):  # being written
            out[path.parent.name] = json.loads(path.read_text())
    return out


def kill_a_worker_in_its_second_trial(trials: Path, sweep: subprocess.Popen) -> str:
    """SIGKILL the worker process running a trial after it finished another; that trial."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and sweep.poll() is None:
        found = statuses(trials)
        finished = {s["pid"] for s in found.values() if s.get("state") == "finished"}
        for name, s in sorted(found.items()):
            if s.get("state") == "running" and s["pid"] in finished and s["pid"] != sweep.pid:
                os.kill(s["pid"], signal.SIGKILL)
                return name
        time.sleep(0.05)
    raise AssertionError(f"no worker to kill; sweep exit code {sweep.poll()}")


def test_two_workers_on_postgres_survive_a_killed_worker(tmp_path, postgres_url):
    name = f"pg_{uuid.uuid4().hex[:8]}"
    write_base(tmp_path, epochs=3)
    path = write_sweep(
        tmp_path,
        name=name,
        parameters={"search.cost_weight": {"type": "float", "low": -0.5, "high": 0.0}},
        objectives="reward",
        n_trials=6,
        sampler="random",
        heartbeat_interval=1,
        grace_period=3,
    )
    command = [sys.executable, "-m", "lightnas", "sweep", "-c", str(path), "--workers", "2"]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    log = tmp_path / "sweep.out"
    with open(log, "w") as out:
        sweep = subprocess.Popen(
            [*command, "--storage", postgres_url], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        trials = tmp_path / "sweeps" / name / "trials"
        killed = kill_a_worker_in_its_second_trial(trials, sweep)
        assert sweep.wait(timeout=300) == 0, log.read_text()
    printed = log.read_text()
    assert "worker stopped (no heartbeat): failed, retried once" in printed
    assert "ended with exit code -9" in printed

    study = optuna.load_study(study_name=name, storage=postgres_url)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 6 and states.count(TrialState.FAIL) == 1
    (failed,) = [t for t in study.trials if t.state == TrialState.FAIL]
    assert failed.user_attrs["folder"] == f"trials/{killed}"
    (retry,) = [t for t in study.trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t)]
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == failed.number
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params
    # every trial ran exactly once, in its own folder; both workers ran trials
    assert sorted(p.name for p in trials.iterdir()) == [f"trial_{i:04d}" for i in range(7)]
    for trial in study.trials:
        run = trials.parent / trial.user_attrs["folder"]
        assert (run / "log.txt").read_text().count("training folder:") == 1
        if trial.state == TrialState.COMPLETE:
            assert [r["epoch"] for r in metrics(run)] == [1, 2, 3]
            assert status(run)["state"] == "finished"
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert status(trials / killed)["state"] == "failed"
    assert "no heartbeat" in status(trials / killed)["error"]
    # the report reads the storage the sweep recorded
    assert main(["report", str(trials.parent)]) == 0
