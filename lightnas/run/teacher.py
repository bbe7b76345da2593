"""Knowledge distillation from a full-precision teacher, as BNN training usually uses.

`distill.teacher` in the config names the teacher: an exported trainable, a training folder (its
exported child) or a model name, whose base network is built at 32 bits and loaded from
`distill.weights`. The student's loss is lightnas.engine.loss.DistillationLoss around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from lightnas.binary import FULL_BITS, QConv2d
from lightnas.config import Config, DistillConfig
from lightnas.errors import ConfigError
from lightnas.export import find_trainable, load_child
from lightnas.models import (
    MODELS,
    Supernet,
    child,
    create_supernet,
    op_category,
    state_mismatch,
)


def full_precision_base(
    name: str, num_classes: int, stem: str, kwargs: dict | None = None, in_channels: int = 3
) -> nn.Module:
    """The base network of model `name` (first choice everywhere, but the 32-bit choice of a
    point that has one) at 32 bits."""
    supernet: Supernet = create_supernet(
        name, num_classes, stem, None, in_channels=in_channels, **(kwargs or {})
    )
    arch = {
        p.name: next((c for c in p.choices if op_category(c).bits == FULL_BITS), p.choices[0])
        for p in supernet.space
    }
    net = child(supernet, arch)
    for m in net.modules():
        if isinstance(m, QConv2d):
            m.set_bits(FULL_BITS)
    return net


def _named_teacher(d: DistillConfig, num_classes: int, stem: str, in_channels: int) -> nn.Module:
    if d.weights is None:
        raise ConfigError(
            f"distill.teacher={d.teacher!r} is a model name, so distill.weights (its trained "
            "safetensors state dict) is required: an untrained teacher teaches nothing"
        )
    if not Path(d.weights).is_file():
        raise ConfigError(f"distill.weights={d.weights}: no such file")
    net = full_precision_base(d.teacher, num_classes, stem, d.kwargs, in_channels)
    state = load_file(d.weights)
    wrong = state_mismatch(net.state_dict(), state)
    if wrong:
        raise ConfigError(
            f"distill.weights={d.weights}: does not fit the 32-bit base {d.teacher} ({wrong}); "
            "check distill.kwargs"
        )
    net.load_state_dict(state)
    return net


def build_teacher(cfg: Config, num_classes: int, input_shape: Sequence[int]) -> nn.Module:
    """The teacher of `cfg.distill`, checked to map `input_shape` to `num_classes` logits."""
    d = cfg.distill
    if d.teacher in MODELS:
        with torch.random.fork_rng(devices=[]):  # leave the run's random stream untouched
            net = _named_teacher(d, num_classes, cfg.model.stem, input_shape[0])
    else:
        source = Path(d.teacher)
        net = load_child(find_trainable(source) if source.is_dir() else source)
    net.eval()
    try:
        with torch.no_grad():
            out = net(torch.zeros(2, *input_shape))
    except RuntimeError:
        raise ConfigError(
            f"distill.teacher={d.teacher!r} does not accept inputs of shape {tuple(input_shape)}"
        ) from None
    if out.shape[-1] != num_classes:
        raise ConfigError(
            f"distill.teacher={d.teacher!r} predicts {out.shape[-1]} classes, the data has "
            f"{num_classes}"
        )
    return net
