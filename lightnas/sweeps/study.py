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
from pathlib import Path
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
def _integer(least: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, int) and v >= least), f"an integer >= {least}"


_PROBABILITY = (lambda v: 0 <= v <= 1), "a number in [0, 1]"
# The ranges of the numbers a sweep file may give Optuna's samplers and pruners. Optuna checks
# only some itself: TPE takes n_startup_trials: -5 (and samples as if it were 0), Hyperband
# reduction_factor: 1 until its first trial fails.
ARGUMENT_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_startup_trials": _integer(0),
    "n_ei_candidates": _integer(1),
    "prior_weight": ((lambda v: v > 0), "a number > 0"),
    "population_size": _integer(2),
    "mutation_prob": _PROBABILITY,
    "crossover_prob": _PROBABILITY,
    "swapping_prob": _PROBABILITY,
    "n_warmup_steps": _integer(0),
    "interval_steps": _integer(1),
    "n_min_trials": _integer(1),
    "min_resource": _integer(1),
    "max_resource": _integer(1),
    "reduction_factor": _integer(2),
    "min_early_stopping_rate": _integer(0),
    "bootstrap_count": _integer(0),
}
# the annotations whose values a YAML file can hold, and what each accepts
_YAML_TYPES: dict[str, Callable[[Any], bool]] = {
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "None": lambda v: v is None,
}


def annotation_types(param: inspect.Parameter) -> list[str] | None:
    """The YAML types an Optuna argument takes (`int | None` -> [int, None]); None when it takes
    Python objects (a callable, a mutation operator), which a sweep file cannot give."""
    annotation = param.annotation
    if not isinstance(annotation, str):
        annotation = getattr(annotation, "__name__", str(annotation))
    types = [t.strip() for t in annotation.split("|")]
    return types if all(t in _YAML_TYPES for t in types) else None


def _check_value(kind: str, name: str, param: inspect.Parameter, value: Any) -> None:
    where = f"{kind}.{param.name}={value!r} is not valid for {name}; valid:"
    types = annotation_types(param)
    if types is None:
        raise ConfigError(f"{where} none in a sweep file: {name} takes a Python object there")
    if not any(_YAML_TYPES[t](value) for t in types):
        raise ConfigError(f"{where} {' or '.join(types)}")
    in_range, valid = ARGUMENT_RANGES.get(param.name, (None, ""))
    if in_range is not None and _YAML_TYPES["float"](value) and not in_range(value):
        raise ConfigError(f"{where} {valid}")


def _arguments(kind: str, cls: type, spec: dict, fixed: set[str]) -> dict:
    """The Optuna constructor arguments of a `sampler:` / `pruner:` entry, checked by name,
    type and range (a bad one is refused before any trial, not met in the middle of a sweep)."""
    args = {k: v for k, v in spec.items() if k != "name"}
    params = inspect.signature(cls).parameters
    valid = [p for p in params if p not in fixed | {"self"}]
    bad = [k for k in args if k not in valid]
    if bad:
        raise ConfigError(
            f"{kind}.{bad[0]} is not an argument of {spec['name']}; valid: {', '.join(valid)}"
        )
    for key, value in args.items():
        _check_value(kind, spec["name"], params[key], value)
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


def missing_sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite `url` when it does not exist (opening would create it);
    None for an existing file, an in-memory database or another kind of storage."""
    try:
        parsed = make_url(url)
    except Exception:  # not a URL: opening it says so
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if parsed.query.get("uri") in ("true", "1"):  # a file: URI with its own options
        return None
    return None if Path(database).is_file() else Path(database)


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
