"""Smoke tests of the benchmark scripts: each main runs with tiny arguments and ends with one JSON
line holding the documented keys."""

import importlib.util
import json
import sys

import pytest
from helpers import ROOT

from lightnas.config import SearchConfig

BENCHMARKS = ROOT / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def last_json_line(capsys) -> dict:
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 3, lines  # a header, at least one row, the JSON line
    return json.loads(lines[-1])


def test_search_throughput_smoke(capsys, tmp_path):
    bench = load("search_throughput")
    argv = [
        "--device", "cpu", "--models", "resnet18", "--batch", "2", "--steps", "1",
        "--warmup", "0", "--controller-steps", "2", "--controller-timed", "1",
    ]  # fmt: skip
    result = bench.main(argv)
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
    # by default the search's own training rule: the enas strategy's sandwich
    assert row["sampling"] == "sandwich"
    assert row["children_per_step"] == 2 + SearchConfig.sandwich_k
    assert row["search_step_s"] > 0 and row["child_step_s"] > 0
    assert row["controller_phase_s"] == pytest.approx(2 * row["controller_step_s"])
    steps = bench.EPOCH_IMAGES // 2
    assert row["epoch_incl_controller_s"] == pytest.approx(
        steps * row["search_step_s"] + row["controller_phase_s"]
    )
    if sys.platform == "linux":  # the process's peak resident memory during a step
        assert row["peak_memory_of"] == "process resident"
        assert 50 < row["peak_memory_mb"] < 64_000

    # an earlier run's output as the baseline: the same memory passes, a smaller baseline fails
    earlier = tmp_path / "earlier.txt"
    earlier.write_text("table\n" + json.dumps(printed) + "\n")
    bench.main([*argv, "--baseline", str(earlier), "--memory-tolerance", "0.5"])
    smaller = {**printed, "results": [{**row, "peak_memory_mb": row["peak_memory_mb"] / 4}]}
    earlier.write_text(json.dumps(smaller) + "\n")
    with pytest.raises(SystemExit) as exit_:
        bench.main([*argv, "--baseline", str(earlier)])
    assert exit_.value.code == 1
    assert "peak memory regression: model=resnet18 device=cpu batch=2" in capsys.readouterr().err


def test_memory_regressions_compare_rows_of_the_same_setting_only():
    bench = load("search_throughput")
    setting = {"model": "resnet18", "device": "cpu", "batch": 32, "channels_last": False}
    setting |= {"bf16": False, "compile": "none", "sampling": "controller"}
    before = [{**setting, "peak_memory_mb": 100.0}, {**setting, "batch": 64, "peak_memory_mb": 1}]
    grown = [{**setting, "peak_memory_mb": 111.0}]
    assert len(bench.memory_regressions(grown, before, 0.10)) == 1
    assert bench.memory_regressions(grown, before, 0.20) == []
    assert bench.memory_regressions([{**grown[0], "bf16": True}], before, 0.10) == []
    assert bench.memory_regressions([{**grown[0], "peak_memory_mb": None}], before, 0.10) == []


@pytest.mark.slow
def test_search_quality_quick(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    bench = load("search_quality")
    cache = tmp_path / "results.json"
    result = bench.main(["--quick", "--jobs", "1", "--cache", str(cache)])
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
    # a second run with the cache trains nothing and gives the same results
    for name in ("search", "retrain"):
        monkeypatch.setattr(bench, name, lambda *a, name=name: pytest.fail(f"{name} ran again"))
    again = bench.main(["--quick", "--jobs", "1", "--cache", str(cache)])
    assert again["results"] == result["results"]
    assert list(tmp_path.iterdir()) == [cache]


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
    noise = report["reward_noise"]  # a 1-batch reward varies from draw to draw, the split not
    assert noise["recal. 1 train batch, 1 batch"] > 0 == noise["recal. 1 train batch, whole split"]
    out = last_json_line(capsys)
    assert out["kendall_tau"] == report["kendall_tau"]
    cache = json.loads((tmp_path / "c.json").read_text())
    assert len([k for k in cache if not k.startswith("variant:")]) == 8  # 4 archs x 2 seeds
    assert len([k for k in cache if k.startswith("variant:")]) == 2  # 2 variants, 1 seed


@pytest.mark.slow
def test_pareto_smoke(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    bench = load("pareto")
    tiny = {"data.dataset": "mock", "data.num_samples": 128, "data.num_classes": 4}
    tiny |= {"data.image_size": 8, "data.val_size": 32, "search.controller_steps": 2}
    tiny |= {"search.num_val_samples": 2, "search.bn_recalibration_batches": 1}
    monkeypatch.setattr(bench, "OVERRIDES", tiny)
    bench.main(["--trials", "2", "--search-epochs", "1", "--retrain-epochs", "1", "--workers", "1"])
    printed = last_json_line(capsys)
    assert printed["benchmark"] == "pareto"
    assert [r["arm"] for r in printed["results"]] == ["sweep", "sweep", "random", "random"]
    for row in printed["results"]:
        assert 0.0 <= row["test_acc"] <= 1.0 and 0 < row["rel_ops"] <= 1.0 + 1e-9
    assert printed["base"]["rel_ops"] == pytest.approx(1.0)
    for arm in printed["summary"]:
        assert 0.0 <= arm["hypervolume"] <= 1.1 and arm["front"] >= 1
    assert list(tmp_path.iterdir()) == []


def test_pareto_hypervolume():
    bench = load("pareto")
    assert bench.front([(0.5, 0.9), (0.4, 0.95), (0.6, 1.0), (0.3, 0.5)]) == [
        (0.3, 0.5),
        (0.5, 0.9),
        (0.6, 1.0),
    ]
    # rectangles up to the reference cost 1.1: 0.3 * 0.4 + 0.5 * 0.1 + 0.6 * 0.1
    assert bench.hypervolume([(0.5, 0.9), (0.6, 1.0), (0.3, 0.5)]) == pytest.approx(0.23)
    assert bench.hypervolume([(0.9, 1.2)]) == 0.0  # beyond the reference point


def test_distributed_scaling_smoke(capsys, monkeypatch):
    bench = load("distributed_scaling")
    # its processes are spawned: they import the script by name, as the parent knows it
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setitem(sys.modules, "distributed_scaling", bench)
    result = bench.main(["--procs", "1", "2", "--steps", "1", "--warmup", "0", "--batch", "2"])
    printed = last_json_line(capsys)
    assert printed["benchmark"] == "distributed_scaling"
    assert printed["results"] == json.loads(json.dumps(result["results"]))
    rows = {(r["mode"], r["procs"]): r for r in printed["results"]}
    assert set(rows) == {(m, p) for m in ("search", "fixed", "fixed+unused") for p in (1, 2)}
    for (mode, procs), row in rows.items():
        assert row["step_s"] > 0 and row["batch_per_proc"] == 2
        assert row["img_s"] == pytest.approx(procs * 2 / row["step_s"])
        single = rows[mode, 1]["step_s"]
        assert row["ddp_x"] == pytest.approx(row["step_s"] / single)
        assert row["efficiency"] == pytest.approx(1 / row["ddp_x"])
        assert row["cpu_s"] > 0 and row["cpu_x"] == pytest.approx(
            row["cpu_s"] / rows[mode, 1]["cpu_s"]
        )
