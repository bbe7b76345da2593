"""The sweep config (sweep.yml): which runs, which parameters, which objectives, how to sample.

    name: sweep_quickstart          # the sweep folder <output_dir>/<name>; default: the file's stem
    output_dir: sweeps
    base: quickstart.yml            # search: a LightNAS config; retrain: a search's training folder
    mode: search                    # or retrain (of `architecture`: null = best, base, a JSON file)
    overrides: {epochs: 4}          # fixed config values of every trial
    parameters:                     # config key -> distribution (or an NNI search-space JSON file)
      search.cost_weight: {type: float, low: -0.6, high: -0.05}
    objectives: {val_acc: maximize, ops: minimize}   # or [val_acc, ops], or reward
    n_trials: 8
    sampler: {name: tpe}            # tpe, random, grid, nsga2 (+ their Optuna arguments)
    pruner: null                    # median, successive_halving, hyperband (one objective only)

Relative paths (base, architecture, an NNI file) are relative to the sweep file's folder.
Everything is checked here, before a folder or a storage is touched: a bad value is a one-line
ConfigError naming the key and the valid values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lightnas.config import SECTIONS
from lightnas.errors import ConfigError
from lightnas.layout import TrainingFolder
from lightnas.runtime.fileio import read_yaml_mapping
from lightnas.scoring.cost_metrics import COSTS
from lightnas.sweeps.params import Param, load_nni_file, parse_parameters

MODES = ("search", "retrain")
DIRECTIONS = ("maximize", "minimize")
# what a trial can be scored on: its best epoch's metrics (EpochResult), with their usual sense
EPOCH_METRICS = {
    "reward": "maximize",
    "val_acc": "maximize",
    "val_loss": "minimize",
    "train_acc": "maximize",
    "train_loss": "minimize",
    "cost": "minimize",  # the configured search.cost
}


def metric_directions() -> dict[str, str]:
    """Objective name -> its natural direction: epoch metrics and every additive cost."""
    costs = {k: "minimize" for k in COSTS.names() if COSTS[k].additive}
    return EPOCH_METRICS | costs


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str


@dataclass(frozen=True)
class SweepConfig:
    """A resolved sweep: every path absolute, every parameter parsed."""

    base: str
    parameters: tuple[Param, ...]
    name: str
    objectives: tuple[Objective, ...] = (Objective("reward", "maximize"),)
    output_dir: str = "sweeps"
    mode: str = "search"
    architecture: str | None = None
    overrides: dict = field(default_factory=dict)
    n_trials: int = 10
    sampler: dict = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict = field(default_factory=lambda: {"name": "none"})
    seed: int = 0
    storage: str | None = None
    heartbeat_interval: int = 10
    grace_period: int | None = None
    enqueue: tuple[dict, ...] = ()

    @property
    def folder(self) -> Path:
        return Path(self.output_dir) / self.name

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    def to_dict(self) -> dict:
        """The sweep.yml the sweep folder keeps (rerun it with -c to resume)."""
        d = asdict(self)
        d["parameters"] = {p.key: p.to_dict() for p in self.parameters}
        d["objectives"] = {o.metric: o.direction for o in self.objectives}
        d["enqueue"] = list(self.enqueue)
        return d

    def identity(self) -> dict:
        """What every worker of one study must agree on (paths may differ between machines)."""
        d = self.to_dict()
        return {k: d[k] for k in ("mode", "parameters", "objectives", "sampler", "pruner", "seed")}


FIELDS = tuple(SweepConfig.__dataclass_fields__)


# ---- reading --------------------------------------------------------------------------------
def read_sweep_file(path: str | Path) -> dict:
    """The mapping of a sweep YAML file; a missing or malformed file is a ConfigError."""
    return read_yaml_mapping(path, "sweep config", "base:")


def load_sweep_config(
    source: str | Path | Mapping, n_trials: int | None = None, storage: str | None = None
) -> SweepConfig:
    """A sweep config from a YAML file or a mapping (paths then relative to the working folder);
    `n_trials` and `storage` override the file's."""
    if isinstance(source, Mapping):
        data, here, stem = dict(source), Path.cwd(), "sweep"
    else:
        data, here, stem = read_sweep_file(source), Path(source).parent, Path(source).stem
    if n_trials is not None:
        data["n_trials"] = n_trials
    if storage is not None:
        data["storage"] = storage
    return resolve(data, here, stem)


def _path(here: Path, value: Any, key: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a path, got {value!r}")
    return (here / Path(value).expanduser()).resolve()


def _int(data: dict, key: str, minimum: int, default: int | None) -> int | None:
    value = data.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key}={value!r} must be an integer >= {minimum}")
    return value


def resolve(data: dict, here: Path, stem: str) -> SweepConfig:
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ConfigError(f"sweep config: unknown key {unknown[0]!r}; valid: {', '.join(FIELDS)}")
    if "base" not in data:
        raise ConfigError(
            "sweep config: `base` is missing: the LightNAS config (or, with "
            "mode: retrain, the search's training folder) every trial starts from"
        )
    mode = data.get("mode", "search")
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not known; valid: {', '.join(MODES)}")
    name = data.get("name") or stem
    if not isinstance(name, str) or name in (".", "..") or "/" in name or "\\" in name:
        raise ConfigError(f"name={name!r} must be a plain folder name (no '/', not '..')")
    return SweepConfig(
        base=str(_base(here, data["base"], mode)),
        parameters=_parameters(here, data.get("parameters")),
        name=name,
        objectives=parse_objectives(data.get("objectives", "reward")),
        output_dir=str(data.get("output_dir", "sweeps")),
        mode=mode,
        architecture=_architecture(here, data.get("architecture"), mode),
        overrides=_overrides(data.get("overrides") or {}),
        n_trials=_int(data, "n_trials", 1, 10),
        sampler=_named(data.get("sampler", "tpe"), "sampler"),
        pruner=_named(data.get("pruner") or "none", "pruner"),
        seed=_int(data, "seed", 0, 0),
        storage=_storage(data.get("storage")),
        heartbeat_interval=_int(data, "heartbeat_interval", 1, 10),
        grace_period=_int(data, "grace_period", 1, None),
        enqueue=_enqueue(data.get("enqueue") or []),
    )


def _base(here: Path, value: Any, mode: str) -> Path:
    base = _path(here, value, "base")
    if mode == "search" and not base.is_file():
        raise ConfigError(f"base={value!r}: no LightNAS config file at {base}")
    if mode == "retrain" and not TrainingFolder(base).is_training():
        raise ConfigError(
            f"base={value!r}: mode retrain needs a search's training folder, {base} "
            "has no config.yml"
        )
    return base


def _architecture(here: Path, value: Any, mode: str) -> str | None:
    if value is None or value == "base":
        return value
    if mode != "retrain":
        raise ConfigError("architecture: only with mode: retrain (a search finds its own)")
    path = _path(here, value, "architecture")
    if not path.is_file():
        raise ConfigError(f"architecture={value!r}: no architecture JSON file at {path}")
    return str(path)


def _parameters(here: Path, value: Any) -> tuple[Param, ...]:
    if isinstance(value, str):  # an NNI search-space file
        return parse_parameters(load_nni_file(_path(here, value, "parameters")))
    if value is not None and not isinstance(value, Mapping):
        raise ConfigError(
            "parameters: expected a mapping of config key -> distribution, or the "
            f"path of an NNI search-space JSON file, got {value!r}"
        )
    return parse_parameters(value or {})


def parse_objectives(value: Any) -> tuple[Objective, ...]:
    """`reward`, `[val_acc, ops]` (natural directions) or `{val_acc: maximize, ops: minimize}`."""
    known = metric_directions()
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = {m: known.get(m) for m in value}
    if not isinstance(value, Mapping) or not 1 <= len(value) <= 2:
        raise ConfigError(f"objectives: give one or two metrics, got {value!r}")
    out = []
    for metric, direction in value.items():
        if metric not in known:
            raise ConfigError(f"objectives: {metric!r} is not known; valid: {', '.join(known)}")
        if direction not in DIRECTIONS:
            raise ConfigError(f"objectives.{metric}={direction!r}; valid: {', '.join(DIRECTIONS)}")
        out.append(Objective(metric, direction))
    return tuple(out)


def _named(value: Any, key: str) -> dict:
    """`tpe` or `{name: tpe, n_startup_trials: 5}` -> {"name": ..., **arguments}."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return dict(value)
    raise ConfigError(f"{key}: expected a name or {{name: ..., <argument>: ...}}, got {value!r}")


def _storage(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"storage={value!r} must be a SQLAlchemy URL or null (SQLite)")
    return value


def _overrides(value: Any) -> dict:
    if not isinstance(value, Mapping):
        raise ConfigError(f"overrides: expected a mapping of config keys, got {value!r}")
    return dotted(value)


def _enqueue(value: Any) -> tuple[dict, ...]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError("enqueue: expected a list of {config key: value} trials to run first")
    return tuple(dict(v) for v in value)


# ---- config dicts ---------------------------------------------------------------------------
def dotted(values: Mapping) -> dict:
    """{section: {key: v}} and {"section.key": v} alike as {"section.key": v}."""
    out = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[str(key)] = value
    return out


def apply(config: dict, values: Mapping[str, Any]) -> dict:
    """A copy of the config dict `config` with the dotted `values` set (a dict value replaces)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[leaf] = value
    return out


def check_n_trials(cfg: SweepConfig, grid_size: int | None) -> int:
    """The trial budget; a grid has no more trials than points."""
    if len(cfg.enqueue) > cfg.n_trials:
        raise ConfigError(f"enqueue: {len(cfg.enqueue)} trials but n_trials={cfg.n_trials}")
    if grid_size is None:
        return cfg.n_trials
    return min(cfg.n_trials, grid_size)
