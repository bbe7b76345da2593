"""MeliusNet (Bethge et al., 2020) as a supernet: every dense and improvement block is a choice.

Spec tables follow the published MeliusNet definitions (BMXNet-v2 examples / bitorch): block
configs, transition reduction factors and the transition structure (BN, max-pool, ReLU, a
full-precision 1x1 conv; channel shuffle + grouped 1x1 for 23/a/b/c).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from lightnas.binary import QConv2d
from lightnas.models.layers import make_head, make_stem
from lightnas.models.supernet import Choice, Supernet, check_ops, check_space_keys
from lightnas.search.space import DecisionPoint

DENSE_OPS = ("conv3x3", "conv1x1")
IMPROVEMENT_OPS = ("conv3x3", "identity")
SHUFFLE_GROUPS = 16
SPACE_KEYS = ("dense_block", "improvement_block")

# name: (blocks per stage, reduction factor of each transition, transition groups (1 = plain))
MELIUSNET_SPECS: dict[str, tuple[list[int], list[float], int]] = {
    "22": ([4, 5, 4, 4], [160 / 320, 224 / 480, 256 / 480], 1),
    "23": ([2, 4, 6, 6], [128 / 192, 192 / 384, 288 / 576], 8),
    "29": ([4, 6, 8, 6], [128 / 320, 192 / 512, 256 / 704], 1),
    "42": ([5, 8, 14, 10], [160 / 384, 256 / 672, 416 / 1152], 1),
    "59": ([6, 12, 24, 12], [192 / 448, 320 / 960, 544 / 1856], 1),
    "a": ([4, 5, 5, 6], [160 / 320, 256 / 480, 288 / 576], 4),
    "b": ([4, 6, 8, 6], [160 / 320, 224 / 544, 320 / 736], 2),
    "c": ([3, 5, 10, 6], [128 / 256, 192 / 448, 288 / 832], 4),
}


class DenseLayer(nn.Module):
    """BN -> binary conv (growth_rate channels) -> concatenated to the input."""

    def __init__(self, bn: nn.BatchNorm2d, conv: nn.Module) -> None:
        super().__init__()
        self.bn = bn
        self.conv = conv

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.conv(self.bn(x))], dim=1)


class ImprovementBlock(nn.Module):
    """BN -> binary 3x3 conv, added to the last `growth_rate` channels of the input."""

    def __init__(self, bn: nn.BatchNorm2d, conv: nn.Module) -> None:
        super().__init__()
        self.bn = bn
        self.conv = conv

    def forward(self, x: Tensor) -> Tensor:
        residual = self.conv(self.bn(x))
        keep = x.shape[1] - residual.shape[1]
        if keep == 0:
            return x + residual
        return torch.cat([x[:, :keep], x[:, keep:] + residual], dim=1)


class DenseChoice(Choice):
    """Dense block: a binary 3x3 conv or its cheap replacement, a binary 1x1 conv."""

    def __init__(self, point: DecisionPoint, in_channels: int, growth: int, **conv_kw) -> None:
        super().__init__(point)
        self.bn = nn.BatchNorm2d(in_channels)
        kernels = {"conv3x3": 3, "conv1x1": 1}
        self.ops = nn.ModuleDict(
            {
                op: QConv2d(in_channels, growth, kernels[op], padding=kernels[op] // 2, **conv_kw)
                for op in point.choices
            }
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.ops[self.active](self.bn(x))], dim=1)

    def extract(self) -> nn.Module:
        return DenseLayer(copy.deepcopy(self.bn), copy.deepcopy(self.ops[self.active]))


class ImprovementChoice(Choice):
    """Improvement block: a binary 3x3 conv improving the newest channels, or skipped."""

    def __init__(self, point: DecisionPoint, in_channels: int, growth: int, **conv_kw) -> None:
        super().__init__(point)
        self.block = None
        if "conv3x3" in point.choices:
            conv = QConv2d(in_channels, growth, 3, padding=1, **conv_kw)
            self.block = ImprovementBlock(nn.BatchNorm2d(in_channels), conv)

    def forward(self, x: Tensor) -> Tensor:
        return x if self.active == "identity" else self.block(x)

    def extract(self) -> nn.Module | None:
        return None if self.active == "identity" else copy.deepcopy(self.block)


def round_channels(channels: float) -> int:
    """Transition width as in the spec: a multiple of 32 (of 8 for tiny test-size networks)."""
    step = 32 if channels >= 64 else 8
    return max(step, int(round(channels / step)) * step)


def make_transition(in_channels: int, out_channels: int, groups: int) -> nn.Sequential:
    """Full-precision downsampling: BN, 2x2 max-pool, ReLU, (channel shuffle,) 1x1 conv."""
    layers: list[nn.Module] = [nn.BatchNorm2d(in_channels), nn.MaxPool2d(2, 2), nn.ReLU()]
    if groups > 1:
        # as in the reference implementation, the shuffle always uses 16 groups
        layers.append(nn.ChannelShuffle(SHUFFLE_GROUPS))
    layers.append(nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False))
    return nn.Sequential(*layers)


class MeliusNet(Supernet):
    """MeliusNet supernet; with the first choice everywhere it is the published network."""

    def __init__(
        self,
        name: str,
        block_config: Sequence[int],
        reduction: Sequence[float],
        transition_groups: int = 1,
        num_classes: int = 1000,
        stem: str = "imagenet",
        search_space: Mapping | None = None,
        in_channels: int = 3,
        growth_rate: int = 64,
        init_features: int = 64,
        scaling: str = "none",
    ) -> None:
        if len(reduction) != len(block_config) - 1:
            raise ValueError(
                f"model.reduction needs {len(block_config) - 1} factors "
                f"(one per transition), got {len(reduction)}"
            )
        space = dict(search_space or {})
        check_space_keys(name, space, SPACE_KEYS)
        dense_ops = check_ops("dense_block", space.get("dense_block", DENSE_OPS), DENSE_OPS)
        impr_ops = check_ops(
            "improvement_block", space.get("improvement_block", IMPROVEMENT_OPS), IMPROVEMENT_OPS
        )
        conv_kw = {"scaling": scaling}
        features = init_features
        body: list[nn.Module] = []
        for stage, num_blocks in enumerate(block_config, start=1):
            for block in range(1, num_blocks + 1):
                prefix = f"stage{stage}.block{block}"
                dense = DecisionPoint(f"{prefix}.dense", dense_ops, "dense")
                body.append(DenseChoice(dense, features, growth_rate, **conv_kw))
                features += growth_rate
                improvement = DecisionPoint(f"{prefix}.improvement", impr_ops, "improvement")
                body.append(ImprovementChoice(improvement, features, growth_rate, **conv_kw))
            if stage < len(block_config):
                out = round_channels(features * reduction[stage - 1])
                body.append(make_transition(features, out, transition_groups))
                features = out
        super().__init__(
            name,
            make_stem(stem, in_channels, init_features),
            nn.Sequential(*body),
            make_head(features, num_classes),
        )
