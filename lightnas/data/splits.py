"""Seeds and the seeded train / validation split."""

from __future__ import annotations

import torch
from torch import Tensor

from lightnas.errors import ConfigError


def _mix_seed(*parts: int) -> int:
    """One 63-bit seed from several integers, so (seed, epoch) pairs never collide."""
    h = 0
    for p in parts:
        h = (h * 1_000_003 + int(p) + 0x9E3779B9) % (1 << 63)
    return h


def split_indices(
    n: int, val_size: float | int, seed: int, num_samples: int | None = None
) -> tuple[Tensor, Tensor]:
    """Seeded (train, val) index split of `n` samples, optionally from a subset of `num_samples`."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if num_samples is not None:
        order = order[:num_samples]
    k = _val_count(val_size, len(order))
    return order[k:].sort().values, order[:k].sort().values


def _val_count(val_size: float | int, n: int) -> int:
    valid = f"use a fraction in (0, 1) or a sample count in [1, {n - 1}]"
    if isinstance(val_size, bool) or not isinstance(val_size, (int, float)):
        raise ConfigError(f"data.val_size={val_size!r} is invalid: {valid}")
    if isinstance(val_size, float):
        if not 0.0 < val_size < 1.0:
            raise ConfigError(f"data.val_size={val_size!r} is out of range: {valid}")
        return min(max(round(val_size * n), 1), n - 1)
    if not 1 <= val_size <= n - 1:
        raise ConfigError(f"data.val_size={val_size!r} is out of range: {valid}")
    return val_size
