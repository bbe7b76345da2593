"""lightnas sweep end to end on SQLite: complete trial folders, resume, pruning, failures, NNI
search spaces, retrain mode, MLflow (lightnas.sweeps.runner and .trials)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from helpers import ROOT
from helpers.sweeps import load, metrics, status, write_base, write_sweep
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

import lightnas
from lightnas.cli import main
from lightnas.dashboard.app import Settings, create_app
from lightnas.dashboard.formatting import percent

pytestmark = pytest.mark.slow

PARAMETERS = {
    "search.cost_weight": {"type": "float", "low": -0.5, "high": 0.0},
    "search.warmup_epochs": {"type": "int", "low": 0, "high": 1},
    "optim.optimizer": ["adam", "sgd"],
}


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    """A finished 4-trial two-objective sweep of the tiny config, its trials tracked in MLflow."""
    root = tmp_path_factory.mktemp("quick")
    mlflow = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    (root / "mlflow").mkdir()
    write_base(root, tracking={"mlflow": mlflow})
    path = write_sweep(root, name="quick", parameters=PARAMETERS, objectives=["val_acc", "ops"],
                       n_trials=4, sampler={"name": "tpe", "n_startup_trials": 2})  # fmt: skip
    cwd = os.getcwd()
    os.chdir(root)  # nothing may land in the working folder (MLflow's ./mlruns, autosaves)
    try:
        assert main(["sweep", "-c", str(path)]) == 0
    finally:
        os.chdir(cwd)
    assert sorted(p.name for p in root.iterdir()) == ["mlflow", "sweep.yml", "sweeps", "tiny.yml"]
    return root


def test_every_trial_is_a_complete_training_folder(quick):
    sweep = quick / "sweeps" / "quick"
    assert sorted(p.name for p in sweep.iterdir()) == ["log.txt", "study.db", "sweep.yml", "trials"]
    study = load(quick, "quick")
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert sorted(p.name for p in (sweep / "trials").iterdir()) == [
        f"trial_000{i}" for i in range(4)
    ]
    for trial in trials:
        run = sweep / trial.user_attrs["folder"]
        for name in ("config.yml", "log.txt", "best_architecture.json", "tensorboard"):
            assert (run / name).exists(), (run, name)
        assert sorted(p.name for p in (run / "enas_checkpoint").iterdir()) == [
            "last.pt",
            "previous.pt",
        ]
        assert (run / "exported_models" / "trainables" / "epoch_2.safetensors").is_file()
        assert (run / "logs" / "architectures" / "epoch_2.json").is_file()
        assert status(run)["state"] == "finished"
        rows = metrics(run)
        assert [r["epoch"] for r in rows] == [1, 2]
        config = yaml.safe_load((run / "config.yml").read_text())
        for key, value in trial.user_attrs["overrides"].items():
            section, name = key.split(".")
            assert config[section][name] == value == trial.params[key]
        assert config["name"] == run.name and config["tracking"]["experiment"] == "quick"
        final = json.loads((run / "final_selection.json").read_text())
        winner = final["candidates"][final["winner"]]  # the run's pick, final weights
        assert trial.values == [winner["val_acc"], winner["costs"]["ops"]]
        assert (
            json.loads((run / "best_architecture.json").read_text())["architecture"]["choices"]
            == winner["architecture"]
            == trial.user_attrs["best"]["architecture"]
        )
    log = (sweep / "log.txt").read_text()
    assert "trial 3: complete" in log and "4 complete" in log
    saved = yaml.safe_load((sweep / "sweep.yml").read_text())
    assert saved["parameters"] == PARAMETERS | {
        "optim.optimizer": {"type": "categorical", "choices": ["adam", "sgd"]}
    }


def test_report_writes_table_front_plots_csv_and_a_retrain_command(quick, capsys, monkeypatch):
    sweep = quick / "sweeps" / "quick"
    assert main(["report", str(sweep)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "state", "val_acc", "ops"]
    assert "cost_weight" in lines[0] and "optimizer" in lines[0]
    assert max(len(line) for line in lines[:5]) <= 100  # narrow
    assert len([line for line in lines[1:5] if " complete " in line]) == 4
    assert "Pareto front: trials" in out and "importance for val_acc:" in out
    report = sweep / "report"
    png = (report / "pareto.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    html = (report / "pareto.html").read_text()
    assert "<script src" not in html and len(html) > 1_000_000  # plotly.js inside: offline
    assert "Pareto front" in html and "trial_000" in html
    rows = (report / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("trial,state,val_acc,ops,search.cost_weight")
    assert len(rows) == 5
    data = json.loads((report / "trials.json").read_text())["trials"]
    assert [t["trial"] for t in data] == [0, 1, 2, 3] and all(t["intermediate"] == {} for t in data)
    assert set(json.loads((report / "importances.json").read_text())) == {"val_acc", "ops"}
    assert (report / "table.txt").read_text().splitlines()[0] == lines[0]
    # the printed command retrains the chosen trial's architecture
    command = lines[lines.index(next(x for x in lines if x.startswith("chosen:"))) + 1].split()
    assert command[:2] == ["lightnas", "retrain"]
    monkeypatch.chdir(quick)
    assert main([*command[1:], "--epochs", "1", "--tracking.mlflow", "null"]) == 0
    retrained = Path(f"{command[2]}_retrain")
    chosen = json.loads((Path(command[2]) / "best_architecture.json").read_text())
    assert (
        json.loads((retrained / "architecture.json").read_text())["choices"]
        == chosen["architecture"]["choices"]
    )


def test_sweep_trials_are_runs_in_mlflow(quick):
    client = MlflowClient(tracking_uri=f"sqlite:///{quick / 'mlflow' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("quick")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == [f"trial_000{i}" for i in range(4)]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert "search.cost_weight" in run.data.params and "val_acc" in run.data.metrics
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yml", "best_architecture.json", "exported_models"} <= artifacts
    assert experiment.artifact_location.startswith((quick / "mlflow" / "mlartifacts").as_uri())


def test_the_report_and_the_sweep_page_show_each_trials_result(quick):
    """Optuna's values, `lightnas report`, the sweep page's header, trial table, study table
    and both Pareto charts: all each trial's result, as its best_architecture.json holds it."""
    sweep = quick / "sweeps" / "quick"
    trials = load(quick, "quick").get_trials()
    folders = {t.number: sweep / t.user_attrs["folder"] for t in trials}
    files = {n: json.loads((f / "best_architecture.json").read_text()) for n, f in folders.items()}
    results = {n: (f["stats"]["val_acc"], f["stats"]["costs"]["ops"]) for n, f in files.items()}
    assert {t.number: tuple(t.values) for t in trials} == results
    rows = {r["trial"]: r for r in lightnas.report(sweep).rows}
    assert {n: (r["val_acc"], r["ops"]) for n, r in rows.items()} == results
    assert {n: r["best_epoch"] for n, r in rows.items()} == {
        n: f["stats"]["epoch"] for n, f in files.items()
    }
    app = create_app(Settings(root=quick / "sweeps"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        header = client.get("/sweep/quick").text
        data = client.get("/api/sweep/quick").json()
    number = {f"quick/{t.user_attrs['folder']}": t.number for t in trials}
    table = {number[t["path"]]: (t["val_acc"], t["ops"]) for t in data["trials"]}
    assert table == results
    best = max(acc for acc, _ in results.values())
    assert f'<span id="sweep-best">{percent(best)}</span>' in header
    assert data["summary"]["val_acc"] == best
    (study,) = data["studies"]
    assert {t["number"]: (t["values"]["val_acc"], t["values"]["ops"]) for t in study["trials"]} == (
        results
    )
    charts = data["accuracy_front"]
    assert {number[p["path"]]: (p["val_acc"], p["ops"]) for p in charts["points"]} == results
    objectives = study["objective_front"]
    assert {t["number"]: tuple(t["values"]) for t in objectives["trials"]} == results
    assert sorted(number[p] for p in charts["front"]["paths"]) == objectives["front"]


def test_rerun_resumes_without_running_a_trial_twice(tmp_path, capsys):
    write_base(tmp_path, epochs=1)
    params = {"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}
    path = write_sweep(tmp_path, name="again", parameters=params, n_trials=1)
    assert main(["sweep", "-c", str(path)]) == 0
    trials = tmp_path / "sweeps" / "again" / "trials"
    first = (trials / "trial_0000" / "log.txt").read_text()
    assert main(["sweep", "-c", str(path)]) == 0  # nothing left to do
    assert main(["sweep", "-c", str(path), "--n-trials", "2"]) == 0  # one more
    assert sorted(p.name for p in trials.iterdir()) == ["trial_0000", "trial_0001"]
    assert (trials / "trial_0000" / "log.txt").read_text() == first
    assert [t.state for t in load(tmp_path, "again").trials] == [TrialState.COMPLETE] * 2
    capsys.readouterr()
    # the same name with another sweep: refused, nothing touched
    changed = write_sweep(tmp_path, name="again", parameters={"optim.lr": [0.001]}, n_trials=3)
    assert main(["sweep", "-c", str(changed)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "differs in parameters" in err
    assert len(load(tmp_path, "again").trials) == 2


def test_median_pruner_stops_a_trial_far_below_the_others(tmp_path):
    # target_cost 1 op makes the reward acc * (OPs / 1) ** -1, about 1e-5 instead of about acc
    write_base(tmp_path, epochs=2, search={"cost_weight": -1.0})
    normal, cheap = {"search.target_cost": None}, {"search.target_cost": 1.0}
    path = write_sweep(
        tmp_path,
        name="pruned",
        parameters={"search.target_cost": [None, 1.0]},
        objectives="reward",
        n_trials=3,
        sampler="random",
        pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        enqueue=[normal, normal, cheap],
    )
    study = lightnas.sweep(path)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2 + [TrialState.PRUNED]
    assert [t.params for t in study.trials] == [normal, normal, cheap]
    run = tmp_path / "sweeps" / "pruned" / "trials" / "trial_0002"
    assert [r["epoch"] for r in metrics(run)] == [1]  # stopped after its first epoch
    assert (
        status(run)["state"] == "pruned"
        and "pruned by the sweep at epoch 1" in status(run)["reason"]
    )
    assert (run / "enas_checkpoint" / "last.pt").is_file()
    pruned = study.trials[2].intermediate_values
    assert list(pruned) == [1] and pruned[1] < 0.01 < study.trials[0].intermediate_values[1]
    for trial in study.trials[:2]:
        assert list(trial.intermediate_values) == [1, 2]


def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    write_base(tmp_path, epochs=1, data={"data_dir": str(tmp_path / "no_data")})
    path = write_sweep(
        tmp_path,
        name="failing",
        parameters={"data.dataset": ["mock", "cifar10"]},
        n_trials=2,
        enqueue=[{"data.dataset": "cifar10"}, {"data.dataset": "mock"}],
    )
    assert main(["sweep", "-c", str(path)]) == 0
    failed, done = load(tmp_path, "failing").trials
    assert failed.state == TrialState.FAIL and done.state == TrialState.COMPLETE
    assert "cifar10 not found" in failed.user_attrs["error"]
    assert "trial 0: failed: cifar10 not found" in (tmp_path / "sweeps/failing/log.txt").read_text()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "sweeps" / "failing")]) == 0
    assert "trial 0 failed: cifar10 not found" in capsys.readouterr().out


def test_an_nni_search_space_gives_the_same_trials_as_the_sweep_file(tmp_path):
    write_base(tmp_path, epochs=1)
    nni = {
        "optim.optimizer": {"_type": "choice", "_value": ["adam", "sgd"]},
        "search.controller_steps": {"_type": "randint", "_value": [1, 4]},
        "search.cost_weight": {"_type": "uniform", "_value": [-0.5, 0]},
        "optim.lr": {"_type": "loguniform", "_value": [0.001, 0.01]},
        "controller.entropy_weight": {"_type": "quniform", "_value": [0, 0.01, 0.005]},
    }
    ours = {
        "optim.optimizer": ["adam", "sgd"],
        "search.controller_steps": {"type": "int", "low": 1, "high": 3},
        "search.cost_weight": {"type": "float", "low": -0.5, "high": 0.0},
        "optim.lr": {"type": "float", "low": 0.001, "high": 0.01, "log": True},
        "controller.entropy_weight": {"type": "float", "low": 0.0, "high": 0.01, "step": 0.005},
    }
    (tmp_path / "search_space.json").write_text(json.dumps(nni))
    common = {"n_trials": 2, "sampler": "tpe", "seed": 7}
    a = lightnas.sweep(write_sweep(tmp_path, "a.yml", parameters="search_space.json", **common))
    b = lightnas.sweep(write_sweep(tmp_path, "b.yml", parameters=ours, **common))
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert len({t.params["optim.lr"] for t in a.trials}) == 2
    assert [t.values for t in a.trials] == [t.values for t in b.trials]
    assert [t.user_attrs["overrides"] for t in a.trials] == [t.params for t in b.trials]


def retrain_sweep(folder: Path, search: Path, name: str, parameters: dict, **fields) -> Path:
    """A two-trial sweep file retraining `search`'s architecture with `parameters`."""
    return write_sweep(folder, name=name, base=str(search), mode="retrain", parameters=parameters,
                       objectives="val_acc", n_trials=2, **fields)  # fmt: skip


def test_retrain_mode_retrains_one_architecture_with_each_trials_settings(quick, tmp_path):
    search = quick / "sweeps" / "quick" / "trials" / "trial_0001"
    overrides = {"epochs": 1, "tracking.mlflow": None}
    lrs = {"optim.lr": [0.001, 0.01]}
    path = retrain_sweep(tmp_path, search, "retrains", lrs, overrides=overrides, sampler="grid")
    study = lightnas.sweep(path)
    assert sorted(t.params["optim.lr"] for t in study.trials) == [0.001, 0.01]
    searched = json.loads((search / "best_architecture.json").read_text())["architecture"]
    for trial in study.trials:
        run = tmp_path / "sweeps" / "retrains" / trial.user_attrs["folder"]
        retrained = json.loads((run / "architecture.json").read_text())
        assert retrained["choices"] == searched["choices"]
        assert retrained["source"]["search"] == str(search)
        config = yaml.safe_load((run / "config.yml").read_text())
        assert (
            config["search"]["strategy"] == "fixed"
            and config["optim"]["lr"] == trial.params["optim.lr"]
        )
        assert [r["epoch"] for r in metrics(run)] == [1]


def test_retrain_mode_refuses_a_sampling_rule_before_any_trial(quick, tmp_path, capsys):
    search = quick / "sweeps" / "quick" / "trials" / "trial_0001"
    sampling = {"search.sampling": ["uniform", "sandwich"]}
    path = retrain_sweep(tmp_path, search, "sandwiches", sampling)
    assert main(["sweep", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "search.sampling='uniform': strategy fixed trains only its own" in err, err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "sweeps").exists()


def test_ctrl_c_fails_the_running_trial_and_the_rerun_retries_it(tmp_path):
    write_base(tmp_path, epochs=2)
    params = {"optim.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}}
    path = write_sweep(tmp_path, name="stopped", parameters=params, n_trials=2)
    command = [sys.executable, "-m", "lightnas", "sweep", "-c", str(path)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    sweep = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = tmp_path / "sweeps" / "stopped" / "trials" / "trial_0000"
    deadline = time.monotonic() + 120
    while not (first / "metrics.jsonl").is_file():  # inside its run, after one epoch
        assert time.monotonic() < deadline and sweep.poll() is None
        time.sleep(0.05)
    sweep.send_signal(signal.SIGINT)
    out = sweep.communicate(timeout=120)[0].decode()
    assert sweep.returncode == 130, out
    assert "rerun the same command to resume" in out
    assert status(first)["state"] == "interrupted"
    (stopped, queued) = load(tmp_path, "stopped").trials
    assert stopped.state == TrialState.FAIL and "interrupted" in stopped.user_attrs["error"]
    assert queued.state == TrialState.WAITING and queued.user_attrs["retry_of"] == 0
    assert main(["sweep", "-c", str(path)]) == 0
    trials = load(tmp_path, "stopped").trials
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 2
    assert trials[1].params == stopped.params  # the retry ran with the same parameters
