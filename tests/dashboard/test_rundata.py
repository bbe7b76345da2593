"""A run's page data: curves, heat map, scatter with Pareto front and base network, downloads."""

import pytest
from helpers.dashboard import row

from lightnas.dashboard.rundata import charts, downloads, evaluated, heatmap, pareto_front, scatter
from lightnas.layout import TrainingFolder


def probs(p: float) -> dict:
    return {
        "stage1.block1.dense": {"conv3x3": p, "conv1x1": 1 - p},
        "stage1.block1.improvement": {"conv3x3": 0.5, "identity": 0.5},
    }


def test_charts_hold_every_curve_by_epoch_and_leave_out_empty_series():
    rows = [row(1, 0.5, 100), row(2, 0.6, 90, reward=0.7)]
    rows[1]["val_acc_sampled"] = 0.55
    by_id = {c["id"]: c for c in charts(rows)}
    assert list(by_id) == ["accuracy", "reward", "entropy", "cost"]
    acc = {t["name"]: t for t in by_id["accuracy"]["traces"]}
    assert acc["validation"] == {"name": "validation", "x": [1, 2], "y": [0.5, 0.6]}
    assert acc["validation (sampled)"]["x"] == [2]
    reward = {t["name"]: t["y"] for t in by_id["reward"]["traces"]}
    assert reward["controller reward"] == [None, 0.7]  # warm-up epochs have none
    assert by_id["cost"]["traces"][0]["y"] == [100, 90]
    assert by_id["entropy"]["traces"][0]["y"] == [1.0, 0.5]


def test_the_heat_map_has_one_line_per_choice_and_one_column_per_epoch():
    rows = [row(1, 0.5, 100), row(2, 0.6, 90, probabilities=probs(0.8))]
    rows.append(row(3, 0.7, 80, probabilities=probs(0.9)))
    heat = heatmap(rows)
    assert heat["epochs"] == [2, 3]
    assert heat["labels"] == [
        "stage1.block1.dense: conv3x3",
        "stage1.block1.dense: conv1x1",
        "stage1.block1.improvement: conv3x3",
        "stage1.block1.improvement: identity",
    ]
    assert heat["z"][0] == [0.8, 0.9] and heat["z"][1] == pytest.approx([0.2, 0.1])
    assert heatmap([row(1, 0.5, 100)]) == {"epochs": [], "labels": [], "z": []}


def test_the_pareto_front_keeps_what_nothing_cheaper_beats():
    points = [(100, 0.5), (90, 0.4), (120, 0.7), (110, 0.45), (130, 0.7), (90, 0.45)]
    assert pareto_front(points) == [(90, 0.45), (100, 0.5), (120, 0.7)]
    assert pareto_front([]) == []


def test_every_validated_architecture_is_a_point_and_the_base_network_is_marked():
    base_arch = {"stage1.block1.dense": "conv3x3", "stage1.block1.improvement": "conv3x3"}
    other = {"stage1.block1.dense": "conv1x1", "stage1.block1.improvement": "conv3x3"}
    r = row(1, 0.6, 80)
    r["val_acc_sampled"] = 0.7
    r["validated_costs"] = {
        "greedy": {"architecture": other, "ops": 80, "model_bits": 640},
        "sampled": {"architecture": base_arch, "ops": 100, "model_bits": 800},
    }
    best = {"base": {"architecture": base_arch, "ops": 100, "model_bits": 800}}
    sc = scatter([r, row(2, 0.65, 80)], best)
    assert [(p["epoch"], p["label"], p["val_acc"], p["ops"]) for p in sc["points"]] == [
        (1, "greedy", 0.6, 80),
        (1, "sampled", 0.7, 100),
        (2, "greedy", 0.65, 80),  # an older row without validated_costs: the chosen one
    ]
    assert sc["front"] == {"ops": [80, 100], "val_acc": [0.65, 0.7]}
    assert sc["base"]["ops"] == 100
    assert [(p["epoch"], p["label"]) for p in sc["base"]["points"]] == [(1, "sampled")]
    assert len(evaluated([r])) == 2


def test_downloads_list_exports_newest_first_then_the_runs_own_files(tmp_path):
    root = tmp_path
    folder = TrainingFolder(root / "r")
    inference = folder.exports / "inference_only"
    trainables = folder.exports / "trainables"
    inference.mkdir(parents=True)
    trainables.mkdir(parents=True)
    for name in ("epoch_2.pt2", "epoch_10.pt2", "epoch_10.onnx", "notes.md"):
        (inference / name).write_text("x")
    for name in ("epoch_10.safetensors", "epoch_10.json"):
        (trainables / name).write_text("y")
    folder.config.write_text("epochs: 10\n")
    folder.log.write_text("hello\n")
    files = downloads(root, folder)
    assert [(f["name"], f["kind"]) for f in files] == [
        ("epoch_10.onnx", "ONNX"),
        ("epoch_10.pt2", "pt2"),
        ("epoch_2.pt2", "pt2"),
        ("epoch_10.json", "JSON"),
        ("epoch_10.safetensors", "safetensors"),
        ("config.yml", "yml"),
        ("log.txt", "txt"),
    ]
    assert files[0]["path"] == "r/exported_models/inference_only/epoch_10.onnx"
    assert files[0]["size"] == 1
