import pytest
import torch

from lightnas.models import child, create_supernet
from lightnas.scoring.cost_metrics import count_costs
from lightnas.scoring.costs import CostTable
from lightnas.scoring.evaluator import soft_constrained_reward


@pytest.mark.parametrize(
    "name,space,kw",
    [
        (
            "meliusnet_flex",
            None,
            {"block_config": [2, 1], "growth_rate": 8, "init_features": 16, "reduction": [0.5]},
        ),
        ("resnet18", {"bits": [1, 4, 32], "skip": True}, {"layers": [2, 2], "width": 8}),
        ("resnet18_e", {"bits": [1, 4, 32], "skip": True}, {"layers": [2, 2], "width": 8}),
        ("resnet50", {"bits": [1, 32], "skip": True}, {"layers": [2, 2], "width": 4}),
        ("resnet152_v2", {"bits": [1, 2], "skip": True}, {"layers": [1, 2], "width": 4}),
    ],
)
def test_cost_table_equals_the_extracted_childs_costs(name, space, kw):
    net = create_supernet(name, 10, "thumbnail", space, **kw)
    table = CostTable(net, (3, 16, 16))
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        arch = net.space.sample(gen)
        exact = count_costs(child(net, arch), (3, 16, 16))
        costs = table.costs(arch)
        assert costs["params"] == exact.params
        assert costs["model_bits"] == exact.model_bits
        assert costs["flops"] == exact.flops and costs["bops"] == exact.bops
        assert costs["ops"] == pytest.approx(exact.ops)
        assert table.cost(arch, "ops") == pytest.approx(exact.ops)


def test_cheaper_choices_cost_less():
    net = create_supernet(
        "resnet18", 10, "thumbnail", {"bits": [1, 32], "skip": True}, layers=[2, 2], width=8
    )
    table = CostTable(net, (3, 16, 16))
    base = net.space.default()
    full = {n: "32bit" for n in net.space.names}
    skip = {**base, "stage1.block2.basic": "skip"}
    from lightnas.search import Architecture

    assert table.cost(Architecture(net.space, full), "ops") > table.cost(base, "ops")
    assert table.cost(Architecture(net.space, skip), "ops") < table.cost(base, "ops")
    assert table.cost(base, "latency") > 0


def test_soft_constrained_reward():
    assert soft_constrained_reward(0.8, 2.0, 1.0, 0.0) == 0.8
    assert soft_constrained_reward(0.8, 1.0, 1.0, -0.5) == pytest.approx(0.8)
    assert soft_constrained_reward(0.8, 2.0, 1.0, -1.0) == pytest.approx(0.4)
    assert soft_constrained_reward(0.8, 0.5, 1.0, -1.0) == pytest.approx(1.6)
