"""Smoke tests of benchmarks/deploy.py (sizes and timings of a base network's .tflite files) and
benchmarks/deploy_exactness.py (a full-size network's .tflite against PyTorch)."""

import importlib.util
import json

import deploy_exactness
import numpy as np
import pytest
import torch
from helpers import ROOT

from lightnas.deploy.convert import convert_child, run_tflite


def load_deploy_benchmark():
    """benchmarks/deploy.py, loaded from its path: `import deploy` finds the tests' package."""
    spec = importlib.util.spec_from_file_location("deploy_bench", ROOT / "benchmarks" / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_deploy_benchmark_sizes_a_base_network(capsys):
    result = load_deploy_benchmark().main(
        ["--models", "resnet18", "--sizes", "cifar100", "--repeats", "1"]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == json.loads(json.dumps(result))
    assert "not deployment figures" in lines[-2] or "ARM64" in lines[-2]
    (row,) = result["results"]
    assert row["lce_bconv_ops"] == row["binary_convs"] == 16  # ResNet-18: 8 blocks x 2 convs
    # 1-bit weights: the LCE file is the model size (bits / 8), the float one ~20 times larger
    assert abs(row["lce_vs_model"] - 1) <= 0.15
    assert abs(row["lce_weights_vs_model"] - 1) <= 0.15
    parts = row["lce_weight_bytes"] + row["lce_graph_bytes"] + row["lce_metadata_bytes"]
    assert parts == row["lce_tflite_bytes"]
    assert 0 < row["lce_graph_bytes"] < 0.02 * row["lce_tflite_bytes"]
    assert row["float_tflite_bytes"] > 15 * row["lce_tflite_bytes"]
    assert row["lce_ms"] > 0 and row["float_ms"] > 0


@pytest.mark.slow
def test_exactness_benchmark_agrees_with_running_the_tflite(capsys):
    result = deploy_exactness.main(["--models", "resnet18", "--seeds", "0", "--images", "4"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result
    (row,) = result["results"]
    # the same images and network, converted and run here
    net = deploy_exactness.base_child("resnet18", 0)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    got = run_tflite(convert_child(net, (3, 32, 32)).flatbuffer, x.numpy())
    with torch.no_grad():
        expected = net(x).numpy()
    assert row["tflite"]["same_top1"] == (got.argmax(1) == expected.argmax(1)).mean()
    close = np.abs(got - expected).max(1) <= 1e-5 * np.abs(expected).max(1)
    assert row["tflite"]["within_tolerance"] == close.mean()


@pytest.mark.slow
def test_first_divergence_is_the_first_block_whose_output_differs():
    """A network whose .tflite is perturbed from block 2 on: the bisection names block 2."""
    net = deploy_exactness.base_child("resnet18", 0)
    with torch.no_grad():
        net.body[2].bn2.bias.add_(1.0)  # PyTorch's network only: the .tflite is built from
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    twin = deploy_exactness.base_child("resnet18", 0)
    found = deploy_exactness.first_divergence(twin, image, reference=net)
    assert found["block"] == 2 and found["blocks"] == len(net.body)
    assert found["module"] == "BasicBlock"
    assert found["tflite_error_before"] < 1e-5 and found["torch_error_before"] < 1e-5
