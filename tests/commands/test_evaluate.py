"""lightnas evaluate: accuracy, costs and latency of an exported child, beside its base network."""

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml
from helpers.exports import random_arch
from helpers.runs import tiny_config
from torch import nn

from lightnas.cli import evaluate_main, main, search_main
from lightnas.commands.evaluate import accuracy, format_report, load_data_config
from lightnas.config import parse_config
from lightnas.errors import ConfigError
from lightnas.export import export_child, load_architecture, load_child
from lightnas.models import child, create_supernet
from lightnas.scoring.cost_metrics import count_costs

METRICS = ("top1", "top5", "params", "model_bits", "flops", "bops", "ops", "latency")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A finished one-epoch search on 10-class mock data (so top-5 is reported)."""
    root = tmp_path_factory.mktemp("evaluate")
    cfg = tiny_config(root, epochs=1, name="s", search={"strategy": "random"})
    cfg["data"]["num_classes"] = 10
    (root / "s.yml").write_text(yaml.safe_dump(cfg))
    assert search_main(["-c", str(root / "s.yml")]) == 0
    return root / "trainings" / "s"


def trainable(folder: Path) -> Path:
    return folder / "exported_models" / "trainables" / "epoch_1.safetensors"


def table_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith(("model:", "data:"))]


def test_evaluate_a_training_folder(folder, capsys):
    assert main(["evaluate", str(folder), "--latency-repeats", "3"]) == 0
    out = capsys.readouterr().out
    for label in ("top-1", "top-5", "params", "FLOPs", "BOPs", "OPs", "latency"):
        assert label in out
    assert all(len(line) <= 80 for line in table_lines(out))
    report = json.loads((folder / "evaluation.json").read_text())
    assert report["split"] == "test" and report["dataset"] == "mock"
    assert report["samples"] == 24  # mock's test set: a quarter of its 96 training samples
    row = report["results"]["model"]
    assert set(METRICS) <= row.keys() and row["trained"]
    assert 0 <= row["top1"] <= row["top5"] <= 1
    assert row["latency"] > 0
    net = load_child(trainable(folder))
    costs = count_costs(net, (3, 8, 8))
    assert row["ops"] == costs.ops and row["params"] == costs.params
    assert (row["flops"], row["bops"], row["model_bits"]) == (
        costs.flops,
        costs.bops,
        costs.model_bits,
    )
    assert report["architecture"] == dict(load_architecture(trainable(folder)))


def test_a_folder_whose_export_formats_need_a_missing_extra_is_evaluated(
    folder, tmp_path, monkeypatch
):
    """The config is read for its data and model: a search that exported ONNX (or .tflite, the
    `deploy` extra, in a virtualenv of its own) is evaluated or deployed where that extra is not."""
    config = yaml.safe_load((folder / "config.yml").read_text())
    config["export"]["formats"] = ["pt2", "onnx"]
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the onnx extra were not installed
    with pytest.raises(ConfigError, match="'onnx' needs the `onnx` extra"):
        parse_config(["--config", str(path)])
    cfg = load_data_config(path, None)
    assert cfg.export.formats == [] and cfg.data.num_classes == 10


def base_export(folder: Path, out_dir: Path) -> Path:
    """A 'trained' base network exported like a retrain would."""
    info = json.loads(trainable(folder).with_suffix(".json").read_text())["model"]
    supernet = create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )
    arch = supernet.space.default()
    export_child(child(supernet, arch).eval(), arch, info, out_dir, "epoch_1", formats=())
    return out_dir / "trainables" / "epoch_1.safetensors"


def test_compare_base_shows_both_columns(folder, tmp_path, capsys):
    out_json = tmp_path / "eval.json"
    args = [str(folder), "--compare-base", "--latency-repeats", "2", "-o", str(out_json)]
    assert evaluate_main(args) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if "model" in line and "base" in line)
    assert header.split() == ["model", "base"]
    assert "untrained" in out
    report = json.loads(out_json.read_text())
    base = report["results"]["base"]
    assert not base["trained"] and base["top1"] is None and base["top5"] is None
    info = json.loads(trainable(folder).with_suffix(".json").read_text())["model"]
    supernet = create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )
    assert base["ops"] == count_costs(child(supernet, supernet.space.default()), (3, 8, 8)).ops
    # trained base weights add its accuracy
    weights = base_export(folder, tmp_path / "base")
    assert evaluate_main([*args, "--base", str(weights)]) == 0
    base = json.loads(out_json.read_text())["results"]["base"]
    assert base["trained"] and 0 <= base["top1"] <= 1 and base["weights"] == str(weights)


def test_evaluate_an_exported_model(folder, tmp_path, capsys):
    path = trainable(folder)
    fast = ["--latency-repeats", "2"]
    assert evaluate_main([str(path.with_suffix(".json")), "--split", "val", *fast]) == 0
    report = json.loads(path.with_name("epoch_1.evaluation.json").read_text())
    assert report["split"] == "val" and report["samples"] == 32  # data.val_size
    # outside its training folder the data comes from --config
    copy = tmp_path / "epoch_1.safetensors"
    shutil.copy(path, copy)
    shutil.copy(path.with_suffix(".json"), copy.with_suffix(".json"))
    assert evaluate_main([str(copy)]) == 2
    assert "--config" in capsys.readouterr().err
    assert evaluate_main([str(copy), "-c", str(folder / "config.yml"), *fast]) == 0
    assert (tmp_path / "epoch_1.evaluation.json").is_file()


def test_accuracy_counts_top1_and_top5_only_beyond_five_classes():
    logits = torch.tensor([[9.0, 8, 7, 6, 5, 4, 0], [0, 1, 2, 3, 4, 5, 9], [9, 5, 4, 3, 2, 1, 0]])
    identity = nn.Linear(7, 7, bias=False)
    identity.weight.data = torch.eye(7)
    loader = [(logits[:2], torch.tensor([0, 2])), (logits[2:], torch.tensor([6]))]
    scores = accuracy(identity, loader, 7)
    # top-1: only the first row; top-5: also the second (class 2 is its 5th largest logit)
    assert scores["samples"] == 3
    assert scores["top1"] == pytest.approx(1 / 3) and scores["top5"] == pytest.approx(2 / 3)
    assert accuracy(nn.Linear(7, 4), [(logits, torch.tensor([0, 1, 2]))], 4)["top5"] is None


def test_report_without_top5_has_no_top5_row():
    row = dict.fromkeys(METRICS, 1.0)
    report = {
        "model": "m",
        "dataset": "mock",
        "split": "test",
        "samples": 1,
        "device": "cpu",
        "latency_batch_size": 1,
        "num_classes": 4,
        "results": {"model": row},
        "notes": [],
    }
    text = format_report(report)
    assert "top-1" in text and "top-5" not in text


def export_not_base(folder: Path, out_dir: Path) -> Path:
    """An exported child of the folder's model whose architecture is not the base network."""
    info = json.loads(trainable(folder).with_suffix(".json").read_text())["model"]
    supernet = create_supernet(
        info["name"], info["num_classes"], info["stem"], info["search_space"], **info["kwargs"]
    )
    arch = random_arch(supernet.space, seed=0)
    return export_child(child(supernet, arch), arch, info, out_dir, "epoch_1", formats=[])[
        "safetensors"
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/missing"], "no training folder or exported model"),
        (["{tmp}"], "not a training folder"),
        (["{empty}"], "no exported child"),
        (["{folder}", "--epoch", "9"], "epoch 9 was not exported"),
        (["{folder}", "--split", "train"], "invalid choice"),
        (["{folder}", "--base", "{tmp}/none"], "no training folder or exported model"),
        (["{folder}", "--base", "{not_base}"], "not the base network"),
        (["{folder}", "--device", "tpu"], "device='tpu' is not valid; valid: auto, cpu"),
        (["{folder}", "-o", "{tmp}"], "is a folder; give a JSON file path"),
        (["{folder}", "-o", "{trainable}/x.json"], "--output: "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(folder, tmp_path, capsys, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(folder / "config.yml", empty / "config.yml")
    values = {"tmp": tmp_path, "empty": empty, "folder": folder, "trainable": trainable(folder)}
    values["not_base"] = export_not_base(folder, tmp_path / "not_base")
    assert evaluate_main([a.format(**values) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err, err
