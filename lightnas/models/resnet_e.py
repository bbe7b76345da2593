"""Binary ResNet-E 18/34 (Bethge et al., "Back to Simplicity", BMXNet-v2 / bitorch `ResnetE`,
the Bi-Real Net design) as supernets.

Every binary 3x3 conv has its own shortcut: a unit is `BN(conv(x)) + shortcut(x)`, two units per
ResNet basic block. The downsampling shortcut is full precision: 2x2 average pool, 1x1 conv, BN.
A BatchNorm (weight fixed at 1, as MXNet's `scale=False`) normalises the input image and another
one follows the stem, so that the first binary conv does not see only non-negative values.

Every unit is a decision point (`stage2.block1.conv2`, kind `conv`) whose choices are bit widths
sharing one weight tensor (one BatchNorm per width) and, where shapes allow, `skip`. At 32 bits a
ReLU on the conv's input takes the place of the quantizer, as in `lightnas.models.resnet`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

from torch import Tensor, nn

from lightnas.binary import QConv2d
from lightnas.models.layers import make_stem
from lightnas.models.resnet import (
    SPACE_KEYS,
    bit_activation,
    choice_bits,
    resnet_stages,
    rest_bits,
    width_bns,
)
from lightnas.models.supernet import (
    MODELS,
    Choice,
    Supernet,
    check_space_keys,
    passes_kwargs_to,
)
from lightnas.search.space import DecisionPoint

RESNET_E_LAYERS = {"18": [2, 2, 2, 2], "34": [3, 4, 6, 3]}
INPUT_BN_EPS = 2e-5  # BMXNet's input BatchNorm


class Unit(nn.Module):
    """A ResNet-E unit at one bit width: BN(conv(x)) + shortcut(x)."""

    def __init__(self, conv: QConv2d, bn: nn.BatchNorm2d, shortcut: nn.Module | None) -> None:
        super().__init__()
        self.conv, self.bn, self.shortcut = conv, bn, shortcut

    def forward(self, x: Tensor) -> Tensor:
        return unit_forward(self, x, self.conv.w_bits, self.bn)


def unit_forward(unit: nn.Module, x: Tensor, bits: int, bn: nn.BatchNorm2d) -> Tensor:
    shortcut = x if unit.shortcut is None else unit.shortcut(x)
    return bn(unit.conv(bit_activation(x, bits))) + shortcut


def downsample_shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Full-precision shortcut: 2x2 average pool (when strided), 1x1 conv, BN."""
    # ceil_mode: an odd input gives the same size as the strided 3x3 conv beside it
    pool = [nn.AvgPool2d(2, stride=stride, ceil_mode=True)] if stride > 1 else []
    return nn.Sequential(*pool, nn.Conv2d(in_ch, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch))


class UnitChoice(Choice):
    """A ResNet-E unit at a chosen bit width (shared weights, per-width BN), or skipped."""

    def __init__(
        self, point: DecisionPoint, in_ch: int, out_ch: int, stride: int, scaling: str
    ) -> None:
        super().__init__(point)
        self.conv = QConv2d(in_ch, out_ch, 3, stride=stride, padding=1, scaling=scaling)
        self.conv.set_bits(rest_bits(point.choices))
        self.bn = width_bns(point.choices, out_ch)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = downsample_shortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.active == "skip":
            return x
        bits = choice_bits(self.active)
        self.conv.set_bits(bits)
        return unit_forward(self, x, bits, self.bn[self.active])

    def extract(self) -> nn.Module | None:
        if self.active == "skip":
            return None
        conv = copy.deepcopy(self.conv)
        conv.set_bits(choice_bits(self.active))
        return Unit(conv, copy.deepcopy(self.bn[self.active]), copy.deepcopy(self.shortcut))


def input_batchnorm(channels: int) -> nn.BatchNorm2d:
    """MXNet's `BatchNorm(scale=False)` on the image: a learnt shift, the scale fixed at 1."""
    bn = nn.BatchNorm2d(channels, eps=INPUT_BN_EPS)
    bn.weight.requires_grad_(False)
    return bn


def resnet_e_head(channels: int, num_classes: int) -> nn.Sequential:
    """ReLU (the blocks end without one), global average pool, full-precision classifier."""
    return nn.Sequential(
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    )


class ResNetE(Supernet):
    """ResNet-E supernet; with the first choice everywhere it is the published ResNet-E."""

    def __init__(
        self,
        name: str,
        layers: Sequence[int],
        num_classes: int = 1000,
        stem: str = "imagenet",
        search_space: Mapping | None = None,
        in_channels: int = 3,
        width: int = 64,
        scaling: str = "none",
    ) -> None:
        space = dict(search_space or {})
        check_space_keys(name, space, SPACE_KEYS)
        body, channels = resnet_stages(
            space,
            layers,
            width,
            "conv",
            lambda point, in_ch, out_ch, stride: UnitChoice(point, in_ch, out_ch, stride, scaling),
            units=2,  # two units, each with its shortcut, per basic block
        )
        stem_layers = nn.Sequential(
            input_batchnorm(in_channels),
            make_stem(stem, in_channels, width),
            nn.BatchNorm2d(width),
        )
        super().__init__(name, stem_layers, body, resnet_e_head(channels, num_classes))


def _resnet_e(depth: str) -> Callable[..., Supernet]:
    def factory(layers: Sequence[int] = RESNET_E_LAYERS[depth], **kwargs) -> Supernet:
        return ResNetE(f"resnet{depth}_e", layers, **kwargs)

    return passes_kwargs_to(factory, ResNetE)


for _depth in RESNET_E_LAYERS:
    MODELS.add(f"resnet{_depth}_e", _resnet_e(_depth))
