"""Training folders and sweeps written by hand: the files a run leaves, with chosen values."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import yaml

SPACE = {
    "stage1.block1.dense": ("conv3x3", "conv1x1"),
    "stage1.block1.improvement": ("conv3x3", "identity"),
}


def row(epoch: int, val_acc: float, ops: float, reward: float | None = None, **extra) -> dict:
    arch = {"stage1.block1.dense": "conv1x1", "stage1.block1.improvement": "conv3x3"}
    return {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "train_acc": val_acc - 0.05,
        "lr": 0.001,
        "controller_reward": reward,
        "controller_baseline": reward,
        "controller_entropy": 1.0 / epoch,
        "controller_loss": 0.1,
        "val_acc_greedy": val_acc,
        "val_loss_greedy": 1.0,
        "val_acc": val_acc,
        "val_loss": 1.0,
        "reward": val_acc if reward is None else reward,
        "chosen": "greedy",
        "cost": ops,
        "ops": ops,
        "model_bits": 8 * ops,
        "params": ops / 10,
        "architecture": arch,
        "time_s": 10.0,
        **extra,
    }


def status(
    state: str, epoch: int, epochs: int, pid: int | None = None, age_s: float = 0.0, **extra
) -> dict:
    now = time.time() - age_s
    return {
        "state": state,
        "epoch": epoch,
        "epochs": epochs,
        "step": 0,
        "steps": 10,
        "pid": os.getpid() if pid is None else pid,
        "host": socket.gethostname(),
        "started": "2026-01-02T03:04:05+00:00",
        "heartbeat_unix": now,
        **extra,
    }


def training(
    folder: Path,
    rows: list[dict],
    epochs: int,
    state: dict | None = None,
    model: str = "meliusnet22",
    dataset: str = "cifar100",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"epochs": epochs, "model": {"name": model}, "data": {"dataset": dataset}}
    (folder / "config.yml").write_text(yaml.safe_dump(config))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if state is not None:
        (folder / "status.json").write_text(json.dumps(state))
    return folder


def result(folder: Path, val_acc: float, ops: float, **stats) -> dict:
    """Set the result in a run's best_architecture.json (its "stats", as lightnas.engine.Best
    writes them): `val_acc`, the cost `ops` and any other `stats`; the new stats."""
    path = folder / "best_architecture.json"
    data = json.loads(path.read_text())
    data["stats"] |= {"val_acc": val_acc, **stats}
    data["stats"]["costs"] = {**data["stats"].get("costs", {}), "ops": ops}
    path.write_text(json.dumps(data))
    return data["stats"]


def dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def old(path: Path, age_s: float = 3600) -> None:
    """Make a file look untouched for `age_s` seconds."""
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def sweep(folder: Path, run: Path, accuracies: list[float], ops: list[float]) -> Path:
    """A sweep folder as `lightnas sweep` (#9) leaves it: sweep.yml, an Optuna study (val_acc
    up, ops down; no metric names: sweep.yml has the objectives) with one trial per accuracy,
    each with its user attributes and training folder trials/trial_000N (a copy of `run` with
    that accuracy and OPs), a skipped trial beyond the budget, and a report file."""
    folder.mkdir(parents=True)
    objectives = {"val_acc": "maximize", "ops": "minimize"}
    config = {"name": "study_" + folder.name, "n_trials": len(accuracies) + 1}
    (folder / "sweep.yml").write_text(
        yaml.safe_dump(config | {"objectives": objectives}, sort_keys=False)
    )
    study = optuna.create_study(
        study_name=config["name"],
        storage=f"sqlite:///{folder / 'study.db'}",
        directions=list(objectives.values()),
    )
    dist = {
        "search.cost_weight": optuna.distributions.FloatDistribution(-0.5, 0.0),
        "optim.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True),
    }
    for i, (acc, cost) in enumerate(zip(accuracies, ops, strict=True)):
        params = {"search.cost_weight": -0.1 * i, "optim.lr": 1e-3 * (1 + i)}
        where = f"trials/trial_{i:04d}"
        attrs = {"folder": where, "overrides": params}
        trial = optuna.trial.create_trial(
            params=params, distributions=dist, values=[acc, cost], user_attrs=attrs
        )
        study.add_trial(trial)
        shutil.copytree(run, folder / where)
        metrics = folder / where / "metrics.jsonl"
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
        for r in rows:
            r.update(val_acc=acc, ops=cost, reward=acc)
        metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
        result(folder / where, val_acc=acc, ops=cost)  # the trial's objectives are its result
    skipped = optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL, user_attrs={"skipped": True}
    )
    study.add_trial(skipped)
    (folder / "report").mkdir()
    (folder / "report" / "trials.csv").write_text("trial,val_acc\n")
    return folder
