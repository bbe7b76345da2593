"""MeliusNet (Bethge et al., 2020) as a supernet: every dense and improvement block is a choice.

Spec tables follow the published MeliusNet definitions (BMXNet-v2 examples / bitorch): block
configs, transition reduction factors and the transition structure (BN, max-pool, ReLU, a
full-precision 1x1 conv; channel shuffle + grouped 1x1 for 23/a/b/c).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from lightnas.binary import QConv2d
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
    register_model,
)
from lightnas.registry import Registry
from lightnas.search.space import DecisionPoint

# Search ops of the two MeliusNet decision-point kinds: name -> factory(in_channels, growth,
# **conv_kw) returning a module that maps in_channels to `growth` new channels, or None for an op
# that removes the block (an improvement block's `identity`). Register more with
# `@DENSE_OPS.register("name")` in any module imported before the supernet is built.
DENSE_OPS: Registry[Callable[..., nn.Module]] = Registry(
    "dense-block op", "search_space.dense_block"
)
IMPROVEMENT_OPS: Registry[Callable[..., nn.Module | None]] = Registry(
    "improvement-block op", "search_space.improvement_block"
)
DEFAULT_DENSE = ("conv3x3", "conv1x1")
DEFAULT_IMPROVEMENT = ("conv3x3", "identity")
SHUFFLE_GROUPS = 16
SPACE_KEYS = ("dense_block", "improvement_block")


@DENSE_OPS.register("conv3x3")
@IMPROVEMENT_OPS.register("conv3x3")
def binary_conv3x3(in_channels: int, growth: int, **conv_kw) -> nn.Module:
    return QConv2d(in_channels, growth, 3, padding=1, **conv_kw)


@DENSE_OPS.register("conv1x1")
def binary_conv1x1(in_channels: int, growth: int, **conv_kw) -> nn.Module:
    """LightNAS's cheap replacement of a dense block's 3x3 conv."""
    return QConv2d(in_channels, growth, 1, **conv_kw)


@IMPROVEMENT_OPS.register("identity")
def skip_block(in_channels: int, growth: int, **conv_kw) -> None:
    return None


register_category("conv3x3", "binary")
register_category("conv1x1", "replaced")
register_category("identity", "skipped")


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
        return self.improve(x, self.conv(self.bn(x)))

    @staticmethod
    def improve(x: Tensor, residual: Tensor) -> Tensor:
        keep = x.shape[1] - residual.shape[1]
        if keep == 0:
            return x + residual
        return torch.cat([x[:, :keep], x[:, keep:] + residual], dim=1)


class DenseChoice(Choice):
    """Dense block: one of DENSE_OPS (a binary 3x3 conv or its cheap replacement, a 1x1 conv)."""

    def __init__(self, point: DecisionPoint, in_channels: int, growth: int, **conv_kw) -> None:
        super().__init__(point)
        self.bn = nn.BatchNorm2d(in_channels)
        self.ops = nn.ModuleDict(
            {op: DENSE_OPS[op](in_channels, growth, **conv_kw) for op in point.choices}
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.ops[self.active](self.bn(x))], dim=1)

    def extract(self) -> nn.Module:
        return DenseLayer(copy.deepcopy(self.bn), copy.deepcopy(self.ops[self.active]))


class ImprovementChoice(Choice):
    """Improvement block: one of IMPROVEMENT_OPS improving the newest channels, or skipped."""

    def __init__(self, point: DecisionPoint, in_channels: int, growth: int, **conv_kw) -> None:
        super().__init__(point)
        ops = {op: IMPROVEMENT_OPS[op](in_channels, growth, **conv_kw) for op in point.choices}
        self.ops = nn.ModuleDict({op: m for op, m in ops.items() if m is not None})
        # one BN for every op: it normalises the block's input, whatever the op
        self.bn = nn.BatchNorm2d(in_channels) if self.ops else None

    def forward(self, x: Tensor) -> Tensor:
        if self.active not in self.ops:
            return x
        return ImprovementBlock.improve(x, self.ops[self.active](self.bn(x)))

    def extract(self) -> nn.Module | None:
        if self.active not in self.ops:
            return None
        return ImprovementBlock(copy.deepcopy(self.bn), copy.deepcopy(self.ops[self.active]))


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
            raise ConfigError(
                f"model.kwargs.reduction needs {len(block_config) - 1} factors "
                f"(one per transition), got {len(reduction)}"
            )
        space = dict(search_space or {})
        check_space_keys(name, space, SPACE_KEYS)
        dense = space.get("dense_block", DEFAULT_DENSE)
        dense_ops = check_ops("dense_block", dense, DENSE_OPS.names())
        improvement = space.get("improvement_block", DEFAULT_IMPROVEMENT)
        impr_ops = check_ops("improvement_block", improvement, IMPROVEMENT_OPS.names())
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


def _meliusnet(key: str) -> Callable[..., Supernet]:
    blocks, reduction, groups = MELIUSNET_SPECS[key]

    def factory(
        block_config: Sequence[int] = blocks,
        reduction: Sequence[float] = reduction,
        transition_groups: int = groups,
        **kwargs,
    ) -> Supernet:
        return MeliusNet(f"meliusnet{key}", block_config, reduction, transition_groups, **kwargs)

    return passes_kwargs_to(factory, MeliusNet)


for _key in MELIUSNET_SPECS:
    MODELS.add(f"meliusnet{_key}", _meliusnet(_key))


@register_model("meliusnet_flex")
def meliusnet_flex(
    block_config: Sequence[int] = (4, 5, 4, 4), reduction: Sequence[float] | None = None, **kwargs
) -> Supernet:
    """MeliusNet with a free block config; reductions default to 1/2 (the spec's flex default)."""
    reduction = [0.5] * (len(block_config) - 1) if reduction is None else reduction
    return MeliusNet("meliusnet_flex", block_config, reduction, **kwargs)


passes_kwargs_to(meliusnet_flex, MeliusNet)
