"""lightnas.sweeps.params: both spellings of a parameter, NNI's types, sampled through Optuna."""

import json
import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from lightnas.errors import ConfigError
from lightnas.sweeps.params import Param, load_nni_file, parse_parameters, parse_spec


def sampled(param: Param, seed: int = 0, n: int = 50) -> list:
    """Config values of `param` over `n` trials of a real (in-memory) Optuna study."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed))
    values = []
    for _ in range(n):
        trial = study.ask()
        values.append(param.suggest(trial))
        study.tell(trial, 0.0)
    return values


def distribution(param: Param):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(0))
    trial = study.ask()
    param.suggest(trial)
    return trial.distributions[param.key]


@pytest.mark.parametrize(
    ("ours", "nni", "expected"),
    [
        ({"type": "float", "low": -0.5, "high": 0.0}, {"_type": "uniform", "_value": [-0.5, 0]},
         FloatDistribution(-0.5, 0.0)),
        ({"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
         {"_type": "loguniform", "_value": [1e-4, 1e-2]}, FloatDistribution(1e-4, 1e-2, log=True)),
        ({"type": "int", "low": 1, "high": 3}, {"_type": "randint", "_value": [1, 4]},
         IntDistribution(1, 3)),
        ({"type": "float", "low": 0.0, "high": 0.01, "step": 0.005},
         {"_type": "quniform", "_value": [0, 0.01, 0.005]}, FloatDistribution(0, 0.01, step=0.005)),
        (["adam", "sgd"], {"_type": "choice", "_value": ["adam", "sgd"]},
         CategoricalDistribution(["adam", "sgd"])),
    ],
)  # fmt: skip
def test_nni_types_map_to_the_same_distribution_as_our_spelling(ours, nni, expected):
    assert distribution(parse_spec("k", ours)) == expected
    assert distribution(parse_spec("k", nni)) == expected


def test_randint_excludes_its_upper_bound_as_nni_does():
    assert set(sampled(parse_spec("k", {"_type": "randint", "_value": [2, 5]}), n=80)) == {2, 3, 4}


def test_qloguniform_rounds_to_q_within_bounds():
    param = parse_spec("k", {"_type": "qloguniform", "_value": [1, 1000, 10]})
    values = sampled(param)
    assert all(1 <= v <= 1000 and (v == 1 or v % 10 == 0) for v in values)
    assert len(set(values)) > 10


@pytest.mark.parametrize(
    ("kind", "value", "check"),
    [
        ("normal", [2.0, 0.5], lambda v: abs(v - 2.0) < 0.5 * 4.8),
        ("qnormal", [10.0, 3.0, 2.0], lambda v: v % 2 == 0),
        ("lognormal", [0.0, 1.0], lambda v: v > 0),
        ("qlognormal", [1.0, 0.5, 0.5], lambda v: v % 0.5 == 0 and v >= 0),
    ],
)
def test_normal_types_sample_through_the_inverse_cdf(kind, value, check):
    param = parse_spec("k", {"_type": kind, "_value": value})
    assert param.to_config(0.5) == pytest.approx(
        {"normal": 2.0, "qnormal": 10.0, "lognormal": 1.0, "qlognormal": 2.5}[kind]
    )
    values = sampled(param, n=200)
    assert all(check(v) for v in values)
    if kind == "normal":  # about the right spread
        mean = sum(values) / len(values)
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        assert mean == pytest.approx(2.0, abs=0.15) and sd == pytest.approx(0.5, abs=0.12)


def test_categorical_lists_and_mappings_round_trip():
    spaces = [{"dense_block": ["conv3x3"]}, {"dense_block": ["conv3x3", "conv1x1"]}]
    param = parse_spec("search_space", spaces)
    assert sorted(map(json.dumps, set(map(json.dumps, sampled(param))))) == sorted(
        json.dumps(json.dumps(s)) for s in spaces
    )
    assert param.corners() == spaces


def test_grid_values_of_discrete_parameters():
    assert parse_spec("k", {"type": "int", "low": 1, "high": 7, "step": 3}).grid() == [1, 4, 7]
    step = parse_spec("k", {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1})
    assert step.grid() == [0.0, 0.1, 0.2, 0.3]
    assert parse_spec("k", {"type": "float", "low": 0.0, "high": 1.0}).grid() is None


def test_to_dict_keeps_zero_bounds():
    param = parse_spec("search.cost_weight", {"type": "float", "low": -0.5, "high": 0.0})
    assert param.to_dict() == {"type": "float", "low": -0.5, "high": 0.0}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "float", "low": 1.0, "high": 0.5}, "low=1.0 must be <= high=0.5"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log: true needs low > 0"),
        ({"type": "int", "low": 0.5, "high": 3}, "integer low, high and step"),
        ({"type": "gaussian", "low": 0, "high": 1}, "type='gaussian' is not known"),
        ({"type": "float", "low": 0}, "needs high"),
        ({"type": "float", "low": "a", "high": 1}, "must be a finite number"),
        ({"type": "float", "low": 0, "high": 1, "scale": 2}, "unknown field 'scale'"),
        ({"_type": "gauss", "_value": [0, 1]}, "_type='gauss' is not known"),
        ({"_type": "uniform", "_value": [0]}, "NNI uniform needs _value: a list of 2 numbers"),
        ({"_type": "randint", "_value": [3, 3]}, "lower < upper"),
        ({"_type": "normal", "_value": [0, 0]}, "sigma > 0"),
        ({"_type": "choice", "_value": [{"_name": "a"}]}, "nested NNI search spaces"),
        ([], "choices must be a non-empty list"),
        (3, "expected a list of choices or a mapping"),
    ],
)
def test_bad_specs_are_one_line_config_errors(spec, message):
    with pytest.raises(ConfigError, match="parameters.k") as err:
        parse_spec("k", spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_nni_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_nni_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_nni_file(bad)
    bad.write_text(json.dumps({"optim.lr": [0.1, 0.2]}))
    with pytest.raises(ConfigError, match="_type"):
        load_nni_file(bad)
    with pytest.raises(ConfigError, match="at least one"):
        parse_parameters({})
