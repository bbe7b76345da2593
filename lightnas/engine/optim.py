"""The supernet's optimizer and its learning-rate schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightnas.binary import FULL_BITS, QConv2d


def lr_at(epoch: int, epochs: int, lr: float, min_lr: float = 0.0) -> float:
    """The learning rate of epoch `epoch` (0-based): cosine from `lr` down to `min_lr`.

    A pure function of the epoch, so a resumed run, or one whose `epochs` was raised, needs no
    scheduler state."""
    floor = min_lr / lr
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def parameter_groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv / linear weights only: not on BatchNorm, biases or latent binary
    weights (whose sign is all that is used; BMXNet set wd_mult=0 on them)."""
    decay, no_decay, seen = [], [], set()
    for module in net.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            latent = isinstance(module, QConv2d) and module.w_bits < FULL_BITS
            exempt = isinstance(module, nn.modules.batchnorm._BatchNorm) or name == "bias"
            (no_decay if latent or exempt else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(optim, net: nn.Module) -> torch.optim.Optimizer:
    """The supernet's optimizer from the `optim` config section."""
    groups = parameter_groups(net, optim.weight_decay)
    if optim.optimizer == "sgd":
        return torch.optim.SGD(groups, optim.lr, momentum=optim.momentum, nesterov=True)
    return torch.optim.Adam(groups, optim.lr)
