"""Tiny children exported in every format, and the architectures to export."""

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lightnas.export import export_child, model_info
from lightnas.models import child, create_supernet
from lightnas.search.space import Architecture, SearchSpace


def random_arch(space: SearchSpace, seed: int) -> Architecture:
    """A seeded random architecture that is not the base network."""
    for offset in range(100):
        arch = space.sample(torch.Generator().manual_seed(seed + offset))
        if arch != space.default():
            return arch
    raise AssertionError("no non-default architecture sampled")


INPUT = (3, 16, 16)


TINY_MELIUS = {"block_config": [1, 1], "growth_rate": 16, "init_features": 32, "reduction": [0.5]}


MODELS = {
    "melius": ("meliusnet_flex", None, TINY_MELIUS),
    "resnet": ("resnet18", {"bits": [1, 32], "skip": True}, {"layers": [1, 1], "width": 8}),
    # grouped transitions add a ChannelShuffle, as in meliusnet23/a/b/c
    "melius_shuffle": ("meliusnet_flex", None, {**TINY_MELIUS, "transition_groups": 4}),
}


@dataclass
class Exported:
    key: str
    net: nn.Module
    arch: Architecture
    info: dict
    paths: dict[str, Path]
    out_dir: Path
    training_after: list[bool]


def randomize_batchnorm(net: nn.Module) -> None:
    """Non-trivial BN statistics, so exports that drop the buffers give other outputs."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)


def tiny_export(key: str, out_dir: Path, **kwargs) -> Exported:
    model, space, kw = MODELS[key]
    torch.manual_seed(0)
    supernet = create_supernet(model, 10, "thumbnail", space, **kw)
    randomize_batchnorm(supernet)
    arch = random_arch(supernet.space, seed=1)
    net = child(supernet, arch).train()
    info = model_info(model, 10, "thumbnail", space, kw, INPUT, (0.5,) * 3, (0.25,) * 3)
    paths = export_child(net, arch, info, out_dir, "epoch_3", **kwargs)
    return Exported(key, net, arch, info, paths, out_dir, [m.training for m in net.modules()])
