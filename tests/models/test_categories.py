"""lightnas.models.categories: ops register their category where they are defined, and the
architecture graphs, tables and summaries follow it without naming any op."""

import pytest
from torch import nn

from lightnas.models import OP_CATEGORIES, create_supernet, op_category, register_category
from lightnas.models.categories import OpCategory
from lightnas.models.meliusnet import DENSE_OPS
from lightnas.outputs.graphs import (
    PALETTE,
    architecture_table,
    architecture_to_dot,
    blocks_summary,
    choice_category,
)
from lightnas.search.space import Architecture

TINY = {"block_config": [2, 2], "growth_rate": 8, "init_features": 16, "reduction": [0.5]}


@pytest.fixture
def registries(monkeypatch):
    """Registrations made by a test are undone after it."""
    for registry in (OP_CATEGORIES, DENSE_OPS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))


def test_the_built_in_ops_register_their_categories():
    assert op_category("conv3x3").category == "binary"
    assert op_category("conv1x1").category == "replaced"
    assert op_category("identity").category == "skipped" == op_category("skip").category
    assert op_category("1bit") == OpCategory("binary", 1)
    assert op_category("4bit").category == "higher_precision" and op_category("32bit").bits == 32
    assert op_category("maxpool3x3").category == "other" and op_category("maxpool3x3").bits is None


def test_a_category_must_be_one_of_the_drawn_ones(registries):
    with pytest.raises(ValueError, match="category 'other' is not valid"):
        register_category("pool", "other")


def test_a_newly_registered_op_is_drawn_and_summarised_by_its_category(registries):
    @DENSE_OPS.register("conv5x5")
    def conv5x5(in_channels: int, growth: int, **conv_kw) -> nn.Module:
        return nn.Conv2d(in_channels, growth, 5, padding=2)

    space = {"dense_block": ["conv3x3", "conv5x5"], "improvement_block": ["conv3x3"]}
    net = create_supernet("meliusnet_flex", 10, "thumbnail", space, **TINY)
    choices = dict(net.space.default())
    choices["stage1.block2.dense"] = "conv5x5"
    arch = Architecture(net.space, choices)
    assert choice_category("conv5x5") == "other"  # before it registers a category
    assert blocks_summary(arch)["dense_conv5x5"] == 1

    register_category("conv5x5", "replaced")
    assert choice_category("conv5x5") == "replaced"
    summary = blocks_summary(arch)
    assert summary["dense_replaced"] == 1 and summary["dense_kept"] == 3
    assert "dense_conv5x5" not in summary
    node = next(line for line in architecture_to_dot(arch).splitlines() if "conv5x5" in line)
    assert f'fillcolor="{PALETTE["replaced"]}"' in node
    row = next(line for line in architecture_table(arch).splitlines() if "conv5x5" in line)
    assert row.split() == ["stage1.block2.dense", "conv5x5", "replaced"]
