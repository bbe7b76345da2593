"""`fixed`: train one given architecture (what `lightnas retrain` runs)."""

from __future__ import annotations

from collections.abc import Sequence

from lightnas.search.space import Architecture, SearchSpace
from lightnas.search.strategies.base import STRATEGIES, Score, Strategy


@STRATEGIES.register("fixed")
class FixedStrategy(Strategy):
    """Always the same architecture: it is the favourite, there are no candidates, and every
    training step trains it alone (no sampling rule, no in-place distillation).

    Built from the architecture itself, never from a config: the run resolves
    `search.architecture` (or the architecture a retrain hands over) against its supernet's
    space once, and passes the object (lightnas.run.parts.build_parts)."""

    favourite_label = "fixed"
    shares_weights = False

    def __init__(self, space: SearchSpace, architecture: Architecture, seed: int = 0) -> None:
        if not isinstance(architecture, Architecture):
            raise TypeError(f"FixedStrategy takes an Architecture, not {architecture!r}")
        super().__init__(space, seed)
        self.architecture = architecture

    @classmethod
    def from_options(
        cls, space: SearchSpace, options: Architecture, seed: int = 0
    ) -> FixedStrategy:
        """`options`: the architecture itself, resolved against `space` (lightnas.run.parts)."""
        return cls(space, options, seed)

    def sample(self, epoch: int) -> Architecture:
        return self.architecture

    def ask(self, n: int) -> list[Architecture]:
        return [self.architecture] * n

    def tell(self, candidates: Sequence[Architecture], scores: Sequence[Score]) -> dict:
        return {}  # nothing to learn

    def favourite(self) -> Architecture:
        return self.architecture

    def candidates(self, epoch: int, n: int) -> list[Architecture]:
        return []
