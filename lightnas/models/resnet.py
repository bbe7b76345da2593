"""Binary ResNet-18/34 supernets (v1 post-activation and v2 pre-activation basic blocks).

Every basic block is a decision point whose choices are bit widths (weights and activations of
both convs; all widths share one weight tensor) and, where input and output shapes match, `skip`.
Each bit width keeps its own BatchNorm layers ("switchable BN"): statistics of a 1-bit and a
32-bit path differ too much to share, and BN parameters are tiny. At 32 bits the quantizer is the
identity, so a ReLU takes its place as the block's nonlinearity, as in the full-precision ResNet.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from lightnas.binary import FULL_BITS, VALID_BITS, QConv2d
from lightnas.errors import ConfigError
from lightnas.models.categories import register_category
from lightnas.models.layers import make_head, make_stem
from lightnas.models.supernet import (
    MODELS,
    Choice,
    Supernet,
    check_ops,
    check_space_keys,
    passes_kwargs_to,
)
from lightnas.search.space import DecisionPoint

SPACE_KEYS = ("bits", "skip")
RESNET_LAYERS = {"18": [2, 2, 2, 2], "34": [3, 4, 6, 3]}


def bits_choice(bits: int) -> str:
    return f"{bits}bit"


def choice_bits(choice: str) -> int:
    return int(choice.removesuffix("bit"))


for _bits in VALID_BITS:
    register_category(bits_choice(_bits), "binary" if _bits == 1 else "higher_precision", _bits)
register_category("skip", "skipped")


def bit_activation(x: Tensor, bits: int) -> Tensor:
    """The nonlinearity of a block at `bits`: a ReLU at 32 bits (where the quantizer is the
    identity), none below (the quantizer is)."""
    return F.relu(x) if bits == FULL_BITS else x


class BasicBlock(nn.Module):
    """A basic block at one bit width: two 3x3 convs, BNs, and the (downsampling) shortcut."""

    def __init__(
        self,
        conv1: QConv2d,
        conv2: QConv2d,
        bn1: nn.BatchNorm2d,
        bn2: nn.BatchNorm2d,
        shortcut: nn.Module | None,
        version: int,
        bits: int,
    ) -> None:
        super().__init__()
        self.conv1, self.conv2, self.bn1, self.bn2 = conv1, conv2, bn1, bn2
        self.shortcut = shortcut
        self.version = version
        self.bits = bits

    def forward(self, x: Tensor) -> Tensor:
        return basic_forward(self, x, self.bits)


def basic_forward(block: nn.Module, x: Tensor, bits: int, bn1=None, bn2=None) -> Tensor:
    """v1: conv-BN-act-conv-BN + shortcut, act; v2: BN-act-conv-BN-act-conv + shortcut."""
    bn1 = bn1 or block.bn1
    bn2 = bn2 or block.bn2
    shortcut = x if block.shortcut is None else block.shortcut(x)
    if block.version == 1:
        out = bit_activation(bn1(block.conv1(x)), bits)
        return bit_activation(bn2(block.conv2(out)) + shortcut, bits)
    out = block.conv1(bit_activation(bn1(x), bits))
    return block.conv2(bit_activation(bn2(out), bits)) + shortcut


class BasicChoice(Choice):
    """A basic block at a chosen bit width (shared weights, per-width BN), or skipped."""

    def __init__(
        self, point: DecisionPoint, in_ch: int, out_ch: int, stride: int, version: int, scaling: str
    ) -> None:
        super().__init__(point)
        self.version = version
        self.conv1 = QConv2d(in_ch, out_ch, 3, stride=stride, padding=1, scaling=scaling)
        self.conv2 = QConv2d(out_ch, out_ch, 3, padding=1, scaling=scaling)
        self._set_conv_bits(rest_bits(point.choices))
        self.bn1 = width_bns(point.choices, out_ch if version == 1 else in_ch)
        self.bn2 = width_bns(point.choices, out_ch)
        self.shortcut = projection_shortcut(in_ch, out_ch, stride, version)

    def _set_conv_bits(self, bits: int) -> None:
        self.conv1.set_bits(bits)
        self.conv2.set_bits(bits)

    def forward(self, x: Tensor) -> Tensor:
        if self.active == "skip":
            return x
        bits = choice_bits(self.active)
        self._set_conv_bits(bits)
        return basic_forward(self, x, bits, self.bn1[self.active], self.bn2[self.active])

    def extract(self) -> nn.Module | None:
        if self.active == "skip":
            return None
        bits = choice_bits(self.active)
        conv1, conv2 = copy.deepcopy(self.conv1), copy.deepcopy(self.conv2)
        conv1.set_bits(bits)
        conv2.set_bits(bits)
        return BasicBlock(
            conv1,
            conv2,
            copy.deepcopy(self.bn1[self.active]),
            copy.deepcopy(self.bn2[self.active]),
            copy.deepcopy(self.shortcut),
            self.version,
            bits,
        )


def rest_bits(choices: Sequence[str]) -> int:
    """The width the convs of a block hold at rest: the lowest any of its choices uses (their
    weights are latent, quantized weights as soon as one choice quantizes them)."""
    return min(choice_bits(c) for c in choices if c != "skip")


def width_bns(choices: Sequence[str], channels: int) -> nn.ModuleDict:
    """One BatchNorm per bit-width choice ("switchable BN")."""
    return nn.ModuleDict({c: nn.BatchNorm2d(channels) for c in choices if c != "skip"})


def projection_shortcut(in_ch: int, out_ch: int, stride: int, version: int) -> nn.Module | None:
    """The shortcut of a block from `in_ch` to `out_ch` channels: none (the identity) where the
    shapes match, else a full-precision 1x1 conv, followed by a BN in v1."""
    if stride == 1 and in_ch == out_ch:
        return None
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)]
    if version == 1:
        layers.append(nn.BatchNorm2d(out_ch))
    return nn.Sequential(*layers)


# (its decision point, input channels, the stage's width, stride) -> a block's module
BlockFactory = Callable[[DecisionPoint, int, int, int], nn.Module]


def resnet_stages(
    space: Mapping,
    layers: Sequence[int],
    width: int,
    kind: str,
    make: BlockFactory,
    expansion: int = 1,
    units: int = 1,
) -> tuple[nn.Sequential, int]:
    """The body of a ResNet family and its output channels: stage s (from 1) has `layers[s-1]`
    blocks of width `width * 2**(s-1)` whose output is `expansion` times that; each block is
    `units` decision points of kind `kind` (`stage2.block1.<kind>`, or `.<kind>1`, `.<kind>2`
    with several units), the first of every stage after the first strided."""
    body: list[nn.Module] = []
    in_ch = width
    for stage, num_blocks in enumerate(layers, start=1):
        stage_width = width * 2 ** (stage - 1)
        for block in range(1, num_blocks + 1):
            for unit in range(1, units + 1):
                stride = 2 if stage > 1 and block == 1 and unit == 1 else 1
                choices = block_choices(space, stride == 1 and in_ch == stage_width * expansion)
                name = f"stage{stage}.block{block}.{kind}" + (str(unit) if units > 1 else "")
                body.append(make(DecisionPoint(name, choices, kind), in_ch, stage_width, stride))
                in_ch = stage_width * expansion
    return nn.Sequential(*body), in_ch


def block_choices(space: Mapping, shapes_match: bool) -> tuple[str, ...]:
    """The choices of one block from the config: bit widths, plus `skip` where shapes allow."""
    bits = check_ops("bits", space.get("bits", [1, 32]), VALID_BITS, what="bit width")
    skip = space.get("skip", True)
    if not isinstance(skip, bool):
        raise ConfigError(f"search_space.skip must be true or false, got {skip!r}")
    choices = [bits_choice(int(b)) for b in bits]
    return tuple(choices + (["skip"] if skip and shapes_match else []))


def resnet_space(name: str, version: int, search_space: Mapping | None) -> dict:
    """A ResNet family's checked version and search-space keys."""
    if version not in (1, 2):
        raise ConfigError(f"model.kwargs.version={version!r} is not valid; valid: 1, 2")
    space = dict(search_space or {})
    check_space_keys(name, space, SPACE_KEYS)
    return space


class BinaryResNet(Supernet):
    """Binary ResNet supernet; with the first choice everywhere it is the ResNet at that width.

    A subclass with other blocks names them: `block` (the Choice class, built as
    `block(point, in_ch, stage_width, stride, version, scaling)`), their decision-point `kind`
    and `expansion` (a block's output channels over its stage's width)."""

    block: type[Choice] = BasicChoice
    kind = "basic"
    expansion = 1

    def __init__(
        self,
        name: str,
        layers: Sequence[int],
        version: int = 1,
        num_classes: int = 1000,
        stem: str = "imagenet",
        search_space: Mapping | None = None,
        in_channels: int = 3,
        width: int = 64,
        scaling: str = "none",
    ) -> None:
        space = resnet_space(name, version, search_space)
        body, channels = resnet_stages(
            space,
            layers,
            width,
            self.kind,
            lambda point, in_ch, out_ch, stride: self.block(
                point, in_ch, out_ch, stride, version, scaling
            ),
            self.expansion,
        )
        super().__init__(
            name,
            make_stem(stem, in_channels, width),
            body,
            make_head(channels, num_classes, pre_bn=version == 2),
        )


def register_versions(cls: type, layers_by_depth: Mapping[str, Sequence[int]]) -> None:
    """Register `resnet<depth>` (v1) and `resnet<depth>_v2` built by `cls` for every depth."""
    for depth, layers in layers_by_depth.items():
        for version, suffix in ((1, ""), (2, "_v2")):
            MODELS.add(
                f"resnet{depth}{suffix}", versioned(cls, f"resnet{depth}{suffix}", layers, version)
            )


def versioned(cls: type, name: str, layers: Sequence[int], version: int) -> Callable[..., Supernet]:
    def factory(layers: Sequence[int] = layers, **kwargs) -> Supernet:
        return cls(name, layers, version=version, **kwargs)

    return passes_kwargs_to(factory, cls, "version")


register_versions(BinaryResNet, RESNET_LAYERS)
