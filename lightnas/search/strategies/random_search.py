"""`random`: uniform sampling with the same weight sharing (Li & Talwalkar's baseline)."""

from __future__ import annotations

from lightnas.search.space import Architecture
from lightnas.search.strategies.base import STRATEGIES, Strategy


@STRATEGIES.register("random")
class RandomStrategy(Strategy):
    """Every architecture uniformly at random; validation ranks uniform candidates."""

    def sample(self, epoch: int) -> Architecture:
        return self.space.sample(self.generator)
