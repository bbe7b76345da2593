"""The reference space files (configs/spaces) are the built-in families written as graphs: the
same decision points, parameters, OPs, state-dict structure and outputs for the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lightnas.models import child, create_supernet
from lightnas.models.graph import space_kwargs
from lightnas.scoring.cost_metrics import count_costs
from lightnas.scoring.costs import CostTable

SPACES = Path(__file__).resolve().parents[3] / "configs" / "spaces"
# file, built-in model, its stem, its search space, the image size tested
REFERENCES = {
    "meliusnet22": ("meliusnet22", "thumbnail", None, 32),
    "meliusnet22_grouped": ("meliusnet22", "grouped", None, 64),
    "resnet18": ("resnet18", "thumbnail", None, 32),
    "resnet18_e": ("resnet18_e", "thumbnail", None, 32),
}


def graph_supernet(file: str, num_classes: int = 10, **kwargs) -> nn.Module:
    spec = space_kwargs(SPACES / f"{file}.yml")
    return create_supernet("graph", num_classes, "thumbnail", None, **spec, **kwargs)


def randomize(net: nn.Module, seed: int) -> None:
    """Random weights and BatchNorm statistics, so that any misplaced tensor changes outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if t.is_floating_point():
                t.copy_(
                    torch.rand(t.shape, generator=g) + 0.5
                    if "var" in name
                    else torch.randn(t.shape, generator=g) * 0.5
                )


def architectures(space, n: int = 3) -> list:
    return [space.default()] + [space.sample(torch.Generator().manual_seed(s)) for s in range(n)]


@pytest.fixture(scope="module", params=list(REFERENCES))
def pair(request):
    model, stem, search_space, size = REFERENCES[request.param]
    torch.manual_seed(0)
    builtin = create_supernet(model, 10, stem, search_space)
    graph = graph_supernet(request.param)
    return request.param, builtin, graph, size


def test_decision_points_equal_the_builtin_ones(pair):
    _, builtin, graph, _ = pair
    assert graph.space.points == builtin.space.points  # names, choices and kinds, in order
    assert graph.space.name == builtin.space.name


def test_state_dict_structure_and_parameter_count_equal_the_builtin_ones(pair):
    _, builtin, graph, _ = pair
    a, b = graph.state_dict(), builtin.state_dict()
    assert list(a) == list(b)
    assert [t.shape for t in a.values()] == [t.shape for t in b.values()]
    count = [
        sum(p.numel() for p in net.parameters() if p.requires_grad) for net in (graph, builtin)
    ]
    assert count[0] == count[1]


@pytest.mark.slow
def test_same_weights_give_the_same_outputs_and_costs(pair):
    name, builtin, graph, size = pair
    randomize(builtin, seed=1)
    graph.load_state_dict(builtin.state_dict())
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    for arch in architectures(builtin.space):
        for net in (builtin, graph):
            net.set_architecture(arch)
            net.eval()
        with torch.no_grad():
            assert torch.equal(graph(x), builtin(x)), (name, dict(arch))
            children = [child(net, arch).eval() for net in (graph, builtin)]
            assert torch.equal(children[0](x), children[1](x))
        assert count_costs(children[0], (3, size, size)) == count_costs(
            children[1], (3, size, size)
        )


@pytest.mark.parametrize(
    ("file", "model", "search_space"),
    [
        # the base network of a new space is the family it extends
        ("meliusnet22_bits", "meliusnet22", None),
        ("bireal18_kernels", "resnet18_e", {"bits": [1]}),
    ],
)
def test_the_new_spaces_base_network_is_the_family_it_extends(file, model, search_space):
    graph = graph_supernet(file)
    builtin = create_supernet(model, 10, "thumbnail", search_space)
    shape = (3, 32, 32)
    costs = [count_costs(child(n, n.space.default()), shape) for n in (graph, builtin)]
    assert costs[0] == costs[1]


@pytest.mark.parametrize("file", ["meliusnet22_bits", "bireal18_kernels"])
def test_cost_table_of_a_new_space_adds_up_to_the_childs_costs(file):
    params = {
        "meliusnet22_bits": {
            "stem": 16,
            "growth": 8,
            "transition1": 16,
            "transition2": 16,
            "transition3": 16,
        },
        "bireal18_kernels": {"width1": 8, "width2": 16, "width3": 16, "width4": 32},
    }[file]
    graph = graph_supernet(file, params=params)
    shape = (3, 16, 16)
    table = CostTable(graph, shape)
    for arch in architectures(graph.space, n=4):
        counted = count_costs(child(graph, arch), shape).as_dict()
        assert table.costs(arch) == pytest.approx(counted, rel=1e-12), dict(arch)
