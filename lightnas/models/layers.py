"""Building blocks shared by the model families: stems and the classifier head."""

from __future__ import annotations

from torch import nn

STEMS = ("imagenet", "thumbnail")


def make_stem(stem: str, in_channels: int, out_channels: int) -> nn.Sequential:
    """Full-precision stem: `imagenet` = 7x7/2 conv + 3x3/2 max-pool, `thumbnail` = 3x3/1 conv."""
    if stem == "imagenet":
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
    if stem == "thumbnail":
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
    raise ValueError(f"model.stem={stem!r} is not valid; valid: {', '.join(STEMS)}")


def make_head(in_features: int, num_classes: int, pre_bn: bool = True) -> nn.Sequential:
    """(BN + ReLU +) global average pool + full-precision linear classifier."""
    layers: list[nn.Module] = [nn.BatchNorm2d(in_features), nn.ReLU(inplace=True)] if pre_bn else []
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_features, num_classes)]
    return nn.Sequential(*layers)
