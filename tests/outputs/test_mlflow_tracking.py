"""tracking.mlflow: a search's (and a retrain's) params, per-epoch metrics and artefacts, read back
through MLflow's own client from a local file store; a resumed run continues its MLflow run."""

import json

import pytest
from mlflow.tracking import MlflowClient

from lightnas.cli import main, retrain_main, search_main
from lightnas.config import parse_config
from lightnas.layout import TrainingFolder
from lightnas.outputs.mlflow_tracking import (
    MLflowLogger,
    artifact_location,
    flatten,
    uses_file_store,
)
from lightnas.run.parts import standard_callbacks

pytestmark = pytest.mark.slow


def test_search_and_retrain_are_readable_back_through_mlflow(write_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = (tmp_path / "mlruns").as_uri()
    cfg = write_config(tracking={"mlflow": store, "experiment": "tiny-exp"}, optim={"lr": 0.004})
    assert search_main(["-c", str(cfg)]) == 0
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("tiny-exp")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "tiny" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["optim.lr"] == "0.004" and params["epochs"] == "2"
    assert json.loads(params["search_space"]) is None and params["model.name"] == '"meliusnet_flex"'
    folder = tmp_path / "trainings" / "tiny"
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    for key in ("val_acc", "reward", "train_loss", "ops"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r[key]) for r in rows]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yml", "metrics.jsonl", "best_architecture.json", "exported_models"} <= artifacts
    exported = {a.path for a in client.list_artifacts(run.info.run_id, "exported_models")}
    assert exported == {"exported_models/trainables"}
    # a retrain of it is a run of its own in the same experiment
    assert retrain_main([str(folder), "--epochs", "1"]) == 0
    names = {r.info.run_name for r in client.search_runs([experiment.experiment_id])}
    assert names == {"tiny", "tiny_retrain"}
    assert not (tmp_path / "configs").exists() or not any((tmp_path / "configs").iterdir())


def test_a_resumed_search_logs_into_the_same_mlflow_run(
    write_config, tmp_path, interrupt_after_first_checkpoint
):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = write_config(tracking={"mlflow": store})
    with interrupt_after_first_checkpoint():
        assert search_main(["-c", str(cfg)]) == 130
    folder = tmp_path / "trainings" / "tiny"
    first = json.loads((folder / "mlflow_run.json").read_text())["run_id"]
    assert search_main(["--resume", str(folder)]) == 0
    assert json.loads((folder / "mlflow_run.json").read_text())["run_id"] == first
    client = MlflowClient(tracking_uri=store)
    assert [m.step for m in client.get_metric_history(first, "val_acc")] == [1, 2]
    assert client.get_run(first).info.status == "FINISHED"
    assert len(client.search_runs([client.get_experiment_by_name("lightnas").experiment_id])) == 1
    # artefacts beside the database, not in the working folder's ./mlruns
    assert client.get_run(first).info.artifact_uri.startswith((tmp_path / "mlartifacts").as_uri())


def test_an_unusable_tracking_uri_is_one_line(write_config, tmp_path, capsys):
    cfg = write_config(tracking={"mlflow": "nosuchscheme://x"})
    assert main(["search", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: tracking.mlflow='nosuchscheme://x' cannot be used") and (
        err.count("\n") == 1
    )


def test_mlflow_is_off_by_default(write_config, tmp_path):
    cfg = parse_config(["-c", str(write_config())])[0]
    assert cfg.tracking.mlflow is None
    callbacks = standard_callbacks(cfg, TrainingFolder(tmp_path), {})
    assert not any(isinstance(c, MLflowLogger) for c in callbacks)


def test_helpers():
    assert dict(flatten({"a": {"b": 1, "kwargs": {"c": 2}}, "search_space": {"x": [1]}})) == {
        "a.b": 1,
        "a.kwargs": {"c": 2},
        "search_space": {"x": [1]},
    }
    assert uses_file_store("file:///tmp/m") and uses_file_store("./mlruns")
    assert not uses_file_store("sqlite:///m.db") and not uses_file_store("http://h:5000")
    assert artifact_location("sqlite:////data/m.db") == "file:///data/mlartifacts"
    assert artifact_location("http://h:5000") is None
