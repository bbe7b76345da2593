"""Compilation that survives a new architecture every step (`compile: none|regional|full`).

- `regional` compiles every binary conv (`QConv2d`: quantizer, -1 padding and conv in one graph)
  once per distinct (shape, bit width, mode); architectures only choose which regions run, so the
  number of compiled graphs is bounded by the supernet's (block, choice) pairs and equal shapes
  share a graph. After one pass over every choice (the first epoch) nothing compiles again.
- `full` compiles the whole supernet: fastest per graph, but each new architecture recompiles
  (bounded by the cache limit, then eager): for `fixed` retrains, where there is one.
torch's compile caches (on disk by default) make a resumed or repeated run reuse the kernels.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lightnas.binary import QConv2d

CompileMode = Literal["none", "regional", "full"]
"""How much of the supernet torch.compile compiles (the `compile` key)."""


def compile_supernet(net: nn.Module, mode: CompileMode, backend: str = "inductor") -> int:
    """Compile `net` in place; returns the number of compiled regions."""
    if mode == "none":
        return 0
    if mode == "full":
        net.compile(backend=backend, dynamic=False)
        return 1
    regions = [m for m in net.modules() if isinstance(m, QConv2d)]
    # every region may need a few graphs (train / eval, bit widths): room for all of them
    limit = max(torch._dynamo.config.cache_size_limit, 4 * len(regions))
    torch._dynamo.config.cache_size_limit = limit
    torch._dynamo.config.accumulated_cache_size_limit = max(
        torch._dynamo.config.accumulated_cache_size_limit, 4 * limit
    )
    for module in regions:
        module.compile(backend=backend, dynamic=False)
    return len(regions)
