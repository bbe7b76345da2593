"""Building blocks shared by the model families: stems (registered by name) and the head."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from lightnas.errors import ConfigError
from lightnas.registry import Registry

# name -> factory(in_channels, out_channels) of a full-precision stem
STEMS: Registry[Callable[[int, int], nn.Module]] = Registry("stem", "model.stem")


@STEMS.register("imagenet")
def imagenet_stem(in_channels: int, out_channels: int) -> nn.Sequential:
    """7x7/2 conv + 3x3/2 max-pool, for 224x224 inputs."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    )


@STEMS.register("thumbnail")
def thumbnail_stem(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3/1 conv, for 32x32 inputs."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


@STEMS.register("grouped")
def grouped_stem(in_channels: int, out_channels: int) -> nn.Sequential:
    """MeliusNet's stem (BMXNet's `grouped_stem`), for 224x224 inputs: a 3x3/2 conv to
    out_channels / 2, a 3x3 conv with 4 groups, a 3x3 conv with 8 groups to out_channels (each
    followed by BN + ReLU), then a 3x3/2 max-pool. About 0.5e8 fewer OPs than the 7x7 stem at
    224x224."""
    width = out_channels // 2
    if out_channels % 16:
        raise ConfigError(
            f"model.stem=grouped needs a multiple of 16 stem channels (its 3x3 convs have 4 and 8 "
            f"groups), got {out_channels}; valid stems for it: imagenet, thumbnail"
        )
    layers: list[nn.Module] = []
    for c_in, c_out, stride, groups in [
        (in_channels, width, 2, 1),
        (width, width, 1, 4),
        (width, out_channels, 1, 8),
    ]:
        layers += [
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers, nn.MaxPool2d(3, stride=2, padding=1))


def make_stem(stem: str, in_channels: int, out_channels: int) -> nn.Module:
    return STEMS[stem](in_channels, out_channels)


def make_head(in_features: int, num_classes: int, pre_bn: bool = True) -> nn.Sequential:
    """(BN + ReLU +) global average pool + full-precision linear classifier."""
    layers: list[nn.Module] = [nn.BatchNorm2d(in_features), nn.ReLU(inplace=True)] if pre_bn else []
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_features, num_classes)]
    return nn.Sequential(*layers)
