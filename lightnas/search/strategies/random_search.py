"""`random`: uniform sampling with the same weight sharing (Li & Talwalkar's baseline)."""

from __future__ import annotations

from collections.abc import Sequence

from lightnas.search.space import Architecture
from lightnas.search.strategies.base import STRATEGIES, Score, Strategy


@STRATEGIES.register("random")
class RandomStrategy(Strategy):
    """Every architecture uniformly at random; validation ranks uniform candidates. It learns
    nothing, so the engine runs no controller steps (`wants_rewards` is False)."""

    def sample(self, epoch: int) -> Architecture:
        return self.space.sample(self.generator)

    def ask(self, n: int) -> list[Architecture]:
        return [self.space.sample(self.generator) for _ in range(n)]

    def tell(self, candidates: Sequence[Architecture], scores: Sequence[Score]) -> dict:
        return {}  # nothing to learn
