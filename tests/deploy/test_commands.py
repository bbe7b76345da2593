"""End to end: a digits search exports final.tflite, `lightnas deploy` converts, verifies and
times a trained child, `lightnas latency-table --engine lce` writes a table a search uses."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers.runs import tiny_config

from lightnas.binary import QConv2d
from lightnas.cli import main
from lightnas.commands.evaluate import build_eval_data, load_data_config
from lightnas.deploy.convert import (
    BCONV_OP,
    file_parts,
    interpreter,
    op_counts,
    read_metadata,
    run_tflite,
)
from lightnas.export import export_child, find_trainable, load_child, model_info
from lightnas.layout import TrainingFolder
from lightnas.models import child, create_supernet
from lightnas.scoring.cost_metrics import count_costs
from lightnas.scoring.latency import REMOVED, LatencyTable

DIGITS = {
    "model": {
        "name": "meliusnet_flex",
        "stem": "thumbnail",
        "kwargs": {"block_config": [1, 1], "growth_rate": 16, "init_features": 32},
    },
    "data": {
        "dataset": "digits",
        "image_size": 8,
        "val_size": 0.15,
        "batch_size": 64,
        "num_samples": None,
        "num_classes": None,
    },
    "optim": {"optimizer": "adam", "lr": 0.003},
    "export": {"formats": ["tflite"], "every": 0},
    "epochs": 4,
}


@pytest.fixture(scope="module")
def digits_search(tmp_path_factory) -> Path:
    """A small digits search exporting .tflite files (trained to well above chance)."""
    tmp = tmp_path_factory.mktemp("digits")
    config = tmp / "digits.yml"
    config.write_text(yaml.safe_dump(tiny_config(tmp, **DIGITS, name="digits")))
    assert main(["search", "-c", str(config)]) == 0
    return tmp / "trainings" / "digits"


def binary_convs(net) -> int:
    return sum(isinstance(m, QConv2d) and m.is_binary for m in net.modules())


@pytest.mark.slow
@pytest.mark.e2e
def test_search_exports_final_tflite_with_one_bconv_per_binary_conv(digits_search):
    inference = TrainingFolder(digits_search).exports / "inference_only"
    final = inference / "final.tflite"
    assert final.is_file() and sorted(p.name for p in inference.iterdir()) == [
        f"epoch_{DIGITS['epochs']}.tflite",
        "final.tflite",
    ]
    net = load_child(find_trainable(digits_search))
    flatbuffer = final.read_bytes()
    assert op_counts(flatbuffer)[BCONV_OP] == binary_convs(net) > 0
    metadata = read_metadata(flatbuffer)
    assert metadata["model"]["input_shape"] == [3, 8, 8] and metadata["float_fallback"] == []


@pytest.mark.slow
@pytest.mark.e2e
def test_deploy_verifies_a_trained_digits_child_and_times_it(digits_search, tmp_path, capsys):
    out = tmp_path / "child.tflite"
    argv = ["deploy", str(digits_search), "-o", str(out), "--verify", "--benchmark"]
    assert main([*argv, "--repeats", "3", "--warmup", "1"]) == 0
    printed = capsys.readouterr().out
    net = load_child(find_trainable(digits_search))
    flatbuffer = out.read_bytes()
    # the sizes it prints, against the file read back and the child's own model size
    parts = file_parts(flatbuffer)
    model_bytes = count_costs(net, read_metadata(flatbuffer)["model"]["input_shape"]).model_bits / 8
    wrote = re.search(
        r"\(([\d.]+) kB: weights ([\d.]+) kB for a model of ([\d.]+) kB in bits / 8, graph "
        r"([\d.]+) kB, metadata ([\d.]+) kB\)",
        printed,
    )
    assert wrote, printed
    expected = (len(flatbuffer), parts.weights, model_bytes, parts.graph, parts.metadata)
    assert [float(v) for v in wrote.groups()] == [round(v / 1e3, 1) for v in expected]
    assert parts.weights + parts.graph + parts.metadata == len(flatbuffer)
    # the child's weights: float parameters at 32 bits and sign bits packed in 32-bit words
    assert model_bytes < parts.weights <= 1.15 * model_bytes
    assert f"{binary_convs(net)} LCE binary conv ops for the child's {binary_convs(net)}" in printed
    # the test split, run here independently of the command
    data = build_eval_data(load_data_config(TrainingFolder(digits_search).config, None), "cpu")
    images = torch.cat([x for x, _ in data.test])
    labels = torch.cat([y for _, y in data.test]).numpy()
    with torch.no_grad():
        expected = net(images).numpy()
    got = run_tflite(interpreter(flatbuffer), images.numpy())
    same = (got.argmax(1) == expected.argmax(1)).mean()
    acc_torch, acc_tflite = (expected.argmax(1) == labels).mean(), (got.argmax(1) == labels).mean()
    assert len(labels) == 359 and acc_torch > 0.3  # trained: chance is 0.1
    assert same >= 0.995 and abs(acc_torch - acc_tflite) <= 0.002
    pattern = r"verify: (\d+) images; same top-1 on ([\d.]+)%; accuracy PyTorch ([\d.]+)%"
    line = re.search(pattern, printed)
    assert line and int(line[1]) == len(labels)
    assert float(line[2]) == pytest.approx(100 * same, abs=0.005)
    assert float(line[3]) == pytest.approx(100 * acc_torch, abs=0.005)
    assert "not a deployment figure" in printed and "ms per image (median of 3" in printed


@pytest.mark.slow
def test_deploy_refuses_k_bit_layers_unless_fallback_float(tmp_path, capsys):
    kwargs = {"layers": [1, 1], "width": 8}
    space = {"bits": [2, 1]}
    supernet = create_supernet("resnet18", 4, "thumbnail", space, **kwargs)
    arch = supernet.space.default()  # 2 bits everywhere
    info = model_info("resnet18", 4, "thumbnail", space, kwargs, [3, 8, 8])
    paths = export_child(child(supernet, arch), arch, info, tmp_path / "exports", "k", [])
    out = tmp_path / "k.tflite"
    assert main(["deploy", str(paths["safetensors"]), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "k-bit layers" in err and "body.1.conv2 (2/2 bits)" in err
    assert not out.exists()
    assert main(["deploy", str(paths["safetensors"]), "-o", str(out), "--fallback", "float"]) == 0
    captured = capsys.readouterr()
    assert "warning: k-bit convs kept as float convs" in captured.err
    assert "0 LCE binary conv ops for the child's 0 1-bit convs; float fallback: 4" in captured.out
    assert len(read_metadata(out.read_bytes())["float_fallback"]) == 4


def test_deploy_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "x.tflite"
    assert main(["deploy", str(tmp_path / "missing"), "-o", str(out)]) == 2
    assert main(["deploy", str(tmp_path), "-o", str(tmp_path / "x.onnx")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and ".tflite file path" in errors[1]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.e2e
def test_lce_latency_table_round_trip_and_a_search_using_it(tmp_path, write_config, capsys):
    config = write_config("tiny.yml")
    table_path = tmp_path / "lce_table.csv"
    argv = ["latency-table", "--engine", "lce", str(config), "-o", str(table_path)]
    assert main([*argv, "--repeats", "3", "--warmup", "1"]) == 0
    printed = capsys.readouterr().out
    cfg = yaml.safe_load(config.read_text())
    space = create_supernet(
        cfg["model"]["name"], num_classes=4, stem=cfg["model"]["stem"], **cfg["model"]["kwargs"]
    ).space
    table = LatencyTable.read_csv(table_path, space)  # the format search.latency_table.csv reads
    entries = list(table.entries.values())
    assert len(entries) == sum(len(p.choices) for p in space)
    removed = [e for e in entries if e.choice == "identity"]
    assert removed and all(e.seconds == 0 and e.source == REMOVED for e in removed)
    measured = [e for e in entries if e.choice != "identity"]
    assert all(e.seconds > 0 and e.source.startswith("LCE interpreter") for e in measured)
    base_ms = table.latency(space.default()) * 1e3
    assert f"{base_ms:.4g} ms" in printed
    # a search against the table: the folder keeps it, and its rewards use its latencies
    search = write_config(
        "search.yml",
        search={"cost": "latency_table", "latency_table": {"csv": str(table_path)}},
        epochs=1,
        name="uses_table",
    )
    assert main(["search", "-c", str(search)]) == 0
    folder = TrainingFolder(tmp_path / "trainings" / "uses_table")
    assert LatencyTable.read_csv(folder.latency_table, space).entries == table.entries
    row = json.loads(folder.metrics.read_text().splitlines()[-1])
    assert np.isclose(row["cost"], table.latency(row["architecture"]))


def test_without_the_extra_tflite_and_deploy_are_one_line_naming_it(
    write_config, monkeypatch, capsys
):
    # as if Larq were not installed: the deploy modules imported so far are imported again
    for name in [m for m in sys.modules if m.startswith("lightnas.deploy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "larq", None)
    config = write_config(export={"formats": ["pt2", "tflite"]})
    assert main(["search", "-c", str(config)]) == 2
    assert main(["deploy", "anything"]) == 2
    assert main(["latency-table", str(config), "-o", str(config.with_suffix(".csv"))]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3
    assert errors[0].startswith(
        "error: export.formats: 'tflite' needs the `deploy` extra (larq is not installed)"
    )
    assert "needs the `deploy` extra (larq): pip install 'lightnas[deploy]'" in errors[1]
    assert errors[2] == errors[1]
    assert not (config.parent / "trainings").exists()
    assert not config.with_suffix(".csv").exists()
