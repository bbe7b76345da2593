"""The Optuna side of a sweep: samplers, pruners, the storage (with heartbeats) and the study.

The trial budget: a sweep runs until `n_trials` trials are finished or running. A trial that a
dead worker left behind (its heartbeat stopped) is failed and retried once as a new trial with the
same parameters (Optuna's `RetryHeartbeatStaleTrialCallback`, formerly
`RetryFailedTrialCallback`), as is one stopped by Ctrl-C; the retry takes the
place of the trial it repeats in the budget. Trials are numbered by the storage, so a trial whose
number lies beyond the budget (two workers asked at the same moment) is not run but recorded as
failed with `skipped` set, and left out of the reports.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    MedianPruner,
    NopPruner,
    SuccessiveHalvingPruner,
)
from optuna.samplers import BaseSampler, GridSampler, NSGAIISampler, RandomSampler, TPESampler
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from lightnas.errors import ConfigError
from lightnas.registry import Registry
from lightnas.sweeps.config import SweepConfig
from lightnas.sweeps.params import Param

SAMPLERS: Registry[type[BaseSampler]] = Registry("sampler", "sampler")
SAMPLERS.add("tpe", TPESampler)
SAMPLERS.add("random", RandomSampler)
SAMPLERS.add("grid", GridSampler)
SAMPLERS.add("nsga2", NSGAIISampler)

PRUNERS: Registry[type[BasePruner]] = Registry("pruner", "pruner")
PRUNERS.add("none", NopPruner)
PRUNERS.add("median", MedianPruner)
PRUNERS.add("successive_halving", SuccessiveHalvingPruner)
PRUNERS.add("hyperband", HyperbandPruner)

SKIPPED = "skipped"  # user attribute of a trial beyond the budget (not run)
RETRY_OF = "retry_of"  # user attribute of the retry of an interrupted trial


# ---- samplers and pruners ---------------------------------------------------------------------
def _arguments(kind: str, cls: type, spec: dict, fixed: set[str]) -> dict:
    """The Optuna constructor arguments of a `sampler:` / `pruner:` entry, checked by name."""
    args = {k: v for k, v in spec.items() if k != "name"}
    valid = [p for p in inspect.signature(cls).parameters if p not in fixed | {"self"}]
    bad = [k for k in args if k not in valid]
    if bad:
        raise ConfigError(
            f"{kind}.{bad[0]} is not an argument of {spec['name']}; valid: {', '.join(valid)}"
        )
    return args


def grid_space(params: tuple[Param, ...]) -> dict[str, list]:
    space = {p.key: p.grid() for p in params}
    continuous = [k for k, v in space.items() if v is None]
    if continuous:
        raise ConfigError(
            f"sampler grid: parameters.{continuous[0]} is continuous; give it a step, make it an "
            "int or categorical"
        )
    return space


def build_sampler(cfg: SweepConfig, seed: int) -> BaseSampler:
    cls = SAMPLERS[cfg.sampler["name"]]
    fixed = {"seed", "search_space"}
    args = _arguments("sampler", cls, cfg.sampler, fixed)
    if cls is GridSampler:
        return GridSampler(grid_space(cfg.parameters), seed=seed, **args)
    return _construct("sampler", cls, seed=seed, **args)


def build_pruner(cfg: SweepConfig) -> BasePruner:
    cls = PRUNERS[cfg.pruner["name"]]
    if cls is not NopPruner and len(cfg.objectives) > 1:
        raise ConfigError(
            f"pruner {cfg.pruner['name']}: pruning needs one objective (Optuna cannot prune "
            f"multi-objective studies); objectives are {', '.join(cfg.metrics)}"
        )
    return _construct("pruner", cls, **_arguments("pruner", cls, cfg.pruner, set()))


def _construct(kind: str, cls: type, **args: Any) -> Any:
    try:
        return cls(**args)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{kind} {cls.__name__}: {' '.join(str(err).split())}") from None


def grid_size(cfg: SweepConfig) -> int | None:
    if cfg.sampler["name"] != "grid":
        return None
    size = 1
    for values in grid_space(cfg.parameters).values():
        size *= len(values)
    return size


# ---- storage --------------------------------------------------------------------------------
def safe_url(url: str) -> str:
    """`url` with its password hidden (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show it as given
        return url


def open_storage(
    url: str, cfg: SweepConfig, on_stale: Callable[[optuna.Study, FrozenTrial], None] | None = None
) -> RDBStorage:
    """The RDB storage with heartbeats; a bad or unreachable URL is a one-line ConfigError."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    try:
        return RDBStorage(
            url,
            engine_kwargs=kwargs,
            heartbeat_interval=cfg.heartbeat_interval,
            grace_period=cfg.grace_period,
            heartbeat_stale_trial_callback=on_stale,
        )
    except ModuleNotFoundError as err:
        raise ConfigError(
            f"storage {safe_url(url)}: its database driver {err.name} is not installed (for "
            "PostgreSQL: pip install 'lightnas[postgres]')"
        ) from None
    except Exception as err:  # SQLAlchemy's errors span many lines and classes
        reason = " ".join(str(err).split("\n")[0].split())[:300]
        raise ConfigError(f"storage {safe_url(url)} cannot be used: {reason}") from None


# ---- the budget -----------------------------------------------------------------------------
def retried_number(trial: FrozenTrial) -> int | None:
    """The number of the trial that `trial` repeats (a dead worker's or an interrupted one)."""
    number = RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
    return trial.user_attrs.get(RETRY_OF) if number is None else number


@dataclass(frozen=True)
class Budget:
    """Where a study stands against its trial budget."""

    counted: tuple[FrozenTrial, ...]  # the trials that take a place in the budget
    n_trials: int
    retried: int = 0  # failed trials whose place a retry took

    @classmethod
    def of(cls, study: optuna.Study, n_trials: int) -> Budget:
        trials = study.get_trials(deepcopy=False)
        replaced = {retried_number(t) for t in trials}
        counted = tuple(
            t for t in trials if t.number not in replaced and not t.user_attrs.get(SKIPPED)
        )
        return cls(counted, n_trials, len(replaced - {None}))

    def count(self, *states: TrialState) -> int:
        return sum(t.state in states for t in self.counted)

    @property
    def waiting(self) -> int:
        return self.count(TrialState.WAITING)

    @property
    def running(self) -> int:
        return self.count(TrialState.RUNNING)

    @property
    def left(self) -> int:
        return self.n_trials - len(self.counted)

    @property
    def done(self) -> bool:
        return self.left <= 0 and not self.waiting and not self.running

    def position(self, number: int) -> int:
        """How many counted trials come before trial `number`."""
        return sum(t.number < number for t in self.counted)

    def summary(self) -> str:
        finished = {s: self.count(s) for s in (TrialState.COMPLETE, TrialState.PRUNED)}
        return (
            f"{finished[TrialState.COMPLETE]} complete, {finished[TrialState.PRUNED]} pruned, "
            f"{self.count(TrialState.FAIL)} failed ({self.retried} more failed and retried), "
            f"{self.running} running, {self.waiting} waiting; budget {self.n_trials}"
        )


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's per-trial log lines and experimental-API warnings off: the sweep prints its own."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
