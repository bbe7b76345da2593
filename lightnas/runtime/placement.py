"""Where and how a run's tensors compute: the device (resolved from the config's `device`), bf16
autocast and the memory format."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import torch
from torch import Tensor

from lightnas.errors import ConfigError


@dataclass(frozen=True)
class Placement:
    """The device, autocast and memory format a run computes with."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.preserve_format

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def input(self, x: Tensor) -> Tensor:
        return x.to(self.device, non_blocking=True, memory_format=self.memory_format)

    def target(self, y: Tensor) -> Tensor:
        return y.to(self.device, non_blocking=True)


def check_device_name(name: str) -> None:
    """auto, cpu, cuda, cuda:N or mps; anything else is a ConfigError."""
    if re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", name) is None:
        raise ConfigError(f"device={name!r} is not valid; valid: auto, cpu, cuda, cuda:N")


def resolve_device(name: str) -> torch.device:
    """`auto` = CUDA when available; a CUDA device where there is none is a ConfigError."""
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r} but CUDA is not available; valid here: auto, cpu")
    return device
