"""Smoke test of benchmarks/supernet_overhead.py's space-file rows: they run with tiny arguments
and end with one JSON line holding the documented keys."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "supernet_overhead.py"


@pytest.mark.slow
def test_space_file_rows_of_the_overhead_benchmark(capsys):
    spec = importlib.util.spec_from_file_location("supernet_overhead", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--only", "graph", "--device", "cpu", "--batch", "2", "--image-size", "16"]
    rows = bench.main([*argv, "--repeats", "1"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == {"benchmark": "supernet_overhead", "results": rows}
    assert [r["model"] for r in rows] == ["meliusnet22.yml", "bireal18_kernels.yml"]
    for r in rows:
        assert r["compared"] == "space file / built-in" and r["image_size"] == 16
        assert r["ratio"] == pytest.approx(r["a_s"] / r["b_s"]) and r["ratio"] > 0
