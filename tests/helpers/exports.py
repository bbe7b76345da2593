"""Architectures to export."""

import torch

from lightnas.search.space import Architecture, SearchSpace


def random_arch(space: SearchSpace, seed: int) -> Architecture:
    """A seeded random architecture that is not the base network."""
    for offset in range(100):
        arch = space.sample(torch.Generator().manual_seed(seed + offset))
        if arch != space.default():
            return arch
    raise AssertionError("no non-default architecture sampled")
