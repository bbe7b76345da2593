"""Ranking diagnostics: the architecture set, the statistics, `lightnas rank` end to end."""

import json

import pytest

from lightnas.cli import main, search_main
from lightnas.commands.rank import bootstrap, kendall, spearman, spread_architectures, top_k_overlap
from lightnas.search import DecisionPoint, SearchSpace

SPACE = SearchSpace("s", [DecisionPoint(f"p{i}", ("big", "small")) for i in range(6)])


def ops(arch) -> float:
    return sum(3.0 if c == "big" else 1.0 for c in arch.values())


def test_spread_covers_the_cost_range_with_base_and_cheapest():
    cheapest = SPACE.from_indices([1] * 6)
    archs = spread_architectures(SPACE, ops, 7, seed=0, include=[cheapest])
    assert len(set(archs)) == 7
    assert archs[0] == cheapest and archs[-1] == SPACE.default()
    costs = [ops(a) for a in archs]
    assert costs == sorted(costs) and len(set(costs)) == 7  # one per cost level


def test_statistics():
    truth = [1, 2, 3, 4, 5]
    assert kendall(truth, truth) == pytest.approx(1.0)
    assert kendall(truth[::-1], truth) == pytest.approx(-1.0)
    assert spearman([10, 20, 30, 50, 40], truth) == pytest.approx(0.9)
    assert top_k_overlap([5, 4, 3, 2, 1], truth, 2) == 0.0
    assert top_k_overlap([1, 2, 3, 5, 4], truth, 2) == 1.0
    lo, hi = bootstrap(kendall, [1, 2, 3, 5, 4, 6, 7, 8], list(range(8)))
    assert -1 <= lo <= kendall([1, 2, 3, 5, 4, 6, 7, 8], list(range(8))) <= hi <= 1


@pytest.mark.e2e
@pytest.mark.slow
def test_lightnas_rank_end_to_end(write_config, tmp_path, capsys):
    cfg = write_config(epochs=2, data={"num_samples": 160, "val_size": 48})
    assert search_main(["-c", str(cfg)]) == 0
    folder = tmp_path / "trainings" / "tiny"
    capsys.readouterr()
    args = ["rank", str(folder), "--archs", "4", "--retrain-epochs", "1", "--draws", "2"]
    assert main([*args, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "shared weights" in out and "OPs only" in out and "stand-alone seed 1" in out
    report = json.loads((folder / "ranking.json").read_text())
    assert len(report["architectures"]) == 4 and len(report["standalone"]["0"]) == 4
    assert report["rows"][0]["name"] == "shared weights"
    assert json.loads(out.splitlines()[-1])["kendall_tau"] == report["rows"][0]["kendall_tau"]
    assert main(["rank", str(folder), "--archs", "2"]) == 2
    assert main(["rank", str(folder), "--retrain-epochs", "0"]) == 2
    assert main(["rank", str(folder), "--device", "tpu"]) == 2
    assert "device='tpu' is not valid" in capsys.readouterr().err
