"""The original LightNAS's latency reward: the per-op table, its CSV, analytic latency functions,
and a latency-aware search that resumes exactly."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers.runs import tiny_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightnas.cli import evaluate_main, search_main
from lightnas.config import parse_config
from lightnas.errors import ConfigError
from lightnas.models import create_supernet
from lightnas.runtime.placement import Placement
from lightnas.scoring.cost_metrics import LATENCY_TABLE
from lightnas.scoring.evaluator import Evaluator, ScoringOptions
from lightnas.scoring.latency import (
    LATENCY_FUNCTIONS,
    Block,
    LatencyCostTable,
    LatencyTable,
    LatencyTableOptions,
    register_latency_function,
)

TINY = {"block_config": [2, 1], "growth_rate": 8, "init_features": 16, "reduction": [0.5]}
SHAPE = (3, 8, 8)


def supernet():
    torch.manual_seed(0)
    return create_supernet("meliusnet_flex", 4, "thumbnail", **TINY)


def macs_latency(block: Block) -> float:
    """An analytic latency: 1 ns per weight per output pixel."""
    conv = block.op.conv
    return conv.weight.numel() * block.input_shape[1] * block.input_shape[2] * 1e-9


@pytest.fixture
def latency_module(tmp_path, monkeypatch):
    """An importable module `my_latency` holding latency functions, as a user would write."""
    (tmp_path / "my_latency.py").write_text(
        "def constant(block):\n    return 0.002 if block.choice == 'conv3x3' else 0.001\n"
        "def negative(block):\n    return -1.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_latency"


def test_measured_table_has_one_median_per_choice_and_zero_for_removed_blocks():
    net = supernet()
    table = LatencyCostTable(net, SHAPE, LatencyTableOptions(repeats=3, warmup=1)).latency
    assert len(table.entries) == sum(len(p.choices) for p in net.space)
    for (_, choice), entry in table.entries.items():
        if choice == "identity":
            assert entry.seconds == 0.0 and entry.source.startswith("removed")
        else:
            assert entry.seconds > 0 and entry.source == "measured on cpu"
    # the supernet is left at its base architecture, its BN statistics untouched
    assert net.architecture() == net.space.default()
    assert all(torch.all(m.running_mean == 0) for m in net.modules() if hasattr(m, "running_mean"))


def test_reward_is_the_originals_accuracy_times_mean_over_latency(latency_module):
    net = supernet()
    options = LatencyTableOptions(functions={"dense": f"{latency_module}:constant"})
    costs = LatencyCostTable(net, SHAPE, options)
    table = costs.latency
    assert table.seconds("stage1.block1.dense", "conv1x1") == 0.001
    assert table.entries["stage1.block1.dense", "conv3x3"].source == "my_latency:constant"
    # the normalisation: per decision point the mean of its choices, summed. Dense: (2 + 1) / 2
    # ms each; improvement: (measured + 0 for the removed block) / 2
    improvements = [p.name for p in net.space if p.kind == "improvement"]
    measured = sum(table.seconds(n, "conv3x3") for n in improvements)
    assert table.reference() == pytest.approx(3 * 1.5e-3 + measured / 2)
    data = SimpleNamespace(val=[], input_shape=SHAPE)
    options = ScoringOptions(cost=LATENCY_TABLE, cost_weight=-0.5)
    evaluator = Evaluator(net, data, Placement(torch.device("cpu")), options, costs)
    assert evaluator.target_cost == table.reference()
    arch = net.space.default()
    latency = sum(table.seconds(p, c) for p, c in arch.items())
    assert evaluator.cost(arch) == pytest.approx(latency)
    expected = 0.8 * (table.reference() / latency) ** 0.5
    assert evaluator.reward(arch, 0.8) == pytest.approx(expected)
    assert costs.costs(arch)[LATENCY_TABLE] == evaluator.cost(arch)
    assert costs.costs(arch)["ops"] == costs.cost(arch, "ops")


def test_registered_latency_functions_apply_per_kind(monkeypatch):
    calls = []

    def improvement(block: Block) -> float:
        calls.append((block.point.name, block.choice, block.input_shape))
        return macs_latency(block)

    with monkeypatch.context() as m:
        m.setattr(LATENCY_FUNCTIONS, "_items", dict(LATENCY_FUNCTIONS._items))
        register_latency_function("improvement")(improvement)
        table = LatencyCostTable(supernet(), SHAPE, LatencyTableOptions(repeats=2)).latency
    assert "improvement" not in LATENCY_FUNCTIONS  # the test's registration is gone
    # removed choices are not asked; every kept improvement block is, at its input shape
    assert calls == [
        ("stage1.block1.improvement", "conv3x3", (24, 8, 8)),
        ("stage1.block2.improvement", "conv3x3", (32, 8, 8)),
        ("stage2.block1.improvement", "conv3x3", (24, 4, 4)),
    ]
    entry = table.entries["stage1.block1.improvement", "conv3x3"]
    assert entry.seconds == 8 * 24 * 9 * 64 * 1e-9
    assert entry.source == "registered improvement"
    assert table.entries["stage1.block1.dense", "conv3x3"].source == "measured on cpu"


def test_csv_round_trip_is_exact_and_a_foreign_table_is_refused(tmp_path):
    net = supernet()
    table = LatencyCostTable(net, SHAPE, LatencyTableOptions(repeats=2, warmup=0)).latency
    path = tmp_path / "latency_table.csv"
    table.write_csv(path)
    back = LatencyTable.read_csv(path, net.space)
    assert back.entries == table.entries  # floats bit for bit
    other = create_supernet("meliusnet_flex", 4, "thumbnail", **{**TINY, "block_config": [1, 1]})
    with pytest.raises(ConfigError, match="does not fit the search space"):
        LatencyTable.read_csv(path, other.space)
    path.write_text("decision_point,seconds\nx,y\n")
    with pytest.raises(ConfigError, match="is not a latency table"):
        LatencyTable.read_csv(path, net.space)


def test_a_given_csv_is_used_instead_of_measuring(tmp_path):
    net = supernet()
    table = LatencyCostTable(net, SHAPE, LatencyTableOptions(repeats=2)).latency
    path = tmp_path / "measured_elsewhere.csv"
    table.write_csv(path)
    used = LatencyCostTable(net, SHAPE, LatencyTableOptions(csv=str(path))).latency
    assert used.entries == table.entries


def test_bad_latency_options_are_one_line_config_errors(tmp_path, latency_module, write_config):
    def parse(**latency):
        cfg = write_config(search={"cost": LATENCY_TABLE, "latency_table": latency})
        return parse_config(["-c", str(cfg)])

    with pytest.raises(ConfigError, match=r"search.latency_table.repeats=0 must be >= 1"):
        parse(repeats=0)
    with pytest.raises(ConfigError, match=r"functions.dense='nomodule' is not valid; valid: 'mod"):
        parse(functions={"dense": "nomodule"})
    with pytest.raises(ConfigError, match=r"cannot import no_such_module"):
        parse(functions={"dense": "no_such_module:f"})
    with pytest.raises(ConfigError, match=r"my_latency has no function missing"):
        parse(functions={"dense": f"{latency_module}:missing"})
    with pytest.raises(ConfigError, match=r"search.latency_table.csv='nowhere.csv': no such file"):
        parse(csv="nowhere.csv")
    with pytest.raises(ConfigError, match="does not accept option 'latency_table.repeat'"):
        parse(repeat=3)  # misspelt
    options = LatencyTableOptions(functions={"basic": f"{latency_module}:constant"})
    with pytest.raises(ConfigError, match="no decision point is of kind 'basic'; valid kinds: "):
        LatencyCostTable(supernet(), SHAPE, options)
    options = LatencyTableOptions(functions={"dense": f"{latency_module}:negative"})
    with pytest.raises(ConfigError, match="returned -1.0 for stage1.block1.dense"):
        LatencyCostTable(supernet(), SHAPE, options)


def metrics(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("time_s")
    return rows


LATENCY_SEARCH = {"cost": LATENCY_TABLE, "latency_table": {"repeats": 3, "warmup": 1}}


@pytest.mark.slow
def test_latency_aware_search_resumes_exactly(
    write_config, tmp_path, interrupt_after_first_checkpoint, capsys
):
    # a search that measures its table, stopped after epoch 1
    resumed = tmp_path / "trainings" / "resumed"
    cfg = write_config("b.yml", name="resumed", search=LATENCY_SEARCH)
    with interrupt_after_first_checkpoint():
        assert search_main(["-c", str(cfg)]) == 130
    csv = resumed / "latency_table.csv"
    assert csv.is_file()
    # the uninterrupted twin, scored with the same table (timings differ from run to run)
    given = {
        **LATENCY_SEARCH,
        "latency_table": {**LATENCY_SEARCH["latency_table"], "csv": str(csv)},
    }
    cfg = write_config("a.yml", name="straight", search=given)
    assert search_main(["-c", str(cfg)]) == 0
    straight = tmp_path / "trainings" / "straight"
    assert (straight / "latency_table.csv").read_text() == csv.read_text()
    # the resumed run reads its folder's table: were it measured again, costs would differ
    assert search_main(["--resume", str(resumed)]) == 0
    rows = metrics(resumed)
    assert rows == metrics(straight)
    kwargs = tiny_config(tmp_path)["model"]["kwargs"]
    space = create_supernet("meliusnet_flex", 4, "thumbnail", **kwargs).space
    table = LatencyTable.read_csv(csv, space)
    for row in rows:
        assert row["cost"] == row[LATENCY_TABLE] == table.latency(row["architecture"])
        assert set(row["blocks"]) == {
            "dense_kept",
            "dense_replaced",
            "improvement_kept",
            "improvement_skipped",
        }
    # TensorBoard has the table as text and the blocks summary as scalars
    acc = EventAccumulator(str(resumed / "tensorboard"))
    acc.Reload()
    assert "blocks/dense_kept" in acc.Tags()["scalars"]
    assert "cost/latency_table" in acc.Tags()["scalars"]
    assert any("latency_table" in t for t in acc.Tags()["tensors"])
    # lightnas evaluate renders the table, one row per block, and the table's latency
    capsys.readouterr()
    assert evaluate_main([str(resumed), "--latency-repeats", "2", "--compare-base"]) == 0
    out = capsys.readouterr().out
    assert "latency table of the search" in out and "stage2.block1.improvement" in out
    report = json.loads((resumed / "evaluation.json").read_text())
    assert len(report["latency_table"]) == 4
    chosen = {r["decision_point"]: r["choice"] for r in report["latency_table"]}
    assert chosen == report["architecture"]
    assert report["results"]["model"][LATENCY_TABLE] == table.latency(report["architecture"])
    base = table.latency(table.space.default())
    assert report["results"]["base"][LATENCY_TABLE] == base
    assert math.isclose(
        sum(r["seconds"] for r in report["latency_table"]),
        report["results"]["model"][LATENCY_TABLE],
    )
