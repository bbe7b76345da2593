"""Running a sweep: check everything, create (or resume) the sweep folder and the Optuna study,
then run trials in one or several worker processes until the budget is spent.

Rerunning the same command resumes: finished trials stay, a trial a dead worker left is failed
and retried once (heartbeats), and no trial number ever runs twice. Workers on other machines
join with the same sweep file and `--storage URL`; each writes the trials it runs into its own
sweep folder. A worker whose budget is spent waits while other workers' trials still run, so
that it can retry one whose worker dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
import torch
import yaml
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import FrozenTrial

from lightnas.errors import ConfigError
from lightnas.layout import SweepFolder, TrainingFolder
from lightnas.outputs.status import FAILED, RUNNING, read_status_file, write_status
from lightnas.run.folder import Tee
from lightnas.runtime.fileio import make_folder, write_atomic
from lightnas.sweeps.config import (
    SweepConfig,
    check_n_trials,
    load_sweep_config,
    read_sweep_file,
)
from lightnas.sweeps.results import check_plotting
from lightnas.sweeps.study import (
    Budget,
    build_pruner,
    build_sampler,
    grid_size,
    open_storage,
    quiet_optuna,
    safe_url,
)
from lightnas.sweeps.trials import TrialFailed, check_config, objective

STUDY_ATTR = "lightnas_sweep"  # the study's user attribute holding the sweep's identity
SAME_EXCEPT = ("n_trials", "storage")  # what may change when a sweep is resumed


@dataclass(frozen=True)
class Plan:
    """A checked sweep, ready to run: what every worker process gets."""

    cfg: SweepConfig
    folder: SweepFolder
    url: str
    n_trials: int

    @property
    def shown_url(self) -> str:
        return safe_url(self.url)


# ---- checks before anything is written ------------------------------------------------------
def check_parameters(cfg: SweepConfig, folder: SweepFolder) -> None:
    """Every bound and choice of every parameter, and every enqueued trial, parse as a config."""
    corners = [p.corners() for p in cfg.parameters]
    for i in range(max(len(c) for c in corners)):
        check_config(
            cfg,
            folder,
            {p.key: c[min(i, len(c) - 1)] for p, c in zip(cfg.parameters, corners, strict=True)},
        )
    keys = {p.key: p for p in cfg.parameters}
    for values in cfg.enqueue:
        unknown = [k for k in values if k not in keys]
        if unknown:
            raise ConfigError(
                f"enqueue: {unknown[0]!r} is not a parameter; valid: {', '.join(keys)}"
            )
        check_config(cfg, folder, {k: keys[k].to_config(v) for k, v in values.items()})


def saved_config(folder: SweepFolder) -> dict | None:
    if not folder.root.exists():
        return None
    if not folder.is_sweep():
        raise ConfigError(f"{folder.root} exists and is not a sweep folder (no sweep.yml)")
    return read_sweep_file(folder.config)


def check_resume(cfg: SweepConfig, saved: dict | None) -> SweepConfig:
    """A rerun must be the same sweep (only n_trials and storage may change); a rerun without
    --storage uses the storage the sweep was started with."""
    if saved is None:
        return cfg
    current = cfg.to_dict()
    differ = [k for k in current if k not in SAME_EXCEPT and current[k] != saved.get(k)]
    if differ:
        raise ConfigError(
            f"sweep folder {cfg.folder} holds another sweep (it differs in {', '.join(differ)}); "
            "give this one another name, or rerun the original to resume it"
        )
    return cfg if cfg.storage else replace(cfg, storage=saved.get("storage"))


def check_study(cfg: SweepConfig, study: optuna.Study) -> None:
    same = [d.name.lower() for d in study.directions] == cfg.directions
    identity = study.user_attrs.get(STUDY_ATTR)
    if not same or (identity is not None and identity != cfg.identity()):
        raise ConfigError(
            f"study {cfg.name!r} in the storage was made by another sweep (objectives, parameters "
            "or sampler differ); give this sweep another name"
        )


def prepare(
    config: str | Path | Mapping, n_trials: int | None = None, storage: str | None = None
) -> Plan:
    """Read and check a sweep without writing anything (bad input: one-line ConfigError)."""
    check_plotting()
    cfg = load_sweep_config(config, n_trials, storage)
    budget = check_n_trials(cfg, grid_size(cfg))
    build_sampler(cfg, cfg.seed)
    build_pruner(cfg)
    folder = SweepFolder(cfg.folder.resolve())
    check_parameters(cfg, folder)
    cfg = check_resume(cfg, saved_config(folder))
    url = cfg.storage or f"sqlite:///{folder.storage}"
    if cfg.storage:  # reachable, and the study (if any) is this sweep's: before any folder
        storage = open_storage(url, cfg)
        names = optuna.get_all_study_names(storage)
        if cfg.name in names:
            check_study(cfg, optuna.load_study(study_name=cfg.name, storage=storage))
    return Plan(cfg, folder, url, budget)


# ---- the sweep folder and the study ---------------------------------------------------------
def start(plan: Plan) -> optuna.Study:
    """Create or resume the sweep folder and the study (new: the `enqueue` trials queued)."""
    cfg = plan.cfg
    make_folder(plan.folder.trials, "output_dir")
    saved = cfg.to_dict() | {"n_trials": plan.n_trials}
    write_atomic(plan.folder.config, yaml.safe_dump(saved, sort_keys=False))
    storage = open_storage(plan.url, cfg)
    names = optuna.get_all_study_names(storage)
    study = optuna.create_study(
        storage=storage, study_name=cfg.name, directions=cfg.directions, load_if_exists=True
    )
    check_study(cfg, study)
    if cfg.name not in names:
        study.set_user_attr(STUDY_ATTR, cfg.identity())
        for values in cfg.enqueue:
            study.enqueue_trial(values)
    return study


class StaleTrial:
    """A trial whose worker died (heartbeat stopped): retried once; its local folder's
    status.json says failed."""

    def __init__(self, folder: SweepFolder) -> None:
        self.folder = folder
        self.retry = RetryHeartbeatStaleTrialCallback(max_retry=1)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.retry(study, trial)
        print(f"trial {trial.number}: its worker stopped (no heartbeat): failed, retried once")
        where = trial.user_attrs.get("folder")
        status = TrainingFolder(self.folder.root / where).status if where else None
        if status and status.is_file() and read_status_file(status).get("state") == RUNNING:
            error = "its sweep worker stopped (no heartbeat); the sweep retries the trial"
            write_status(status, FAILED, error=error)


# ---- workers --------------------------------------------------------------------------------
def load(plan: Plan, worker: int) -> optuna.Study:
    """The study as one worker samples it: its own sampler seed (seed + worker + trials so far,
    so workers and resumed sweeps do not repeat each other's draws)."""
    storage = open_storage(plan.url, plan.cfg, StaleTrial(plan.folder))
    study_id = storage.get_study_id_from_name(plan.cfg.name)
    seed = plan.cfg.seed + 1000 * worker + len(storage.get_all_trials(study_id, deepcopy=False))
    sampler, pruner = build_sampler(plan.cfg, seed), build_pruner(plan.cfg)
    return optuna.load_study(
        study_name=plan.cfg.name, storage=storage, sampler=sampler, pruner=pruner
    )


def work(plan: Plan, worker: int = 0) -> None:
    """Run trials until the budget is spent and no trial runs anywhere."""
    study = load(plan, worker)
    func = objective(plan.cfg, plan.folder, plan.n_trials)
    waiting_said = False
    while True:
        fail_stale_trials(study)
        budget = Budget.of(study, plan.n_trials)
        if budget.waiting or budget.left > 0:
            study.optimize(func, n_trials=1, catch=(TrialFailed,))
        elif budget.running:
            if not waiting_said:
                print(f"worker {worker}: waiting for {budget.running} running trial(s)")
                waiting_said = True
            time.sleep(plan.cfg.heartbeat_interval)
        else:
            return


@contextlib.contextmanager
def logged(path: Path) -> Iterator[None]:
    """Copy this process's output into the sweep's log.txt."""
    with open(path, "a") as log:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = Tee(stdout, log), Tee(stderr, log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = stdout, stderr


def visible_gpus() -> list[str]:
    """The GPU ids workers are spread over (CUDA_VISIBLE_DEVICES, or all)."""
    if not torch.cuda.is_available():
        return []
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    return given.split(",") if given else [str(i) for i in range(torch.cuda.device_count())]


def worker_process(plan: Plan, worker: int, workers: int, gpus: list[str]) -> None:
    """A worker process of `--workers N`: one GPU each (round robin), a share of the cores."""
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[worker % len(gpus)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(max(1, (cores or 1) // workers))
    with logged(plan.folder.log), quiet_optuna():
        try:
            work(plan, worker)
        except KeyboardInterrupt:
            sys.exit(130)


def run_workers(plan: Plan, workers: int) -> list[int]:
    """Run `workers` workers (this process when 1); their exit codes."""
    if workers == 1:
        work(plan)
        return [0]
    spawn = multiprocessing.get_context("spawn")
    gpus = visible_gpus()
    procs = [
        spawn.Process(target=worker_process, args=(plan, i, workers, gpus), name=f"worker-{i}")
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)  # stop at its next safe point
            p.join()
        raise
    return [p.exitcode for p in procs]


# ---- the entry points -----------------------------------------------------------------------
def describe(plan: Plan, workers: int) -> str:
    cfg = plan.cfg
    objectives = ", ".join(f"{o.metric} ({o.direction})" for o in cfg.objectives)
    return (
        f"sweep {cfg.name}: {plan.n_trials} {cfg.mode} trials of {cfg.base}; objectives "
        f"{objectives}; sampler {cfg.sampler['name']}, pruner {cfg.pruner['name']}; "
        f"{workers} worker(s) on {socket.gethostname()}; storage {plan.shown_url}"
    )


def execute(plan: Plan, workers: int) -> tuple[optuna.Study, list[int]]:
    """Start or resume the sweep of `plan` and run it; the study and the workers' exit codes."""
    if workers < 1:
        raise ConfigError(f"--workers {workers} must be >= 1")
    study = start(plan)
    with logged(plan.folder.log):
        print(describe(plan, workers), flush=True)
        print(f"sweep folder: {plan.folder.root}", flush=True)
        codes = run_workers(plan, workers)
        for i, code in enumerate(codes):
            if code:
                print(f"warning: worker {i} ended with exit code {code}", file=sys.stderr)
        budget = Budget.of(study, plan.n_trials)
        print(f"sweep {plan.cfg.name}: {budget.summary()}")
        print(f"report: lightnas report {plan.folder.root}", flush=True)
    return study, codes


def sweep(
    config: str | Path | Mapping,
    *,
    n_trials: int | None = None,
    storage: str | None = None,
    workers: int = 1,
) -> optuna.Study:
    """Run (or resume) the sweep of `config` (a sweep YAML file, or the same as a dict) and
    return its Optuna study. Bad input raises ConfigError before anything is written."""
    with quiet_optuna():
        return execute(prepare(config, n_trials, storage), workers)[0]


def sweep_command(
    config: str, n_trials: int | None = None, storage: str | None = None, workers: int = 1
) -> int:
    """`lightnas sweep`: 0 when the budget is spent with at least one complete trial."""
    with quiet_optuna():
        plan = prepare(config, n_trials, storage)
        try:
            study, _ = execute(plan, workers)
        except KeyboardInterrupt:
            where = plan.folder.root
            print(f"\ninterrupted: rerun the same command to resume {where}", file=sys.stderr)
            return 130
        budget = Budget.of(study, plan.n_trials)
    complete = budget.count(optuna.trial.TrialState.COMPLETE)
    return 0 if budget.done and complete else 1
