"""Bad sweep configs: one line on stderr, exit code 2, no sweep folder (lightnas.sweeps.config,
checked by lightnas.sweeps.runner.prepare before anything is written)."""

import inspect
import json

import pytest
from helpers import ROOT
from helpers.sweeps import write_base, write_sweep

from lightnas.cli import main
from lightnas.sweeps import prepare
from lightnas.sweeps.config import load_sweep_config, parse_objectives
from lightnas.sweeps.study import ARGUMENT_RANGES, PRUNERS, SAMPLERS, annotation_types

GOOD = {
    "parameters": {"search.cost_weight": {"type": "float", "low": -0.5, "high": 0.0}},
    "objectives": ["val_acc", "ops"],
    "n_trials": 2,
}

BAD = [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"base": "missing.yml"}, "no LightNAS config file"),
    ({"mode": "evolve"}, "mode='evolve' is not known"),
    ({"parameters": {"optim.lrr": {"type": "float", "low": 0.1, "high": 0.2}}}, "lrr"),
    ({"parameters": {"optim.lr": {"type": "float", "low": 0.2, "high": 0.1}}}, "low=0.2"),
    ({"parameters": {"optim.lr": {"_type": "lognormalish", "_value": [0, 1]}}}, "lognormalish"),
    ({"parameters": {"search.cost_weight": {"type": "float", "low": -1, "high": 0.5}}},
     "search.cost_weight=0.5 must be <= 0"),
    ({"parameters": {"optim.optimizer": ["adam", "lion"]}}, "lion"),
    ({"parameters": "space.json"}, "does not exist"),
    ({"objectives": ["accuracy"]}, "'accuracy' is not known"),
    ({"objectives": {"val_acc": "up"}}, "objectives.val_acc='up'"),
    ({"objectives": ["val_acc", "ops", "params"]}, "one or two metrics"),
    ({"sampler": "bayes"}, "sampler='bayes' is not known"),
    ({"sampler": {"name": "tpe", "n_startup": 3}}, "sampler.n_startup is not an argument"),
    ({"sampler": {"name": "tpe", "n_startup_trials": -5}},
     "sampler.n_startup_trials=-5 is not valid for tpe; valid: an integer >= 0"),
    ({"sampler": {"name": "tpe", "n_ei_candidates": 2.5}},
     "sampler.n_ei_candidates=2.5 is not valid for tpe; valid: int"),
    ({"sampler": {"name": "tpe", "multivariate": "yes"}}, "valid: bool or None"),
    ({"sampler": {"name": "tpe", "gamma": "lambda n: n"}}, "tpe takes a Python object there"),
    ({"sampler": {"name": "nsga2", "crossover_prob": 1.5}}, "valid: a number in [0, 1]"),
    ({"pruner": {"name": "hyperband", "reduction_factor": 1}, "objectives": "reward"},
     "pruner.reduction_factor=1 is not valid for hyperband; valid: an integer >= 2"),
    ({"pruner": {"name": "median", "n_warmup_steps": -1}, "objectives": "reward"},
     "pruner.n_warmup_steps=-1 is not valid for median; valid: an integer >= 0"),
    ({"sampler": "grid"}, "is continuous"),
    ({"pruner": "median"}, "pruning needs one objective"),
    ({"pruner": {"name": "median", "warmup": 1}, "objectives": "reward"}, "pruner.warmup"),
    ({"n_trials": 0}, "n_trials=0 must be an integer >= 1"),
    ({"enqueue": [{"optim.lr": 0.1}]}, "'optim.lr' is not a parameter"),
    ({"architecture": "a.json"}, "only with mode: retrain"),
    ({"mode": "retrain"}, "needs a search's training folder"),
    ({"name": "../x"}, "plain folder name"),
    ({"storage": "postgresql://postgres@127.0.0.1:1/nothing"}, "cannot be used"),
    ({"storage": "nosuchdb://x"}, "cannot be used"),
    ({"storage": "sqlite:////nonexistent/dir/x.db"}, "cannot be used"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "message"), BAD)
def test_bad_sweep_config_is_one_line_exit_2_and_no_folder(tmp_path, capsys, fields, message):
    write_base(tmp_path)
    path = write_sweep(tmp_path, **(GOOD | fields))
    assert main(["sweep", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "sweeps").exists()


def test_bad_command_line_options(tmp_path, capsys):
    write_base(tmp_path)
    path = write_sweep(tmp_path, **GOOD)
    for argv in (["sweep"], ["sweep", "-c", str(path), "--workers", "0"], ["report"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert main(["sweep", "-c", str(tmp_path / "nope.yml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sweep", "-c", str(tmp_path)]) == 2
    assert "is a folder; give a YAML file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "not a sweep folder" in capsys.readouterr().err
    assert not (tmp_path / "sweeps").exists()


def test_every_number_a_sweep_file_gives_optuna_has_a_range():
    """Optuna checks only some of its arguments: each int or float one must be in ours."""
    for registry in (SAMPLERS, PRUNERS):
        for name in registry:
            for param in inspect.signature(registry[name]).parameters.values():
                numeric = {"int", "float"} & set(annotation_types(param) or ())
                assert param.name in ARGUMENT_RANGES or not numeric or param.name == "seed", (
                    name,
                    param.name,
                )


LATIN1 = "# café\n".encode("latin-1")


@pytest.mark.parametrize("which", ["sweep", "base"])
def test_a_file_that_is_not_utf8_is_one_line_exit_2_and_no_folder(tmp_path, capsys, which):
    base = write_base(tmp_path)
    path = write_sweep(tmp_path, **GOOD)
    bad = path if which == "sweep" else base
    bad.write_bytes(LATIN1 + bad.read_bytes())
    assert main(["sweep", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad} is not UTF-8 text (byte 0xe9 on line 1)" in err, err
    assert not (tmp_path / "sweeps").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name: s\nn_trials: [1\n", "sweep.yml is not valid YAML"),
        (b"- 1\n- 2\n", "sweep.yml holds a list, not a mapping of keys such as `base:`"),
        (b"", "sweep.yml is empty"),
        (b"name: s\n" + LATIN1, "sweep.yml is not UTF-8 text (byte 0xe9 on line 2)"),
    ],
)
def test_report_of_a_bad_sweep_file_is_one_line_and_writes_nothing(
    tmp_path, capsys, content, message
):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sweep.yml").write_bytes(content)
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert [p.name for p in folder.iterdir()] == ["sweep.yml"]


def test_report_does_not_create_the_database_it_is_pointed_at(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "sweep.yml").write_text("name: s\nbase: tiny.yml\n")
    assert main(["report", str(folder), "--storage", "sqlite:///new.db"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: storage sqlite:///new.db: new.db does not exist; give the URL of the sweep's "
        "storage (default: its study.db)\n"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["s", "sweep.yml"]


def test_a_sweep_file_is_resolved_beside_itself(tmp_path):
    write_base(tmp_path)
    (tmp_path / "space.json").write_text(
        json.dumps({"optim.lr": {"_type": "loguniform", "_value": [1e-3, 1e-2]}})
    )
    path = write_sweep(
        tmp_path, parameters="space.json", overrides={"search": {"warmup_epochs": 0}}
    )
    cfg = load_sweep_config(path, n_trials=7)
    assert cfg.base == str(tmp_path / "tiny.yml") and cfg.name == "sweep" and cfg.n_trials == 7
    assert cfg.overrides == {"search.warmup_epochs": 0}
    assert [p.key for p in cfg.parameters] == ["optim.lr"] and cfg.parameters[0].log
    assert cfg.metrics == ["reward"] and cfg.directions == ["maximize"]


def test_objectives_take_their_natural_direction():
    assert [o.direction for o in parse_objectives(["val_acc", "ops"])] == ["maximize", "minimize"]
    assert [o.direction for o in parse_objectives({"model_bits": "minimize"})] == ["minimize"]
    assert [o.metric for o in parse_objectives("reward")] == ["reward"]


def test_the_shipped_quickstart_sweep_is_valid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = prepare(ROOT / "configs" / "sweep_quickstart.yml")
    assert plan.cfg.base == str(ROOT / "configs" / "quickstart.yml")
    assert plan.cfg.metrics == ["val_acc", "ops"] and plan.n_trials == 8
    assert plan.folder.root == tmp_path / "sweeps" / "sweep_quickstart"
    assert list(tmp_path.iterdir()) == []  # checking writes nothing


def test_an_output_dir_that_cannot_be_made_is_one_line_exit_2(tmp_path, capsys):
    write_base(tmp_path)
    (tmp_path / "a_file").write_text("in the way")
    path = write_sweep(tmp_path, **(GOOD | {"output_dir": str(tmp_path / "a_file")}))
    assert main(["sweep", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: output_dir: cannot create the folder") and err.count("\n") == 1
    assert (tmp_path / "a_file").read_text() == "in the way"
