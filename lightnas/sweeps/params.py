"""The parameters a sweep varies: any config key, with an Optuna distribution.

Two spellings, which may be mixed in one `parameters:` mapping:

    optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}   # LightNAS / Optuna style
    search.warmup_epochs: {type: int, low: 0, high: 3}
    optim.optimizer: [adam, sgd]                                     # a list = categorical
    optim.lr: {_type: loguniform, _value: [1.0e-4, 1.0e-2]}          # NNI search-space style

and a whole NNI search-space JSON file (`parameters: search_space.json`). NNI's types map to the
Optuna distribution that samples the same values: choice -> categorical, randint [a, b) -> int
[a, b - 1], uniform -> float, quniform -> float with step q, loguniform -> log float. Those NNI
types Optuna has no distribution for are sampled through a float and transformed: qloguniform
(a log float rounded to q), and normal, qnormal, lognormal, qlognormal (a quantile u in (0, 1)
mapped through the normal's inverse CDF, so TPE still sees a bounded space). Trials record the
sampled value (Optuna's) and the value the run got (`overrides`).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import optuna

from lightnas.errors import ConfigError

KINDS = ("float", "int", "categorical")
SPEC_KEYS = {"type", "low", "high", "step", "log", "choices"}
NNI_TYPES = (
    "choice",
    "randint",
    "uniform",
    "quniform",
    "loguniform",
    "qloguniform",
    "normal",
    "qnormal",
    "lognormal",
    "qlognormal",
)
QUANTILE = (1e-6, 1 - 1e-6)  # the sampled range of a normal's quantile: about +-4.75 sigma
PRIMITIVE = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Param:
    """One config key and how it is sampled; `transform` maps the sampled value to the config
    value: {"q": q, "low": a, "high": b} rounds, {"normal": [mu, sigma], "q": .., "log": ..}
    maps a quantile, {"json": true} decodes a categorical choice that is a list or mapping."""

    key: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple | None = None
    transform: dict | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        """Sample this parameter in `trial`; the value the run's config gets."""
        if self.type == "categorical":
            sampled = trial.suggest_categorical(self.key, self.choices)
        elif self.type == "int":
            step = int(self.step or 1)
            sampled = trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        else:
            sampled = trial.suggest_float(
                self.key, self.low, self.high, step=self.step, log=self.log
            )
        return self.to_config(sampled)

    def grid(self) -> list[Any] | None:
        """Every value of a discrete parameter (for the grid sampler); None when continuous."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int" or self.step is not None:
            step = self.step or 1
            count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
            cast = int if self.type == "int" else float
            return [cast(round(self.low + i * step, 12)) for i in range(count)]
        return None

    def to_config(self, sampled: Any) -> Any:
        t = self.transform
        if not t:
            return sampled
        if t.get("json"):
            return json.loads(sampled)
        value = sampled
        if "normal" in t:
            mu, sigma = t["normal"]
            value = NormalDist(mu, sigma).inv_cdf(sampled)
            value = math.exp(value) if t.get("log") else value
        if t.get("q"):
            value = round(value / t["q"]) * t["q"]
            if "low" in t:
                value = min(max(value, t["low"]), t["high"])
        return value

    def corners(self) -> list[Any]:
        """Config values that bound what this parameter can give (checked before a sweep)."""
        if self.type == "categorical":
            return [self.to_config(c) for c in self.choices]
        return [self.to_config(v) for v in (self.low, self.high)]

    def to_dict(self) -> dict:
        """The spelling saved in the sweep folder's sweep.yml (LightNAS style)."""
        d = {k: v for k, v in asdict(self).items() if v is not None and v is not False}
        del d["key"]
        if self.choices is not None:
            d["choices"] = list(self.choices)
        return d


# ---- LightNAS / Optuna spelling ---------------------------------------------------------------
def _number(key: str, name: str, value: Any) -> float:
    if isinstance(value, str):  # YAML 1.1 (PyYAML) reads 1.0e5, without a sign, as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"parameters.{key}.{name}={value!r} must be a finite number")
    return value


def _categorical(key: str, choices: Any) -> Param:
    if not isinstance(choices, list | tuple) or not choices:
        raise ConfigError(f"parameters.{key}: choices must be a non-empty list, got {choices!r}")
    if all(isinstance(c, PRIMITIVE) for c in choices):
        return Param(key, "categorical", choices=tuple(choices))
    encoded = tuple(json.dumps(c, sort_keys=True) for c in choices)
    return Param(key, "categorical", choices=encoded, transform={"json": True})


def _check_range(p: Param) -> Param:
    key = p.key
    if p.low > p.high:
        raise ConfigError(f"parameters.{key}: low={p.low} must be <= high={p.high}")
    if p.log and p.low <= 0:
        raise ConfigError(f"parameters.{key}: log: true needs low > 0, got low={p.low}")
    if p.step is not None and (p.step <= 0 or p.log):
        raise ConfigError(f"parameters.{key}: step={p.step} must be > 0 and not with log: true")
    if p.type == "int" and not all(float(v).is_integer() for v in (p.low, p.high, p.step or 1)):
        raise ConfigError(f"parameters.{key}: an int parameter needs integer low, high and step")
    return p


def parse_spec(key: str, spec: Any) -> Param:
    """One entry of `parameters:` in either spelling; a ConfigError names what is wrong."""
    if isinstance(spec, list):
        return _categorical(key, spec)
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"parameters.{key}: expected a list of choices or a mapping such as "
            f"{{type: float, low: 0.1, high: 1.0}}, got {spec!r}"
        )
    if "_type" in spec:
        return parse_nni(key, spec)
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise ConfigError(
            f"parameters.{key}: unknown field {unknown[0]!r}; valid: {', '.join(sorted(SPEC_KEYS))}"
        )
    kind = spec.get("type")
    if kind not in KINDS:
        raise ConfigError(f"parameters.{key}.type={kind!r} is not known; valid: {', '.join(KINDS)}")
    if kind == "categorical":
        return _categorical(key, spec.get("choices"))
    missing = [name for name in ("low", "high") if name not in spec]
    if missing:
        raise ConfigError(f"parameters.{key}: a {kind} parameter needs {' and '.join(missing)}")
    low, high = _number(key, "low", spec["low"]), _number(key, "high", spec["high"])
    step = spec.get("step")
    step = None if step is None else _number(key, "step", step)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"parameters.{key}.log={log!r} must be true or false")
    return _check_range(Param(key, kind, low, high, step, log))


# ---- NNI spelling -----------------------------------------------------------------------------
def _nni_values(key: str, spec: Mapping, kind: str, count: int) -> list[float]:
    values = spec.get("_value")
    if not isinstance(values, list) or len(values) != count:
        raise ConfigError(
            f"parameters.{key}: NNI {kind} needs _value: a list of {count} numbers, got {values!r}"
        )
    return [_number(key, "_value", v) for v in values]


def _nni_normal(key: str, kind: str, values: list[float]) -> Param:
    mu, sigma = values[0], values[1]
    if sigma <= 0:
        raise ConfigError(f"parameters.{key}: NNI {kind} needs sigma > 0, got {sigma}")
    transform = {"normal": [mu, sigma], "log": kind.endswith("lognormal")}
    if kind.startswith("q"):
        transform["q"] = values[2]
    return Param(key, "float", *QUANTILE, transform=transform)


def parse_nni(key: str, spec: Mapping) -> Param:
    """An NNI search-space entry {"_type": ..., "_value": ...} as a Param."""
    kind = spec.get("_type")
    if kind not in NNI_TYPES:
        raise ConfigError(
            f"parameters.{key}._type={kind!r} is not known; valid: {', '.join(NNI_TYPES)}"
        )
    if kind == "choice":
        choices = spec.get("_value")
        if isinstance(choices, list) and any(
            isinstance(c, Mapping) and "_name" in c for c in choices
        ):
            raise ConfigError(f"parameters.{key}: nested NNI search spaces are not supported")
        return _categorical(key, choices)
    counts = {"qloguniform": 3, "quniform": 3, "qnormal": 3, "qlognormal": 3}
    values = _nni_values(key, spec, kind, counts.get(kind, 2))
    if kind.endswith("normal"):
        return _nni_normal(key, kind, values)
    if len(values) == 3 and values[2] <= 0:
        raise ConfigError(f"parameters.{key}: NNI {kind} needs q > 0, got {values[2]}")
    low, high = values[0], values[1]
    if kind == "randint":
        if not (float(low).is_integer() and float(high).is_integer() and low < high):
            raise ConfigError(f"parameters.{key}: NNI randint needs integers lower < upper")
        return Param(key, "int", int(low), int(high) - 1)  # NNI's upper bound is exclusive
    if kind == "quniform":
        return _check_range(Param(key, "float", low, high, step=values[2]))
    param = _check_range(Param(key, "float", low, high, log=kind == "loguniform"))
    if kind == "qloguniform":
        rounding = {"q": values[2], "low": low, "high": high}
        param = _check_range(Param(key, "float", low, high, log=True, transform=rounding))
    return param


def load_nni_file(path: Path) -> dict[str, Any]:
    """An NNI search-space JSON file: {key: {"_type": ..., "_value": ...}}."""
    try:
        data = json.loads(path.read_text())
    except OSError:
        raise ConfigError(f"parameters: NNI search-space file {path} does not exist") from None
    except ValueError as err:
        raise ConfigError(f"parameters: {path} is not valid JSON ({err})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"parameters: {path} must hold a non-empty JSON object")
    for key, spec in data.items():
        if not isinstance(spec, Mapping) or "_type" not in spec:
            raise ConfigError(
                f'parameters.{key} in {path}: expected {{"_type": ..., "_value": ...}}'
            )
    return data


def parse_parameters(specs: Mapping[str, Any]) -> tuple[Param, ...]:
    """Every entry of `parameters:` (a mapping of config key -> spec)."""
    if not specs:
        raise ConfigError("parameters: give at least one config key to vary")
    return tuple(parse_spec(str(key), spec) for key, spec in specs.items())
