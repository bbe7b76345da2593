"""Binary bottleneck ResNet-50/101/152 supernets, v1 (post-activation) and v2 (pre-activation),
as the original LightNAS had them.

A bottleneck block is 1x1 (to `mid` channels), 3x3 (strided, as torchvision's "v1.5"), 1x1 (to
4 x mid) convs plus a shortcut (a full-precision 1x1 conv, with BN in v1, where the shape
changes). Every block is a decision point (kind `bottleneck`) whose choices are bit widths of its
three convs, sharing one weight tensor with one BatchNorm set per width, and `skip` where shapes
allow; the conventions are those of the basic-block ResNets in `lightnas.models.resnet`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from torch import Tensor, nn

from lightnas.binary import QConv2d
from lightnas.models.resnet import (
    BinaryResNet,
    bit_activation,
    choice_bits,
    projection_shortcut,
    register_versions,
    rest_bits,
    width_bns,
)
from lightnas.models.supernet import (
    Choice,
)
from lightnas.search.space import DecisionPoint

BOTTLENECK_LAYERS = {"50": [3, 4, 6, 3], "101": [3, 4, 23, 3], "152": [3, 8, 36, 3]}
EXPANSION = 4


class Bottleneck(nn.Module):
    """A bottleneck block at one bit width (an extracted choice)."""

    def __init__(
        self, convs: nn.ModuleList, bns: nn.ModuleList, shortcut: nn.Module | None, version: int
    ) -> None:
        super().__init__()
        self.convs, self.bns, self.shortcut, self.version = convs, bns, shortcut, version

    def forward(self, x: Tensor) -> Tensor:
        return bottleneck_forward(self, x, self.convs[0].w_bits, self.bns)


def bottleneck_forward(block: nn.Module, x: Tensor, bits: int, bns: Sequence[nn.Module]) -> Tensor:
    """v1: (conv-BN-act) x 2, conv-BN, + shortcut, act; v2: (BN-act-conv) x 3 + shortcut."""
    shortcut = x if block.shortcut is None else block.shortcut(x)
    out = x
    if block.version == 1:
        for i, (conv, bn) in enumerate(zip(block.convs, bns, strict=True)):
            out = bn(conv(out))
            out = out if i == len(bns) - 1 else bit_activation(out, bits)
        return bit_activation(out + shortcut, bits)
    for conv, bn in zip(block.convs, bns, strict=True):
        out = conv(bit_activation(bn(out), bits))
    return out + shortcut


class BottleneckChoice(Choice):
    """A bottleneck block at a chosen bit width (shared weights, per-width BN), or skipped."""

    def __init__(
        self,
        point: DecisionPoint,
        in_ch: int,
        mid: int,
        stride: int,
        version: int,
        scaling: str,
    ) -> None:
        super().__init__(point)
        out_ch = mid * EXPANSION
        self.version = version
        self.convs = nn.ModuleList(
            [
                QConv2d(in_ch, mid, 1, scaling=scaling),
                QConv2d(mid, mid, 3, stride=stride, padding=1, scaling=scaling),
                QConv2d(mid, out_ch, 1, scaling=scaling),
            ]
        )
        self._set_conv_bits(rest_bits(point.choices))
        bn_channels = [mid, mid, out_ch] if version == 1 else [in_ch, mid, mid]
        self.bns = nn.ModuleList([width_bns(point.choices, c) for c in bn_channels])
        self.shortcut = projection_shortcut(in_ch, out_ch, stride, version)

    def _set_conv_bits(self, bits: int) -> None:
        for conv in self.convs:
            conv.set_bits(bits)

    def forward(self, x: Tensor) -> Tensor:
        if self.active == "skip":
            return x
        bits = choice_bits(self.active)
        self._set_conv_bits(bits)
        return bottleneck_forward(self, x, bits, [bns[self.active] for bns in self.bns])

    def extract(self) -> nn.Module | None:
        if self.active == "skip":
            return None
        convs = copy.deepcopy(self.convs)
        for conv in convs:
            conv.set_bits(choice_bits(self.active))
        bns = nn.ModuleList([copy.deepcopy(bns[self.active]) for bns in self.bns])
        return Bottleneck(convs, bns, copy.deepcopy(self.shortcut), self.version)


class BottleneckResNet(BinaryResNet):
    """Bottleneck ResNet supernet; the first choice everywhere is the ResNet at that width."""

    block = BottleneckChoice
    kind = "bottleneck"
    expansion = EXPANSION


register_versions(BottleneckResNet, BOTTLENECK_LAYERS)
