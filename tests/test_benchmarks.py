"""Smoke tests of the benchmark scripts: each main runs with tiny arguments and ends with one JSON
line holding the documented keys."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def last_json_line(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 3, lines  # a header, at least one row, the JSON line
    return json.loads(lines[-1])


def test_search_throughput_smoke(capsys):
    bench = load("search_throughput")
    result = bench.main(
        [
            "--device", "cpu", "--models", "resnet18", "--batch", "2", "--steps", "1",
            "--warmup", "0", "--controller-steps", "2", "--controller-timed", "1",
        ]
    )  # fmt: skip
    printed = last_json_line(capsys)
    assert printed["benchmark"] == "search_throughput"
    assert printed["results"] == json.loads(json.dumps(result["results"]))
    (row,) = printed["results"]
    for key in (
        "model", "device", "batch", "search_step_s", "search_img_s", "child_step_s",
        "child_img_s", "search_vs_child", "controller_step_s", "controller_phase_s",
        "search_epoch_s", "epoch_incl_controller_s", "child_epoch_s",
    ):  # fmt: skip
        assert key in row, key
    assert row["model"] == "resnet18" and row["batch"] == 2
    assert row["search_step_s"] > 0 and row["child_step_s"] > 0
    assert row["controller_phase_s"] == pytest.approx(2 * row["controller_step_s"])
    steps = bench.EPOCH_IMAGES // 2
    assert row["epoch_incl_controller_s"] == pytest.approx(
        steps * row["search_step_s"] + row["controller_phase_s"]
    )


@pytest.mark.slow
def test_search_quality_quick(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    bench = load("search_quality")
    result = bench.main(["--quick", "--jobs", "1"])
    printed = last_json_line(capsys)
    assert printed["benchmark"] == "search_quality" and printed["summary"] == json.loads(
        json.dumps(result["summary"])
    )
    strategies = {r["strategy"] for r in printed["results"]}
    assert strategies == {"enas", "random", "evolution", "base"}
    assert len(printed["results"]) == 3 * 2 + 1  # 2 search seeds each, and the base network
    for row in printed["results"]:
        assert 0.0 <= row["test_acc"] <= 1.0 and row["ops"] > 0
    base = next(r for r in printed["results"] if r["strategy"] == "base")
    assert set(base["arch"]) == {"0"} and base["reward"] == pytest.approx(base["test_acc"])
    assert {"enas - random (reward)", "enas - base (test_acc)"} <= set(printed["summary"]["paired"])
    assert list(tmp_path.iterdir()) == []


def test_packed_size_smoke(capsys):
    bench = load("packed_size")
    result = bench.main(["--model", "meliusnet_flex", "--sizes", "cifar100"])
    printed = last_json_line(capsys)
    assert printed == json.loads(json.dumps(result))
    (row,) = printed["results"]
    assert row["outputs_equal"] and row["compression"] > 1
    assert abs(row["packed_vs_model"] - 1) < 0.1


@pytest.mark.slow
def test_ranking_quick(capsys, tmp_path):
    report = load("ranking").main(["--quick", "--jobs", "1", "--cache", str(tmp_path / "c.json")])
    assert set(report["kendall_tau"]) == {"enas", "enas-sandwich"}
    assert all(-1 <= t <= 1 for t in report["kendall_tau"].values())
    assert -1 <= report["ops_only_tau"] <= 1 and set(report["reward_noise"]) >= {
        "batch BN, 1 batch",
        "recal. 1 train batch, whole split",
    }
    out = last_json_line(capsys)
    assert out["kendall_tau"] == report["kendall_tau"]
    assert len(json.loads((tmp_path / "c.json").read_text())) == 8  # 4 archs x 2 seeds
