"""One trial of a sweep: a full LightNAS run (a search, or a retrain of a given architecture) in
its own training folder, trials/trial_NNNN/, through the run module's public entry points.

Its config is the base config, the sweep's `overrides`, then the trial's sampled parameters,
written to one file so the run is exactly `lightnas search -c <that file>` (and its config.yml
says everything). Its objectives are the metrics of the run's result (engine.best, what its
best_architecture.json holds and lightnas.outputs.result reads back): the final selection's winner,
scored with the final weights. Each epoch's value of the (single) objective is reported to
Optuna, and when the pruner says so the run stops after that epoch (lightnas.run.folder.StopRun):
status.json says `pruned`, the folder keeps that epoch's files.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import optuna
import yaml

from lightnas.config import parse_config, read_config_file
from lightnas.engine.loop import Callback, Engine
from lightnas.engine.records import EpochResult
from lightnas.errors import ConfigError, LightNASError
from lightnas.layout import SweepFolder, TrainingFolder, trial_name
from lightnas.outputs.status import FAILED, INTERRUPTED, PRUNED, read_status, write_status
from lightnas.run.folder import StopRun
from lightnas.run.retrain import check_config as check_retrain_config
from lightnas.run.retrain import retrain
from lightnas.run.search import search
from lightnas.sweeps.config import EPOCH_METRICS, SweepConfig, apply
from lightnas.sweeps.study import RETRY_OF, SKIPPED, Budget

INTERRUPTED_CODE = 130  # what lightnas.run.search.search returns after Ctrl-C / SIGTERM


class TrialFailed(Exception):
    """A trial's run failed: recorded with its error (user attribute `error`), the sweep goes on."""


class BudgetReached(TrialFailed):
    """The trial was numbered beyond the budget (another worker asked at the same time)."""


def metric_value(result: EpochResult, metric: str) -> float:
    """An objective's value in one epoch: an epoch metric or one of its costs."""
    if metric in EPOCH_METRICS:
        return float(getattr(result, metric))
    return float(result.costs[metric])


class TrialReporter(Callback):
    """Reports each epoch's value of the objective to Optuna and stops a pruned run."""

    def __init__(self, trial: optuna.Trial, metric: str | None) -> None:
        self.trial = trial
        self.metric = metric  # None: several objectives, which Optuna cannot prune
        self.engine: Engine | None = None

    def on_start(self, engine: Engine) -> None:
        self.engine = engine

    def on_epoch_end(self, engine: Engine, result: EpochResult) -> None:
        if self.metric is None:
            return
        value = metric_value(result, self.metric)
        self.trial.report(value, result.epoch)
        if self.trial.should_prune():
            reason = f"pruned by the sweep at epoch {result.epoch} ({self.metric} {value:.4g})"
            raise StopRun(PRUNED, reason)

    def best(self) -> EpochResult | None:
        """The run's result (`engine.best`, what its best_architecture.json holds: the final
        selection's winner scored with the final weights, or the latest epoch's architecture
        when it made none) as an epoch row; the training metrics are the last epoch's."""
        engine = self.engine
        if engine is None or engine.best is None or not engine.history:
            return None
        b = engine.best
        return dataclasses.replace(
            engine.history[-1],
            epoch=b.epoch,
            validated={b.label: {"acc": b.val_acc, "loss": b.val_loss}},
            chosen=b.label,
            reward=b.reward,
            cost=b.cost,
            costs=b.costs,
            architecture=b.architecture,
        )


# ---- the trial's config ---------------------------------------------------------------------
def trial_values(cfg: SweepConfig, folder: SweepFolder, name: str, params: dict) -> dict:
    """Every config value the sweep sets for one trial (dotted keys)."""
    values = {"tracking.experiment": cfg.name, **cfg.overrides, **params}
    return values | {"name": name, "output_dir": str(folder.trials.resolve()), "progress": False}


def write_config(cfg: SweepConfig, values: dict, path: Path) -> list[str]:
    """Write the trial's config file; the argv of `search` (or `retrain`) for it."""
    if cfg.mode == "search":
        path.write_text(yaml.safe_dump(apply(read_config_file(cfg.base), values), sort_keys=False))
        return ["-c", str(path)]
    path.write_text(yaml.safe_dump(apply({}, values), sort_keys=False))
    arch = [] if cfg.architecture is None else ["--arch", cfg.architecture]
    return [cfg.base, *arch, "-c", str(path)]


def run_argv(cfg: SweepConfig, argv: list[str], callbacks: Sequence[Callback]) -> int:
    """A search or a retrain, as `lightnas search` / `lightnas retrain` would run it."""
    if cfg.mode == "search":
        return search(argv, callbacks)
    return retrain(argv, callbacks)


def check_config(cfg: SweepConfig, folder: SweepFolder, params: dict) -> None:
    """Parse the config a trial with `params` would get (no folder, no run): a bad key or
    value is a ConfigError."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = write_config(cfg, trial_values(cfg, folder, "check", params), Path(tmp) / "t.yml")
        try:
            if cfg.mode == "retrain":  # as the retrain will parse it: strategy fixed
                check_retrain_config(TrainingFolder(cfg.base), [argv[-1]])
            else:
                parse_config(["--config", argv[-1]])
        except ConfigError as err:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            raise ConfigError(f"{err} (a trial with {shown or 'the overrides'})") from None


# ---- running it -----------------------------------------------------------------------------
def describe(values: dict) -> str:
    return " ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in values.items())


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_trial(cfg: SweepConfig, folder: SweepFolder, n_trials: int, trial: optuna.Trial) -> Any:
    """Optuna's objective: run the trial's LightNAS run; its objective value(s)."""
    if Budget.of(trial.study, n_trials).position(trial.number) >= n_trials:
        trial.set_user_attr(SKIPPED, True)
        raise BudgetReached(f"trial {trial.number} is beyond the budget of {n_trials}")
    name = trial_name(trial.number)
    run_folder = folder.trial(name)
    params = {p.key: p.suggest(trial) for p in cfg.parameters}
    for key, value in {"folder": f"{folder.trials.name}/{name}", "overrides": params}.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    print(f"trial {trial.number}: {describe(params)} -> {run_folder.root}", flush=True)
    if run_folder.root.exists():
        fail(trial, run_folder, f"{run_folder.root} exists already (a study reset?)")
    single = cfg.metrics[0] if len(cfg.objectives) == 1 else None
    reporter = TrialReporter(trial, single)
    code = execute(cfg, folder, trial, run_folder, params, reporter)
    if code == INTERRUPTED_CODE:
        interrupted(trial, run_folder)
    if code != 0:
        error = read_status(run_folder.status).get("error") or f"the run exited with code {code}"
        fail(trial, run_folder, error)
    return objective_values(cfg, trial, run_folder, reporter)


def execute(
    cfg: SweepConfig,
    folder: SweepFolder,
    trial: optuna.Trial,
    run_folder: TrainingFolder,
    params: dict,
    reporter: TrialReporter,
) -> int:
    """Run the trial; its exit code. Pruning and errors end the trial here."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            values = trial_values(cfg, folder, run_folder.name, params)
            argv = write_config(cfg, values, Path(tmp) / f"{run_folder.name}.yml")
            return run_argv(cfg, argv, [reporter])
    except StopRun as stop:
        print(f"trial {trial.number}: {stop}", flush=True)
        raise optuna.TrialPruned(str(stop)) from None
    except KeyboardInterrupt:
        interrupted(trial, run_folder)
    except LightNASError as err:
        fail(trial, run_folder, str(err))
    except Exception as err:  # a bug or a resource error in one trial: record it, go on
        fail(trial, run_folder, f"{type(err).__name__}: {err}", traceback.format_exc())


def objective_values(
    cfg: SweepConfig, trial: optuna.Trial, run_folder: TrainingFolder, reporter: TrialReporter
) -> float | list[float]:
    best = reporter.best()
    if best is None:
        fail(trial, run_folder, "the run finished without a validated epoch")
    try:
        values = [metric_value(best, m) for m in cfg.metrics]
    except KeyError as err:
        fail(trial, run_folder, f"the run has no metric {err} (objectives: {cfg.metrics})")
    row = {k: v for k, v in best.to_row().items() if k != "architecture"}
    trial.set_user_attr("best", row | {"architecture": best.architecture})
    shown = ", ".join(f"{m} {v:.4g}" for m, v in zip(cfg.metrics, values, strict=True))
    print(f"trial {trial.number}: complete, best epoch {best.epoch}: {shown}", flush=True)
    return values[0] if len(values) == 1 else values


def fail(
    trial: optuna.Trial, run_folder: TrainingFolder, error: str, details: str = ""
) -> NoReturn:
    """Record the trial's error (Optuna user attribute, its log.txt, the sweep's log) and raise
    TrialFailed, which fails the trial and lets the sweep go on."""
    line = " ".join(error.split())[:1000]
    trial.set_user_attr("error", line)
    print(f"trial {trial.number}: failed: {line}", file=sys.stderr, flush=True)
    if details:
        print(details, file=sys.stderr, flush=True)
    if run_folder.root.is_dir():
        with open(run_folder.log, "a") as log:
            log.write(f"\nsweep: trial {trial.number} failed: {line}\n{details}")
        if read_status(run_folder.status).get("state") != FAILED:
            write_status(run_folder.status, FAILED, error=line)
    raise TrialFailed(line)


def interrupted(trial: optuna.Trial, run_folder: TrainingFolder) -> NoReturn:
    """Ctrl-C / SIGTERM: the trial fails as interrupted, a retry with the same parameters is
    queued for the next run of the sweep, and the worker stops."""
    trial.set_user_attr("error", "interrupted (Ctrl-C or SIGTERM); retried when the sweep resumes")
    trial.study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
    if run_folder.root.is_dir():
        write_status(run_folder.status, INTERRUPTED)
    raise KeyboardInterrupt


def objective(cfg: SweepConfig, folder: SweepFolder, n_trials: int) -> Callable[..., Any]:
    """Optuna's objective function for this sweep."""
    return lambda trial: run_trial(cfg, folder, n_trials, trial)
