"""`fixed`: train one given architecture (what `lightnas retrain` runs)."""

from __future__ import annotations

from lightnas.search.space import Architecture, SearchSpace
from lightnas.search.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("fixed")
class FixedStrategy(Strategy):
    """Always the same architecture: it is the favourite, there are no candidates, and every
    training step trains it alone (no sampling rule, no in-place distillation).

    Built from the architecture itself, never from a config: the run resolves
    `search.architecture` (or the architecture a retrain hands over) against its supernet's
    space once, and passes the object (lightnas.run.parts.build_parts)."""

    has_favourite = True
    favourite_label = "fixed"
    proposes_candidates = False
    shares_weights = False

    def __init__(self, space: SearchSpace, architecture: Architecture, seed: int = 0) -> None:
        if not isinstance(architecture, Architecture):
            raise TypeError(f"FixedStrategy takes an Architecture, not {architecture!r}")
        super().__init__(space, seed)
        self.architecture = architecture

    def sample(self, epoch: int) -> Architecture:
        return self.architecture

    def favourite(self) -> Architecture:
        return self.architecture

    def candidates(self, epoch: int, n: int) -> list[Architecture]:
        return []
