"""The space file format: names from groups and `repeat`, inputs, defaults and params, choice
nodes (sub-graphs, skips, shared weights), bit-width lists, and the built graph's execution."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lightnas.binary import QConv2d
from lightnas.models import child, create_supernet
from lightnas.models.graph import load_space, read_space
from lightnas.models.graph.modules import BitsChoice, CandidateChoice, GraphBody
from lightnas.models.graph.yaml_text import parse_yaml, plain

RESIDUAL = """
version: 1
name: residual
input: [3, 8, 8]
params: {width: 8}
defaults:
  qconv: {kernel: 3}
nodes:
  - {op: stem, type: thumbnail, channels: $width}
  - repeat: 3
    name: stage1.block{i}
    nodes:
      - name: conv
        choice:
          conv3x3: [{op: qconv}, {op: bn}]
          conv1x1: [{op: qconv, kernel: 1}, {op: bn}]
          wide: [{op: qconv, kernel: 3, scaling: mean}, {op: bn}, {op: relu}]
          skip: identity
      - {name: sum, op: add, inputs: [conv, input]}   # input: the block's input
  - {name: bits, op: qconv, kernel: 1, bits: [1, 4, 32], relu_at_32: true}
  - {op: bn}
  - {op: bn}
  - {op: head}
"""


def build(text: str, **params) -> nn.Module:
    spec = plain(parse_yaml(text))
    return create_supernet("graph", 10, "thumbnail", None, spec=spec, params=params or None)


def test_repeat_names_and_the_decision_point_order():
    net = build(RESIDUAL)
    names = [p.name for p in net.space]
    assert names == [f"stage1.block{i}.conv" for i in (1, 2, 3)] + ["bits"]
    assert net.space["stage1.block2.conv"].choices == ("conv3x3", "conv1x1", "wide", "skip")
    assert net.space["stage1.block2.conv"].kind == "conv"
    assert net.space["bits"].choices == ("1bit", "4bit", "32bit")
    space = load_space(RESIDUAL)
    nodes = [n.name for n in space.graph.nodes]
    # unnamed nodes are named after their op, numbered where it repeats
    assert nodes[0] == "stem" and nodes[-3:] == ["bn", "bn_2", "head"]
    sums = {n.name: n.inputs for n in space.graph.nodes if n.op == "add"}
    assert sums["stage1.block1.sum"] == ("stage1.block1.conv", "stem")
    assert sums["stage1.block2.sum"] == ("stage1.block2.conv", "stage1.block1.sum")


def test_decision_points_follow_the_execution_order_not_the_file_order():
    text = """
version: 1
input: [3, 8, 8]
nodes:
  - {name: stem, op: stem, channels: 8}
  - {name: late, op: qconv, kernel: 3, bits: [1, 32], inputs: [early]}
  - {name: early, op: qconv, kernel: 3, bits: [1, 32], inputs: [stem]}
  - {name: head, op: head, inputs: [late]}
"""
    assert [p.name for p in build(text).space] == ["early", "late"]


def test_params_defaults_and_overrides():
    wide = build(RESIDUAL, width=16)
    assert wide.stem[0].out_channels == 16  # $width
    narrow = build(RESIDUAL)
    assert narrow.stem[0].out_channels == 8
    convs = [m for m in narrow.modules() if isinstance(m, QConv2d)]
    kernels = sorted({m.kernel_size[0] for m in convs})
    assert kernels == [1, 3]  # the default kernel 3, and the candidate that gives 1
    with pytest.raises(ValueError, match="no parameter 'depth'; valid: width"):
        build(RESIDUAL, depth=2)


def test_a_group_reads_the_input_it_names():
    text = """
version: 1
input: [3, 8, 8]
nodes:
  - {name: stem, op: stem, channels: 8}
  - {name: a, op: relu}
  - name: branch
    inputs: stem
    nodes: [{name: conv, op: qconv, kernel: 3}]
  - {name: sum, op: add, inputs: [a, branch.conv]}
  - {op: head}
"""
    nodes = load_space(text).graph.by_name()
    assert nodes["branch.conv"].inputs == ("stem",)


def test_choice_candidates_share_conv_weights_of_equal_shapes_but_not_batchnorm():
    net = build(RESIDUAL)
    choice = net.choice_modules()["stage1.block1.conv"]
    assert isinstance(choice, CandidateChoice)
    ops = choice.ops
    assert set(ops) == {"conv3x3", "conv1x1", "wide"}  # skip holds no module
    assert ops["wide"][0].weight is ops["conv3x3"][0].weight  # 3x3 weights shared
    assert ops["conv1x1"][0].weight is not ops["conv3x3"][0].weight
    assert ops["wide"][1].weight is not ops["conv3x3"][1].weight  # BN per candidate
    unshared = build(
        RESIDUAL.replace("      - name: conv\n", "      - name: conv\n        share: false\n")
    )
    ops = unshared.choice_modules()["stage1.block1.conv"].ops
    assert ops["wide"][0].weight is not ops["conv3x3"][0].weight


def test_a_bit_width_list_is_one_weight_tensor():
    net = build(RESIDUAL)
    bits = net.choice_modules()["bits"]
    assert isinstance(bits, BitsChoice)
    assert sum(isinstance(m, QConv2d) for m in bits.modules()) == 1


def randomize_batchnorm(net: nn.Module) -> None:
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("seed", range(6))
def test_the_child_computes_what_the_supernet_computes(seed):
    torch.manual_seed(seed)
    net = build(RESIDUAL)
    randomize_batchnorm(net)
    arch = net.space.sample(torch.Generator().manual_seed(seed))
    x = torch.randn(3, 3, 8, 8)
    sub = child(net, arch).eval()
    net.set_architecture(arch)
    with torch.no_grad():
        assert torch.equal(net.eval()(x), sub(x))
    kept = sum(isinstance(m, (QConv2d, nn.Conv2d)) for m in sub.modules())
    skipped = sum(arch[f"stage1.block{i}.conv"] == "skip" for i in (1, 2, 3))
    assert kept == 1 + (3 - skipped) + 1  # stem, each kept block's conv, the bits conv
    assert not any(isinstance(m, (CandidateChoice, BitsChoice)) for m in sub.modules())


def test_the_body_runs_a_graph_and_drops_values_after_their_last_read():
    net = build(RESIDUAL)
    assert isinstance(net.body, GraphBody)
    # block k's choice reads the block's input, its add reads that input again
    assert net.body.reads[:4] == ((0,), (1, 0), (2,), (3, 2))
    assert net.body.drops[:4] == ((), (0, 1), (), (2, 3))
    assert isinstance(net.stem, nn.Sequential) and isinstance(net.head, nn.Sequential)


def test_the_spec_travels_as_plain_json():
    spec = plain(parse_yaml(RESIDUAL))
    again = json.loads(json.dumps(spec))
    a, b = build(RESIDUAL), create_supernet("graph", 10, "thumbnail", None, spec=again)
    assert a.space == b.space
    assert read_space(again).name == "residual"
