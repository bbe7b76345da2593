"""Smoke test of benchmarks/deploy.py: sizes and timings of a base network's .tflite files."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
def test_deploy_benchmark_sizes_a_base_network(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it reads packed_size's network sizes
    spec = importlib.util.spec_from_file_location("deploy_bench", BENCHMARKS / "deploy.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--models", "resnet18", "--sizes", "cifar100", "--repeats", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == json.loads(json.dumps(result))
    assert "not deployment figures" in lines[-2] or "ARM64" in lines[-2]
    (row,) = result["results"]
    assert row["lce_bconv_ops"] == row["binary_convs"] == 16  # ResNet-18: 8 blocks x 2 convs
    # 1-bit weights: the LCE file is the model size (bits / 8), the float one ~20 times larger
    assert abs(row["lce_vs_model"] - 1) <= 0.15
    assert row["float_tflite_bytes"] > 15 * row["lce_tflite_bytes"]
    assert row["lce_ms"] > 0 and row["float_ms"] > 0
